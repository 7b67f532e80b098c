"""IMDB reviews: read once, split, build the vocabulary, vectorize, cache on disk.

Sources (`sources.SOURCES`): "tfds" (TensorFlow Datasets' imdb_reviews, in $TFDS_DATA_DIR, `tfds`),
an aclImdb folder, or a .tar.gz with that layout (aclImdb/{train,test}/{pos,neg}/*.txt, `aclimdb`).
The training reviews become train + validation (stratified, seeded, by blocks of consecutive file
ids, so that nearly all of a movie's reviews of one class fall on one side); the test split is kept
apart for the final evaluation of the exported model only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.config import STANDARDIZATION_VERSION
from search.data.reviews import DATA_ENV, DataError, Reviews
from search.data.sources import absolute_source, check_source, read_reviews, source_fingerprint, source_for
from search.data.tfds import TFDS_DATA_ENV, TFDS_NAME, TFDS_PACKAGES, TFDS_SOURCE, check_tfds_packages, tfds_data_dir

__all__ = [
    "DATA_ENV",
    "CACHE_ENV",
    "SPLITS",
    "PAD_ID",
    "OOV_ID",
    "MAX_VAL_BLOCK",
    "MAX_OVERLAP",
    "UNFINGERPRINTED",
    "DataConfig",
    "DataError",
    "Reviews",
    "Split",
    "Prepared",
    "default_source",
    "default_cache_dir",
    "check_source",
    "read_reviews",
    "source_fingerprint",
    "TFDS_SOURCE",
    "TFDS_NAME",
    "TFDS_DATA_ENV",
    "TFDS_PACKAGES",
    "check_tfds_packages",
    "tfds_data_dir",
    "shuffled_prefix",
    "stratified_split",
    "build_vocabulary",
    "vectorize",
    "prepare",
    "select_splits",
    "val_blocks",
    "split_text",
    "raw_splits",
    "data_fingerprint",
    "absolute_source",
    "text_checks",
    "check_overlap",
]

CACHE_ENV = "IMDB_CACHE_DIR"
SPLITS = ("train", "val", "test")
PAD_ID, OOV_ID = 0, 1
MAX_VAL_BLOCK = 10**9
"""Larger blocks of ids than any corpus holds reviews."""
MAX_OVERLAP = 0.05
"""The share of test reviews that may be copies of training reviews before a run is refused (`allow_overlap`)."""
UNFINGERPRINTED = ("source", "allow_overlap")
"""DataConfig fields that leave the prepared data as it is: not part of its cache key (the source's
content is, through its own fingerprint)."""


def default_source() -> str:
    """The `--data` default: $IMDB_DATA, else "tfds"."""
    return os.environ.get(DATA_ENV, TFDS_SOURCE)


def default_cache_dir() -> Path:
    """Where prepared data is cached: $IMDB_CACHE_DIR, else ~/.cache/bilstm-search."""
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
    allow_overlap: bool = False
    """Accept a test split of which more than 5% are copies of training reviews (after the
    standardization); their test accuracy then measures memory as much as the model."""

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
        """Tokens per review."""
        return np.diff(self.offsets)

    def review(self, i: int) -> np.ndarray:
        """Review i's token ids."""
        return self.tokens[self.offsets[i] : self.offsets[i + 1]]

    def with_vocab(self, vocab_size: int) -> Split:
        """The same reviews with ids >= vocab_size mapped to the out-of-vocabulary id."""
        tokens = np.where(self.tokens >= vocab_size, OOV_ID, self.tokens).astype(np.int32)
        return Split(tokens, self.offsets, self.labels)

    def take(self, n: int) -> Split:
        """The first n reviews (all of them when there are fewer)."""
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
    from models.text import text_vectorizer  # here, not at the top: it loads TensorFlow

    vectorizer = text_vectorizer(max_tokens=max_tokens)
    vectorizer.adapt(np.array(texts, dtype=object), batch_size=1024)
    return [str(t) for t in vectorizer.get_vocabulary()]


