"""Word vectors from a file users bring, cut to a run's vocabulary.

    from search.data.vectors import read_vectors
    vectors = read_vectors("glove.6B.100d.txt", vocabulary, token_counts)  # vectors.matrix: (len(vocabulary), 100)

Formats (`FORMATS`), told apart by the file's start (`sniff`), or named with `format` where that
cannot be sure:
- GloVe text: a word and its numbers per line, no header;
- word2vec text: a header "N D" (words, numbers per word), then a word and its D numbers per line;
  fastText's .vec files are this format;
- word2vec binary: the same header, then each word, a space and D float32 numbers (read by gensim's
  `KeyedVectors.load_word2vec_format`, the well-kept reader, which holds the whole file in memory).
A file whose name ends in .gz is read through gzip.

The text formats are streamed: only the rows of the vocabulary's words are parsed into numbers,
every other line is only split at its first space and counted, so memory holds the vocabulary's
matrix, not the file's (`tools.vectorsbench` measures both ways). gensim's reading of the same file
(`engine="gensim"`) gives the same result (tests/test_vectors.py).

How words are matched: the vocabulary holds words as `models.text.standardize` makes them (lower
case, accents dropped, ...). A vocabulary word takes the row of the file word spelled exactly as it
is; without one, the first row (files list their words by frequency, most frequent first) whose word
standardizes to it (`models.folding.standardized`: word2vec's GoogleNews lists "Film" and "film"; a
file word that standardizes to several words, such as "New_York", matches none). Padding ("", row
0) and "[UNK]" (row 1) take no file row.

Words without a vector start from random vectors at the file's scale: each dimension drawn from a
normal distribution with that dimension's mean and standard deviation over the rows found (seeded);
padding stays zeros. Kim (2014, "Convolutional Neural Networks for Sentence Classification", and
his code) draws them from U[-a, a] with a chosen so that their variance matches the pretrained
vectors'; matching each dimension's mean and variance does the same where a file's dimensions are
not centred on zero (GloVe's are not).

Bad input raises `DataError`, one line naming the file as `--embeddings FILE` (`FLAG`): a file that
is not vectors (or not a regular file), a .gz file that is not gzip or is cut short, lines of mixed
width (the line named), a header that is not "N D" with D >= 1, a header that disagrees with the rows
(their count or width; a binary file's count smaller than its rows too), a value that is not a
finite number (or overflows float32) in a row read, no vocabulary word covered.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np

from models.folding import standardized
from runfiles.documents import EmbeddingFacts
from runfiles.vectorcard import VectorsCard
from search.data.reviews import OOV_ID, PAD_ID, DataError

FLAG = "--embeddings"
"""The flag that names a vectors file, as errors name it."""
FORMAT_FLAG = "--embeddings-format"
"""The flag that names its format where detection cannot be sure."""
FORMATS = {
    "glove": "GloVe text (a word and its numbers per line)",
    "word2vec": "word2vec text (a header 'N D', then a word and its numbers per line; fastText's .vec)",
    "binary": "word2vec binary (a header 'N D', then each word and its float32 numbers)",
}
"""The formats read, and how errors describe them."""
Format = Literal["auto", "glove", "word2vec", "binary"]
"""A format as --embeddings-format names it (`search.data.DataConfig.embeddings_format`): "auto" tells it from the file."""
Engine = Literal["stream", "gensim"]
FIRST_WORD = max(PAD_ID, OOV_ID) + 1
"""The first vocabulary id that is a word (below it: padding and [UNK])."""
LINE_LIMIT = 1 << 20
"""Bytes of a line read to tell the format: a binary file's first "line" may have no end."""
ZIP_MAGIC, GZIP_MAGIC, FASTTEXT_MAGIC = b"PK\x03\x04", b"\x1f\x8b", (793712314).to_bytes(4, "little")
"""How a zip archive, a gzip file and a fastText model (.bin) begin."""


@dataclass(frozen=True)
class Layout:
    """What a vectors file's start says of it."""

    format: str
    """One of FORMATS."""
    dim: int
    """Numbers per word."""
    count: int | None
    """Words the header announces (None: GloVe, no header)."""


