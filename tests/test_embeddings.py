"""Searched use of word vectors (--embeddings): the refusals of files and pins that cannot serve, one
line and exit 2 with nothing written; then one real search on the sample with a tiny word2vec
learned from its training texts, whose space gains `embeddings`, whose run.json states the
vectors' coverage and card, whose export holds the vectors as its embedding's weights (a plain
load_model and search.predict need no vectors file), and whose resume with a changed file is
refused. Every vectors file is written here, small."""

import dataclasses
import json
from pathlib import Path

import keras
import numpy as np
import pytest

import models.text  # noqa: F401  registers the layers an exported model holds
from runfiles.documents import RunFacts
from runfiles.io import read_rows
from runfiles.layout import RunDir
from search import predict
from search import run as search_run
from search import vectors as learn_vectors
from search.data import DataConfig, ReadOptions, prepare, read_reviews
from search.data.vectors import read_vectors
from search.session import OWN_VECTORS

from conftest import FIXES, SAMPLE, snapshot

WIDTH = 16
"""The vectors' width: conftest's FIXES pin embedding_dim to it."""
ARGS = ["--data", str(SAMPLE), "--cpus", "1", "--no-benchmark", *FIXES]
"""A search on the sample with conftest's small pins."""


def glove(path, rows: dict[str, list[float]]) -> str:
    """A GloVe text file of `rows` (word → numbers)."""
    path.write_text("".join(f"{word} {' '.join(map(str, values))}\n" for word, values in rows.items()), encoding="utf-8")
    return str(path)


def covering(path, width: int = WIDTH) -> str:
    """A GloVe file with a vector for a few of the sample's words."""
    rng = np.random.default_rng(0)
    return glove(path, {word: rng.normal(size=width).round(4).tolist() for word in ("the", "film", "movie", "good", "bad")})


