"""What every source reader shares: the reviews it returns, the error it raises, the facts of a read.

Kept apart from the package's core so that the readers (`aclimdb`, `tfds`, ...) and the table of
sources (`sources`) can import it while the core imports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

DATA_ENV = "IMDB_DATA"
"""The environment variable that names the default source."""


class Reviews(NamedTuple):
    """One split of a source as read: texts, their labels as the source spells them (class names
    as strings, or integers; one per text) and file ids (None if unknown)."""

    texts: list[str]
    labels: np.ndarray
    ids: np.ndarray | None


@dataclass(frozen=True)
class ReadOptions:
    """What a reader may be told beyond the `--data` value (the DataConfig fields of the same names)."""

    text_column: str = "text"
    """The column (table) or feature (TFDS) that holds the texts."""
    label_column: str = "label"
    """The column (table) or feature (TFDS) that holds the labels."""
    test_fraction: float = 0.2
    """Share of a single file carved off, stratified and seeded, as the test split."""
    drop_missing: bool = False
    """Drop rows whose label is missing (counted) instead of refusing the data."""
    seed: int = 0
    """Seeds the carving of a test split."""


class DataError(ValueError):
    """A data source or setting the user can fix; its message is one actionable line."""


def counted(
    reviews: dict[str, Reviews], replaced: int, hidden: int, skipped: dict[str, int] | None = None
) -> tuple[dict[str, Reviews], dict]:
    """The reviews, and the facts of reading them: reviews per split and class (by the label as
    the source spells it), reviews whose bad bytes were replaced, hidden files skipped, and files
    skipped in folders that are not a class (`skipped`, by folder, such as aclImdb's train/unsup)."""
    read = {}
    for split, r in reviews.items():
        names, counts = np.unique(np.asarray(r.labels), return_counts=True)
        read[split] = {str(name): int(count) for name, count in zip(names, counts)}
    facts = {"read": read, "reviews_with_replaced_bytes": replaced, "hidden_files_skipped": hidden}
    return reviews, facts | ({"folders_skipped": dict(sorted(skipped.items()))} if skipped else {})
