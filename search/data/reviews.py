"""What every source reader shares: the reviews it returns, the error it raises, the facts of a read.

Kept apart from the package's core so that the readers (`aclimdb`, `tfds`, ...) and the table of
sources (`sources`) can import it while the core imports them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

DATA_ENV = "IMDB_DATA"
"""The environment variable that names the default source."""


class Reviews(NamedTuple):
    """One split of a source as read: texts, labels (0/1, int8) and file ids (None if unknown)."""

    texts: list[str]
    labels: np.ndarray
    ids: np.ndarray | None


class DataError(ValueError):
    """A data source or setting the user can fix; its message is one actionable line."""


def counted(
    reviews: dict[str, Reviews], replaced: int, hidden: int, skipped: dict[str, int] | None = None
) -> tuple[dict[str, Reviews], dict]:
    """The reviews, and the facts of reading them: reviews per split and class, reviews whose bad
    bytes were replaced, hidden files skipped, and files skipped in folders that are not a class
    (`skipped`, by folder, such as aclImdb's train/unsup)."""
    read = {split: {"pos": int(r.labels.sum()), "neg": int(len(r.labels) - r.labels.sum())} for split, r in reviews.items()}
    facts = {"read": read, "reviews_with_replaced_bytes": replaced, "hidden_files_skipped": hidden}
    return reviews, facts | ({"folders_skipped": dict(sorted(skipped.items()))} if skipped else {})
