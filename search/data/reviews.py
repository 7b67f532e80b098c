"""What every source reader shares: the reviews it returns, the error it raises, the facts of a read.

Kept apart from the package's core so that the readers (`aclimdb`, `tfds`, ...) and the table of
sources (`sources`) can import it while the core imports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

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
    """Share of a source without a test split (one file) carved off, stratified and seeded, as the test split."""
    drop_missing: bool = False
    """Drop rows whose label or text is missing (counted) instead of refusing the data."""
    drop_header_rows: bool = False
    """Drop rows of a table that repeat its header (counted) instead of refusing the data."""
    fold_label_case: bool = False
    """Merge labels equal up to case under their most frequent spelling (counted) instead of refusing them."""
    quoting: Literal["auto", "none", "csv"] = "auto"
    """Quote characters in CSV and TSV: "csv" as RFC 4180 defines them, "none" as any other character,
    "auto" by the format (CSV quoted, TSV not)."""
    delimiter: str | None = None
    """The field separator of a CSV or TSV file (None: by its ending, "," or a tab)."""
    seed: int = 0
    """Seeds the carving of a test split."""


class DataError(ValueError):
    """A data source or setting the user can fix; its message is one actionable line."""


def counted(reviews: dict[str, Reviews]) -> dict[str, dict[str, int]]:
    """Reviews per split and class ({split: {class: count}}), each class by its label as a string."""
    read = {}
    for split, r in reviews.items():
        names, counts = np.unique(np.asarray(r.labels), return_counts=True)
        read[split] = {str(name): int(count) for name, count in zip(names, counts)}
    return read
