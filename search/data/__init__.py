"""Labelled texts of any text-classification dataset: read once, split, build the vocabulary,
vectorize, cache on disk.

Sources (`sources.SOURCES`, one reader module each): a table (CSV, TSV, JSON Lines or Parquet: one
file, a test split carved from it, or a folder of train.*, test.* and optionally validation.*;
`tables`), a folder per class or a .tar.gz of one (aclImdb's layout, `aclimdb`), and TensorFlow
Datasets by name ("tfds" is imdb_reviews; `tfds`). The classes are the training labels' distinct
values, sorted (integers numerically, names as strings), and each label becomes its class's index
(int32, 0..K-1). The training reviews become train + validation (stratified, seeded; by blocks of
consecutive file ids where the source has them, so that nearly all of a movie's reviews of one class
fall on one side), unless the source gives a validation split; the test split is kept apart for the
final evaluation of the exported model only.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import tempfile
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import numpy as np

from models.config import STANDARDIZATION_VERSION
from runfiles.cli import recorded_config
from runfiles.documents import DataFacts, Duplicates
from runfiles.layout import counts_text
from search.data.labels import integer_array
from search.data.reviews import DATA_ENV, NO_TEST, OOV_ID, PAD_ID, DataError, Reviews, check_fraction
from search.data.sources import (
    NO_TEST_MADE,
    READ_FIELDS,
    SPLITS_SHARED,
    ReadOptions,
    absolute_source,
    carves_test,
    check_source,
    given_test_split,
    read_reviews,
    source_fingerprint,
    source_for,
    test_split_named,
)
from search.data.splitting import emptied, fewest_for, shuffled_prefix, stratified_split, too_few
from search.data.tfds import TFDS_DATA_ENV, TFDS_NAME, TFDS_PACKAGES, TFDS_SOURCE, check_tfds_packages, tfds_data_dir
from search.data.vectors import Format as VectorFormat
from search.data.vectors import Vectors, embedding_facts, file_fingerprint, read_vectors, sniff

__all__ = [
    "DATA_ENV",
    "CACHE_ENV",
    "SPLITS",
    "PAD_ID",
    "OOV_ID",
    "MAX_VAL_BLOCK",
    "MAX_OVERLAP",
    "UNFINGERPRINTED",
    "READ_FIELDS",
    "DataConfig",
    "DataError",
    "ReadOptions",
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
    "with_vectors",
    "VECTOR_FIELDS",
    "VECTOR_FORMATS",
    "select_splits",
    "classes_of",
    "class_counts",
    "val_blocks",
    "split_text",
    "raw_splits",
    "data_fingerprint",
    "absolute_source",
    "text_checks",
    "dropped_characters",
    "check_overlap",
]

CACHE_ENV = "IMDB_CACHE_DIR"
SPLITS = ("train", "val", "test")
MAX_VAL_BLOCK = 10**9
"""Larger blocks of ids than any corpus holds reviews."""
MAX_OVERLAP = 0.05
"""The share of test reviews that may be copies of training reviews before a run is refused (`allow_overlap`)."""
CHARACTERS_SHOWN = 5
"""The characters dropped from texts without a word that the facts name: the most frequent ones."""
UNFINGERPRINTED = ("source", "allow_overlap")
"""DataConfig fields that leave the prepared data as it is: not part of its cache key (the source's
content is, through its own fingerprint)."""
VECTOR_FIELDS = ("embeddings", "embeddings_format")
"""DataConfig fields of the word vectors: the prepared splits are cached without them, and the
data fingerprint holds the vectors file's content (its sha256) and format only where one is given."""
VECTOR_FORMATS: tuple[str, ...] = get_args(VectorFormat)
"""--embeddings-format's choices: "auto" tells the format from the file's start."""


def default_source() -> str:
    """The `--data` default: $IMDB_DATA, else "tfds"."""
    return os.environ.get(DATA_ENV, TFDS_SOURCE)


def default_cache_dir() -> Path:
    """Where prepared data is cached: $IMDB_CACHE_DIR, else ~/.cache/bilstm-search."""
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "bilstm-search"))


