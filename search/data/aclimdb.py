"""A folder per class: DIR/{train,test}/<class>/*.txt, optionally DIR/validation/<class>/*.txt, or a
.tar.gz of one (the layout keras.utils.text_dataset_from_directory expects). aclImdb is this layout
with the classes neg and pos: aclImdb/{train,test}/{neg,pos}/<id>_<rating>.txt.

Which folders are classes: a folder under train/ that has a counterpart of the same name under
test/. A folder under train/ without one (aclImdb's train/unsup, its unlabelled reviews) is not a
class: its files are skipped and counted in the facts' "folders_skipped". A folder under test/ or
validation/ without a counterpart under train/ is refused: training would never see its class.

File names that begin with digits (aclImdb's `<id>_<rating>.txt`) give each text an id, so that
validation can take whole blocks of a movie's reviews; other names get the id -1.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
import zlib
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from runfiles.documents import DataFacts
from search.data.reviews import DataError, LabelOptions, Reviews

SPLIT_FOLDERS = {"train": "train", "test": "test", "validation": "val"}
"""Each split's folder, and the key its texts are returned under."""
LAYOUT = "train/<class>/*.txt and test/<class>/*.txt (the aclImdb layout: aclImdb/{train,test}/{neg,pos}/*.txt)"
"""The layout, as the errors name it."""
_MEMBER = re.compile(r"(?:^|/)(train|test|validation)/([^/]+)/([^/]+)\.txt$")


def matches(source: str) -> bool:
    """Whether `source` names a folder or a file (whether it holds a folder per class shows when it
    is read): the table's last row, after the sources that claim particular files and folders."""
    path = Path(source).expanduser()
    return path.is_dir() or path.is_file()


def check(source: str, options: LabelOptions) -> None:
    """Nothing to check before Ray starts beyond the path existing: reading finds a wrong layout."""


def fingerprint(source: str, options: LabelOptions) -> str:
    """An archive's bytes, or a folder's text files' names, sizes and modification times (no option
    changes what is read)."""
    digest = hashlib.sha256()
    path = Path(source).expanduser()
    if path.is_file():
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    else:
        for p in sorted(path.rglob("*.txt")):
            digest.update(f"{p.relative_to(path)}:{p.stat().st_size}:{p.stat().st_mtime_ns}\n".encode())
    return digest.hexdigest()