def vectorize(texts: list[str], labels: np.ndarray, vocabulary: list[str]) -> Split:
    """Token ids of each text; a text without words becomes one out-of-vocabulary id, as the
    exported model encodes it (`models.text.NonEmpty`)."""
    from models.text import text_vectorizer  # here, not at the top: it loads TensorFlow

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


def data_fingerprint(config: DataConfig) -> str:
    """What identifies the prepared data (16 hex digits), cheap to compute: the source's content
    (`source_fingerprint`) and the settings that shape the splits and vectors. It is the cache key,
    and run.json's data fingerprint, which a resumed run must find again."""
    source = source_for(config.source)
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k not in UNFINGERPRINTED}
    if not source.file_ids or config.val_block == 1:
        del settings["val_block"]  # split review by review, as before val_block existed: same cache
    settings["standardization"] = STANDARDIZATION_VERSION
    return hashlib.sha256(
        json.dumps({"source": source.fingerprint(config.source), **settings}, sort_keys=True).encode()
    ).hexdigest()[:16]


def prepare(config: DataConfig, cache_dir: Path | None = None) -> Prepared:
    """Read, split, build the vocabulary and vectorize once; later calls load the cache."""
    fingerprint = data_fingerprint(config)
    cache = (cache_dir or default_cache_dir()) / f"imdb-{fingerprint}.npz"
    prepared = _load(cache, fingerprint) if cache.exists() else None
    if prepared is None or "duplicates" not in prepared.facts:  # new, or cached before the texts were checked
        prepared = _prepare(config, fingerprint)
        _save(prepared, cache)
    check_overlap(prepared.facts, config)
    return prepared


def text_checks(selected: dict[str, tuple[list[str], np.ndarray]]) -> dict:
    """What the texts of the splits hold that a reader should be told, after the standardization
    (`models.text.standardize`): per split, texts without a word ("empty_texts", kept: the model
    answers them too); test reviews that are copies of training ones (train or validation) and
    validation reviews that are copies of train ones ("duplicates"; empty texts are no copies)."""
    words = {name: _standardized(texts) for name, (texts, _) in selected.items()}
    empty = {name: sum(not text for text in texts) for name, texts in words.items()}
    train = set(words["train"]) - {b""}
    training = train | set(words["val"]) - {b""}
    duplicates = {
        "test_in_training": sum(text in training for text in words["test"]),
        "val_in_train": sum(text in train for text in words["val"]),
    }
    return {"empty_texts": empty, "duplicates": duplicates}


def _standardized(texts: list[str]) -> list[bytes]:
    """Each text standardized, its words joined by one space (b"" for a text without words)."""
    from models.text import standardize  # here, not at the top: it loads TensorFlow

    out = []
    for start in range(0, len(texts), 2048):
        batch = standardize(np.array(texts[start : start + 2048], dtype=object)).numpy()
        out += [b" ".join(text.split()) for text in batch]
    return out


def check_overlap(facts: dict, config: DataConfig) -> None:
    """Refuse a test split of which more than MAX_OVERLAP are copies of training reviews, unless
    `config.allow_overlap`.

    Raises:
        DataError: one line naming the source, the count and share, and what would work.
    """
    copies, tests = facts["duplicates"]["test_in_training"], facts["sizes"]["test"]
    if not config.allow_overlap and copies > MAX_OVERLAP * tests:
        raise DataError(
            f"--data {config.source}: {copies:,} of {tests:,} test reviews ({copies / tests:.1%}) are copies of training "
            f"reviews (after the standardization), more than {MAX_OVERLAP:.0%}: their test accuracy would measure memory; "
            "remove them from the test split, or pass --allow-overlap"
        )


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
        **text_checks(selected),
        **notes,
        **{k: v for k, v in dataclasses.asdict(config).items() if k not in UNFINGERPRINTED},
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
