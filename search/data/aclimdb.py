"""A folder per class: DIR/{train,test}/<class>/*.txt, optionally DIR/validation/<class>/*.txt, or a
.tar.gz of one (the layout keras.utils.text_dataset_from_directory expects). aclImdb is this layout
with the classes neg and pos: aclImdb/{train,test}/{neg,pos}/<id>_<rating>.txt.

Split folders are named as `reviews.SPLIT_NAMES` says, in any case (validation/, val/, valid/ or
dev/ give the validation split). A class's texts are its folder's files ending in .txt, in any
case, in subfolders too, as Keras reads them; its other files are skipped and counted
("other_files_skipped"). Member names of an archive are read normalized ("./aclImdb/train" is
"aclImdb/train").

Which folders are classes: a folder under train/ that has a counterpart of the same name under
test/. A folder under train/ without one (aclImdb's train/unsup, its unlabelled reviews) is not a
class: its files are skipped and counted in the facts' "folders_skipped". A folder under test/ or
validation/ without a counterpart under train/ is refused: training would never see its class.

File names that begin with digits (aclImdb's `<id>_<rating>.txt`) give each text an id, so that
validation can take whole blocks of a movie's reviews; other names get the id -1.
"""

from __future__ import annotations

import hashlib
import os
import re
import tarfile
import zlib
from collections import Counter, defaultdict
from pathlib import Path, PurePosixPath

import numpy as np

from runfiles.documents import DataFacts
from search.data.reviews import SPLIT_NAMES, DataError, LabelOptions, Reviews

