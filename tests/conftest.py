import hashlib
import io
import os
import random
import re
import shutil
import tarfile
from collections.abc import Callable
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
"""FIXES, without the serving benchmark at the end (tests/test_terminal.py's smoke run runs it)."""
NOISE = re.compile(r"absl|oneDNN|cpu_feature_guard|CUDA|cuda|Trial status|Configuration for experiment|INFO |WARNING ")
"""Library lines a user's terminal must not show (TensorFlow's, Ray Tune's tables, log levels)."""


@pytest.fixture(autouse=True)
def seeded(tmp_path, monkeypatch):
    """Seed Python, NumPy and TensorFlow, clear Keras, keep the data cache per test.

    Keras's names are reset without its full garbage collection (`free_memory=False`): with
    TensorFlow loaded a worker holds about 430,000 objects, and collecting them before each of the
    suite's ~900 tests cost 0.2-0.7 s apiece; Python's own collector still runs as it would."""
    import keras

    random.seed(0)
    np.random.seed(0)
    keras.utils.set_random_seed(0)
    keras.backend.clear_session(free_memory=False)
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


def refuse_ray(patch: pytest.MonkeyPatch) -> None:
    """Make starting Ray in a follow-up command (search.session.ray_session) fail the test."""
    from search import session

    def started(*args, **kwargs):
        raise AssertionError("Ray was started")

    patch.setattr(session, "ray_session", started)


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


def built_once(tmp_path_factory, worker_id, name: str, build: Callable[[Path], object]) -> Path:
    """The test session's folder `name`, where `build(folder)` has run exactly once; returns the folder.

    Under pytest-xdist (`-n 2`) the first worker that asks builds it, in the directory the workers'
    temporary folders share; the others wait on its lock and find it built (pytest-xdist's
    documented recipe for a session fixture made once). A build that failed half-way is redone."""
    if worker_id == "master":
        root = tmp_path_factory.mktemp(name)
        build(root)
        return root
    root = tmp_path_factory.getbasetemp().parent / name
    built = root / "built"
    with FileLock(str(root) + ".lock"):
        if not built.exists():
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir()
            build(root)
            built.touch()
    return root


REAL_RUN_ARGS = ("--trials", "6", "--max-epochs", "3")
"""The session's real run: enough trials for a ranked table, a pruned trial and an export."""


@pytest.fixture(scope="session")
def real_run(tmp_path_factory, worker_id) -> Path:
    """One real search on the sample (Ray Tune, Optuna, Keras training, export, report),
    shared by the search's and the report's tests, which must not change it; built once per test session."""
    return built_once(tmp_path_factory, worker_id, "real_run", lambda root: search_once(root, *REAL_RUN_ARGS)) / "run"


SECOND_RUN_ARGS = ("--seed", "1", "--trials", "3", "--max-epochs", "2", "--fix", "dropout=0.3")
"""The session's second run: another seed (so another split of the sample and another fingerprint),
a smaller budget, and dropout pinned (so that its best differs from the real run's even when both are
the queued start point)."""
MLFLOW_STORE = "mlruns"
"""The second run's MLflow file store: this folder beside its run directory."""


def second_search(root: Path) -> None:
    """The second run into root/run, logging to MLflow's file store root/MLFLOW_STORE, named by a
    relative path and started without MLflow's opt-in for that store (--mlflow naming a folder must
    be enough). The process is left as found: the opt-in and MLflow's tracking URI, which Ray Tune's
    callback sets for the whole process, are restored."""
    import mlflow

    from search.mlflow_tracking import FILE_STORE_OPT_IN

    before = os.environ.pop(FILE_STORE_OPT_IN, None)
    try:
        search_once(root, *SECOND_RUN_ARGS, "--mlflow", os.path.relpath(root / MLFLOW_STORE))
    finally:
        os.environ.pop(FILE_STORE_OPT_IN, None)
        if before is not None:
            os.environ[FILE_STORE_OPT_IN] = before
        mlflow.set_tracking_uri(None)


@pytest.fixture(scope="session")
def second_run(tmp_path_factory, worker_id) -> Path:
    """A second real search on the sample (SECOND_RUN_ARGS), finished and exported, its trials and
    outcome in MLflow's file store beside it (second_search); built once per test session, shared by
    the comparison's and MLflow's tests, which must not change it."""
    return built_once(tmp_path_factory, worker_id, "second_run", second_search) / "run"


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
