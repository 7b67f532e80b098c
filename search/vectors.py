"""Learn word vectors from unlabeled text with gensim, for a search's --embeddings.

    python -m search.vectors --unlabeled ../shared/datasets/aclImdb_v1_unsup.tar.gz --out imdb.vec
    python -m search.vectors --unlabeled my-texts.txt --add-training ../shared/datasets/aclImdb_v1_labelled.tar.gz --out my.vec

`--unlabeled PATH [PATH ...]` takes aclImdb's unlabelled reviews (`aclImdb_v1_unsup.tar.gz`, or the
official `aclImdb_v1.tar.gz` or an aclImdb folder: their train/unsup/ only), a text file of one text
per line, a folder of .txt files, or a table's text column (CSV, TSV, JSON Lines, Parquet;
--text-column): `search.data.unlabeled`. `--add-training DATA` adds the training texts of a labelled
source as a search reads it (`--data DATA`: the training split, of which validation is carved;
never the test split, which, for one table file, is carved with --test-fraction and --data-seed as
the search's --seed carves it).

The texts are standardized as the model standardizes them (`models.text.standardize`, in batches,
then split at spaces), so that the vectors' words are a run's words, and written one per line to a
corpus file beside --out (removed at the end) that gensim's Word2Vec (or FastText, --model fasttext)
learns from. FILE.vec (word2vec text format with a header, words by frequency; gzip-compressed
where --out ends in .gz) and its card
FILE.vec.json (`runfiles.vectorcard.VectorsCard`: the texts and their fingerprint, the sources, the
settings, wall and CPU time, versions, the command) replace any earlier ones at once. Bad input is
one line and exit 2, with nothing written; an --out that is one of the inputs is refused.
"""

from __future__ import annotations

import dataclasses
import datetime
import gzip
import hashlib
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from runfiles.cli import ArgumentParser, UsageError, add_fields, fail, given_path
from runfiles.vectorcard import TextSource, VectorsCard, card_path
from search.console import Progress, quiet_libraries
from search.data import READ_FIELDS, DataConfig
from search.data.reviews import DataError
from search.data.unlabeled import FLAG as UNLABELED_FLAG
from search.data.unlabeled import TRAINING_FLAG, Texts, read_unlabeled, training_texts
from search.data.vectors import file_fingerprint

BATCH = 1024
"""Texts standardized at a time."""
MODELS = ("word2vec", "fasttext")
READ_HELP = {
    "fold_label_case": "Let --add-training read labels equal up to case ('pos', 'POS') instead of refusing them "
    "(labels are not learned from) (default: False)",
    "drop_missing": "Drop --add-training's table rows without a label or a text, counted in the card (FILE.vec.json: "
    "the source's skipped), instead of refusing them; --unlabeled tables leave out rows without a text, counted "
    "there too (default: False)",
    "drop_header_rows": "Drop --add-training's table rows that repeat its header (files joined with `cat`), counted in "
    "the card (FILE.vec.json: the source's skipped), instead of refusing them (default: False)",
}
"""The help of reading flags whose DataConfig help speaks of a run's run.json: this command writes the card."""


