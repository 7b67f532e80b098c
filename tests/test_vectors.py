"""Word vectors: files in every format users bring, cut to a vocabulary (the streaming reader held
equal to gensim's), words matched after the model's standardization, random rows at the file's
scale, the refusals of bad files; and vectors learned from unlabeled text by `python -m
search.vectors`, which never reads a test split. Every file is written here, small."""

import gzip
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from gensim.models import KeyedVectors

from runfiles.vectorcard import VectorsCard
from search.data import DataError, ReadOptions, read_reviews
from search.data.unlabeled import read_unlabeled
from search.data.vectors import Matcher, coverage, file_fingerprint, read_vectors, sniff

from conftest import SAMPLE, snapshot, tar_archive

VOCABULARY = ["", "[UNK]", "the", "film", "cafe", "movie", "great", "dont", "plot", "absent"]
"""A run's vocabulary: padding, [UNK], then words as `models.text.standardize` makes them."""
FILE_WORDS = ["the", "Film", "film", "Café", "MOVIE", "Movie", "don't", "new_york", "[UNK]", "plot", "the"]
"""A file's words, most frequent first, as users' files spell them: "the" twice (the first row is
kept), "Film" before "film" (the exact spelling wins), "MOVIE" before "Movie" (neither exact: the
first wins), "new_york" (two words once standardized: no match), "[UNK]" (never a file row)."""


def keyed(words: list[str], dim: int = 5, seed: int = 0) -> KeyedVectors:
    """gensim's vectors of `words` (duplicates kept in their place), values seeded."""
    vectors = np.random.default_rng(seed).normal(0.1, 0.4, size=(len(words), dim)).astype(np.float32)
    kv = KeyedVectors(dim, count=len(words))
    kv.index_to_key = list(words)  # set directly: gensim's add_vector would merge the duplicate
    kv.key_to_index = {}
    kv.vectors = vectors
    return kv


def text_lines(kv: KeyedVectors) -> list[str]:
    """Each word and its numbers as gensim writes them: "%s %s" of the word and repr'ed floats."""
    return [f"{word} {' '.join(repr(float(v)) for v in kv.vectors[i])}" for i, word in enumerate(kv.index_to_key)]


def write_format(tmp_path: Path, fmt: str, words: list[str] = FILE_WORDS, dim: int = 5) -> tuple[Path, KeyedVectors]:
    """A vectors file of `words` in one format, and the vectors it holds."""
    kv = keyed(words, dim)
    lines = text_lines(kv)
    header = f"{len(words)} {dim}\n"
    if fmt == "glove":
        path = tmp_path / "glove.txt"
        path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    elif fmt == "word2vec":
        path = tmp_path / "vectors.txt"
        path.write_text(header + "".join(f"{line}\n" for line in lines), encoding="utf-8")
    elif fmt == "fasttext":  # fastText's .vec: a header, and a space at the end of every line
        path = tmp_path / "wiki.vec"
        path.write_text(header + "".join(f"{line} \n" for line in lines), encoding="utf-8")
    elif fmt == "gzip":
        path = tmp_path / "wiki.vec.gz"
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(header + "".join(f"{line}\n" for line in lines))
    else:  # word2vec binary, as gensim writes it
        path = tmp_path / "vectors.bin"
        distinct = keyed(words, dim)
        distinct.index_to_key = list(dict.fromkeys(words))
        distinct.vectors = kv.vectors[[words.index(w) for w in distinct.index_to_key]]
        distinct.key_to_index = {w: i for i, w in enumerate(distinct.index_to_key)}
        distinct.save_word2vec_format(str(path), binary=True)
        return path, distinct
    return path, kv


EXPECTED_ROWS = {"the": "the", "film": "film", "cafe": "Café", "movie": "MOVIE", "dont": "don't", "plot": "plot"}
"""Which file word each vocabulary word takes (the matching rule); "great" and "absent" take none."""
FORMATS = {"glove": "glove", "word2vec": "word2vec", "fasttext": "word2vec", "gzip": "word2vec", "binary": "binary"}
"""Each file written, and the format it is told to be."""