def read(source: str, options: LabelOptions) -> tuple[dict[str, Reviews], DataFacts]:
    """{"train"|"test"[|"val"]: Reviews} of a folder per class, or a tar archive of one, and the facts
    of reading it (reviews whose bad bytes were replaced, hidden files skipped, files skipped in
    folders that are not a class, by folder). Labels are the class folders' names (str); texts are sorted by class, then name.
    `ids` are the numbers that begin the file names (`<id>_<rating>.txt`), -1 where a name has none.

    Raises DataError (one line) for a folder holding only archives, a file that is not a tar
    archive, a damaged archive, no train/ or test/ texts, one class only, a class in test/ or
    validation/ without training texts, or more than one dataset tree.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        archives = sorted(p.name for p in path.glob("*.tar.gz"))
        if archives and not any(path.rglob("*.txt")):
            raise DataError(f"--data {source}: holds no texts, only archives ({', '.join(archives[:3])}); pass the archive")
        files = ((str(p.relative_to(path)), p.read_bytes) for p in sorted(path.rglob("*.txt")))
        return _collect(source, files)
    if not tarfile.is_tarfile(path):
        raise DataError(
            f"--data {source}: not a table, a folder or a tar archive; give a .csv, .tsv, .jsonl or .parquet file, "
            f"a folder per class ({LAYOUT}) or a .tar.gz of one"
        )
    try:
        with tarfile.open(path) as archive:
            members = (m for m in archive if m.isfile())
            return _collect(source, ((m.name, lambda m=m: archive.extractfile(m).read()) for m in members))
    except (tarfile.TarError, EOFError, zlib.error) as error:
        raise DataError(f"--data {source}: the archive is damaged or cut short ({error}); copy or download it again") from None


def _collect(source: str, files) -> tuple[dict[str, Reviews], DataFacts]:
    """Texts from (name, read) pairs in the folder-per-class layout; hidden files (.*, macOS's ._*)
    skipped and counted, and so are folders under train/ that are not classes."""
    found: dict[tuple[str, str], list[tuple[str, str, int]]] = defaultdict(list)
    trees, hidden = set(), 0
    for name, read_bytes in files:
        match = _MEMBER.search(name)
        if not match:
            continue
        if any(part.startswith(".") for part in name.split("/")):
            hidden += 1
            continue
        trees.add(name[: match.start()] or ".")
        split, folder, stem = match.groups()
        found[split, folder].append((stem, *_decode(read_bytes())))
    if len(trees) > 1:
        raise DataError(
            f"--data {source}: holds {len(trees)} dataset trees ({', '.join(sorted(trees))}); point --data at one of them"
        )
    skipped = _drop_other_folders(source, found)
    out, replaced = {}, 0
    for split, key in SPLIT_FOLDERS.items():
        rows = sorted((c, stem, text, bad) for (s, c), files in found.items() if s == split for stem, text, bad in files)
        if rows or split != "validation":
            labels = np.array([c for c, _, _, _ in rows], dtype=str)
            ids = np.array([_review_id(stem) for _, stem, _, _ in rows], np.int64)
            out[key] = Reviews([text for _, _, text, _ in rows], labels, ids)
            replaced += sum(bad for _, _, _, bad in rows)
    skipped = dict(sorted(skipped.items())) or None
    return out, DataFacts(reviews_with_replaced_bytes=replaced, hidden_files_skipped=hidden, folders_skipped=skipped)


def _drop_other_folders(source: str, found: dict) -> Counter:
    """Drop from `found` ({(split, folder): files}) train/'s folders that are not classes (no
    counterpart under test/); return their files' counts by folder ({"train/unsup": n}).

    Raises DataError for a split without texts, fewer than two classes, or a folder of test/ or
    validation/ that train/ lacks.
    """
    folders = {split: sorted(f for s, f in found if s == split) for split in SPLIT_FOLDERS}
    for split in ("train", "test"):
        if not folders[split]:
            raise DataError(f"--data {source}: no {split}/<class>/*.txt texts found; expected a folder per class, {LAYOUT}")
    classes = [f for f in folders["train"] if f in folders["test"]]
    skipped = Counter({f"train/{f}": len(found["train", f]) for f in folders["train"] if f not in classes})
    if len(classes) < 2:
        others = f"; train/ folders without a test/ counterpart are not classes ({', '.join(skipped)})" if skipped else ""
        found_classes = f"of one class only ({classes[0]})" if classes else "of no class that test/ has too"
        raise DataError(
            f"--data {source}: the train split has texts {found_classes}; "
            f"at least two class folders under both train/ and test/ are needed{others}"
        )
    for split in ("test", "validation"):
        unseen = next((f for f in folders[split] if f not in classes), None)
        if unseen is not None:
            n = len(found[split, unseen])
            raise DataError(
                f"--data {source}: {split}/{unseen} holds {n} text{'s' * (n != 1)} of a class that train/ lacks; "
                f"add train/{unseen}/ with training texts, or remove {split}/{unseen}/"
            )
    for folder in skipped:
        found.pop(("train", folder.partition("/")[2]))
    return skipped


def _review_id(stem: str) -> int:
    """The id that begins a file's name without .txt ("123_8" → 123), or -1."""
    match = re.match(r"\d+", stem)
    return int(match.group()) if match else -1


def _decode(raw: bytes) -> tuple[str, int]:
    """UTF-8 text (a byte-order mark dropped), and 1 when bad bytes had to be replaced."""
    try:
        return raw.decode("utf-8-sig"), 0
    except UnicodeDecodeError:
        return raw.decode("utf-8-sig", errors="replace"), 1