BAD = {
    "not vectors": (
        lambda d: str(d.joinpath("notes.txt").write_text("a review, not vectors\n") and d / "notes.txt"),
        [],
        "is not a vectors file",
    ),
    "lines of mixed width": (lambda d: glove(d / "mixed.txt", {"the": [0.1] * WIDTH, "film": [0.2] * 3}), [], "numbers"),
    "a header that disagrees": (
        lambda d: str(d.joinpath("w2v.txt").write_text(f"9 {WIDTH}\nthe {' '.join(['0.1'] * WIDTH)}\n") and d / "w2v.txt"),
        [],
        "header",
    ),
    "no vocabulary word covered": (
        lambda d: glove(d / "other.txt", {"zzyzx": [0.1] * WIDTH, "qwxv": [0.2] * WIDTH}),
        [],
        "none of the vocabulary's",
    ),
    "a pinned width other than the file's": (
        lambda d: covering(d / "wide.txt", width=8),
        [],
        "--fix embedding_dim=16: the vectors of --embeddings",
    ),
}
"""Files that cannot serve: how to write one, more flags, and what its refusal says."""


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_vectors_that_cannot_serve_are_one_line_and_exit_2_before_ray(tmp_path, capsys, case):
    write, extra, said = BAD[case]
    path = write(tmp_path)
    out = tmp_path / "run"
    before = _outside_cache(tmp_path)
    assert search_run.main([*ARGS, "--out", str(out), "--embeddings", str(path), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and said in err and f"--embeddings {path}" in err, err
    assert not out.exists() and _outside_cache(tmp_path) == before


def _outside_cache(root) -> dict:
    """`snapshot` of root but for the prepared data's cache (which a refused run may fill)."""
    return {path: seen for path, seen in snapshot(root).items() if not path.startswith("cache")}


def test_a_width_outside_the_searched_range_is_pinned_by_a_vectors_file_of_that_width(tmp_path):
    from search.config import check_embeddings, configs_from_args, parse_args

    wide = covering(tmp_path / "w300.txt", width=300)
    search, data = configs_from_args(parse_args(["--embeddings", wide, "--fix", "embedding_dim=300"]))
    check_embeddings(search, data)
    assert search.fixed == {"embedding_dim": 300} and data.embeddings == wide


WITHOUT_VECTORS = {
    "a width outside the range": (
        ["--fix", "embedding_dim=300"],
        "--fix embedding_dim=300: embedding_dim must lie in [16, 256] log, or be the width of the vectors given with "
        "--embeddings FILE",
    ),
    "a format without a file": (
        ["--embeddings-format", "glove"],
        "--embeddings-format glove: names the format of --embeddings FILE; give the file, or drop the flag",
    ),
    "an empty file name": (
        ["--embeddings", ""],
        "--embeddings '': names no file; give a vectors file, or leave --embeddings out",
    ),
}
"""Vectors flags that cannot serve without a vectors file, and their refusal."""


@pytest.mark.parametrize("case", WITHOUT_VECTORS, ids=list(WITHOUT_VECTORS))
def test_vectors_flags_without_a_vectors_file_are_refused_in_one_line(tmp_path, capsys, case):
    flags, said = WITHOUT_VECTORS[case]
    out = tmp_path / "run"
    assert search_run.main(["--data", str(SAMPLE), "--cpus", "2", "--no-benchmark", "--out", str(out), *flags]) == 2
    assert capsys.readouterr().err.strip() == f"error: {said}"
    assert not out.exists()


def test_how_vectors_are_used_cannot_be_pinned_without_them(tmp_path, capsys):
    assert search_run.main([*ARGS, "--out", str(tmp_path / "run"), "--fix", "embeddings=init"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --fix embeddings=init: says how word vectors are used; give them with --embeddings FILE"
    assert not (tmp_path / "run").exists()


def test_a_search_with_vectors_exports_them_and_refuses_a_changed_file_on_resume(tmp_path, capsys):
    vectors = learned_vectors(tmp_path)
    out = tmp_path / "run"
    argv = [*ARGS, "--out", str(out), "--trials", "2", "--max-epochs", "1", "--embeddings", vectors, "--fix", "embeddings=frozen"]
    assert search_run.main(argv) == 0
    facts = RunFacts.read(RunDir(out))
    space = {entry["name"]: entry for entry in facts.space}
    assert space["embeddings"]["choices"] == ["frozen"] and space["embedding_dim"]["choices"] == [WIDTH]
    config = DataConfig(source=str(SAMPLE), max_vocab=2000, embeddings=vectors)
    expected = prepare(config).vectors
    recorded = facts.data.embeddings
    assert (recorded.dim, recorded.format, recorded.file) == (WIDTH, "word2vec", vectors)
    assert recorded.vocabulary_coverage == pytest.approx(expected.vocabulary_coverage, abs=1e-6)
    assert expected.vocabulary_coverage > 0.3 and recorded.token_coverage == pytest.approx(expected.token_coverage, abs=1e-6)
    assert recorded.card["command"].startswith("python -m search.vectors")  # the card beside the file, kept
    assert facts.fingerprint == prepare(config).fingerprint != prepare(DataConfig(source=str(SAMPLE), max_vocab=2000)).fingerprint
    recorded_fingerprint = facts.fingerprint

    exported = keras.models.load_model(RunDir(out).best_model / "model.keras")  # no vectors file needed
    embedding = next(layer for layer in _layers(exported) if isinstance(layer, keras.layers.Embedding))
    rows = embedding.get_weights()[0]
    found = expected.found[: len(rows)]
    assert not embedding.trainable and np.allclose(rows[found], expected.matrix[: len(rows)][found], atol=1e-6)
    assert predict.main([str(out), "a good film", "a bad film"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) >= 2

    own = Path(vectors).read_bytes()
    with open(vectors, "a") as f:  # the same words, one more row: another file
        f.write("zzyzx " + " ".join(["0.5"] * WIDTH) + "\n")
    before = snapshot(out)
    assert search_run.main(["--resume", "--out", str(out), "--trials", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--embeddings {vectors} is not the vectors file this run trained with" in err
    assert snapshot(out) == before

    moved = tmp_path / "elsewhere.vec"  # the run's own file, moved: the same by its sha256
    moved.write_bytes(own)
    Path(vectors).unlink()
    assert search_run.main(["--resume", "--out", str(out)]) == 2
    gone = f"error: --resume: --embeddings {vectors}, the vectors file this run trained with, is gone; {OWN_VECTORS}"
    assert capsys.readouterr().err.startswith(gone) and snapshot(out) == before
    assert search_run.main(["--resume", "--out", str(out), "--embeddings", str(moved)]) == 0  # trains nothing more
    facts = RunFacts.read(RunDir(out))
    assert facts.data.embeddings.file == facts.data_config["embeddings"] == str(moved)
    assert len(read_rows(RunDir(out).trials_csv)) == 2 and facts.fingerprint == recorded_fingerprint


def learned_vectors(tmp_path) -> str:
    """A word2vec of WIDTH learned in seconds from the sample's training texts (python -m search.vectors)."""
    texts = read_reviews(str(SAMPLE), ReadOptions())[0]["train"].texts
    lines = tmp_path / "texts.txt"
    lines.write_text("".join(" ".join(text.split()) + "\n" for text in texts), encoding="utf-8")
    out = tmp_path / "vectors" / "sample.vec"
    out.parent.mkdir()
    flags = ["--dim", str(WIDTH), "--epochs", "2", "--min-count", "2", "--workers", "1"]
    assert learn_vectors.main(["--unlabeled", str(lines), "--out", str(out), *flags]) == 0
    assert json.loads(out.with_name("sample.vec.json").read_text())["dim"] == WIDTH
    assert read_vectors(out, ["", "[UNK]", "film"]).found[2]
    return str(out)


def _layers(model) -> list:
    """Every layer of a model, nested models' included."""
    found = []
    for layer in model.layers:
        found.append(layer)
        if hasattr(layer, "layers"):
            found += _layers(layer)
    return found


def test_the_vectors_file_is_recorded_by_its_absolute_path_and_may_move_on_resume(tmp_path, monkeypatch):
    from runfiles.cli import UsageError
    from search.config import configs_from_args, parse_args, recorded_configs, resumed_configs

    vectors = covering(tmp_path / "glove.txt")
    monkeypatch.chdir(tmp_path)
    search, data = configs_from_args(parse_args(["--data", str(SAMPLE), "--embeddings", "glove.txt"]))
    assert data.embeddings == vectors and data.embeddings_format == "auto"
    recorded = RunFacts(configs=recorded_configs(search, data, {}))
    assert resumed_configs(parse_args(["--resume"]), recorded)[1] == data
    moved = resumed_configs(parse_args(["--resume", "--embeddings", "moved.txt"]), recorded)[1]  # its content checked later
    assert moved == dataclasses.replace(data, embeddings=str(tmp_path / "moved.txt"))
    with pytest.raises(UsageError, match=r"^--resume: --embeddings-format glove \(the run's: auto\) cannot change on resume"):
        resumed_configs(parse_args(["--resume", "--embeddings", "other.txt", "--embeddings-format", "glove"]), recorded)
    without = RunFacts(configs=recorded_configs(search, dataclasses.replace(data, embeddings=None), {}))
    with pytest.raises(UsageError) as refused:
        resumed_configs(parse_args(["--resume", "--embeddings", "moved.txt"]), without)
    assert str(refused.value).startswith(f"--resume: --embeddings {tmp_path}/moved.txt: this run trained without word vectors; ")


def test_a_new_vectors_path_that_is_no_file_is_named_as_such_on_resume(tmp_path, capsys):
    from search import run as search_run

    vectors, nowhere = tmp_path / "vectors.vec", tmp_path / "nonexist.txt"
    run = _recorded_with_vectors(tmp_path / "run", vectors, "ab" * 32)
    run.study_db.write_bytes(b"")
    assert search_run.main(["--resume", "--out", str(run.root), "--embeddings", str(nowhere)]) == 2
    said = f"error: --resume: --embeddings {nowhere}: no such file; give the moved vectors file (sha256 abababababab...) the run"
    assert capsys.readouterr().err.startswith(said)


def test_a_follow_up_command_on_a_run_whose_vectors_are_gone_or_changed_says_what_works_there(tmp_path, capsys):
    from search import baseline

    vectors = tmp_path / "vectors.vec"
    run = _recorded_with_vectors(tmp_path / "run", vectors, "0" * 64)
    before = run.run_json.read_bytes()
    assert baseline.main([str(run.root)]) == 2
    gone = f"error: python -m search.baseline: --embeddings {vectors}, the vectors file this run trained with, is gone; "
    repoint = f"point the run at its own file with: {run.resume_command} --embeddings PATH\n"
    assert capsys.readouterr().err == gone + repoint
    vectors.write_text("the 0.1 0.2\n")
    assert baseline.main([str(run.root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: python -m search.baseline: --embeddings {vectors} is not the vectors file this run")
    assert err.endswith(f"in run.json); {repoint}") and run.run_json.read_bytes() == before


def _recorded_with_vectors(folder: Path, vectors: Path, sha256: str) -> RunDir:
    """A run directory holding only run.json, of a run that trained with the vectors file `vectors`."""
    from runfiles.documents import DataFacts, EmbeddingFacts

    recorded = RunFacts(
        configs=RunFacts.configs_of({}, {"source": str(SAMPLE), "embeddings": str(vectors)}, {}),
        data=DataFacts(embeddings=EmbeddingFacts(file=str(vectors), sha256=sha256)),
    )
    run = RunDir(folder)
    run.root.mkdir()
    recorded.write(run)
    return run