@dataclass(frozen=True)
class DataConfig(ReadOptions):
    """Where the reviews come from and how they are split and vectorized: what the source's reader
    is told (the `ReadOptions` fields, declared with the sources, READ_FIELDS), then the rest.
    Each read option is in the cache key only for the sources that take it (`sources.Source.options`),
    and only where it differs from its default."""

    source: str = dataclasses.field(default_factory=default_source)
    """A .csv, .tsv, .jsonl or .parquet file (a test split carved from it), a folder of train.<ext>
    and test.<ext> (and validation.<ext>), a folder per class (train/<class>/*.txt, test/<class>/*.txt,
    as aclImdb) or a .tar.gz of one, "tfds" (TensorFlow Datasets' imdb_reviews, in $TFDS_DATA_DIR) or
    "tfds:NAME[/CONFIG]"; the default is $IMDB_DATA, else "tfds"."""
    val_fraction: float = dataclasses.field(default=0.2, metadata={"metavar": "SHARE"})
    """Share of the training reviews held out for validation (stratified by label), unless the
    source gives a validation split."""
    val_block: int = 250
    """Validation takes whole blocks of this many consecutive file ids of a class. aclImdb
    numbers a movie's reviews of one class consecutively, and its test movies are disjoint from
    its training movies (Maas et al. 2011), so a split by block keeps nearly all of a movie's
    reviews of a class on one side, closer to how the test split was made; 1 = review by review.
    Sources without ids (tfds) are split review by review."""
    max_vocab: int = 20000
    """Vocabulary built once at the largest size any trial uses; smaller sizes truncate it."""
    limit: int | None = None
    """Use only the first N training reviews (after a seeded shuffle; a validation split the source
    gives counts among them, cut in proportion); None = all."""
    test_limit: int | None = None
    """Use only the first N test reviews (after a seeded shuffle); None = all."""
    seed: int = 0
    """Seed of the shuffle, of the train/validation split and of a carved test split."""
    allow_overlap: bool = False
    """Accept a test split of which more than 5% are copies of training reviews (after the
    standardization); their test accuracy then measures memory as much as the model."""
    embeddings: str | None = dataclasses.field(default=None, metadata={"metavar": "FILE"})
    """A word vectors file (GloVe text, word2vec text or binary, fastText .vec; .gz read through
    gzip): its rows for the vocabulary become the embedding's start or frozen weights where a
    configuration's `embeddings` says so, and the embedding's width follows the file (docs/vectors.md);
    none: no vectors, the embeddings parameter is not searched."""
    embeddings_format: VectorFormat = "auto"
    """The vectors file's format where telling it from the file's start cannot be sure: glove,
    word2vec (text with a header) or binary (word2vec's); auto tells it."""

    @classmethod
    def recorded(cls, values: dict) -> DataConfig:
        """The config a run recorded in run.json; runs recorded before `val_block` existed were
        split review by review, and keep that split on resume. Raises UsageError for a key this
        version does not know (`runfiles.cli.recorded_config`)."""
        return recorded_config(cls, {"val_block": 1, **values}, "run.json's configs.data")

    def __post_init__(self) -> None:
        check_fraction("val_fraction", self.val_fraction)
        super().__post_init__()  # the read options' own checks
        if not 1 <= self.val_block <= MAX_VAL_BLOCK:
            raise DataError(f"val_block={self.val_block} is invalid: expected an integer from 1 to {MAX_VAL_BLOCK:,}")
        if self.embeddings_format not in VECTOR_FORMATS:
            raise DataError(f"--embeddings-format {self.embeddings_format}: expected one of {', '.join(VECTOR_FORMATS)}")
        if self.max_vocab < 3:
            raise DataError(f"max_vocab={self.max_vocab} is invalid: expected an integer >= 3")
        for name in ("limit", "test_limit"):
            value = getattr(self, name)
            if value is not None and value < 2:
                raise DataError(f"{name}={value} is invalid: expected at least 2 reviews, or no limit")

    @property
    def read_options(self) -> ReadOptions:
        """What the source's reader is told (the fields of the same names)."""
        return ReadOptions(**{f.name: getattr(self, f.name) for f in dataclasses.fields(ReadOptions)})


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

    def subset(self, rows: np.ndarray) -> Split:
        """The reviews at `rows` (indices), in that order."""
        lengths = self.lengths[rows]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(self.offsets.dtype)
        tokens = np.concatenate([self.review(i) for i in rows]) if len(rows) else self.tokens[:0]
        return Split(tokens, offsets, self.labels[rows])

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
    facts: DataFacts
    """Source, sizes, classes and counts worth recording beside the run."""
    vectors: Vectors | None = None
    """The word vectors of `DataConfig.embeddings` for the vocabulary, or None without a file."""

    @property
    def embedding_matrix(self) -> np.ndarray | None:
        """(vocabulary size, width) float32 word vectors by token id (`Vectors.matrix`), or None."""
        return None if self.vectors is None else self.vectors.matrix

    @property
    def classes(self) -> list[str]:
        """The class names in index order (a label i is `classes[i]`)."""
        return self.facts.classes

    def for_trials(self) -> Prepared:
        """Train and validation only: the test split never reaches a trial."""
        splits = {k: v for k, v in self.splits.items() if k != "test"}
        return Prepared(splits, self.vocabulary, self.fingerprint, self.facts, self.vectors)

    def for_refit(self) -> Prepared:
        """For a final fit once the configuration is chosen: train = train + validation (the
        validation figures it reports are then on data it trained on); no test split."""
        splits = {"train": self.splits["train"].plus(self.splits["val"]), "val": self.splits["val"]}
        return Prepared(splits, self.vocabulary, self.fingerprint, self.facts, self.vectors)