@pytest.mark.parametrize("written", list(FORMATS))
def test_every_format_gives_the_vocabularys_rows(tmp_path, written):
    path, kv = write_format(tmp_path, written)
    counts = np.array([0, 4, 50, 20, 5, 5, 10, 3, 2, 1])
    vectors = read_vectors(path, VOCABULARY, counts)
    assert (vectors.format, vectors.dim, vectors.matrix.shape, vectors.matrix.dtype) == (FORMATS[written], 5, (10, 5), np.float32)
    for word, file_word in EXPECTED_ROWS.items():
        first = kv.index_to_key.index(file_word)
        np.testing.assert_array_equal(vectors.matrix[VOCABULARY.index(word)], kv.vectors[first])
    assert vectors.found.tolist() == [False, False, True, True, True, True, False, True, True, False]
    assert vectors.vocabulary_coverage == pytest.approx(6 / 8)
    assert vectors.token_coverage == pytest.approx((50 + 20 + 5 + 5 + 3 + 2) / counts.sum())
    assert vectors.fingerprint == file_fingerprint(path) and (vectors.matrix[0] == 0).all()


@pytest.mark.parametrize("written", ["glove", "word2vec", "fasttext", "gzip"])
def test_the_streaming_reader_equals_gensims_reading(tmp_path, written):
    words = [f"w{i}" for i in range(300)] + FILE_WORDS + [f"X{i}" for i in range(50)]
    path, _ = write_format(tmp_path, written, words, dim=7)
    vocabulary = ["", "[UNK]", *VOCABULARY[2:], *[f"w{i}" for i in range(0, 400, 3)], *[f"x{i}" for i in range(0, 60, 7)]]
    counts = np.arange(len(vocabulary))
    streamed = read_vectors(path, vocabulary, counts, seed=3)
    loaded = read_vectors(path, vocabulary, counts, seed=3, engine="gensim")
    np.testing.assert_array_equal(streamed.matrix, loaded.matrix)
    np.testing.assert_array_equal(streamed.found, loaded.found)
    same = ("dim", "format", "fingerprint", "vocabulary_coverage", "token_coverage")
    assert [getattr(streamed, k) for k in same] == [getattr(loaded, k) for k in same]
    assert streamed.rows == len(words) and 0 < streamed.vocabulary_coverage < 1


def test_words_match_exactly_else_by_the_first_spelling_that_standardizes_to_them():
    matcher = Matcher(VOCABULARY)
    taken = {word: matcher.take(word) for word in FILE_WORDS}
    assert taken == {
        "the": None,  # its second row: the first stays (seen below)
        "Film": VOCABULARY.index("film"),
        "film": VOCABULARY.index("film"),  # the exact spelling replaces the folded one
        "Café": VOCABULARY.index("cafe"),
        "MOVIE": VOCABULARY.index("movie"),
        "Movie": None,
        "don't": VOCABULARY.index("dont"),
        "new_york": None,
        "[UNK]": None,
        "plot": VOCABULARY.index("plot"),
    }
    assert Matcher(VOCABULARY).take("the") == 2


