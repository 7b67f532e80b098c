"""The aclImdb source: a folder, or a .tar.gz, in the layout aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt.

Its file ids (the number that begins each name) let validation take whole blocks of a movie's reviews.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

from search.data.reviews import DataError, Reviews, counted

_MEMBER = re.compile(r"(?:^|/)(train|test)/(pos|neg)/([^/]+)\.txt$")
_OTHER = re.compile(r"(?:^|/)((?:train|test)/[^/]+)/[^/]+\.txt$")
"""A text file in a folder of train/ or test/ that is not a class (pos, neg): skipped and counted."""


def matches(source: str) -> bool:
    """Whether `source` names a folder or a file (whether it holds aclImdb shows when it is read)."""
    path = Path(source).expanduser()
    return path.is_dir() or path.is_file()


def check(source: str) -> None:
    """Nothing to check before Ray starts beyond the path existing: reading finds a wrong layout."""


def fingerprint(source: str) -> str:
    """An archive's bytes, or a folder's review names, sizes and modification times."""
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


def read(source: str) -> tuple[dict[str, Reviews], dict]:
    """{"train"|"test": Reviews} of an aclImdb folder or archive, and the facts of reading it.
    `ids` are the numbers that begin the file names (`<id>_<rating>.txt`), -1 where a name has none.

    Raises DataError (one line) for a folder holding only archives, a file that is not a tar
    archive, a damaged archive, no aclImdb layout, or more than one dataset tree.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        archives = sorted(p.name for p in path.glob("*.tar.gz"))
        if archives and not any(path.rglob("*.txt")):
            raise DataError(f"--data {source}: holds no reviews, only archives ({', '.join(archives[:3])}); pass the archive")
        files = ((str(p.relative_to(path)), p.read_bytes) for p in sorted(path.rglob("*.txt")))
        return _collect(source, files)
    if not tarfile.is_tarfile(path):
        raise DataError(f"--data {source}: not a folder or a tar archive; give an aclImdb folder or aclImdb_v1.tar.gz")
    try:
        with tarfile.open(path) as archive:
            members = (m for m in archive if m.isfile())
            return _collect(source, ((m.name, lambda m=m: archive.extractfile(m).read()) for m in members))
    except (tarfile.TarError, EOFError, zlib.error) as error:
        raise DataError(f"--data {source}: the archive is damaged or cut short ({error}); copy or download it again") from None


def _collect(source: str, files) -> tuple[dict[str, Reviews], dict]:
    """Reviews from (name, read) pairs in the aclImdb layout; hidden files (.*, macOS's ._*) skipped."""
    found: dict[str, list[tuple[str, int, str]]] = {"train": [], "test": []}
    trees, replaced, hidden, skipped = set(), 0, 0, Counter()
    for name, read_bytes in files:
        match = _MEMBER.search(name)
        if not match:
            other = _OTHER.search(name)
            if other and not any(part.startswith(".") for part in name.split("/")):
                skipped[other.group(1)] += 1
            continue
        if any(part.startswith(".") for part in name.split("/")):
            hidden += 1
            continue
        trees.add(name[: match.start()] or ".")
        split, polarity, stem = match.groups()
        text, bad = _decode(read_bytes())
        replaced += bad
        found[split].append((f"{polarity}/{stem}", int(polarity == "pos"), text))
    if len(trees) > 1:
        raise DataError(
            f"--data {source}: holds {len(trees)} dataset trees ({', '.join(sorted(trees))}); point --data at one of them"
        )
    _check_layout(source, found)
    out = {}
    for split, rows in found.items():
        rows.sort()
        labels = np.array([label for _, label, _ in rows], np.int8)
        ids = np.array([_review_id(name) for name, _, _ in rows], np.int64)
        out[split] = Reviews([text for _, _, text in rows], labels, ids)
    return counted(out, replaced, hidden, skipped)


def _review_id(name: str) -> int:
    """The id that begins an aclImdb file name ("pos/123_8" → 123), or -1."""
    match = re.match(r"\d+", name.rpartition("/")[2])
    return int(match.group()) if match else -1


def _decode(raw: bytes) -> tuple[str, int]:
    """UTF-8 text (a byte-order mark dropped), and 1 when bad bytes had to be replaced."""
    try:
        return raw.decode("utf-8-sig"), 0
    except UnicodeDecodeError:
        return raw.decode("utf-8-sig", errors="replace"), 1


def _check_layout(source: str, found: dict) -> None:
    """Both splits present, each with reviews of both classes."""
    for split, rows in found.items():
        if not rows:
            raise DataError(
                f"--data {source}: no {split}/pos/*.txt or {split}/neg/*.txt reviews found; "
                "expected the aclImdb layout (aclImdb/{train,test}/{pos,neg}/*.txt)"
            )
        if len({label for _, label, _ in rows}) < 2:
            raise DataError(f"--data {source}: the {split} split has reviews of one class only; both pos/ and neg/ are needed")
