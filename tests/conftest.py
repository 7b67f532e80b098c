import hashlib
import io
import os
import random
import shutil
import tarfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from filelock import FileLock

SAMPLE = Path(__file__).parent / "data" / "aclImdb_sample.tar.gz"
FULL_ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "aclImdb_v1_labelled.tar.gz"
"""The full labelled IMDB archive, where this machine has it (tests that need it skip without)."""
FIXES = ["--fix", "units=16", "--fix", "embedding_dim=16", "--fix", "max_len=128", "--fix", "vocab_size=2000"]
"""Hyperparameters pinned small, so a search on the sample takes seconds per trial."""
TINY = [*FIXES, "--no-benchmark"]
"""FIXES, without the serving benchmark at the end (tests/test_quality.py's search runs it)."""


@pytest.fixture(autouse=True)
def seeded(tmp_path, monkeypatch):
    """Seed Python, NumPy and TensorFlow, clear Keras, keep the data cache per test."""
    import keras

    random.seed(0)
    np.random.seed(0)
    keras.utils.set_random_seed(0)
    keras.backend.clear_session()
    monkeypatch.setenv("IMDB_CACHE_DIR", str(tmp_path / "cache"))
    yield


@pytest.fixture(scope="session")
def sample() -> str:
    return str(SAMPLE)


def search_once(root: Path, *args: str, data: Path = SAMPLE) -> Path:
    """A real search on `data` (the sample) into root/run, with its own data cache; returns the run directory."""
    from search import run as search_run

    out = root / "run"
    previous = os.environ.get("IMDB_CACHE_DIR")
    os.environ["IMDB_CACHE_DIR"] = str(root / "cache")
    try:
        assert search_run.main(["--data", str(data), "--cpus", "1", "--out", str(out), *TINY, *args]) == 0
    finally:
        if previous is None:
            os.environ.pop("IMDB_CACHE_DIR")
        else:
            os.environ["IMDB_CACHE_DIR"] = previous
    return out


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under root with its mtime and content hash: to prove nothing was written."""
    return {
        str(p.relative_to(root)): (
            p.is_dir(),
            p.stat().st_mtime_ns,
            None if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest(),
        )
        for p in sorted(root.rglob("*"))
    }


REAL_RUN_ARGS = ("--trials", "6", "--max-epochs", "3")
"""The session's real run: enough trials for a ranked table, a pruned trial and an export."""


@pytest.fixture(scope="session")
def real_run(tmp_path_factory, worker_id) -> Path:
    """One real search on the sample (Ray Tune, Optuna, Keras training, export, report),
    shared by the search's and the report's tests, which must not change it.

    Under pytest-xdist (`-n 2`) it is built once per test session, by the first worker that asks,
    in the directory the workers' temporary folders share; the others wait on its lock
    (pytest-xdist's documented recipe for a session fixture made once)."""
    if worker_id == "master":
        return search_once(tmp_path_factory.mktemp("real_run"), *REAL_RUN_ARGS)
    root = tmp_path_factory.getbasetemp().parent / "real_run"
    built = root / "built"
    with FileLock(str(root) + ".lock"):
        if not built.exists():
            shutil.rmtree(root, ignore_errors=True)  # a worker's build that failed half-way
            root.mkdir()
            search_once(root, *REAL_RUN_ARGS)
            built.touch()
    return root / "run"


@pytest.fixture
def run_copy(real_run, tmp_path) -> Path:
    """A copy of the real run that a test may change."""
    return Path(shutil.copytree(real_run, tmp_path / "run", ignore=shutil.ignore_patterns("tune")))


def tar_archive(path: Path, files: dict[str, bytes]) -> str:
    """A .tar.gz at `path` holding `files` ({member name: bytes}); its path as text."""
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return str(path)
