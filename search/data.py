"""IMDB reviews: read once, split, build the vocabulary, vectorize, cache on disk.

Sources: "tfds" (TensorFlow Datasets' imdb_reviews, in $TFDS_DATA_DIR), an aclImdb folder, or a .tar.gz
with that layout (aclImdb/{train,test}/{pos,neg}/*.txt). The training reviews become
train + validation (stratified, seeded, by blocks of consecutive file ids, so that nearly all
of a movie's reviews of one class fall on one side); the test split is kept apart for the final
evaluation of the exported model only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
import re
import socket
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

DATA_ENV = "IMDB_DATA"
CACHE_ENV = "IMDB_CACHE_DIR"
TFDS_SOURCE = "tfds"
TFDS_NAME = "imdb_reviews"
TFDS_DATA_ENV = "TFDS_DATA_DIR"
TFDS_VERSION_DIR = Path("imdb_reviews", "plain_text", "1.0.0")
"""Where TFDS prepares imdb_reviews inside its data folder."""
TFDS_HOST = ("ai.stanford.edu", 80)
"""Where TFDS downloads the official archive from."""
TFDS_PACKAGES = {"tensorflow_datasets": "tensorflow-datasets", "importlib_resources": "importlib_resources"}
"""Modules the TFDS path imports, each with the pip requirement in pyproject.toml that installs it."""
SPLITS = ("train", "val", "test")
PAD_ID, OOV_ID = 0, 1
MAX_VAL_BLOCK = 10**9
"""Larger blocks of ids than any corpus holds reviews."""
_MEMBER = re.compile(r"(?:^|/)(train|test)/(pos|neg)/([^/]+)\.txt$")


class Reviews(NamedTuple):
    """One split of a source as read: texts, labels (0/1, int8) and file ids (None if unknown)."""

    texts: list[str]
    labels: np.ndarray
    ids: np.ndarray | None


class DataError(ValueError):
    """A data source or setting the user can fix; its message is one actionable line."""


def default_source() -> str:
    return os.environ.get(DATA_ENV, TFDS_SOURCE)


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "bilstm-search"))


@dataclass(frozen=True)
class DataConfig:
    """Where the reviews come from and how they are split and vectorized."""

    source: str = dataclasses.field(default_factory=default_source)
    """"tfds" (TensorFlow Datasets' imdb_reviews, in $TFDS_DATA_DIR), an aclImdb folder, or a
    .tar.gz with that layout; the default is $IMDB_DATA, else "tfds"."""
    val_fraction: float = 0.2
    """Share of the training reviews held out for validation (stratified by label)."""
    val_block: int = 250
    """Validation takes whole blocks of this many consecutive file ids of a class. aclImdb
    numbers a movie's reviews of one class consecutively, and its test movies are disjoint from
    its training movies (Maas et al. 2011), so a split by block keeps nearly all of a movie's
    reviews of a class on one side, closer to how the test split was made; 1 = review by review.
    Sources without ids (tfds) are split review by review."""
    max_vocab: int = 20000
    """Vocabulary built once at the largest size any trial uses; smaller sizes truncate it."""
    limit: int | None = None
    """Use only the first N training reviews (after a seeded shuffle); None = all."""
    test_limit: int | None = None
    """Use only the first N test reviews (after a seeded shuffle); None = all."""
    seed: int = 0
    """Seed of the shuffle and of the train/validation split."""

    @classmethod
    def recorded(cls, values: dict) -> DataConfig:
        """The config a run recorded in run.json; runs recorded before `val_block` existed were
        split review by review, and keep that split on resume."""
        return cls(**{"val_block": 1, **values})

    def __post_init__(self) -> None:
        if not 0.0 < self.val_fraction < 1.0:
            raise DataError(f"val_fraction={self.val_fraction} is invalid: expected a fraction in (0, 1)")
        if not 1 <= self.val_block <= MAX_VAL_BLOCK:
            raise DataError(f"val_block={self.val_block} is invalid: expected an integer from 1 to {MAX_VAL_BLOCK:,}")
        if self.max_vocab < 3:
            raise DataError(f"max_vocab={self.max_vocab} is invalid: expected an integer >= 3")
        for name in ("limit", "test_limit"):
            value = getattr(self, name)
            if value is not None and value < 2:
                raise DataError(f"{name}={value} is invalid: expected at least 2 reviews, or no limit")


@dataclass
class Split:
    """Reviews as one flat array of token ids; review i is tokens[offsets[i]:offsets[i+1]]."""

    tokens: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def review(self, i: int) -> np.ndarray:
        return self.tokens[self.offsets[i] : self.offsets[i + 1]]

    def with_vocab(self, vocab_size: int) -> Split:
        """The same reviews with ids >= vocab_size mapped to the out-of-vocabulary id."""
        tokens = np.where(self.tokens >= vocab_size, OOV_ID, self.tokens).astype(np.int32)
        return Split(tokens, self.offsets, self.labels)

    def take(self, n: int) -> Split:
        n = min(n, len(self))
        end = self.offsets[n]
        return Split(self.tokens[:end], self.offsets[: n + 1], self.labels[:n])

    def plus(self, other: Split) -> Split:
        """This split's reviews followed by `other`'s."""
        offsets = np.concatenate([self.offsets, other.offsets[1:] + self.offsets[-1]])
        return Split(np.concatenate([self.tokens, other.tokens]), offsets, np.concatenate([self.labels, other.labels]))


@dataclass
class Prepared:
    """The vectorized splits, their vocabulary and the fingerprint that identifies them."""

    splits: dict[str, Split]
    vocabulary: list[str]
    fingerprint: str
    facts: dict
    """Source, sizes and counts worth recording beside the run (JSON-serializable)."""

    def for_trials(self) -> Prepared:
        """Train and validation only: the test split never reaches a trial."""
        splits = {k: v for k, v in self.splits.items() if k != "test"}
        return Prepared(splits, self.vocabulary, self.fingerprint, self.facts)

    def for_refit(self) -> Prepared:
        """For a final fit once the configuration is chosen: train = train + validation (the
        validation figures it reports are then on data it trained on); no test split."""
        splits = {"train": self.splits["train"].plus(self.splits["val"]), "val": self.splits["val"]}
        return Prepared(splits, self.vocabulary, self.fingerprint, self.facts)


# ---------------------------------------------------------------- reading


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
    if source == TFDS_SOURCE:
        return _counted(_read_tfds(), replaced=0, hidden=0)
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"--data {source}: no such file or folder; give an aclImdb folder, a .tar.gz of one, or 'tfds'")
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
    trees, replaced, hidden = set(), 0, 0
    for name, read in files:
        match = _MEMBER.search(name)
        if not match:
            continue
        if any(part.startswith(".") for part in name.split("/")):
            hidden += 1
            continue
        trees.add(name[: match.start()] or ".")
        split, polarity, stem = match.groups()
        text, bad = _decode(read())
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
    return _counted(out, replaced, hidden)


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
    for split, rows in found.items():
        if not rows:
            raise DataError(
                f"--data {source}: no {split}/pos/*.txt or {split}/neg/*.txt reviews found; "
                "expected the aclImdb layout (aclImdb/{train,test}/{pos,neg}/*.txt)"
            )
        if len({label for _, label, _ in rows}) < 2:
            raise DataError(f"--data {source}: the {split} split has reviews of one class only; both pos/ and neg/ are needed")


def _counted(reviews: dict, replaced: int, hidden: int) -> tuple[dict, dict]:
    read = {split: {"pos": int(r.labels.sum()), "neg": int(len(r.labels) - r.labels.sum())} for split, r in reviews.items()}
    return reviews, {"read": read, "reviews_with_replaced_bytes": replaced, "hidden_files_skipped": hidden}


def check_source(source: str) -> None:
    """Fail fast, before Ray starts, when a source cannot work here.

    Only "tfds" needs more than the base install: its packages must import
    (`check_tfds_packages`), and unless TFDS already has imdb_reviews prepared or its
    archive downloaded, the download host must answer (a 5 s probe; skipped behind a proxy).

    Raises:
        DataError: one line: the missing package and the pip command that installs it, or no network.
    """
    if source != TFDS_SOURCE:
        return
    check_tfds_packages()
    if not _tfds_local_copy() and not _proxied() and not _reachable(TFDS_HOST):
        raise DataError(
            f"--data tfds: no network: {TFDS_HOST[0]} does not answer and {tfds_data_dir()} holds no prepared "
            f"{TFDS_NAME}; pass --data PATH to an aclImdb folder or aclImdb_v1.tar.gz (or set {DATA_ENV}), "
            f"or prepare {TFDS_NAME} on a machine with internet and copy its {TFDS_DATA_ENV} here"
        )


def check_tfds_packages() -> None:
    """Import each module in TFDS_PACKAGES (cheap: TensorFlow Datasets loads TensorFlow lazily).

    Raises DataError naming a missing package and the pip command that installs it (or, for
    one installed but broken, its import error's first line).
    """
    for module in TFDS_PACKAGES:
        try:
            importlib.import_module(module)
        except ImportError as error:  # not installed, or installed but broken
            raise _tfds_error(error) from error


def tfds_data_dir() -> Path:
    """Where TFDS prepares datasets: $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
    return Path(os.environ.get(TFDS_DATA_ENV) or Path.home() / "tensorflow_datasets").expanduser()


def _tfds_info() -> Path | None:
    """The prepared imdb_reviews's dataset_info.json (version, split sizes, checksums), if any."""
    info = tfds_data_dir() / TFDS_VERSION_DIR / "dataset_info.json"
    return info if info.is_file() else None


def _tfds_local_copy() -> bool:
    """Whether TFDS can prepare imdb_reviews without the network: prepared, or its archive downloaded."""
    return _tfds_info() is not None or any((tfds_data_dir() / "downloads").glob("**/*aclImdb*"))


def _proxied() -> bool:
    return any(os.environ.get(name) for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"))


def _reachable(address: tuple[str, int], timeout_s: float = 5.0) -> bool:
    try:
        socket.create_connection(address, timeout=timeout_s).close()
    except OSError:
        return False
    return True


def _read_tfds() -> dict[str, Reviews]:
    check_tfds_packages()
    import tensorflow_datasets as tfds

    data_dir = os.environ.get(TFDS_DATA_ENV)  # read now: TFDS reads its default once, when imported
    try:
        train, test = tfds.load(TFDS_NAME, split=["train", "test"], as_supervised=True, batch_size=-1, data_dir=data_dir)
    except Exception as error:  # TFDS raises many kinds; classify by the chain of causes
        raise _tfds_error(error) from error
    out = {}
    for split, (texts, labels) in (("train", train), ("test", test)):
        texts = [t.decode("utf-8", errors="replace") for t in texts.numpy()]
        out[split] = Reviews(texts, labels.numpy().astype(np.int8), None)
    return out


def _tfds_error(error: Exception) -> DataError:
    """One actionable line for a failure of TFDS: a missing package, no network, or anything else."""
    chain = _causes(error)
    missing = next((e for e in chain if isinstance(e, ModuleNotFoundError) and e.name), None)
    if missing is not None:
        return _missing_package(missing)
    if any(_is_offline(e) for e in chain):
        return DataError(
            f"--data tfds: no network: TensorFlow Datasets could not download {TFDS_NAME} ({_first_line(chain[-1])}); "
            f"pass --data PATH to an aclImdb folder or aclImdb_v1.tar.gz (or set {DATA_ENV}), "
            f"or prepare {TFDS_NAME} on a machine with internet and copy its {TFDS_DATA_ENV} here"
        )
    return DataError(f"--data tfds: TensorFlow Datasets could not prepare {TFDS_NAME} ({_first_line(error)})")


def _missing_package(error: ModuleNotFoundError) -> DataError:
    module = error.name.partition(".")[0]
    package = TFDS_PACKAGES.get(module, module)
    return DataError(
        f"--data tfds: the Python package {package} is not installed (no module named {module!r}); "
        f"install it with `pip install {package}`, or reinstall this project with `pip install -e .`"
    )


def _causes(error: BaseException) -> list[BaseException]:
    chain = [error]
    while (cause := chain[-1].__cause__ or chain[-1].__context__) is not None and cause not in chain:
        chain.append(cause)
    return chain


def _is_offline(error: BaseException) -> bool:
    """A failure to reach a host: refused, unresolved, timed out, or a proxy that does not answer."""
    import requests

    offline = (ConnectionError, TimeoutError, socket.gaierror, requests.exceptions.ConnectionError, requests.exceptions.Timeout)
    return isinstance(error, offline)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:400] if text else type(error).__name__


def source_fingerprint(source: str) -> str:
    """Identifies the source's content cheaply: file bytes, a folder's names and sizes, or tfds."""
    digest = hashlib.sha256()
    if source == TFDS_SOURCE:  # the prepared dataset's info (checksums, sizes), once TFDS has it
        info = _tfds_info()
        digest.update(info.read_bytes() if info else b"tfds:imdb_reviews:1.0.0")
        return digest.hexdigest()
    path = Path(source).expanduser()
    if path.is_file():
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    elif path.is_dir():
        for p in sorted(path.rglob("*.txt")):
            digest.update(f"{p.relative_to(path)}:{p.stat().st_size}:{p.stat().st_mtime_ns}\n".encode())
    else:
        raise DataError(f"--data {source}: no such file or folder; give an aclImdb folder, a .tar.gz of one, or 'tfds'")
    return digest.hexdigest()


# ---------------------------------------------------------------- splitting


def shuffled_prefix(labels: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """Indices in a seeded random order, cut to the first `limit`."""
    order = np.random.default_rng(seed).permutation(len(labels))
    return order if limit is None else order[:limit]


def stratified_split(
    labels: np.ndarray, val_fraction: float, seed: int, groups: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices): each label keeps its share in both, seeded.

    With `groups` (one integer per review), validation is filled group by group in a seeded
    order, so each group lands on one side (except, per class, the one cut at the share);
    without, review by review. Raises DataError when a side would be empty.
    """
    rng = np.random.default_rng(seed + 1)
    train, val = [], []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if groups is None:
            members = rng.permutation(members)
        else:  # whole groups in a seeded order, reviews shuffled within each
            names, group_of = np.unique(np.asarray(groups)[members], return_inverse=True)
            rank = rng.permutation(len(names))[group_of]
            members = members[np.lexsort((rng.random(len(members)), rank))]
        n_val = round(len(members) * val_fraction)
        val.append(members[:n_val])
        train.append(members[n_val:])
    train_idx, val_idx = np.sort(np.concatenate(train)), np.sort(np.concatenate(val))
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise DataError(
            f"val_fraction={val_fraction} of {len(labels)} reviews leaves an empty split; use more reviews or another fraction"
        )
    return train_idx, val_idx


# ---------------------------------------------------------------- vectorizing


def build_vocabulary(texts: list[str], max_tokens: int) -> list[str]:
    """Keras TextVectorization's vocabulary of the standardized texts (`models.text`):
    "", "[UNK]", then tokens by count (ties by token)."""
    from models.text import text_vectorizer

    vectorizer = text_vectorizer(max_tokens=max_tokens)
    vectorizer.adapt(np.array(texts, dtype=object), batch_size=1024)
    return [str(t) for t in vectorizer.get_vocabulary()]


def vectorize(texts: list[str], labels: np.ndarray, vocabulary: list[str]) -> Split:
    """Token ids of each text; a text without words becomes one out-of-vocabulary id, as the
    exported model encodes it (`models.text.NonEmpty`)."""
    from models.text import text_vectorizer

    vectorizer = text_vectorizer(vocabulary=vocabulary, ragged=True)
    tokens, lengths = [], []
    for start in range(0, len(texts), 2048):
        ragged = vectorizer(np.array(texts[start : start + 2048], dtype=object))
        values, counts = ragged.flat_values.numpy().astype(np.int32), ragged.row_lengths().numpy()
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        tokens.append(np.insert(values, starts[counts == 0], OOV_ID))
        lengths.append(np.maximum(counts, 1))
    offsets = np.concatenate([[0], np.cumsum(np.concatenate(lengths))]).astype(np.int64)
    return Split(np.concatenate(tokens), offsets, labels.astype(np.float32))


# ---------------------------------------------------------------- preparing and caching


def prepare(config: DataConfig, cache_dir: Path | None = None) -> Prepared:
    """Read, split, build the vocabulary and vectorize once; later calls load the cache."""
    from models.config import STANDARDIZATION_VERSION

    settings = {k: v for k, v in dataclasses.asdict(config).items() if k != "source"}
    if config.source == TFDS_SOURCE or config.val_block == 1:
        del settings["val_block"]  # split review by review, as before val_block existed: same cache
    settings["standardization"] = STANDARDIZATION_VERSION
    fingerprint = hashlib.sha256(
        json.dumps({"source": source_fingerprint(config.source), **settings}, sort_keys=True).encode()
    ).hexdigest()[:16]
    cache = (cache_dir or default_cache_dir()) / f"imdb-{fingerprint}.npz"
    if cache.exists():
        return _load(cache, fingerprint)
    prepared = _prepare(config, fingerprint)
    _save(prepared, cache)
    return prepared


def select_splits(reviews: dict[str, Reviews], config: DataConfig) -> dict[str, tuple[list[str], np.ndarray]]:
    """{"train"|"val"|"test": (texts, labels)}: seeded shuffle, limits, stratified split (by
    blocks of file ids where `val_blocks` gives them)."""
    keep, blocks = _kept(reviews, config)
    texts, labels = [reviews["train"].texts[i] for i in keep], reviews["train"].labels[keep]
    train_idx, val_idx = stratified_split(labels, config.val_fraction, config.seed, blocks)
    test_texts, test_labels, _ = reviews["test"]
    keep_test = shuffled_prefix(test_labels, config.test_limit, config.seed)
    return {
        "train": ([texts[i] for i in train_idx], labels[train_idx]),
        "val": ([texts[i] for i in val_idx], labels[val_idx]),
        "test": ([test_texts[i] for i in keep_test], test_labels[keep_test]),
    }


def val_blocks(ids: np.ndarray | None, labels: np.ndarray, val_block: int) -> np.ndarray | None:
    """Each review's block of `val_block` consecutive file ids (a review without an id is a
    block of its own), or None when validation is split review by review: no ids, a block of
    1, or a class whose reviews all share one block."""
    if ids is None or val_block == 1:
        return None
    blocks = np.where(ids < 0, -1 - np.arange(len(ids)), ids // val_block)
    if any(len(np.unique(blocks[labels == label])) < 2 for label in np.unique(labels)):
        return None
    return blocks


def _kept(reviews: dict[str, Reviews], config: DataConfig) -> tuple[np.ndarray, np.ndarray | None]:
    """The training reviews `config` keeps (seeded shuffle, limit), and their blocks (`val_blocks`)."""
    ids, labels = reviews["train"].ids, reviews["train"].labels
    keep = shuffled_prefix(labels, config.limit, config.seed)
    return keep, val_blocks(None if ids is None else ids[keep], labels[keep], config.val_block)


def split_text(reviews: dict[str, Reviews], config: DataConfig) -> str:
    """How `select_splits` carves validation, as run.json's data facts say it."""
    by_block = _kept(reviews, config)[1] is not None
    return f"by blocks of {config.val_block} review ids" if by_block else "review by review"


def raw_splits(config: DataConfig) -> dict[str, tuple[list[str], np.ndarray]]:
    """The prepared splits as raw text, in the prepared order (for raw-text pipelines)."""
    return select_splits(read_reviews(config.source)[0], config)


def _prepare(config: DataConfig, fingerprint: str) -> Prepared:
    reviews, notes = read_reviews(config.source)
    selected = select_splits(reviews, config)
    vocabulary = build_vocabulary(selected["train"][0], config.max_vocab)
    splits = {name: vectorize(texts, labels, vocabulary) for name, (texts, labels) in selected.items()}
    facts = {
        "source": config.source,
        "fingerprint": fingerprint,
        "sizes": {name: len(split) for name, split in splits.items()},
        "tokens": {name: int(split.lengths.sum()) for name, split in splits.items()},
        "vocabulary_size": len(vocabulary),
        "val_split": split_text(reviews, config),
        **notes,
        **{k: v for k, v in dataclasses.asdict(config).items() if k != "source"},
    }
    return Prepared(splits, vocabulary, fingerprint, facts)


def _save(prepared: Prepared, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"vocabulary": np.array(prepared.vocabulary, dtype=str), "facts": np.array(json.dumps(prepared.facts))}
    for name, split in prepared.splits.items():
        arrays |= {f"{name}_tokens": split.tokens, f"{name}_offsets": split.offsets, f"{name}_labels": split.labels}
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as tmp:
        np.savez(tmp, **arrays)
    os.replace(tmp.name, path)


def _load(path: Path, fingerprint: str) -> Prepared:
    with np.load(path) as saved:
        splits = {name: Split(saved[f"{name}_tokens"], saved[f"{name}_offsets"], saved[f"{name}_labels"]) for name in SPLITS}
        facts = {"val_split": "review by review"} | json.loads(str(saved["facts"]))  # caches from before val_split
        return Prepared(splits, saved["vocabulary"].tolist(), fingerprint, facts)
