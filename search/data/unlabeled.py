"""Texts without labels, for learning word vectors (`search.vectors`), and a labelled source's training texts.

An `--unlabeled` value is read by the first kind it is (`KINDS`):
- a table file (.csv, .tsv, .jsonl, .parquet): its text column (`tables.read_column`);
- a tar archive, or a folder: its .txt files, one text each. Where it holds a dataset's layout (a
  folder named train or test on the way to a .txt file: aclImdb's archives and folders), only the
  texts under train/unsup/ are read (aclImdb's unlabelled reviews: `aclImdb_v1_unsup.tar.gz`, or
  the official `aclImdb_v1.tar.gz`, whose train/pos, train/neg and test/ are left alone);
- any other file: UTF-8 text, one text per line (blank lines left out).

`training_texts` reads a labelled source as `search.data` reads it for a run and keeps its training
texts (train, and validation where the source gives one): never its test split, given or carved.
"""

from __future__ import annotations

import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from search.data.reviews import DataError
from search.data.sources import ReadOptions, read_reviews
from search.data.tables import FORMATS as TABLE_FORMATS
from search.data.tables import read_column

FLAG = "--unlabeled"
"""The flag that names unlabeled texts, as errors name it."""
TRAINING_FLAG = "--add-training"
"""The flag that adds a labelled source's training texts."""
UNSUP = ("train", "unsup")
"""The folders, one inside the other, of aclImdb's unlabelled reviews."""
LAYOUT_FOLDERS = {"train", "test", "validation"}
"""Folder names that make a dataset's layout, whose texts are labelled but for train/unsup/."""
KINDS = {
    "table": "a table's text column",
    "archive": "the .txt files of a tar archive",
    "folder": "the .txt files of a folder",
    "lines": "a text file, one text per line",
}
"""Each kind of --unlabeled value, as the card names it."""
TRAINING_SPLITS = ("train", "val")
"""The splits of a labelled source whose texts are training texts (a given validation split is
chosen on, as a carved one is: neither is a test split)."""


@dataclass(frozen=True)
class Texts:
    """Texts read from one source."""

    texts: list[str]
    """The texts, in the source's order."""
    kind: str
    """What was read: a key of KINDS, or "training" (a labelled source's training texts)."""
    skipped: int = 0
    """Texts left out: a table's rows without a text, a text file's blank lines; for "training",
    the rows --drop-missing and --drop-header-rows dropped."""


def read_unlabeled(source: str, options: ReadOptions) -> Texts:
    """The texts of an `--unlabeled` value (see the module's docstring); `options.text_column`
    (and the CSV/TSV settings) for a table.

    Raises:
        DataError: one line naming `--unlabeled SOURCE`: no such path, a folder or archive without
        .txt files, or with a dataset's layout but no train/unsup/ texts, a damaged archive, a
        file that is not text, a table without the column.
    """
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(
            f"{FLAG} {source}: no such file or folder; give a text file (one text per line), a folder of .txt files, "
            f"a table ({', '.join(TABLE_FORMATS)}) with --text-column, or aclImdb's archive or folder (its train/unsup/)"
        )
    if path.is_dir():
        files = {str(p.relative_to(path)): p.read_bytes for p in sorted(path.rglob("*.txt")) if p.is_file()}
        return Texts(_documents(source, files), "folder")
    if path.suffix.lower() in TABLE_FORMATS:
        texts, missing = _renamed(source, lambda: read_column(source, options))
        return Texts(texts, "table", missing)
    if tarfile.is_tarfile(path):
        return Texts(_archived(source, path), "archive")
    return _lines(source, path)