SPLITS = {"train": "train", "test": "test", "val": "validation"}
"""Each split's key, and how errors name its folder."""
TEXT_ENDING = ".txt"
"""A text file's ending, in any case (keras.utils.text_dataset_from_directory's formats)."""
TABLE_ENDINGS = (".csv", ".tsv", ".jsonl", ".parquet")
"""Endings of table files, which a folder that is no class layout is told how to name."""
LAYOUT = "train/<class>/*.txt and test/<class>/*.txt (the aclImdb layout: aclImdb/{train,test}/{neg,pos}/*.txt)"
"""The layout, as the errors name it."""


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
        for p in _texts_in(path):
            digest.update(f"{p.relative_to(path)}:{p.stat().st_size}:{p.stat().st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _files_in(folder: Path) -> list[Path]:
    """Every file under `folder`, sorted; symbolic links to folders are not followed (as Keras walks)."""
    return sorted(Path(root) / name for root, _, names in os.walk(folder) for name in names)


def _texts_in(folder: Path) -> list[Path]:
    """The files under `folder` that end in .txt, in any case, sorted."""
    return [p for p in _files_in(folder) if p.name.lower().endswith(TEXT_ENDING)]


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
        if archives and not _texts_in(path):
            raise DataError(f"--data {source}: holds no texts, only archives ({', '.join(archives[:3])}); pass the archive")
        tables = sorted(p.name for p in path.iterdir() if p.suffix.lower() in TABLE_ENDINGS and p.is_file())
        files = ((p.relative_to(path).as_posix(), p.read_bytes) for p in _files_in(path))
        return _collect(source, files, tables)
    if not tarfile.is_tarfile(path):
        raise DataError(
            f"--data {source}: not a table, a folder or a tar archive; give a .csv, .tsv, .jsonl or .parquet file, "
            f"a folder per class ({LAYOUT}) or a .tar.gz of one"
        )
    try:
        with tarfile.open(path) as archive:
            members = (m for m in archive if m.isfile())
            return _collect(source, ((m.name, lambda m=m: archive.extractfile(m).read()) for m in members), [])
    except (tarfile.TarError, EOFError, zlib.error) as error:
        raise DataError(f"--data {source}: the archive is damaged or cut short ({error}); copy or download it again") from None


def _collect(source: str, files, tables: list[str]) -> tuple[dict[str, Reviews], DataFacts]:
    """Texts from (name, read) pairs in the folder-per-class layout (`_place`); hidden files (.*,
    macOS's ._*) skipped and counted, and so are a class's files that do not end in .txt and
    folders under train/ that are not classes. `tables`: the table files beside (named in the
    refusal of a folder without the layout).

    Raises DataError for more than one dataset tree, or two folders of one split.
    """
    found: dict[tuple[str, str], list[tuple[str, str, int]]] = defaultdict(list)
    others: Counter = Counter()
    trees, spelled, hidden = set(), defaultdict(set), 0
    for name, read_bytes in files:
        place = _place(name)
        if place is None:
            continue
        tree, folder, label, inner = place
        if any(part.startswith(".") for part in PurePosixPath(name).parts):
            hidden += 1
            continue
        split = SPLIT_NAMES[folder.lower()]
        if not inner.lower().endswith(TEXT_ENDING):
            others[tree or ".", split, label] += 1
            continue
        trees.add(tree or ".")
        spelled[split].add(folder)
        found[split, label].append((inner[: -len(TEXT_ENDING)], *_decode(read_bytes())))
    _check_one_tree(source, trees, spelled)
    named = {split: min(spelled[split], default=folder) for split, folder in SPLITS.items()}
    skipped = _drop_other_folders(source, found, named, tables)
    other = sum(n for (tree, split, label), n in others.items() if tree in trees and (split, label) in found)
    out, replaced = {}, 0
    for split in SPLITS:
        rows = sorted((c, stem, text, bad) for (s, c), files in found.items() if s == split for stem, text, bad in files)
        if rows or split != "val":
            labels = np.array([c for c, _, _, _ in rows], dtype=str)
            ids = np.array([_review_id(stem) for _, stem, _, _ in rows], np.int64)
            out[split] = Reviews([text for _, _, text, _ in rows], labels, ids)
            replaced += sum(bad for _, _, _, bad in rows)
    facts = DataFacts(reviews_with_replaced_bytes=replaced, hidden_files_skipped=hidden, other_files_skipped=other or None)
    facts.folders_skipped = dict(sorted(skipped.items())) or None
    return out, facts


def _place(name: str) -> tuple[str, str, str, str] | None:
    """Where a file lies in the layout: (the tree's folder, the split folder, the class folder, the
    file's path in it), from its name normalized ("./aclImdb/train/pos/1.txt" → ("aclImdb", "train",
    "pos", "1.txt")); None for a file in no class folder. The split folder is the one that holds
    the file's class folder where one does (as before subfolders were read), else the first split
    folder on the path (its class folder's file lies in a subfolder)."""
    parts = [part for part in PurePosixPath(name.replace("\\", "/")).parts if part not in ("/", ".")]
    at = [i for i, part in enumerate(parts[:-2]) if part.lower() in SPLIT_NAMES]
    if not at:
        return None
    i = at[-1] if at[-1] == len(parts) - 3 else at[0]
    return "/".join(parts[:i]), parts[i], parts[i + 1], "/".join(parts[i + 2 :])


def _check_one_tree(source: str, trees: set[str], spelled: dict[str, set[str]]) -> None:
    """Raise DataError for more than one dataset tree, or a split given by two folders (val/ and
    validation/, train/ and Train/)."""
    if len(trees) > 1:
        raise DataError(
            f"--data {source}: holds {len(trees)} dataset trees ({', '.join(sorted(trees))}); point --data at one of them"
        )
    for split, folders in spelled.items():
        if len(folders) > 1:
            names = ", ".join(f"{f}/" for f in sorted(folders))
            raise DataError(f"--data {source}: holds {len(folders)} {SPLITS[split]} folders ({names}); keep one of them")


def _drop_other_folders(source: str, found: dict, named: dict[str, str], tables: list[str]) -> Counter:
    """Drop from `found` ({(split, folder): files}) train/'s folders that are not classes (no
    counterpart under test/); return their files' counts by folder ({"train/unsup": n}). `named`:
    each split's folder as the source spells it.

    Raises DataError for a split without texts (naming the `tables` beside, if any), fewer than
    two classes, or a folder of test/ or validation/ that train/ lacks.
    """
    folders = {split: sorted(f for s, f in found if s == split) for split in SPLITS}
    for split in ("train", "test"):
        if not folders[split] and tables:
            raise DataError(
                f"--data {source}: holds table files ({', '.join(tables[:3])}{', …' * (len(tables) > 3)}) but none named "
                "train.*, test.* or validation.*; name them so (a folder of train.csv and test.csv), or pass one file as --data"
            )
        if not folders[split]:
            raise DataError(f"--data {source}: no {split}/<class>/*.txt texts found; expected a folder per class, {LAYOUT}")
    classes = [f for f in folders["train"] if f in folders["test"]]
    skipped = Counter({f"{named['train']}/{f}": len(found["train", f]) for f in folders["train"] if f not in classes})
    if len(classes) < 2:
        others = f"; train/ folders without a test/ counterpart are not classes ({', '.join(skipped)})" if skipped else ""
        found_classes = f"of one class only ({classes[0]})" if classes else "of no class that test/ has too"
        raise DataError(
            f"--data {source}: the train split has texts {found_classes}; "
            f"at least two class folders under both train/ and test/ are needed{others}"
        )
    for split in ("test", "val"):
        unseen = next((f for f in folders[split] if f not in classes), None)
        if unseen is not None:
            n, where = len(found[split, unseen]), named[split]
            raise DataError(
                f"--data {source}: {where}/{unseen} holds {n} text{'s' * (n != 1)} of a class that train/ lacks; "
                f"add train/{unseen}/ with training texts, or remove {where}/{unseen}/"
            )
    for folder in skipped:
        found.pop(("train", folder.partition("/")[2]))
    return skipped


def _review_id(stem: str) -> int:
    """The id that begins a file's name without .txt ("123_8" or "more/123_8" → 123), or -1."""
    match = re.match(r"\d+", stem.rpartition("/")[2])
    return int(match.group()) if match else -1


def _decode(raw: bytes) -> tuple[str, int]:
    """UTF-8 text (a byte-order mark dropped), and 1 when bad bytes had to be replaced."""
    try:
        return raw.decode("utf-8-sig"), 0
    except UnicodeDecodeError:
        return raw.decode("utf-8-sig", errors="replace"), 1
