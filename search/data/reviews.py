"""What every source reader shares: the reviews it returns, the options it is told, the error it
raises, the facts of a read.

Kept apart from the package's core so that the readers (`aclimdb`, `tfds`, ...) and the table of
sources (`sources`) can import it while the core imports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

PAD_ID, OOV_ID = 0, 1
"""The token ids of padding and of words outside the vocabulary (Keras TextVectorization's)."""
DATA_ENV = "IMDB_DATA"
"""The environment variable that names the default source."""
SPLIT_NAMES = {"train": "train", "test": "test", "validation": "val", "val": "val", "valid": "val", "dev": "val"}
"""The names of a split's file (a table's train.csv) or folder (a folder per class's train/), in
any case, and the split each gives: Hugging Face datasets' "validation", and "val", "valid" and
"dev" as Keras and NLP datasets (GLUE's dev.tsv) name it."""


class Reviews(NamedTuple):
    """One split of a source as read: texts, their labels as the source spells them (class names
    as strings, or integers; one per text) and file ids (None if unknown)."""

    texts: list[str]
    labels: np.ndarray
    ids: np.ndarray | None

    def subset_of(self, indices) -> Reviews:
        """The reviews at `indices` (a sequence of positions, perhaps empty), in that order."""
        indices = np.asarray(indices, dtype=np.int64)
        return Reviews([self.texts[i] for i in indices], self.labels[indices], None if self.ids is None else self.ids[indices])


class DataError(ValueError):
    """A data source or setting the user can fix; its message is one actionable line."""


NO_TEST = 0.0
"""--test-fraction 0: a table read as one file keeps every row for training and validation; it has
no test split, and its result is the cross-validated estimate (--certify --cv K, search.crossval)."""


def check_fraction(name: str, value: float, otherwise: str = "") -> None:
    """A share of the reviews set apart (`test_fraction`, `val_fraction`) lies in (0, 1); a one-line
    DataError naming its flag otherwise, ending with `otherwise` (what else the flag takes)."""
    if not 0.0 < value < 1.0:
        raise DataError(f"--{name.replace('_', '-')} {value:g} is invalid: expected a fraction in (0, 1){otherwise}")


@dataclass(frozen=True)
class LabelOptions:
    """What a reader may be told beyond the `--data` value, as every source's labels are read
    (`labels.as_classes`). A source's row names the options its reader takes: this class, or a
    subclass declared beside its reader with the source's own (`sources.SOURCES`); each field is
    a DataConfig field, a flag of search.run and a part of the cache key of the sources that take it.
    Validation names the flag."""

    fold_label_case: bool = False
    """Merge labels that are equal up to case ('pos', 'POS') under their most frequent spelling,
    counted in run.json, instead of refusing them."""

    def __post_init__(self) -> None:
        """Each subclass checks its own fields, then calls this chain on (`super().__post_init__()`)."""


@dataclass(frozen=True)
class ColumnOptions(LabelOptions):
    """The options of a source whose examples have named columns or features (a table, TFDS), and
    that may give no test split."""

    text_column: str = field(default="text", metadata={"metavar": "COLUMN"})
    """The column (table) or feature (TFDS) that holds the texts."""
    label_column: str = field(default="label", metadata={"metavar": "COLUMN"})
    """The column (table) or feature (TFDS) that holds the labels (class names or integers)."""
    test_fraction: float = field(default=0.2, metadata={"metavar": "SHARE"})
    """Share of a single table file carved off as the test split (stratified by label, seeded); 0:
    none, the result is then cross-validated (with --certify --cv K)."""
    drop_missing: bool = False
    """Drop the rows of a table that have no label, or no text (a JSON Lines key absent, a null),
    counted in run.json, instead of refusing it."""

    def __post_init__(self) -> None:
        if self.test_fraction != NO_TEST:
            check_fraction("test_fraction", self.test_fraction, ", or 0 for no test split (with --certify --cv K)")
        if self.text_column == self.label_column:
            raise DataError(
                f"text_column={self.text_column!r} is invalid: it is also label_column; "
                "name two different columns with --text-column and --label-column"
            )
        super().__post_init__()


def counted(reviews: dict[str, Reviews]) -> dict[str, dict[str, int]]:
    """Reviews per split and class ({split: {class: count}}), each class by its label as a string."""
    read = {}
    for split, r in reviews.items():
        names, counts = np.unique(np.asarray(r.labels), return_counts=True)
        read[split] = {str(name): int(count) for name, count in zip(names, counts)}
    return read