def training_texts(source: str, options: ReadOptions) -> tuple[Texts, dict[str, int]]:
    """The training texts of a labelled `--data` source, read as a run reads it (`read_reviews`:
    for one table file, the test split carved with `options.test_fraction` and `options.seed`, as
    the run's `--seed` carves it), and their count per split ({"train": n[, "val": m]}). The test
    split's texts are dropped as the source is read, before anything uses them. The texts' `skipped`
    counts the rows that --drop-missing and --drop-header-rows dropped from the source (all of its
    rows: they are dropped before a test split is carved).

    Raises:
        DataError: `read_reviews`' one line, naming the source as --add-training.
    """
    reviews, facts = _renamed(source, lambda: read_reviews(source, options), TRAINING_FLAG)
    kept = [split for split in TRAINING_SPLITS if split in reviews]
    dropped = (facts.dropped_missing, facts.dropped_missing_texts, facts.header_rows_dropped)
    texts = Texts([text for split in kept for text in reviews[split].texts], "training", sum(n or 0 for n in dropped))
    return texts, {split: len(reviews[split].texts) for split in kept}


def _renamed(source: str, read: Callable, flag: str = FLAG):
    """`read()`, its DataError naming the source as `flag` instead of `--data` (the readers' own flag)."""
    try:
        return read()
    except DataError as error:
        raise DataError(str(error).replace(f"--data {source}", f"{flag} {source}", 1)) from None


def _documents(source: str, files: dict[str, Callable[[], bytes]]) -> list[str]:
    """The texts of {relative name: read its bytes} .txt files (hidden ones left out): those under
    train/unsup/ where the names make a dataset's layout, else all, in name order.

    Raises DataError for no .txt file, or a dataset's layout without train/unsup/ texts.
    """
    names = [name for name in sorted(files) if not any(part.startswith(".") for part in name.split("/"))]
    if not names:
        raise DataError(
            f"{FLAG} {source}: holds no .txt files; give a folder or archive of .txt files, one text each "
            f"(a labelled dataset's training texts: {TRAINING_FLAG} DATA)"
        )
    if any(LAYOUT_FOLDERS & set(name.split("/")[:-1]) for name in names):
        names = [name for name in names if _in_unsup(name)]
        if not names:
            raise DataError(
                f"{FLAG} {source}: holds a labelled dataset (train/, test/) without train/unsup/*.txt; its test texts are "
                f"never read: pass it with {TRAINING_FLAG} to add its training texts, and unlabeled texts with {FLAG}"
            )
    return [_decoded(files[name]()) for name in names]


def _in_unsup(name: str) -> bool:
    """Whether a member's name lies directly in a train/unsup/ folder."""
    parts = name.split("/")
    return len(parts) >= 3 and tuple(parts[-3:-1]) == UNSUP


def _archived(source: str, path: Path) -> list[str]:
    """The texts of a tar archive's .txt members (`_documents`' rule).

    Raises DataError for a damaged archive, or `_documents`' errors.
    """
    try:
        with tarfile.open(path) as archive:
            members = {m.name: m for m in archive if m.isfile() and m.name.endswith(".txt")}
            files = {name: (lambda m=m: archive.extractfile(m).read()) for name, m in members.items()}
            return _documents(source, files)
    except (tarfile.TarError, EOFError, zlib.error) as error:
        raise DataError(f"{FLAG} {source}: the archive is damaged or cut short ({error}); copy or download it again") from None


def _lines(source: str, path: Path) -> Texts:
    """A text file's non-blank lines, each a text.

    Raises DataError for a file that holds NUL bytes (not text) or no text at all.
    """
    with path.open("rb") as f:
        if b"\0" in f.read(1 << 16):
            raise DataError(
                f"{FLAG} {source}: is not a text file (it holds NUL bytes); give UTF-8 text, one text per line, "
                f"a folder of .txt files or a table ({', '.join(TABLE_FORMATS)})"
            )
    with path.open(encoding="utf-8", errors="replace") as f:
        lines = [line.rstrip("\r\n") for line in f]
    texts = [line for line in lines if line.strip()]
    if not texts:
        raise DataError(f"{FLAG} {source}: holds no text; give UTF-8 text, one text per line")
    return Texts(texts, "lines", len(lines) - len(texts))


def _decoded(raw: bytes) -> str:
    """UTF-8 text (a byte-order mark dropped, bad bytes replaced)."""
    return raw.decode("utf-8-sig", errors="replace")
