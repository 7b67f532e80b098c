"""A run's trials and outcome in an MLflow tracking server (--mlflow URI; the `mlflow` extra).

One MLflow experiment per run directory (named by its absolute path). Each trial is an MLflow
run named by its trial id, through Ray Tune's `MLflowLoggerCallback` (search.tracking.TrialsToMLflow): its configuration as
parameters, every epoch's metrics (step = the epoch), and at its end its state and reason as
tags (completed, stopped_early, diverged, errored) beside MLflow's FINISHED or FAILED. When the
run ends, one more MLflow run, "outcome", holds summary.json's numbers as metrics and the
summary, the report and the exported model as artifacts.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from runfiles.cli import UsageError
from runfiles.io import read_json
from runfiles.layout import RunDir

OUTCOME_RUN = "outcome"
CHECK_TIMEOUT_S = 5
"""Seconds the tracking server has to answer before the run starts (--mlflow's check)."""


def check_tracking(uri: str | None) -> None:
    """Before Ray starts: mlflow is installed, and an http(s) tracking server answers its /health
    within CHECK_TIMEOUT_S. Raises UsageError, one line, otherwise."""
    if uri is None:
        return
    try:
        import mlflow  # noqa: F401 - the optional extra
    except ImportError:
        raise UsageError(f"--mlflow {uri}: mlflow is not installed; pip install -e '.[mlflow]'") from None
    if not uri.startswith(("http://", "https://")):
        if not uri.startswith(("file:", "sqlite:", "postgresql", "mysql", "mssql", "databricks")):
            raise UsageError(
                f"--mlflow {uri}: not a tracking URI; expected http(s)://HOST:PORT, file:PATH or a database URI such as sqlite:///mlflow.db"
            )
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=CHECK_TIMEOUT_S) as answer:
            answer.read()
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise UsageError(
            f"--mlflow {uri}: no MLflow tracking server answers there ({reason}); start one, e.g. "
            "mlflow server --host 127.0.0.1 --port 5000, or drop --mlflow"
        ) from None


def experiment_name(run_dir: RunDir) -> str:
    """The MLflow experiment of a run directory: its absolute path."""
    return str(Path(run_dir.root).resolve())


def log_outcome(uri: str, run_dir: RunDir) -> str:
    """The run's outcome as one MLflow run: summary.json's numbers, the summary, report and
    exported model as artifacts; returns its run id."""
    import mlflow

    client = mlflow.MlflowClient(uri)
    name = experiment_name(run_dir)
    experiment = client.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
    run = client.create_run(experiment_id, run_name=OUTCOME_RUN, tags={"run_dir": name})
    summary = read_json(run_dir.summary_json) if run_dir.summary_json.is_file() else {}
    metrics = {}
    for part in ("best", "exported"):
        for key, value in (summary.get(part) or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                metrics[f"{part}.{key}"] = value
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, key, value)
    for path in (run_dir.summary_json, run_dir.run_json):
        if path.is_file():
            client.log_artifact(run.info.run_id, str(path))
    for folder in (run_dir.report, run_dir.best_model):
        if folder.is_dir():
            client.log_artifacts(run.info.run_id, str(folder), artifact_path=folder.name)
    client.set_terminated(run.info.run_id)
    return run.info.run_id