@dataclass(frozen=True)
class Vectors:
    """A vectors file's rows for a vocabulary."""

    matrix: np.ndarray
    """(vocabulary size, dim) float32: row i is the vector of vocabulary word i; the rows of words
    the file lacks (and [UNK]'s) drawn at random at the file's scale; padding (row 0) zeros."""
    found: np.ndarray
    """(vocabulary size,) bool: the rows taken from the file."""
    dim: int
    """Numbers per word: the file's width, and the embedding's."""
    vocabulary_coverage: float
    """The share of the vocabulary's words (padding and [UNK] left out) that have a vector in the file."""
    token_coverage: float | None
    """The share of the training tokens ([UNK]'s included) whose word has a vector in the file
    (None: no token counts given)."""
    rows: int
    """Word rows in the file (gensim's reading of GloVe text: its distinct words)."""
    format: str
    """The file's format, one of FORMATS."""
    fingerprint: str
    """sha256 of the file's bytes (hex)."""


def read_vectors(
    path: str | Path,
    vocabulary: list[str],
    token_counts: np.ndarray | None = None,
    format: Format = "auto",
    seed: int = 0,
    engine: Engine = "stream",
) -> Vectors:
    """The vectors of a file for `vocabulary` (a list whose index is the token id: "" and "[UNK]"
    first, as `search.data.build_vocabulary` returns it).

    `token_counts`: (vocabulary size,) the training tokens per id, for `token_coverage`.
    `format`: "auto" tells it from the file's start (`sniff`). `seed` seeds the random rows.
    `engine`: "stream" reads text formats line by line keeping the vocabulary's rows, "gensim" loads
    the whole file with gensim first (binary files always are).

    Raises:
        DataError: one line naming the file (see the module's docstring).
        ValueError: for token counts of another length than the vocabulary.
    """
    if token_counts is not None and len(token_counts) != len(vocabulary):
        raise ValueError(f"token_counts holds {len(token_counts)} counts for a vocabulary of {len(vocabulary)}")
    layout = sniff(path, format)
    matcher = Matcher(vocabulary)
    if engine == "gensim" or layout.format == "binary":
        matrix, rows = _gensim_rows(path, layout, matcher)
    else:
        matrix, rows = _streamed_rows(path, layout, matcher)
    if not matcher.found.any():
        raise DataError(
            f"{_named(path)}: none of the vocabulary's {len(vocabulary) - FIRST_WORD:,} words has a vector among the "
            f"file's {rows:,} rows{_first_words(path, layout)}; give vectors of the texts' language and tokens, or learn "
            "them from your texts with python -m search.vectors"
        )
    fill_missing(matrix, matcher.found, seed)
    words, tokens = coverage(matcher.found, token_counts)
    return Vectors(matrix, matcher.found, layout.dim, words, tokens, rows, layout.format, file_fingerprint(path))


def embedding_facts(path: str | Path, vectors: Vectors) -> EmbeddingFacts:
    """run.json's facts of `vectors` read from `path`, with the card beside the file where it has
    one (`runfiles.vectorcard`; a card that is not JSON is left out)."""
    try:
        card = VectorsCard.read(Path(path).expanduser())
    except ValueError:
        card = None
    return EmbeddingFacts(
        file=str(Path(path).expanduser().resolve()),
        format=vectors.format,
        sha256=vectors.fingerprint,
        dim=vectors.dim,
        rows=vectors.rows,
        vocabulary_coverage=round(vectors.vocabulary_coverage, 6),
        token_coverage=None if vectors.token_coverage is None else round(vectors.token_coverage, 6),
        card=None if card is None else card.to_json(),
    )


def coverage(
    found: np.ndarray, token_counts: np.ndarray | None = None, vocab_size: int | None = None
) -> tuple[float, float | None]:
    """(share of the vocabulary's words with a vector, share of training tokens with one) for the
    first `vocab_size` ids (None: all), as a trial's smaller vocabulary sees them: the tokens of
    words beyond it are [UNK]'s, which have no vector. The token share is None without counts."""
    size = len(found) if vocab_size is None else vocab_size
    words = float(found[FIRST_WORD:size].mean()) if size > FIRST_WORD else 0.0
    if token_counts is None:
        return words, None
    counts = np.asarray(token_counts, np.int64)
    total = counts.sum()
    return words, float(counts[:size][found[:size]].sum() / total) if total else 0.0


def fill_missing(matrix: np.ndarray, found: np.ndarray, seed: int) -> None:
    """Draw in place the rows not `found` (padding aside, which becomes zeros): each dimension from
    a normal distribution with the found rows' mean and standard deviation in it (a single row
    found: its own standard deviation over its dimensions, for every dimension)."""
    kept = matrix[found].astype(np.float64)
    mean = kept.mean(axis=0)
    std = kept.std(axis=0) if len(kept) > 1 else np.full(matrix.shape[1], kept.std())
    missing = ~found
    missing[PAD_ID] = False
    rng = np.random.default_rng(seed)
    matrix[missing] = rng.normal(mean, std, size=(int(missing.sum()), matrix.shape[1]))
    matrix[PAD_ID] = 0.0