def test_words_without_a_vector_start_at_the_files_scale(tmp_path):
    mean, std = np.array([3.0, -1.0, 0.0, 0.5]), np.array([0.1, 2.0, 1.0, 0.5])
    rows = np.random.default_rng(1).normal(mean, std, size=(3000, 4)).astype(np.float32)
    path = tmp_path / "scaled.txt"
    path.write_text("".join(f"w{i} {' '.join(map(repr, map(float, row)))}\n" for i, row in enumerate(rows)))
    vocabulary = ["", "[UNK]", *[f"w{i}" for i in range(3000)], *[f"new{i}" for i in range(3000)]]
    vectors = read_vectors(path, vocabulary, seed=7)
    drawn = vectors.matrix[~vectors.found][1:]  # padding aside
    assert len(drawn) == 3001 and (vectors.matrix[0] == 0).all()
    np.testing.assert_allclose(drawn.mean(axis=0), rows.mean(axis=0), atol=0.1)
    np.testing.assert_allclose(drawn.std(axis=0), rows.std(axis=0), rtol=0.1)
    again, other = read_vectors(path, vocabulary, seed=7), read_vectors(path, vocabulary, seed=8)
    assert np.array_equal(again.matrix, vectors.matrix) and not np.array_equal(other.matrix, vectors.matrix)


def test_coverage_of_a_smaller_vocabulary_counts_the_words_beyond_it_as_unknown():
    found = np.array([False, False, True, False, True, True])
    counts = np.array([0, 10, 40, 20, 20, 10])
    assert coverage(found, counts) == (pytest.approx(3 / 4), pytest.approx(70 / 100))
    assert coverage(found, counts, vocab_size=4) == (pytest.approx(1 / 2), pytest.approx(40 / 100))
    assert coverage(found) == (pytest.approx(3 / 4), None)


def _lines(*lines: str) -> str:
    return "".join(f"{line}\n" for line in lines)


