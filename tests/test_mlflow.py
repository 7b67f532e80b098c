"""--mlflow: every trial and the run's outcome in MLflow, and every kind of tracking URI checked before Ray starts.

python -m pytest -q tests/test_mlflow.py

The session's second search on the sample (tests/conftest.py: second_run) logs to MLflow's file
store (a folder, which MLflow 3 opens only on request) and is read back with mlflow's client; its
outcome is logged again to a real `mlflow server` (SQLite backend, temporary artifact folder) and
to a SQLite file. URIs that cannot work are refused in one line, exit 2, before Ray starts, with
nothing written.
"""

import importlib.util
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from runfiles.documents import RunFacts
from runfiles.io import read_json, read_rows
from runfiles.layout import RunDir
from search import run as search_run
from search.mlflow_tracking import FILE_STORE_OPT_IN, OUTCOME_RUN, check_tracking, log_outcome, viewer

from conftest import MLFLOW_STORE, SAMPLE, TINY, snapshot

mlflow = pytest.importorskip("mlflow")

FIRST_REVISION = "451aebb31d03"
"""The first revision of MLflow's database schema (mlflow/store/db_migrations): a database an old MLflow made."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server_process(tmp_path_factory):
    """(process, URI, log) of `mlflow server` on 127.0.0.1 (SQLite backend, temporary artifact
    folder), started but perhaps not answering yet."""
    root = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    log = root / "server.log"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(log, "w"),  # noqa: SIM115 - kept open while the server runs
    )
    yield server, f"http://127.0.0.1:{port}", log
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def tracking_server(server_process) -> str:
    """The server's URI, once it answers /health."""
    server, uri, log = server_process
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(uri + "/health", timeout=2):
                return uri
        except OSError:
            if time.time() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail(f"mlflow server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.5)


@pytest.fixture
def file_store_run(second_run, monkeypatch):
    """(run directory, store URI): conftest's second run, logged to MLflow's file store by a relative
    path (the run records file:///ABSOLUTE_PATH) and started without MLflow's opt-in for that store
    (conftest.second_search). The opt-in is set here for this test's reading only: MLflow 3 opens
    its file store only with it."""
    monkeypatch.setenv(FILE_STORE_OPT_IN, "true")
    return second_run, (second_run.parent / MLFLOW_STORE).as_uri()


def test_every_trial_and_the_outcome_reach_mlflows_file_store(file_store_run):
    out, store = file_store_run
    assert RunFacts.read(RunDir(out)).search_config["mlflow"] == store
    client = mlflow.MlflowClient(store)
    experiment = client.get_experiment_by_name(str(out.resolve()))
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    rows = {r["trial_id"]: r for r in read_rows(out / "trials.csv")}
    assert set(runs) == {*rows, OUTCOME_RUN}
    for trial_id, row in rows.items():
        run = runs[trial_id]
        assert (
            run.info.status == "FINISHED" and run.data.tags["state"] == row["state"] and run.data.tags["reason"] == row["reason"]
        )
        assert run.data.params["depth"] == row["depth"] and run.data.params["learning_rate"] == row["learning_rate"]
        history = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert [m.step for m in history] == list(range(1, int(row["epochs"]) + 1))
        assert max(m.value for m in history) == pytest.approx(float(row["val_accuracy"]))
    _assert_outcome(client, runs[OUTCOME_RUN], out)


def test_the_outcome_reaches_a_tracking_server_and_a_sqlite_file(file_store_run, tracking_server, tmp_path, monkeypatch):
    out, _ = file_store_run
    monkeypatch.chdir(tmp_path)  # a SQLite store keeps artifacts in MLflow's default, ./mlruns
    database = check_tracking("sqlite:///tracking/mlflow.db")
    assert check_tracking(tracking_server) == tracking_server
    for uri in (tracking_server, database):
        run_id = log_outcome(uri, RunDir(out))
        client = mlflow.MlflowClient(uri)
        outcome = client.get_run(run_id)
        _assert_outcome(client, outcome, out)
        assert client.get_experiment(outcome.info.experiment_id).name == str(out.resolve())
    assert (tmp_path / "tracking" / "mlflow.db").is_file()
    assert Path(outcome.info.artifact_uri.removeprefix("file://")).is_relative_to(tmp_path / "mlruns")


def _assert_outcome(client, outcome, out: Path) -> None:
    summary = read_json(out / "summary.json")
    assert outcome.info.status == "FINISHED"
    assert outcome.data.metrics["exported.test_accuracy"] == pytest.approx(summary["exported"]["test_accuracy"])
    artifacts = {a.path for a in client.list_artifacts(outcome.info.run_id)}
    assert {"summary.json", "run.json", "report", "best_model"} <= artifacts
    assert "best_model/model.keras" in {a.path for a in client.list_artifacts(outcome.info.run_id, "best_model")}


def test_a_local_store_is_taken_by_its_absolute_path_and_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert check_tracking("mlruns") == (tmp_path / "mlruns").as_uri()
    assert check_tracking("file:mlruns/nested") == (tmp_path / "mlruns" / "nested").as_uri()
    assert check_tracking("file://localhost" + str(tmp_path / "store")) == (tmp_path / "store").as_uri()
    assert check_tracking("sqlite:///runs/mlflow.db") == f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"
    assert check_tracking(None) is None and not list(tmp_path.iterdir())
    # The terminal's command to see a local store (MLflow 3 serves its file store only when asked).
    store, database = (tmp_path / "mlruns").as_uri(), f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert viewer(store) == f"{FILE_STORE_OPT_IN}=true mlflow ui --backend-store-uri {store}"
    assert viewer(database) == f"mlflow ui --backend-store-uri {database}" and viewer("http://127.0.0.1:5000") == ""


def _a_file(root: Path) -> Path:
    (root / "notes.txt").write_text("not a store")
    return root / "notes.txt"


def _an_old_mlflow_database(root: Path, port: int) -> str:
    """A real MLflow database, marked as made by the first MLflow with a database schema."""
    made = f"sqlite:///{root / 'made.db'}"
    mlflow.MlflowClient(made).search_experiments()
    with sqlite3.connect(root / "made.db") as database:
        database.execute("UPDATE alembic_version SET version_num = ?", (FIRST_REVISION,))
    shutil.copy(root / "made.db", root / "old.db")
    with pytest.raises(mlflow.exceptions.MlflowException, match="out-of-date database schema"):
        mlflow.MlflowClient(f"sqlite:///{root / 'old.db'}").search_experiments()  # MLflow itself refuses it
    (root / "old.db").unlink()
    return made


REFUSED = [
    (lambda root, port: f"http://127.0.0.1:{_free_port()}", "no MLflow tracking server answers there"),
    (lambda root, port: str(_a_file(root)), "notes.txt is a file; MLflow's file store is a folder"),
    (lambda root, port: _a_file(root).as_uri() + "/mlruns", "notes.txt is a file; give a path under a folder"),
    (lambda root, port: "file://tmp/mlruns", "'tmp' reads as a host, not a folder; a local folder is file:///tmp/mlruns"),
    (lambda root, port: "sqlite://", "an in-memory database is gone when the run ends"),
    (lambda root, port: f"sqlite:///{_a_file(root)}", "notes.txt is not a SQLite database"),
    (lambda root, port: f"sqlite:///{root}", "is a folder; give the database file"),
    (_an_old_mlflow_database, f"the database's schema is at revision {FIRST_REVISION}, mlflow"),
    (lambda root, port: f"postgresql://user:secret@127.0.0.1:{_free_port()}/db", "no database server answers at 127.0.0.1:"),
    (lambda root, port: f"mysql://user:secret@127.0.0.1:{port}/db", "its database driver (MySQLdb) is not installed"),
    (lambda root, port: f"mssql+nosuch://user@127.0.0.1:{port}/db", "SQLAlchemy has no driver 'mssql+nosuch'"),
    (lambda root, port: "databricks", "a Databricks workspace keeps experiments at workspace paths"),
    (lambda root, port: "databricks://profile", "a Databricks workspace keeps experiments at workspace paths"),
    (lambda root, port: "localhost:5000", "not a tracking URI (a host and port without a scheme); a tracking server is http://"),
    (lambda root, port: "s3://bucket/mlruns", "not a tracking URI MLflow knows (scheme 's3')"),
    (lambda root, port: "", "not a tracking URI; expected http(s)://HOST:PORT"),
]
"""(the --mlflow value, made in a fresh folder with a port where something listens; what the refusal says)."""


def test_a_uri_that_cannot_work_is_one_line_before_ray_starts_and_writes_nothing(tmp_path, capsys):
    import ray

    mysqlclient = importlib.util.find_spec("MySQLdb") is not None
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        for number, (make, message) in enumerate(REFUSED):
            if "MySQLdb" in message and mysqlclient:
                continue  # installed here: the check goes on to the server
            root = tmp_path / f"case{number}"
            root.mkdir()
            value = make(root, listening.getsockname()[1])
            before, out, _ = snapshot(root), root / "run", capsys.readouterr()
            started = time.time()
            code = search_run.main(["--data", str(SAMPLE), "--mlflow", value, "--out", str(out), *TINY])
            err = capsys.readouterr().err
            assert code == 2 and err.count("\n") == 1 and err.startswith(f"error: --mlflow {value.replace('secret', '***')}"), err
            assert message in err and "secret" not in err, err
            assert time.time() - started < 15 and not ray.is_initialized()
            assert snapshot(root) == before and not out.exists(), value