# ---------------------------------------------------------------- vectorizing


def build_vocabulary(texts: list[str], max_tokens: int) -> list[str]:
    """Keras TextVectorization's vocabulary of the standardized texts (`models.text`):
    "", "[UNK]", then tokens by count (ties by token)."""
    import tensorflow as tf

    from models.text import text_vectorizer  # here, not at the top: it loads TensorFlow

    vectorizer = text_vectorizer(max_tokens=max_tokens)
    # in batches: given an array, adapt standardizes all of it at once (tens of GiB for 500,000 texts)
    vectorizer.adapt(tf.data.Dataset.from_tensor_slices(np.array(texts, dtype=object)).batch(1024))
    return [str(t) for t in vectorizer.get_vocabulary()]


def vectorize(texts: list[str], labels: np.ndarray, vocabulary: list[str]) -> Split:
    """Token ids of each text, with its class index (int32); a text without words becomes one
    out-of-vocabulary id, as the exported model encodes it (`models.text.NonEmpty`)."""
    from models.text import text_vectorizer  # here, not at the top: it loads TensorFlow

    vectorizer = text_vectorizer(vocabulary=vocabulary, ragged=True)
    tokens, lengths = [np.zeros(0, np.int32)], [np.zeros(0, np.int64)]  # an empty split (--test-fraction 0) has none
    for start in range(0, len(texts), 2048):
        ragged = vectorizer(np.array(texts[start : start + 2048], dtype=object))
        values, counts = ragged.flat_values.numpy().astype(np.int32), ragged.row_lengths().numpy()
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        tokens.append(np.insert(values, starts[counts == 0], OOV_ID))
        lengths.append(np.maximum(counts, 1))
    offsets = np.concatenate([[0], np.cumsum(np.concatenate(lengths))]).astype(np.int64)
    return Split(np.concatenate(tokens), offsets, labels.astype(np.int32))


# ---------------------------------------------------------------- preparing and caching


def data_fingerprint(config: DataConfig) -> str:
    """What identifies the prepared data (16 hex digits), cheap to compute: the source's content
    (`source_fingerprint`) and the settings that shape the splits and vectors. It is the cache key,
    and run.json's data fingerprint, which a resumed run must find again.

    Of READ_FIELDS, only those the source's row declares (`Source.options`) enter it, and only
    where they differ from their defaults: the keys of sources read before these fields existed
    (aclImdb, tfds) stay what they were. A vectors file (`embeddings`) enters as its content's
    sha256 and its format, and only where one is given.
    """
    source = source_for(config.source)
    unread = (*UNFINGERPRINTED, *READ_FIELDS, *VECTOR_FIELDS)
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k not in unread}
    defaults = {f.name: f.default for f in dataclasses.fields(DataConfig)}
    settings |= {k: getattr(config, k) for k in source.option_names if getattr(config, k) != defaults[k]}
    if not source.file_ids or config.val_block == 1:
        del settings["val_block"]  # split review by review, as before val_block existed: same cache
    settings["standardization"] = STANDARDIZATION_VERSION
    if config.embeddings:
        settings["embeddings"] = {"sha256": _vectors_sha256(config.embeddings), "format": config.embeddings_format}
    content = source.fingerprint(config.source, config.read_options)
    return hashlib.sha256(json.dumps({"source": content, **settings}, sort_keys=True).encode()).hexdigest()[:16]


