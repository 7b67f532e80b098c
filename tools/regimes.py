"""Tasks written from the aclImdb archive as a folder per class, for `--data DIR`: one function per
regime, one entry in REGIMES.

    python -m tools.regimes ratings4 --archive ../shared/datasets/aclImdb_v1_labelled.tar.gz --out data/ratings4
    python -m search.run --data data/ratings4 --objective val_macro_f1 ...

Each but sentences writes DIR/{train,test}/<class>/<id>_<rating>.txt (the file names of the archive kept, so that
validation still takes blocks of ids) and DIR/regime.json (the regime, the archive and its SHA-256,
the seed, the texts per split and class). The regimes:

- full: the archive's labelled reviews as they are (neg, pos), its unlabelled ones left out.
- ratings4: four classes by the rating in the file name: 1-2, 3-4, 7-8, 9-10 (aclImdb holds no 5 or 6).
- small: SMALL_TRAIN training reviews (an equal share of each class, seeded); the test split whole.
- short: each review cut to its first sentence (neg, pos): a short-text task.
- sentences: MR's shape (Pang & Lee 2005's sentence polarity data: 5,331 sentences per class, no
  test split): SENTENCES_PER_CLASS first sentences of each class drawn from both splits, as one
  table DIR/TABLE (text, label), for `--test-fraction 0 --certify --cv 10`.

The archive is only read; --out must be a new or empty folder, written whole or not at all (to a
temporary folder beside it, then renamed).
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import shutil
import sys
import tarfile
import tempfile
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from runfiles.cli import ArgumentParser, UsageError, fail
from runfiles.io import write_json
from search.data.reviews import DataError

MANIFEST = "regime.json"
"""What a regime's folder says about how it was written (not a .txt file: no reader takes it for a text)."""
SMALL_TRAIN = 2000
"""Training reviews the small-data regime keeps."""
SENTENCES_PER_CLASS = 5331
"""Sentences of each class the sentences regime keeps: as many as MR holds (Pang & Lee 2005)."""
TABLE = "sentences.csv"
"""The one table a table regime (split TABLE_SPLIT) is written to, in its folder."""
TABLE_SPLIT = "table"
"""The split of the reviews written to TABLE rather than to class folders."""
RATING_CLASSES = {1: "1-2", 2: "1-2", 3: "3-4", 4: "3-4", 7: "7-8", 8: "7-8", 9: "9-10", 10: "9-10"}
"""ratings4's class of each rating an aclImdb review can have."""
_MEMBER = re.compile(r"(?:^|/)(train|test)/(neg|pos)/(\d+_(\d+)\.txt)$")


class Review(NamedTuple):
    """One review of the archive, or of a regime (then `label` is its class folder)."""

    split: str
    """"train" or "test"."""
    label: str
    """The class folder it is written to ("neg"/"pos" in the archive)."""
    name: str
    """Its file name, `<id>_<rating>.txt`."""
    text: bytes

    @property
    def rating(self) -> int:
        """The 1-10 rating that ends the file name."""
        return int(self.name.removesuffix(".txt").rpartition("_")[2])


def read_archive(archive: Path) -> list[Review]:
    """The labelled reviews ({train,test}/{neg,pos}/<id>_<rating>.txt) of an aclImdb .tar.gz or
    folder, sorted by split, class and name; hidden files and other folders (unsup) left out.

    Raises:
        DataError: one line, for a missing, damaged or unreadable archive, or one without such reviews.
    """
    archive = Path(archive).expanduser()
    if archive.is_dir():
        files = ((str(p.relative_to(archive)), p.read_bytes) for p in archive.rglob("*.txt"))
        return _reviews(archive, files)
    if not archive.is_file() or not tarfile.is_tarfile(archive):
        raise DataError(f"--archive {archive}: not an aclImdb folder or .tar.gz; give aclImdb_v1.tar.gz or its folder")
    try:
        with tarfile.open(archive) as tar:
            return _reviews(archive, ((m.name, lambda m=m: tar.extractfile(m).read()) for m in tar if m.isfile()))
    except (tarfile.TarError, EOFError, zlib.error) as error:
        raise DataError(f"--archive {archive}: the archive is damaged or cut short ({error}); copy it again") from None