@dataclass(frozen=True)
class LearnConfig:
    """How the vectors are learned: gensim's parameters, under the names of its documentation where they have one."""

    model: Literal["word2vec", "fasttext"] = "word2vec"
    """gensim's Word2Vec, or FastText (which also learns vectors of character n-grams; the file holds the words')."""
    dim: int = 100
    """Numbers per word (gensim's vector_size)."""
    epochs: int = 5
    """Passes over the texts."""
    window: int = 5
    """Words on each side of a word that are its context."""
    min_count: int = 5
    """Words seen fewer times get no vector."""
    skip_gram: bool = False
    """Skip-gram (a word predicts its context) instead of CBOW (the context predicts the word): gensim's sg."""
    negative: int = 5
    """Negative samples per prediction (at least 1: they are how the vectors learn)."""
    sample: float = 1e-3
    """Words more frequent than this share of all words are downsampled (0: none)."""
    seed: int = 0
    """Seeds gensim's initial vectors and sampling."""
    workers: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)
    """Threads that learn (the vectors repeat exactly for a seed only with 1); default: this machine's CPUs."""

    def __post_init__(self) -> None:
        for name in ("dim", "epochs", "window", "min_count", "workers"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} {getattr(self, name)} is invalid: expected an integer >= 1")
        if self.negative < 1:  # gensim learns nothing without negative samples (its hierarchical softmax is not offered)
            raise UsageError(f"--negative {self.negative} is invalid: expected an integer >= 1")
        if not 0 <= self.sample < 1:
            raise UsageError(f"--sample {self.sample:g} is invalid: expected a share in [0, 1)")

    def settings(self) -> dict:
        """The settings the card records besides the model, dim and epochs."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ("model", "dim", "epochs")}


@dataclass(frozen=True)
class Inputs:
    """What the command reads and where it writes."""

    unlabeled: tuple[str, ...]
    """The --unlabeled values, in order."""
    add_training: str | None
    """A labelled source whose training texts are added (none: only the unlabeled texts)."""
    out: Path
    """The vectors file written; its card is `runfiles.vectorcard.card_path(out)`."""
    data: DataConfig
    """How the table files and the labelled source are read (its source: --add-training)."""


# ---------------------------------------------------------------- command line


def parse_args(argv: list[str]) -> tuple[Inputs, LearnConfig]:
    """The inputs and the learning config of a command line.

    Raises:
        UsageError: one line, for a flag missing or a value out of range.
        DataError: one line, for a reading option that cannot work (`DataConfig`).
    """
    parser = ArgumentParser(prog="python -m search.vectors", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        UNLABELED_FLAG,
        nargs="+",
        required=True,
        metavar="PATH",
        help="texts without labels: aclImdb's unlabelled reviews (its archive or folder: train/unsup/ only), a text file "
        "of one text per line, a folder of .txt files, or a table's --text-column (.csv, .tsv, .jsonl, .parquet)",
    )
    parser.add_argument(TRAINING_FLAG, metavar="DATA", help="add the training texts of a labelled --data source (never its test)")
    parser.add_argument("--out", required=True, type=given_path, metavar="FILE.vec", help="the vectors file to write")
    add_fields(parser, LearnConfig, [f.name for f in dataclasses.fields(LearnConfig)])
    add_fields(parser, DataConfig, list(READ_FIELDS), metavars={"text_column": "COLUMN", "label_column": "COLUMN"})
    for action in parser._actions:
        if action.dest in READ_HELP:
            action.help = READ_HELP[action.dest]
    parser.add_argument(
        "--data-seed", type=int, default=0, help="the search's --seed, which carves a table's test split (default: 0)"
    )
    args = parser.parse_args(argv)
    learn = LearnConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(LearnConfig)})
    data = DataConfig(source=args.add_training or "", **{name: getattr(args, name) for name in READ_FIELDS}, seed=args.data_seed)
    return Inputs(tuple(args.unlabeled), args.add_training, args.out.expanduser(), data), learn


def check_out(inputs: Inputs) -> None:
    """Fail before anything is read when --out cannot be written.

    Raises:
        UsageError: one line: --out (or its card) is one of the inputs, is a folder, or its folder
        is missing or not writable.
    """
    out = inputs.out
    written = {out.resolve(), card_path(out).resolve()}
    for flag, value in [(UNLABELED_FLAG, value) for value in inputs.unlabeled] + [(TRAINING_FLAG, inputs.add_training)]:
        if value is not None and Path(value).expanduser().resolve() in written:
            raise UsageError(f"--out {out}: would overwrite {flag} {value}, which is read; write the vectors to another file")
    folder = out.parent
    if out.is_dir():
        raise UsageError(f"--out {out}: is a folder; give the vectors file to write, such as {out / 'vectors.vec'}")
    if not folder.is_dir():
        raise UsageError(f"--out {out}: the folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"--out {out}: the folder {folder} is not writable; choose another --out")


# ---------------------------------------------------------------- reading and standardizing


def read_sources(inputs: Inputs) -> list[tuple[TextSource, list[str]]]:
    """Each source's record and texts: the --unlabeled values in order, then --add-training's.

    Raises:
        DataError: one line naming the flag and the value that cannot be read.
    """
    read = []
    for value in inputs.unlabeled:
        texts: Texts = read_unlabeled(value, inputs.data.read_options)
        record = TextSource(UNLABELED_FLAG, str(Path(value).expanduser().resolve()), texts.kind, len(texts.texts), texts.skipped)
        read.append((record, texts.texts))
    if inputs.add_training is not None:
        texts, splits = training_texts(inputs.add_training, inputs.data.read_options)
        path = Path(inputs.add_training).expanduser()
        where = str(path.resolve()) if path.exists() else inputs.add_training
        read.append((TextSource(TRAINING_FLAG, where, texts.kind, len(texts.texts), texts.skipped, splits), texts.texts))
    return read


def texts_fingerprint(texts: list[str]) -> str:
    """sha256 over texts in order, each as its UTF-8 length and bytes (hex)."""
    digest = hashlib.sha256()
    for text in texts:
        raw = text.encode("utf-8", "surrogatepass")
        digest.update(len(raw).to_bytes(8, "little") + raw)
    return digest.hexdigest()


def write_corpus(texts: list[str], corpus: Path) -> int:
    """Write each text standardized (`models.text.standardize`), its words joined by one space, as
    one line of `corpus` (texts without a word left out); return the words written."""
    from models.text import standardize  # here, not at the top: it loads TensorFlow

    words = 0
    with corpus.open("wb") as f:
        for start in range(0, len(texts), BATCH):
            for text in standardize(np.array(texts[start : start + BATCH], dtype=object)).numpy():
                tokens = text.split()
                if tokens:
                    f.write(b" ".join(tokens) + b"\n")
                    words += len(tokens)
    return words


# ---------------------------------------------------------------- learning and writing


def learn(corpus: Path, config: LearnConfig):
    """gensim's model learned from a corpus file (one text per line, words separated by spaces).

    Raises:
        UsageError: one line, when --min-count leaves no word.
    """
    from gensim.models import FastText, Word2Vec  # here, not at the top: only learning needs it

    kind = FastText if config.model == "fasttext" else Word2Vec
    model = kind(
        vector_size=config.dim,
        window=config.window,
        min_count=config.min_count,
        sg=int(config.skip_gram),
        negative=config.negative,
        sample=config.sample,
        seed=config.seed,
        workers=config.workers,
        epochs=config.epochs,
    )
    model.build_vocab(corpus_file=str(corpus), keep_raw_vocab=True)  # the raw counts, for the error below
    most = max(model.raw_vocab.values(), default=0)
    model.raw_vocab = defaultdict(int)  # every word's count, as gensim leaves it without keep_raw_vocab
    if not len(model.wv):
        raise UsageError(
            f"--min-count {config.min_count} leaves no word: the most frequent word of the texts appears {most} "
            f"time{'s' * (most != 1)}; "
            "lower --min-count, or give more texts"
        )
    model.train(
        corpus_file=str(corpus), total_examples=model.corpus_count, total_words=model.corpus_total_words, epochs=config.epochs
    )
    return model


def write_vectors(model, out: Path) -> None:
    """The model's word vectors as `out`, in word2vec's text format with a header (gzip-compressed
    where its name ends in .gz), replaced at once."""
    tmp = out.with_name(f".{out.name}.tmp")
    model.wv.save_word2vec_format(str(tmp), binary=False)
    if out.name.endswith(".gz"):
        packed = tmp.with_name(tmp.name + ".gz")
        with tmp.open("rb") as plain, packed.open("wb") as raw, gzip.GzipFile(out.name[: -len(".gz")], "wb", fileobj=raw) as f:
            shutil.copyfileobj(plain, f, 1 << 20)
        tmp.unlink()
        tmp = packed
    os.replace(tmp, out)


def library_versions() -> dict[str, str]:
    """The versions of the libraries that made the vectors."""
    from importlib.metadata import version

    return {"python": platform.python_version(), **{name: version(name) for name in ("gensim", "numpy", "tensorflow")}}


def run(inputs: Inputs, config: LearnConfig, command: str) -> VectorsCard:
    """Read, standardize, learn, write FILE.vec and its card; the card.

    Raises:
        DataError, UsageError: one line, before anything is written.
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    read = read_sources(inputs)
    texts = [text for _, source_texts in read for text in source_texts]
    fd, name = tempfile.mkstemp(dir=inputs.out.parent, prefix=f".{inputs.out.name}.", suffix=".corpus")
    os.close(fd)
    try:
        tokens = write_corpus(texts, Path(name))
        if not tokens:
            raise DataError(f"none of the {len(texts):,} texts read holds a word once standardized; give texts with words")
        model = learn(Path(name), config)
    finally:
        os.unlink(name)
    write_vectors(model, inputs.out)
    card = VectorsCard(
        command=command,
        created_at=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        vectors_file=inputs.out.name,
        vectors_fingerprint=file_fingerprint(inputs.out),
        model=config.model,
        dim=config.dim,
        epochs=config.epochs,
        settings=config.settings(),
        sources=[record for record, _ in read],
        texts=len(texts),
        texts_fingerprint=texts_fingerprint(texts),
        tokens=tokens,
        vocabulary_size=len(model.wv),
        versions=library_versions(),
    )
    card.wall_s, card.cpu_s = round(time.perf_counter() - started, 3), round(time.process_time() - cpu_started, 3)
    card.write(inputs.out)
    return card


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = shlex.join(["python", "-m", "search.vectors", *argv])
    try:
        inputs, config = parse_args(argv)
        check_out(inputs)
        with quiet_libraries(False, Progress()):  # TensorFlow's start-up lines go nowhere
            card = run(inputs, config, command)
    except (UsageError, DataError) as error:
        return fail(error)
    print(
        f"wrote {inputs.out} ({card.vocabulary_size:,} words x {card.dim}) and {card_path(inputs.out).name}: "
        f"{card.texts:,} texts, {card.tokens:,} words, {card.wall_s:,.1f} s, {card.cpu_s:,.1f} CPU s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