def prepare(config: DataConfig, cache_dir: Path | None = None) -> Prepared:
    """Read, split, build the vocabulary and vectorize once; later calls load the cache. With a
    vectors file (`embeddings`), its rows for the vocabulary are read each time (`with_vectors`).

    Raises DataError (one line) for data, or a vectors file, that cannot serve."""
    plain = dataclasses.replace(config, embeddings=None, embeddings_format="auto")
    fingerprint = data_fingerprint(plain)
    cache = (cache_dir or default_cache_dir()) / f"imdb-{fingerprint}.npz"
    prepared = _load(cache, fingerprint) if cache.exists() else None
    if prepared is None or not prepared.facts.checked:  # new, or cached before the text checks
        prepared = _prepare(plain, fingerprint)
        _save(prepared, cache)
    if config.test_fraction == NO_TEST and prepared.facts.test_split != NO_TEST_MADE:
        raise given_test_split(config.source)  # a cache of a source with its own split, shared by every test fraction
    prepared.facts = _named(config, prepared.facts)
    check_overlap(prepared.facts, config)
    return with_vectors(prepared, config) if config.embeddings else prepared


def with_vectors(prepared: Prepared, config: DataConfig) -> Prepared:
    """The prepared data with the rows of `config.embeddings` for its vocabulary (seeded by
    `config.seed`), their facts (`DataFacts.embeddings`: coverage of the vocabulary and of the
    training tokens, the file, its format, width and sha256, its card) and the fingerprint that
    holds the file's content (`data_fingerprint`).

    Raises DataError (one line naming --embeddings FILE) for a file that cannot serve."""
    counts = np.bincount(prepared.splits["train"].tokens, minlength=len(prepared.vocabulary))
    vectors = read_vectors(config.embeddings, prepared.vocabulary, counts, config.embeddings_format, config.seed)
    fingerprint = data_fingerprint(config)
    facts = copy.copy(prepared.facts)
    facts.fingerprint, facts.embeddings = fingerprint, embedding_facts(config.embeddings, vectors)
    return Prepared(prepared.splits, prepared.vocabulary, fingerprint, facts, vectors)


def _vectors_sha256(path: str) -> str:
    """sha256 of a vectors file, or the DataError `read_vectors` gives a path that is no file."""
    try:
        return file_fingerprint(path)
    except OSError:
        sniff(path)  # raises the one line for a missing file or a folder
        raise


def _named(config: DataConfig, facts: DataFacts) -> DataFacts:
    """`facts` naming the source and holding the settings as `config` says them: a cache is shared
    by every file of the same bytes (its key is their content) whatever its name, and by the
    options its source does not read. `source`, the config's fields, and `test_split`
    (`sources.test_split_named`)."""
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k not in (*UNFINGERPRINTED, *VECTOR_FIELDS)}
    made = test_split_named(config.source, config.read_options, facts.test_split or "given by the source")
    return dataclasses.replace(facts, source=config.source, test_split=made, **settings)


def text_checks(selected: dict[str, tuple[list[str], np.ndarray]], source: str) -> DataFacts:
    """What the texts of the splits hold that a reader should be told, after the standardization
    (`models.text.standardize`), as data facts: per split, texts without a word (`empty_texts`,
    kept: the model answers them too); the characters the standardization dropped from those that
    were not blank, the CHARACTERS_SHOWN most frequent with their counts (`wordless_characters`:
    emoji, symbols, punctuation; {} when none); test reviews that are copies of training ones
    (train or validation) and validation reviews that are copies of train ones (`duplicates`;
    empty texts are no copies).

    Raises:
        DataError: one line naming `source`, when no training text holds a word.
    """
    words = {name: _standardized(texts) for name, (texts, _) in selected.items()}
    empty = {name: sum(not text for text in texts) for name, texts in words.items()}
    wordless = [text for name, (texts, _) in selected.items() for text, std in zip(texts, words[name]) if not std]
    dropped = dropped_characters(wordless)
    if empty["train"] == len(words["train"]):
        seen = f" (the characters dropped most often: {counts_text(dropped)})" if dropped else ""
        raise DataError(
            f"--data {source}: none of the {len(words['train']):,} training texts holds a word once standardized{seen}; "
            "check --text-column, or give texts with words"
        )
    train = set(words["train"]) - {b""}
    training = train | set(words["val"]) - {b""}
    duplicates = Duplicates(
        test_in_training=sum(text in training for text in words["test"]),
        val_in_train=sum(text in train for text in words["val"]),
    )
    return DataFacts(empty_texts=empty, wordless_characters=dropped, duplicates=duplicates)