def _reviews(archive: Path, files) -> list[Review]:
    reviews = []
    for name, read_bytes in files:
        match = _MEMBER.search(name)
        if match and not any(part.startswith(".") for part in name.split("/")):
            reviews.append(Review(match.group(1), match.group(2), match.group(3), read_bytes()))
    if not reviews:
        raise DataError(
            f"--archive {archive}: holds no {{train,test}}/{{neg,pos}}/<id>_<rating>.txt reviews; give aclImdb_v1.tar.gz"
        )
    return sorted(reviews, key=lambda r: (r.split, r.label, r.name))


# ---------------------------------------------------------------- the regimes


def full(reviews: list[Review], seed: int) -> list[Review]:
    """The labelled reviews as they are: classes neg and pos."""
    return list(reviews)


def ratings4(reviews: list[Review], seed: int) -> list[Review]:
    """Four classes by the rating in the file name: 1-2, 3-4, 7-8, 9-10.

    Raises:
        DataError: for a rating no class holds (5, 6, or 0 as unlabelled reviews have).
    """
    odd = next((r for r in reviews if r.rating not in RATING_CLASSES), None)
    if odd is not None:
        raise DataError(
            f"{odd.split}/{odd.label}/{odd.name}: rating {odd.rating}, in no class of ratings4 (1-2, 3-4, 7-8, 9-10); "
            "give aclImdb's labelled reviews"
        )
    return [r._replace(label=RATING_CLASSES[r.rating]) for r in reviews]