BAD_FILES = {
    "no such file": (None, "no such file; give a vectors file"),
    "an empty file": (b"", "the file is empty"),
    "a table": (b"text,label\ngood film,pos\n", "is not a vectors file (line 1: 'text,label')"),
    "a zip archive": (b"PK\x03\x04rest", "is a zip archive; unzip it"),
    "a fastText model": ((793712314).to_bytes(4, "little") + b"\x0c\x00\x00\x00", "is a fastText model (.bin)"),
    "mixed widths": (_lines("the 1 2 3", "film 1 2 3", "plot 1 2"), "line 3 holds 2 numbers where line 1 holds 3"),
    "a wider line": (_lines("the 1 2 3", "film 1 2 3 4"), "line 2 holds 4 numbers where line 1 holds 3"),
    "a header's count": (_lines("3 2", "the 1 2", "film 1 2"), "the header (line 1) says 3 words but the file holds 2 rows"),
    "a header's width": (_lines("2 3", "the 1 2", "film 1 2"), "the header (line 1) says 3 numbers per word but line 2 holds 2"),
    "no word covered": (
        _lines("Der 1 2", "Film_ab 1 2"),
        "none of the vocabulary's 8 words has a vector among the file's 2 rows",
    ),
    "a value that is no number": (_lines("the 1 2", "film 1 x"), "line 2 holds 'x' where a number should be"),
    "a value that is not finite": (_lines("the 1 2", "film nan 2"), "line 2 holds nan among its numbers"),
    "a value beyond float32": (_lines("the 1 2", "film 1e400 2"), "line 2 holds 1e400, which overflows float32"),
    "a header of width 0": (_lines("3 0", "the 1 2"), "line 1 ('3 0') reads as a header 'N D'"),
    "a header of a negative count": (_lines("-2 3", "the 1 2 3"), "line 1 ('-2 3') reads as a header 'N D'"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_vectors_file_is_one_line_naming_it(tmp_path, case):
    content, message = BAD_FILES[case]
    path = tmp_path / "vectors.txt"
    if content is not None:
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(DataError) as raised:
        read_vectors(path, VOCABULARY)
    text = str(raised.value)
    assert text.startswith(f"--embeddings {path}: ") and "\n" not in text and message in text, text


def _cut_gzip(tmp_path: Path) -> bytes:
    """A gzip file of vectors cut at half its length, as an interrupted download leaves it."""
    packed = gzip.compress(_lines(*(f"w{i} 1 2 3" for i in range(2000)), "the 1 2 3").encode())
    return packed[: len(packed) // 2]


BAD_GZIP = {
    "not gzip": (lambda _: _lines("the 1 2", "film 1 2").encode(), "is named .gz but is not gzip"),
    "cut short": (_cut_gzip, "the gzip file is cut short"),
}


@pytest.mark.parametrize("case", list(BAD_GZIP))
@pytest.mark.parametrize("fmt", ["auto", "binary"])
def test_a_damaged_gzip_file_is_one_line_naming_it(tmp_path, case, fmt):
    make, message = BAD_GZIP[case]
    path = tmp_path / "vectors.vec.gz"
    if fmt == "binary":  # gensim reads it: a binary file cut short
        write_format(tmp_path, "binary", words=[f"w{i}" for i in range(2000)] + ["the"])
        packed = gzip.compress((tmp_path / "vectors.bin").read_bytes())
        path.write_bytes(packed[: len(packed) // 2] if case == "cut short" else (tmp_path / "vectors.bin").read_bytes())
    else:
        path.write_bytes(make(tmp_path))
    with pytest.raises(DataError) as raised:
        read_vectors(path, VOCABULARY, format=fmt)
    text = str(raised.value)
    assert text.startswith(f"--embeddings {path}: ") and "\n" not in text and message in text, text


def test_a_binary_header_that_counts_fewer_words_than_the_rows_is_refused(tmp_path):
    path, _ = write_format(tmp_path, "binary")
    header, rest = path.read_bytes().split(b"\n", 1)
    count = int(header.split()[0])
    assert read_vectors(path, VOCABULARY).rows == count  # the header as written: read
    path.write_bytes(f"{count - 1} 5\n".encode() + rest)
    with pytest.raises(DataError, match=rf"the header \(line 1\) says {count - 1} words but the file holds more rows"):
        read_vectors(path, VOCABULARY)


def test_a_path_that_is_not_a_regular_file_is_named_so():
    with pytest.raises(DataError, match=r"^--embeddings /dev/null: is not a regular file; give a vectors file$"):
        read_vectors("/dev/null", VOCABULARY)


def test_glove_named_for_a_file_with_a_word2vec_header_names_the_header(tmp_path):
    path, _ = write_format(tmp_path, "word2vec")
    with pytest.raises(DataError, match=r"line 1 \('11 5'\) is a word2vec header 'N D', which GloVe text lacks"):
        sniff(path, "glove")


def test_a_format_named_where_detection_cannot_tell(tmp_path):
    path = tmp_path / "one.txt"
    path.write_text(_lines("3 4", "film 1", "the 2"))  # GloVe of width 1 whose first word is a number
    assert sniff(path).format == "word2vec"
    assert (sniff(path, "glove").format, sniff(path, "glove").dim) == ("glove", 1)
    vectors = read_vectors(path, VOCABULARY, format="glove")
    assert vectors.rows == 3 and vectors.matrix[VOCABULARY.index("film")].tolist() == [1.0]


# ---------------------------------------------------------------- learning vectors from unlabeled text


def unsup_archive(tmp_path: Path, with_labelled: bool = False) -> str:
    """aclImdb's layout with the sample's training reviews under train/unsup/ (and, `with_labelled`,
    labelled texts and a test split around them, as the official archive holds)."""
    with tarfile.open(SAMPLE) as sample:
        train = {m.name.split("/")[-1]: sample.extractfile(m).read() for m in sample if m.isfile() and "/train/" in m.name}
    files = {f"aclImdb/train/unsup/{name}": text for name, text in train.items()}
    if with_labelled:
        files |= {"aclImdb/train/pos/1_9.txt": b"labelledword", "aclImdb/test/neg/2_1.txt": b"testword", "aclImdb/README": b"x"}
    return tar_archive(tmp_path / "unsup.tar.gz", files)


def test_unlabeled_texts_of_every_kind(tmp_path):
    official = read_unlabeled(unsup_archive(tmp_path, with_labelled=True), ReadOptions())
    assert official.kind == "archive" and len(official.texts) == 240
    assert not any(word in text for text in official.texts for word in ("labelledword", "testword"))
    folder = tmp_path / "aclImdb"
    for name, text in {"train/unsup/1_0.txt": "one", "train/unsup/.2_0.txt": "hidden", "test/pos/3_9.txt": "test"}.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    assert read_unlabeled(str(folder), ReadOptions()).texts == ["one"]
    (tmp_path / "own" / "sub").mkdir(parents=True)
    (tmp_path / "own" / "a.txt").write_text("first text")
    (tmp_path / "own" / "sub" / "b.txt").write_bytes(b"\xef\xbb\xbfsecond \xff text")
    assert read_unlabeled(str(tmp_path / "own"), ReadOptions()).texts == ["first text", "second \ufffd text"]
    (tmp_path / "lines.txt").write_text("one text\n\n  \nanother\r\n")
    lines = read_unlabeled(str(tmp_path / "lines.txt"), ReadOptions())
    assert (lines.kind, lines.texts, lines.skipped) == ("lines", ["one text", "another"], 2)
    pd.DataFrame({"review": ["a b", None, "c"], "stars": [1, 2, 3]}).to_parquet(tmp_path / "t.parquet")
    table = read_unlabeled(str(tmp_path / "t.parquet"), ReadOptions(text_column="review"))
    assert (table.kind, table.texts, table.skipped) == ("table", ["a b", "c"], 1)
    (tmp_path / "t.csv").write_text('review,stars\n"a, b",1\n,2\n')
    assert read_unlabeled(str(tmp_path / "t.csv"), ReadOptions(text_column="review")).texts == ["a, b", ""]


def _learn(argv: list[str]) -> int:
    from search import vectors as learn_vectors

    return learn_vectors.main(argv)


TINY = ["--dim", "8", "--epochs", "1", "--workers", "1", "--min-count", "1"]
"""gensim's settings for a model learned in a second."""


def test_a_tiny_word2vec_learns_from_unlabeled_reviews_and_reads_back(tmp_path, capsys):
    from models.folding import standardized
    from search.vectors import texts_fingerprint

    archive = unsup_archive(tmp_path)
    out = tmp_path / "out" / "imdb.vec"
    out.parent.mkdir()
    argv = ["--unlabeled", archive, "--out", str(out), "--dim", "8", "--epochs", "2", "--min-count", "2", "--workers", "1"]
    assert _learn(argv) == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["imdb.vec", "imdb.vec.json"]  # no corpus or temporary file left
    card = VectorsCard.read(out)
    texts = read_unlabeled(archive, ReadOptions()).texts
    assert card.command == "python -m search.vectors " + " ".join(argv)
    assert (card.model, card.dim, card.epochs, card.texts, card.vectors_file) == ("word2vec", 8, 2, 240, "imdb.vec")
    assert card.settings == {
        "window": 5,
        "min_count": 2,
        "skip_gram": False,
        "negative": 5,
        "sample": 0.001,
        "seed": 0,
        "workers": 1,
    }
    assert [(s.flag, s.path, s.kind, s.texts) for s in card.sources] == [("--unlabeled", archive, "archive", 240)]
    assert card.texts_fingerprint == texts_fingerprint(texts) and card.vectors_fingerprint == file_fingerprint(out)
    assert card.tokens == sum(len(standardized(t).split()) for t in texts)
    assert card.wall_s > 0 and card.cpu_s > 0 and card.versions["gensim"] and card.created_at.endswith("Z")
    words = [line.split(" ", 1)[0] for line in out.read_text().splitlines()[1:]]
    assert len(words) == card.vocabulary_size > 1000 and all(standardized(w) == w for w in words)
    vectors = read_vectors(out, ["", "[UNK]", *words[:100], "notaword"])
    assert (vectors.format, vectors.dim, vectors.vocabulary_coverage) == ("word2vec", 8, 100 / 101)
    assert (
        _learn(argv) == 0 and VectorsCard.read(out).vectors_fingerprint == card.vectors_fingerprint
    )  # one worker: the same vectors
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("model", ["word2vec", "fasttext"])
def test_each_model_is_the_one_gensim_learns(tmp_path, model):
    from gensim.models import FastText, Word2Vec

    from search.vectors import LearnConfig, learn

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a good film\na bad film\nthe plot\n" * 20)
    learned = learn(corpus, LearnConfig(model=model, dim=4, epochs=1, min_count=1, workers=1))
    assert type(learned) is {"word2vec": Word2Vec, "fasttext": FastText}[model]
    assert (learned.vector_size, learned.epochs) == (4, 1)
    assert sorted(learned.wv.index_to_key) == ["a", "bad", "film", "good", "plot", "the"]


def _texts_with_markers(n: int) -> list[str]:
    return [f"shared words here marker{i}" for i in range(n)]


TRAINING_SOURCES = {
    "a folder per class": "classes",
    "a folder of train.csv and test.csv": "tables",
    "one table, its test split carved": "carved",
}


def _labelled(tmp_path: Path, kind: str) -> str:
    """A labelled source whose every text holds a word of its own (marker<i>)."""
    texts = _texts_with_markers(40)
    labels = ["pos", "neg"] * 20
    if kind == "classes":
        files = {
            f"d/{'train' if i < 24 else 'test'}/{label}/{i}_1.txt": t.encode() for i, (t, label) in enumerate(zip(texts, labels))
        }
        return tar_archive(tmp_path / "classes.tar.gz", files)
    frame = pd.DataFrame({"text": texts, "label": labels})
    if kind == "tables":
        (tmp_path / "tables").mkdir()
        frame[:24].to_csv(tmp_path / "tables" / "train.csv", index=False)
        frame[24:].to_csv(tmp_path / "tables" / "test.csv", index=False)
        return str(tmp_path / "tables")
    frame.to_csv(tmp_path / "one.csv", index=False)
    return str(tmp_path / "one.csv")


@pytest.mark.parametrize("kind", list(TRAINING_SOURCES.values()), ids=list(TRAINING_SOURCES))
def test_added_training_texts_never_include_the_test_split(tmp_path, kind):
    source = _labelled(tmp_path, kind)
    (tmp_path / "own.txt").write_text("some unlabeled text\n")
    for seed in (0, 1) if kind == "carved" else (0,):  # a carved test split follows the search's seed
        out = tmp_path / f"v{seed}.vec"
        own = str(tmp_path / "own.txt")
        assert _learn(["--unlabeled", own, "--add-training", source, "--data-seed", str(seed), "--out", str(out), *TINY]) == 0
        words = {line.split(" ", 1)[0] for line in out.read_text().splitlines()[1:]}
        reviews, _ = read_reviews(source, ReadOptions(seed=seed))
        train, test = ({t.split()[-1] for t in reviews[split].texts} for split in ("train", "test"))
        assert train <= words and not test & words and len(test) >= 8
        sources = VectorsCard.read(out).sources
        assert sources[1].flag == "--add-training" and sources[1].splits == {"train": len(reviews["train"].texts)}


def _refused(tmp_path: Path, argv: list[str], capsys) -> str:
    before = snapshot(tmp_path)
    assert _learn(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert snapshot(tmp_path) == before
    return err


REFUSALS = {
    "no --unlabeled": ([], "the following arguments are required: --unlabeled"),
    "a width of 0": (["--unlabeled", "{own}", "--dim", "0"], "--dim 0 is invalid: expected an integer >= 1"),
    "an unknown model": (["--unlabeled", "{own}", "--model", "glove"], "argument --model: invalid choice: 'glove'"),
    "a missing folder for --out": (["--unlabeled", "{own}", "--out", "{tmp}/no/v.vec"], "the folder {tmp}/no does not exist"),
    "--out a folder": (["--unlabeled", "{own}", "--out", "{tmp}"], "--out {tmp}: is a folder"),
    "no such --unlabeled": (["--unlabeled", "{tmp}/none.txt"], "--unlabeled {tmp}/none.txt: no such file or folder"),
    "a labelled archive as --unlabeled": (
        ["--unlabeled", str(SAMPLE)],
        f"--unlabeled {SAMPLE}: holds a labelled dataset (train/, test/) without train/unsup/*.txt; its test texts are never",
    ),
    "a table without the column": (
        ["--unlabeled", "{tmp}/t.csv", "--text-column", "review"],
        "--unlabeled {tmp}/t.csv: no text column 'review' (columns found: text, label); name the column with --text-column",
    ),
    "no such --add-training": (
        ["--unlabeled", "{own}", "--add-training", "{tmp}/none"],
        "--add-training {tmp}/none: no such file",
    ),
    "a min-count no word reaches": (
        ["--unlabeled", "{own}", "--min-count", "50"],
        "--min-count 50 leaves no word: the most frequent word of the texts appears 2 times",
    ),
    "no negative samples": (["--unlabeled", "{own}", "--negative", "0"], "--negative 0 is invalid: expected an integer >= 1"),
    "--out the --unlabeled file": (
        ["--unlabeled", "{own}", "--out", "{own}"],
        "--out {tmp}/own.txt: would overwrite --unlabeled {tmp}/own.txt, which is read",
    ),
    "--out the --add-training file": (
        ["--unlabeled", "{own}", "--add-training", "{tmp}/t.csv", "--out", "{tmp}/sub/../t.csv"],
        "--out {tmp}/sub/../t.csv: would overwrite --add-training {tmp}/t.csv, which is read",
    ),
    "texts without words": (["--unlabeled", "{tmp}/marks.txt"], "none of the 1 texts read holds a word once standardized"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_the_command_refuses_in_one_line_and_writes_nothing(tmp_path, capsys, case):
    (tmp_path / "own.txt").write_text("some unlabeled text\nand some more of it\n")
    (tmp_path / "marks.txt").write_text("!!! ???\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "t.csv").write_text("text,label\ngood,pos\n")
    argv, message = REFUSALS[case]
    argv = [a.format(own=tmp_path / "own.txt", tmp=tmp_path) for a in argv]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "v.vec")]
    assert message.format(tmp=tmp_path) in _refused(tmp_path, argv, capsys)


def test_vectors_written_under_a_gz_name_are_gzip_and_added_training_drops_are_on_the_card(tmp_path, capsys):
    (tmp_path / "own.txt").write_text("some unlabeled text\n")
    table = tmp_path / "labelled.csv"
    pd.DataFrame({"text": _texts_with_markers(40), "label": ["pos", "neg", None, "neg"] * 10}).to_csv(table, index=False)
    out = tmp_path / "v.vec.gz"
    argv = ["--unlabeled", str(tmp_path / "own.txt"), "--add-training", str(table), "--drop-missing", "--out", str(out)]
    assert _learn([*argv, *TINY]) == 0
    assert out.read_bytes()[:2] == b"\x1f\x8b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labelled.csv", "own.txt", "v.vec.gz", "v.vec.gz.json"]
    vectors = read_vectors(out, ["", "[UNK]", "some", "shared"])
    assert (vectors.format, vectors.dim, vectors.vocabulary_coverage) == ("word2vec", 8, 1.0)
    assert [s.skipped for s in VectorsCard.read(out).sources] == [0, 10]  # the rows without a label


def test_the_help_says_the_card_counts_what_reading_dropped(capsys):
    with pytest.raises(SystemExit):
        _learn(["--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "run.json" not in shown and shown.count("counted in the card (FILE.vec.json") == 2