def file_fingerprint(path: str | Path) -> str:
    """sha256 of a file's bytes (hex), read in blocks."""
    with Path(path).expanduser().open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class Matcher:
    """Which file row each vocabulary word takes, the file's words seen in order (see the module's
    docstring): its exact spelling, else the first word that standardizes to it."""

    def __init__(self, vocabulary: list[str]):
        self.index = {word: i for i, word in enumerate(vocabulary) if i >= FIRST_WORD}
        self.found = np.zeros(len(vocabulary), bool)
        self.exact = np.zeros(len(vocabulary), bool)

    def take(self, word: str) -> int | None:
        """The vocabulary id whose row the next file word fills (or fills again, where an earlier
        word matched only once standardized), or None."""
        at = self.index.get(word)
        if at is not None:
            if self.exact[at]:
                return None  # a duplicate: the first row stays, as gensim keeps it
            self.exact[at] = self.found[at] = True
            return at
        at = self.index.get(standardized(word))
        if at is None or self.found[at]:
            return None
        self.found[at] = True
        return at


# ---------------------------------------------------------------- telling the format


def sniff(path: str | Path, format: Format = "auto") -> Layout:
    """The file's format, width and announced word count, from its first two lines.

    A first line of two whole numbers is word2vec's header; the next line then tells text (a word
    and D numbers) from binary. Any other first line must be a word and its numbers (GloVe).

    Raises:
        DataError: for a missing, empty or compressed-other-than-gzip file, a fastText model, or a
        start that is neither (the format the file would need, and the override).
    """
    _check_file(path)
    with _opened(path) as f:
        first, second = f.readline(LINE_LIMIT), f.readline(LINE_LIMIT)
    header = _header(first)
    if format == "auto":
        if header is None and len(fields := first.split()) == 2 and all(_is_integer(f) for f in fields):
            raise DataError(
                f"{_named(path)}: line 1 ({_shown(first)}) reads as a header 'N D' (words, numbers per word), but D must "
                f"be a whole number >= 1 and N >= 0; correct the header, or pass {FORMAT_FLAG} glove if it is a word's row"
            )
        if header is None and _row_width(first) is None:
            raise DataError(
                f"{_named(path)}: is not a vectors file (line 1: {_shown(first)}); give {', '.join(FORMATS.values())}"
            )
        binary = header is not None and second.strip() and _row_width(second) is None
        format = "glove" if header is None else ("binary" if binary else "word2vec")
    if format == "glove":
        if header is not None and _row_width(second) == header[1]:
            raise DataError(
                f"{_named(path)}: line 1 ({_shown(first)}) is a word2vec header 'N D', which GloVe text lacks: the rows "
                f"that follow hold {header[1]} numbers; pass {FORMAT_FLAG} word2vec (or auto)"
            )
        width = _row_width(first)
        if width is None:
            raise DataError(f"{_named(path)}: line 1 is not a word and its numbers ({_shown(first)}), as GloVe text holds")
        return Layout("glove", width, None)
    if header is None:
        raise DataError(
            f"{_named(path)}: line 1 is not a header 'N D' (words, numbers per word) as {FORMATS[format]} begins "
            f"({_shown(first)}); pass {FORMAT_FLAG} glove for a file without a header"
        )
    return Layout(format, header[1], header[0])


def _check_file(path: str | Path) -> None:
    """Raises DataError for a path that is no file, an empty file, a zip archive or a fastText model."""
    file = Path(path).expanduser()
    if not str(path):
        raise DataError(f"{FLAG} '': names no file; give a vectors file, or leave {FLAG} out")
    if not file.is_file():
        what = "is a folder" if file.is_dir() else "is not a regular file" if file.exists() else "no such file"
        raise DataError(f"{_named(path)}: {what}; give a vectors file")
    with file.open("rb") as f:
        start = f.read(4)
    if not start:
        raise DataError(f"{_named(path)}: the file is empty; give a vectors file")
    if file.name.endswith(".gz") and start[:2] != GZIP_MAGIC:
        raise DataError(f"{_named(path)}: is named .gz but is not gzip; gzip it, or drop .gz from its name")
    if start == ZIP_MAGIC:
        raise DataError(f"{_named(path)}: is a zip archive; unzip it and pass one of its files")
    if start == FASTTEXT_MAGIC:
        raise DataError(f"{_named(path)}: is a fastText model (.bin); pass the .vec file fastText writes beside it")
    if start[:2] == GZIP_MAGIC and not file.name.endswith(".gz"):
        raise DataError(f"{_named(path)}: is gzip-compressed but not named .gz; name it FILE.gz or gunzip it")


GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)
"""What Python's gzip raises for a file that is not gzip, cut short or damaged."""


@contextmanager
def _opened(path: str | Path) -> Iterator[BinaryIO]:
    """The file's bytes (through gzip when its name ends in .gz).

    Raises DataError where gzip finds the file cut short or damaged while it is read.
    """
    file = Path(path).expanduser()
    if not file.name.endswith(".gz"):
        with file.open("rb", buffering=1 << 20) as f:
            yield f
        return
    try:
        with gzip.open(file, "rb") as f:
            yield f
    except GZIP_ERRORS as error:
        raise _gzip_damaged(path, error) from None


def _gzip_damaged(path: str | Path, error: Exception) -> DataError:
    """The one-line error for a .gz file gzip cannot read to its end."""
    if isinstance(error, EOFError):
        return DataError(f"{_named(path)}: the gzip file is cut short (it ends before its end marker); download or copy it again")
    return DataError(f"{_named(path)}: is not gzip, or is damaged ({error}); download or copy it again")


def _header(line: bytes) -> tuple[int, int] | None:
    """(words, width) from a word2vec header line, or None when the line is not two whole numbers."""
    fields = line.split()
    if len(fields) != 2 or not all(f.isdigit() for f in fields) or int(fields[1]) == 0:
        return None
    return int(fields[0]), int(fields[1])


def _is_integer(field: bytes) -> bool:
    return field.lstrip(b"+-").isdigit()


def _row_width(line: bytes) -> int | None:
    """How many numbers follow the word on a text row, or None when the line is not a UTF-8 word
    followed by numbers."""
    try:
        fields = line.decode("utf-8").split()
        np.array(fields[1:], np.float32)
    except (UnicodeDecodeError, ValueError):
        return None
    return len(fields) - 1 if len(fields) > 1 else None


def _named(path: str | Path) -> str:
    return f"{FLAG} {path}"


def _shown(line: bytes) -> str:
    """The start of a line as an error shows it."""
    return repr(line[:60].decode("utf-8", "replace").rstrip("\r\n") + ("…" if len(line) > 60 else ""))


def _first_words(path: str | Path, layout: Layout) -> str:
    """ " (its first words: 'Film', 'The', ...)" for an error, from the file's first rows (text formats)."""
    if layout.format == "binary":
        return ""
    with _opened(path) as f:
        lines = [f.readline(LINE_LIMIT) for _ in range(6)][layout.count is not None :]
    words = [line.split(b" ", 1)[0].decode("utf-8", "replace") for line in lines[:5] if line.strip()]
    return f" (its first words: {', '.join(map(repr, words))})" if words else ""


# ---------------------------------------------------------------- reading rows


def _streamed_rows(path: str | Path, layout: Layout, matcher: Matcher) -> tuple[np.ndarray, int]:
    """The vocabulary's matrix (rows not found zeros) and the file's row count, read line by line:
    each line split at its first space, and parsed into numbers only when its word is kept.

    Raises DataError for a line of another width (the first after a header: the header's width
    disagrees), a kept row with a value that is not a finite number, or rows fewer or more than
    the header's count.
    """
    matrix = np.zeros((len(matcher.found), layout.dim), np.float32)
    rows, dim = 0, layout.dim
    with _opened(path) as f:
        if layout.count is not None:
            f.readline()
        for number, line in enumerate(f, 1 + (layout.count is not None)):
            line = line.rstrip()
            if not line:
                continue
            if line.count(b" ") == dim:
                word, _, values = line.partition(b" ")
            else:
                word, values = _odd_line(path, line, number, layout, rows)
            rows += 1
            at = matcher.take(word.decode("utf-8", "replace"))
            if at is not None:
                matrix[at] = _numbers(path, values, number, dim)
    if layout.count is not None and rows != layout.count:
        raise DataError(
            f"{_named(path)}: the header (line 1) says {layout.count:,} words but the file holds {rows:,} rows; "
            f"correct the header's first number to {rows}"
        )
    return matrix, rows


