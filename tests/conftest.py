import os
import random
import shutil
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

SAMPLE = Path(__file__).parent / "data" / "aclImdb_sample.tar.gz"
TINY = ["--fix", "units=16", "--fix", "embedding_dim=16", "--fix", "max_len=128", "--fix", "vocab_size=2000"]
"""Hyperparameters pinned small, so a search on the sample takes seconds per trial."""


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


@pytest.fixture(scope="session")
def real_run(tmp_path_factory) -> Path:
    """One real search on the sample (Ray Tune, Optuna, Keras training, export, report),
    shared by the search's and the report's tests, which must not change it."""
    from search import run as search_run

    root = tmp_path_factory.mktemp("real_run")
    out = root / "run"
    previous = os.environ.get("IMDB_CACHE_DIR")
    os.environ["IMDB_CACHE_DIR"] = str(root / "cache")
    try:
        args = ["--data", str(SAMPLE), "--trials", "6", "--max-epochs", "3", "--cpus", "2", "--out", str(out), *TINY]
        assert search_run.main(args) == 0
    finally:
        if previous is None:
            os.environ.pop("IMDB_CACHE_DIR")
        else:
            os.environ["IMDB_CACHE_DIR"] = previous
    return out


@pytest.fixture
def run_copy(real_run, tmp_path) -> Path:
    """A copy of the real run that a test may change."""
    return Path(shutil.copytree(real_run, tmp_path / "run", ignore=shutil.ignore_patterns("tune")))
