"""The table from a `--data` value to the source that reads it.

Each source is one row of SOURCES: how to recognize its `--data` value, check it before Ray
starts, fingerprint its content for the cache key, and read its reviews. The first row that
matches wins. A new source is one module under `search/data/` with those four functions, one
row here, and its kind of value named in NO_SOURCE.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from search.data import aclimdb, tfds
from search.data.reviews import DataError, Reviews


@dataclass(frozen=True)
class Source:
    """One kind of `--data` value and the functions that handle it (each takes the value)."""

    name: str
    """What the source is, for the reader of this table."""
    matches: Callable[[str], bool]
    """Whether a `--data` value names this source; cheap, and true for at most the values it reads."""
    check: Callable[[str], None]
    """Fails fast, before Ray starts, when the source cannot work here (raises a one-line DataError)."""
    fingerprint: Callable[[str], str]
    """A hex digest of the source's content, cheap to compute: part of the prepared data's cache key."""
    read: Callable[[str], tuple[dict[str, Reviews], dict]]
    """{"train"|"test": Reviews} and the facts of the read (`reviews.counted`); raises a one-line DataError."""
    local: bool
    """Whether its `--data` value is a path on this machine (recorded absolute in run.json)."""
    file_ids: bool
    """Whether its reviews carry file ids, so that validation can take blocks of them (`val_block`);
    without, it is split review by review and `val_block` stays out of the cache key."""

    @classmethod
    def of(cls, name: str, module: ModuleType, local: bool, file_ids: bool) -> Source:
        """The row of a source module that defines matches, check, fingerprint and read."""
        return cls(name, module.matches, module.check, module.fingerprint, module.read, local, file_ids)


SOURCES: tuple[Source, ...] = (
    Source.of("TensorFlow Datasets' imdb_reviews", tfds, local=False, file_ids=False),
    Source.of("aclImdb folder or .tar.gz", aclimdb, local=True, file_ids=True),
)
NO_SOURCE = "no such file or folder; give an aclImdb folder, a .tar.gz of one, or 'tfds'"
"""What a `--data` value that no row matches is told: every kind of value SOURCES reads."""


def source_for(source: str) -> Source:
    """The first row of SOURCES that matches `source`.

    Raises:
        DataError: one line, when no row matches (a path that does not exist).
    """
    found = next((row for row in SOURCES if row.matches(source)), None)
    if found is None:
        raise DataError(f"--data {source}: {NO_SOURCE}")
    return found


def read_reviews(source: str) -> tuple[dict[str, Reviews], dict]:
    """{"train"|"test": (texts, labels, ids)} from a source, and what reading it found: reviews
    read per split and class, reviews whose bad bytes were replaced, hidden files skipped.
    `ids` are the numbers that begin aclImdb's file names (`<id>_<rating>.txt`), -1 where a
    name has none; None for "tfds", which keeps no file names.

    "tfds" loads TensorFlow Datasets' imdb_reviews from $TFDS_DATA_DIR (default
    ~/tensorflow_datasets), downloading and preparing it there on first use.

    Raises DataError (one line) for a missing or unreadable source, a folder or archive
    without the aclImdb layout, or one holding more than one dataset tree; for "tfds", a
    missing package (which one, and its pip command), no network, or TFDS's own first line.
    """
    return source_for(source).read(source)


def check_source(source: str) -> None:
    """Fail fast, before Ray starts, when a source cannot work here: no source matches it, or its
    row's check fails (for "tfds": a missing package, or no network and no local copy).

    Raises:
        DataError: one line that names the source, what is wrong and what would work.
    """
    source_for(source).check(source)


def absolute_source(source: str) -> str:
    """`source` as run.json records it: a path made absolute, so that a resume finds it from any
    working directory; a value that names no local path ("tfds") as given."""
    row, path = next((row for row in SOURCES if row.matches(source)), None), Path(source).expanduser()
    return str(path.resolve()) if row is not None and row.local else source


def source_fingerprint(source: str) -> str:
    """Identifies the source's content cheaply: file bytes, a folder's names and sizes, or tfds."""
    return source_for(source).fingerprint(source)