def dropped_characters(texts: list[str]) -> dict[str, int]:
    """The CHARACTERS_SHOWN characters most frequent in `texts` (those the standardization left
    without a word), with their counts, most frequent first: what it dropped. Spaces, combining
    marks (an emoji's variation selector) and format characters (a zero-width joiner) are left out:
    nobody sees them."""
    seen = Counter(c for text in texts for c in text if not c.isspace() and unicodedata.category(c)[0] not in "ZMC")
    return dict(seen.most_common(CHARACTERS_SHOWN))


def _standardized(texts: list[str]) -> list[bytes]:
    """Each text standardized, its words joined by one space (b"" for a text without words)."""
    from models.text import standardize  # here, not at the top: it loads TensorFlow

    out = []
    for start in range(0, len(texts), 2048):
        batch = standardize(np.array(texts[start : start + 2048], dtype=object)).numpy()
        out += [b" ".join(text.split()) for text in batch]
    return out


def check_overlap(facts: DataFacts, config: DataConfig) -> None:
    """Refuse a test split of which more than MAX_OVERLAP are copies of training reviews, unless
    `config.allow_overlap`.

    Raises:
        DataError: one line naming the source, the count and share, and what would work.
    """
    copies, tests = facts.test_copies, facts.sizes["test"]
    if not config.allow_overlap and copies > MAX_OVERLAP * tests:
        raise DataError(
            f"--data {config.source}: {copies:,} of {tests:,} test reviews ({copies / tests:.1%}) are copies of training "
            f"reviews (after the standardization), more than {MAX_OVERLAP:.0%}: their test accuracy would measure memory; "
            "remove them from the test split, or pass --allow-overlap"
        )


def select_splits(reviews: dict[str, Reviews], config: DataConfig) -> dict[str, tuple[list[str], np.ndarray]]:
    """{"train"|"val"|"test": (texts, class indices as int32, in `classes_of` order)}: seeded
    shuffle, limits, and validation carved from train (stratified, by blocks of file ids where
    `val_blocks` gives them), or the source's own validation split where it gives one.

    Raises DataError (one line, naming the source) for a training split of one class, a class in
    validation or test that training never has, or a class with too few training reviews for a
    stratified validation split.
    """
    classes, labels = _indexed(reviews, config.source)
    keep, blocks = _kept(reviews, config)
    texts = reviews["train"].texts
    if "val" in reviews:
        _check_kept(labels["train"][keep], classes, config)
        keep_val = shuffled_prefix(labels["val"], _limits(reviews, config)[1], config.seed)
        train = ([texts[i] for i in keep], labels["train"][keep])
        val = ([reviews["val"].texts[i] for i in keep_val], labels["val"][keep_val])
    else:
        limited = len(keep) < len(texts)
        train, val = _carved(([texts[i] for i in keep], labels["train"][keep]), blocks, classes, config, limited, labels["test"])
    keep_test = shuffled_prefix(labels["test"], config.test_limit, config.seed)
    return {"train": train, "val": val, "test": ([reviews["test"].texts[i] for i in keep_test], labels["test"][keep_test])}


def _carved(
    kept: tuple[list[str], np.ndarray],
    blocks: np.ndarray | None,
    classes: list[str],
    config: DataConfig,
    limited: bool,
    tested: np.ndarray,
) -> tuple:
    """(train, validation), each (texts, labels): `val_fraction` of each class held out. `limited`:
    whether `config.limit` left out training reviews; `tested`: the test split's labels.

    Raises DataError for a --val-fraction that would leave a class no training review, or a class
    too rare to be on both sides (`_rare_advice` says what can help).
    """
    texts, labels = kept
    gone = emptied(labels, config.val_fraction, list(range(len(classes))))
    if gone is not None:
        index, count = gone
        raise DataError(
            f"--val-fraction {config.val_fraction:g} leaves too few training reviews: all {count:,} of class "
            f"{classes[index]!r} in --data {config.source} would be held out for validation; lower --val-fraction"
        )
    rare = too_few(labels, config.val_fraction, list(range(len(classes))))
    if rare is not None:
        index, count, needed = rare
        within = f" among the first {config.limit:,} (--limit, or --smoke's)" if limited else ""
        raise DataError(
            f"--data {config.source}: class {classes[index]!r} has {count:,} training review{'s' * (count != 1)}"
            f"{within}, too few for a stratified {config.val_fraction * 100:g}% validation split (it needs {needed}); "
            + _rare_advice(config, count, limited, int((tested == index).sum()))
        )
    train_idx, val_idx = stratified_split(labels, config.val_fraction, config.seed, blocks)
    return ([texts[i] for i in train_idx], labels[train_idx]), ([texts[i] for i in val_idx], labels[val_idx])


