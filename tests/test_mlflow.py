"""--mlflow: every trial and the run's outcome in a real MLflow tracking server.

python -m pytest -q tests/test_mlflow.py

The test starts `mlflow server` on 127.0.0.1 with a SQLite backend and a temporary artifact
folder, runs a search on the sample against it, and reads the runs back with mlflow's client.
"""

import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from runfiles.io import read_rows
from search import run as search_run

from conftest import SAMPLE, TINY

mlflow = pytest.importorskip("mlflow")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
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
        stderr=open(root / "server.log", "w"),  # noqa: SIM115 - kept open while the server runs
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(uri + "/health", timeout=2):
                break
        except OSError:
            if time.time() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
    yield uri
    server.terminate()
    server.wait(timeout=30)


def test_every_trial_and_the_outcome_reach_a_real_tracking_server(tracking_server, tmp_path):
    out = tmp_path / "run"
    args = ["--data", str(SAMPLE), "--trials", "3", "--max-epochs", "2", "--cpus", "2", "--mlflow", tracking_server]
    assert search_run.main([*args, "--out", str(out), *TINY]) == 0

    client = mlflow.MlflowClient(tracking_server)
    experiment = client.get_experiment_by_name(str(out.resolve()))
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    rows = {r["trial_id"]: r for r in read_rows(out / "trials.csv")}
    assert set(runs) == {*rows, "outcome"}
    for trial_id, row in rows.items():
        run = runs[trial_id]
        assert (
            run.info.status == "FINISHED" and run.data.tags["state"] == row["state"] and run.data.tags["reason"] == row["reason"]
        )
        assert run.data.params["depth"] == row["depth"] and run.data.params["learning_rate"] == row["learning_rate"]
        history = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert [m.step for m in history] == list(range(1, int(row["epochs"]) + 1))
        assert max(m.value for m in history) == pytest.approx(float(row["val_accuracy"]))
    outcome = runs["outcome"]
    assert outcome.data.metrics["exported.test_accuracy"] > 0
    artifacts = {a.path for a in client.list_artifacts(outcome.info.run_id)}
    assert {"summary.json", "run.json", "report", "best_model"} <= artifacts
    assert "best_model/model.keras" in {a.path for a in client.list_artifacts(outcome.info.run_id, "best_model")}


def test_a_tracking_server_that_does_not_answer_is_one_line_before_ray_starts(tmp_path, capsys):
    out = tmp_path / "run"
    started = time.time()
    code = search_run.main(["--data", str(SAMPLE), "--mlflow", f"http://127.0.0.1:{_free_port()}", "--out", str(out), *TINY])
    assert code == 2 and time.time() - started < 10
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --mlflow http://127.0.0.1:") and "mlflow server" in err
    assert not out.exists()
