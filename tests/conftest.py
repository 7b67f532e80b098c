import os
import random
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

SAMPLE = Path(__file__).parent / "data" / "aclImdb_sample.tar.gz"


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