def _rare_advice(config: DataConfig, count: int, limited: bool, tested: int) -> str:
    """What can give a class of `count` training reviews (and `tested` test ones) enough for a
    validation split: more of them, none; more of the source read (where `limited`), else a smaller
    carved test split (where the source is one table, `sources.carves_test`, and the class has rows
    enough for three splits, `sources.SPLITS_SHARED`); a larger --val-fraction (where one can put
    one of `count` on each side: `splitting.fewest_for` at one half)."""
    ways = ["add examples of it", "remove them"]
    ways += ["raise --limit (it overrides --smoke's)"] if limited else []
    if not limited and carves_test(config.source) and count + tested >= SPLITS_SHARED:
        ways.append(f"lower --test-fraction (its {config.test_fraction * 100:g}% were held out for testing)")
    ways += ["raise --val-fraction"] if count >= fewest_for(0.5) else []
    return ", ".join(ways[:-1]) + " or " + ways[-1]


def _check_kept(labels: np.ndarray, classes: list[str], config: DataConfig) -> None:
    """Every class keeps a training review under `limit` (raises DataError naming the first that does not)."""
    counts = np.bincount(labels, minlength=len(classes))
    if (counts == 0).any():
        raise DataError(
            f"--data {config.source}: class {classes[int(np.argmin(counts))]!r} has no training review among the first "
            f"--limit {config.limit:,}; raise --limit"
        )


def classes_of(reviews: dict[str, Reviews], source: str) -> list[str]:
    """The class names, in index order: the training labels' distinct values, sorted (integers
    numerically when every label is one, else as strings), each as a string.

    Raises DataError as `select_splits` does for the classes.
    """
    return _indexed(reviews, source)[0]


def _indexed(reviews: dict[str, Reviews], source: str) -> tuple[list[str], dict[str, np.ndarray]]:
    """The class names, and each split's labels as class indices (int32)."""
    keys = _label_keys(reviews)
    names, counts = np.unique(keys["train"], return_counts=True)
    if len(names) < 2:
        held = f"one class ({str(names[0])!r}, {counts[0]:,} reviews)" if len(names) else "no class (no reviews)"
        raise DataError(
            f"--data {source}: the training split holds {held}; a classifier needs two classes or more: check --label-column"
        )
    indices = {}
    for split, key in keys.items():
        at = np.minimum(np.searchsorted(names, key), len(names) - 1)
        unseen = names[at] != key
        if unseen.any():
            found, n = np.unique(key[unseen], return_counts=True)
            listed = ", ".join(f"{str(name)!r} ({c:,})" for name, c in zip(found[:5].tolist(), n[:5].tolist()))
            where = {"val": "validation"}.get(split, split)
            raise DataError(
                f"--data {source}: the {where} split holds {len(found)} class{'es' * (len(found) > 1)} that training never "
                f"has: {listed}; add training examples of them, or remove them from the {where} split"
            )
        indices[split] = at.astype(np.int32)
    return [str(name) for name in names.tolist()], indices


def _label_keys(reviews: dict[str, Reviews]) -> dict[str, np.ndarray]:
    """Each split's labels as sortable keys: integers when every label of every split is an integer
    (or a whole float; int64, or exact Python ints where one lies outside it), else strings (numbers
    spelled as `str` spells them)."""
    labels = {split: np.asarray(r.labels) for split, r in reviews.items()}
    if all(_integers(values) for values in labels.values()):
        exact = {split: integer_array(values.tolist()) for split, values in labels.items()}
        if any(values.dtype == object for values in exact.values()):  # one kind of key for every split
            return {split: values.astype(object) for split, values in exact.items()}
        return exact
    return {split: values.astype(str) for split, values in labels.items()}