def _odd_line(path: str | Path, line: bytes, number: int, layout: Layout, rows: int) -> tuple[bytes, bytes]:
    """(word, values) of a line whose spaces are not one per number: fields split by any
    whitespace; more fields than a word and its numbers make a word with spaces in it (as some of
    GloVe 840B's), unless they are all numbers.

    Raises DataError for a line with fewer numbers, or more, than the file's width.
    """
    fields, dim = line.split(), layout.dim
    extra = fields[1 : len(fields) - dim]
    if len(fields) < dim + 1 or (extra and _row_width(b"w " + b" ".join(extra)) == len(extra)):
        held = len(fields) - 1
        if rows == 0 and layout.count is not None:
            raise DataError(
                f"{_named(path)}: the header (line 1) says {dim} numbers per word but line {number} holds {held}; "
                f"correct the header's second number, or the rows"
            )
        first = "the header (line 1) says" if layout.count is not None else "line 1 holds"
        raise DataError(
            f"{_named(path)}: line {number} holds {held} numbers where {first} {dim}; every word needs {dim} numbers "
            "(two files joined?)"
        )
    return b" ".join(fields[: len(fields) - dim]), b" ".join(fields[len(fields) - dim :])


def _numbers(path: str | Path, values: bytes, number: int, dim: int) -> np.ndarray:
    """A row's numbers (float32), checked finite.

    Raises DataError naming the line and the value that is not a finite number.
    """
    try:
        row = np.array(values.split(b" "), np.float32)
    except ValueError:
        bad = next(v for v in values.split() if _row_width(b"w " + v) is None)
        raise DataError(f"{_named(path)}: line {number} holds {_shown(bad)} where a number should be") from None
    if len(row) != dim or not np.isfinite(row).all():
        at = next((i for i, v in enumerate(row) if not np.isfinite(v)), None)
        if at is None:
            raise DataError(f"{_named(path)}: line {number} holds {len(row)} numbers; give {dim}")
        text = values.split(b" ")[at].decode("utf-8", "replace")
        if text.lower().lstrip("+-") not in ("inf", "infinity", "nan"):
            raise DataError(f"{_named(path)}: line {number} holds {text}, which overflows float32; give numbers within ±3.4e38")
        raise DataError(f"{_named(path)}: line {number} holds {row[at]} among its numbers; give finite numbers")
    return row


def _gensim_rows(path: str | Path, layout: Layout, matcher: Matcher) -> tuple[np.ndarray, int]:
    """The vocabulary's matrix and the file's row count, from gensim's reading of the whole file.

    Raises DataError with gensim's first line where gensim cannot read it.
    """
    from gensim.models import KeyedVectors  # here, not at the top: only this reading needs it

    try:
        vectors = KeyedVectors.load_word2vec_format(
            str(Path(path).expanduser()),
            binary=layout.format == "binary",
            no_header=layout.count is None,
            unicode_errors="replace",
        )
    except (ValueError, UnicodeDecodeError, *GZIP_ERRORS) as error:
        if isinstance(error, (gzip.BadGzipFile, zlib.error)) or str(error).startswith("Compressed file ended"):
            raise _gzip_damaged(path, error) from None
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise DataError(
            f"{_named(path)}: cannot be read as {FORMATS[layout.format]} ({first}); check the file, or pass {FORMAT_FLAG}"
        ) from None
    if layout.format == "binary":
        _check_binary_count(path, layout, vectors.index_to_key)
    matrix = np.zeros((len(matcher.found), layout.dim), np.float32)
    for row, word in enumerate(vectors.index_to_key[: len(vectors.key_to_index)]):  # a duplicate leaves a None slot at the end
        at = matcher.take(word)
        if at is not None:
            matrix[at] = vectors.vectors[row]
            if not np.isfinite(matrix[at]).all():
                raise DataError(f"{_named(path)}: the vector of {word!r} holds a value that is not a finite number")
    return matrix, layout.count if layout.count is not None else len(vectors.key_to_index)


def _check_binary_count(path: str | Path, layout: Layout, words: list) -> None:
    """Refuse a word2vec binary file that holds more rows than its header's count, which gensim
    reads up to the count and stops: the header's line and the count rows read (each word's UTF-8
    bytes, a space, dim float32 numbers and at most one newline) must reach the file's end, but for
    one newline. Where words repeat (gensim keeps the first: fewer words than the count) the bytes
    read are not known and the check is left out.

    Raises DataError naming the header's count.
    """
    if any(word is None for word in words) or len(set(words)) != layout.count:
        return
    with _opened(path) as f:
        header = len(f.readline())
        if isinstance(f, gzip.GzipFile):
            size = header + sum(len(block) for block in iter(lambda: f.read(1 << 24), b""))
        else:
            size = os.fstat(f.fileno()).st_size
    read = header + sum(len(word.encode("utf-8")) + 2 + 4 * layout.dim for word in words)
    if size > read + 1:
        raise DataError(
            f"{_named(path)}: the header (line 1) says {layout.count:,} words but the file holds more rows; "
            "correct the header's first number"
        )