def small(reviews: list[Review], seed: int) -> list[Review]:
    """SMALL_TRAIN training reviews, an equal share of each class drawn with `seed`; the test split whole."""
    train = [r for r in reviews if r.split == "train"]
    kept = _equal_share(train, SMALL_TRAIN // len({r.label for r in train}), seed)
    return kept + [r for r in reviews if r.split == "test"]


def short(reviews: list[Review], seed: int) -> list[Review]:
    """Each review cut to its first sentence (line breaks, `<br />`, count as spaces): neg and pos."""
    return [r._replace(text=first_sentence(r.text.decode("utf-8", errors="replace")).encode()) for r in reviews]


def first_sentence(text: str) -> str:
    """The text up to and including its first ".", "!" or "?" followed by a space (or the end);
    the whole text when it has none."""
    text = " ".join(re.sub(r"<br\s*/?>", " ", text).split())
    match = re.search(r"[.!?]+(?=\s|$)", text)
    return text[: match.end()] if match else text


def sentences(reviews: list[Review], seed: int) -> list[Review]:
    """SENTENCES_PER_CLASS first sentences of each class, drawn with `seed` from both splits, as one table."""
    kept = _equal_share(reviews, SENTENCES_PER_CLASS, seed)
    return [r._replace(split=TABLE_SPLIT) for r in short(kept, seed)]


def _equal_share(reviews: list[Review], per_class: int, seed: int) -> list[Review]:
    """Up to `per_class` reviews of each class (classes sorted), drawn with `seed`, each class's in
    their order in `reviews`."""
    rng, kept = np.random.default_rng(seed), []
    for label in sorted({r.label for r in reviews}):
        members = [r for r in reviews if r.label == label]
        take = min(len(members), per_class)
        kept += [members[i] for i in sorted(rng.choice(len(members), take, replace=False))]
    return kept


REGIMES: dict[str, Callable[[list[Review], int], list[Review]]] = {
    "full": full,
    "ratings4": ratings4,
    "small": small,
    "short": short,
    "sentences": sentences,
}
"""Each regime's name (the CLI's choice) and the function that makes its reviews from the archive's."""


# ---------------------------------------------------------------- writing


def write(reviews: list[Review], out: Path, manifest: dict) -> dict[str, dict[str, int]]:
    """Write `reviews` to out/<split>/<label>/<name> (those of split TABLE_SPLIT to out/TABLE, a row
    each: text, label) and `manifest` (with the counts added) to out/regime.json, at once: into a
    temporary folder beside `out`, renamed to it when whole. Returns the texts per split and class.

    Raises:
        UsageError: when `out` exists and is a file or a folder that is not empty.
    """
    out = Path(out).expanduser()
    refuse_existing(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        counts: dict[str, Counter] = {}
        rows = []
        for review in reviews:
            counts.setdefault(review.split, Counter())[review.label] += 1
            if review.split == TABLE_SPLIT:
                rows.append((review.text.decode("utf-8", errors="replace"), review.label))
                continue
            folder = tmp / review.split / review.label
            folder.mkdir(parents=True, exist_ok=True)
            (folder / review.name).write_bytes(review.text)
        if rows:
            with (tmp / TABLE).open("w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerows([("text", "label"), *rows])
        counted = {split: dict(sorted(c.items())) for split, c in sorted(counts.items())}
        write_json(tmp / MANIFEST, manifest | {"counts": counted})
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp's folder is private; the written one is like any other
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return counted


def refuse_existing(out: Path) -> None:
    """Raises UsageError (one line) when `out` exists and is a file or a folder that is not empty."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--out {out}: exists and is not an empty folder; give a new folder (nothing was written)")


def sha256(path: Path) -> str:
    """The hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make(regime: str, archive: Path, out: Path, seed: int = 0) -> dict[str, dict[str, int]]:
    """Write `regime` (a key of REGIMES) from `archive` into `out`; the texts per split and class.

    Raises:
        UsageError: an unknown regime, or an `out` that is not new or empty.
        DataError: an archive that cannot be read or does not suit the regime.
    """
    if regime not in REGIMES:
        raise UsageError(f"{regime}: no such regime; choose one of {', '.join(REGIMES)}")
    refuse_existing(Path(out).expanduser())  # before reading the archive: refused at once
    archive = Path(archive).expanduser().resolve()
    reviews = REGIMES[regime](read_archive(archive), seed)
    checksum = sha256(archive) if archive.is_file() else None
    return write(reviews, out, {"regime": regime, "archive": str(archive), "archive_sha256": checksum, "seed": seed})


def _summary(regime: Callable) -> str:
    """A regime's docstring's first line, for --help."""
    return regime.__doc__.splitlines()[0].rstrip(".").replace("SMALL_TRAIN", f"{SMALL_TRAIN:,}")


def parse_args(argv: list[str]) -> object:
    """The command line: the regime, --archive, --out, --seed (UsageError, one line, for a bad one)."""
    parser = ArgumentParser(prog="python -m tools.regimes", description=__doc__.split("\n\n")[0])
    parser.add_argument("regime", choices=list(REGIMES), help="; ".join(f"{k}: {_summary(f)}" for k, f in REGIMES.items()))
    parser.add_argument("--archive", required=True, type=Path, help="aclImdb_v1.tar.gz (or its folder) to read")
    parser.add_argument("--out", required=True, type=Path, help="a new (or empty) folder to write the task into")
    parser.add_argument("--seed", type=int, default=0, help="seeds the regimes that draw (small, sentences)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Write the regime; print its texts per split and class. Exit 2 with one line for bad input."""
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        counts = make(args.regime, args.archive, args.out, args.seed)
    except (UsageError, DataError) as error:
        return fail(error)
    for split, classes in counts.items():
        print(f"{split}: " + ", ".join(f"{label} {n:,}" for label, n in classes.items()))
    print(f"wrote {args.regime} to {args.out / TABLE if TABLE_SPLIT in counts else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