def _integers(labels: np.ndarray) -> bool:
    """Whether every label is an integer (truth values are not: they name their classes "False", "True")."""
    if labels.dtype.kind in "iu":
        return True
    if labels.dtype.kind == "f":
        return bool(np.all(np.isfinite(labels) & (labels == np.round(labels))))
    return labels.dtype.kind == "O" and all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in labels.tolist())


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


def _limits(reviews: dict[str, Reviews], config: DataConfig) -> tuple[int | None, int | None]:
    """How many training and given validation reviews `limit` keeps: all of it for training when
    validation is carved from it; shared in proportion to their sizes when the source gives both."""
    if config.limit is None or "val" not in reviews:
        return config.limit, None
    n_train, n_val = len(reviews["train"].texts), len(reviews["val"].texts)
    train = min(config.limit - 1, max(1, round(config.limit * n_train / (n_train + n_val))))
    return train, config.limit - train


def _kept(reviews: dict[str, Reviews], config: DataConfig) -> tuple[np.ndarray, np.ndarray | None]:
    """The training reviews `config` keeps (seeded shuffle, limit), and their blocks (`val_blocks`;
    None where the source gives the validation split)."""
    ids, labels = reviews["train"].ids, np.asarray(reviews["train"].labels)
    keep = shuffled_prefix(labels, _limits(reviews, config)[0], config.seed)
    if "val" in reviews:
        return keep, None
    return keep, val_blocks(None if ids is None else ids[keep], labels[keep], config.val_block)


def split_text(reviews: dict[str, Reviews], config: DataConfig) -> str:
    """How `select_splits` makes validation, as run.json's data facts say it."""
    if "val" in reviews:
        return "given by the source"
    by_block = _kept(reviews, config)[1] is not None
    return f"by blocks of {config.val_block} review ids" if by_block else "review by review"


def raw_splits(config: DataConfig) -> dict[str, tuple[list[str], np.ndarray]]:
    """The prepared splits as raw text, in the prepared order (for raw-text pipelines); labels as
    class indices (int32, `classes_of` order)."""
    return select_splits(read_reviews(config.source, config.read_options)[0], config)


def class_counts(selected: dict[str, tuple[list[str], np.ndarray]], classes: list[str]) -> dict[str, dict[str, int]]:
    """{"train"|"val"|"test": {class name: reviews}}, every class named (0 where a split has none)."""
    return {
        split: dict(zip(classes, np.bincount(labels, minlength=len(classes)).tolist())) for split, (_, labels) in selected.items()
    }


def _prepare(config: DataConfig, fingerprint: str) -> Prepared:
    reviews, notes = read_reviews(config.source, config.read_options)
    selected = select_splits(reviews, config)
    classes = classes_of(reviews, config.source)
    checked = text_checks(selected, config.source)  # before the vocabulary: it needs a training word
    vocabulary = build_vocabulary(selected["train"][0], config.max_vocab)
    splits = {name: vectorize(texts, labels, vocabulary) for name, (texts, labels) in selected.items()}
    facts = dataclasses.replace(
        notes,
        fingerprint=fingerprint,
        sizes={name: len(split) for name, split in splits.items()},
        tokens={name: int(split.lengths.sum()) for name, split in splits.items()},
        vocabulary_size=len(vocabulary),
        classes=classes,
        class_counts=class_counts(selected, classes),
        val_split=split_text(reviews, config),
        empty_texts=checked.empty_texts,
        wordless_characters=checked.wordless_characters,
        duplicates=checked.duplicates,
    )
    return Prepared(splits, vocabulary, fingerprint, _named(config, facts))


def _save(prepared: Prepared, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"vocabulary": np.array(prepared.vocabulary, dtype=str), "facts": np.array(json.dumps(prepared.facts.to_json()))}
    for name, split in prepared.splits.items():
        arrays |= {f"{name}_tokens": split.tokens, f"{name}_offsets": split.offsets, f"{name}_labels": split.labels}
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as tmp:
        np.savez(tmp, **arrays)
    os.replace(tmp.name, path)


def _load(path: Path, fingerprint: str) -> Prepared:
    with np.load(path) as saved:
        splits = {
            name: Split(
                saved[f"{name}_tokens"], saved[f"{name}_offsets"], saved[f"{name}_labels"].astype(np.int32)
            )  # float32 before
            for name in SPLITS
        }
        facts = DataFacts.from_json(json.loads(str(saved["facts"])))
        return Prepared(splits, saved["vocabulary"].tolist(), fingerprint, facts)
