"""Runs that go wrong, for real: trials that raise or diverge, drivers killed at any moment, budgets spent.

    python -m pytest -q tests/test_reliability.py

Faults are injected through BILSTM_FAULTS (search/faults.py), which the trainable reads:
the trials really raise, really train on NaN weights, the driver really dies by SIGKILL.
"""

import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest

from runfiles.io import read_json, read_rows
from runfiles.layout import STUDY_NAME, RunDir, State
from search import run as search_run

from conftest import SAMPLE, TINY

SMALL = ["--data", str(SAMPLE), "--cpus", "2", *TINY]


def study_of(out):
    return optuna.load_study(study_name=STUDY_NAME, storage=RunDir(out).study_url)


def faults(*planned: dict) -> dict:
    return {"BILSTM_FAULTS": json.dumps(list(planned))}


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory):
    """6 trials: trial 2 raises on every attempt, trial 3 raises once at epoch 2, trial 4 diverges."""
    out = tmp_path_factory.mktemp("faulty") / "run"
    env = faults(
        {"trial": 2, "epoch": 1, "fault": "raise"},
        {"trial": 3, "epoch": 2, "fault": "raise", "once": True},
        {"trial": 4, "epoch": 1, "fault": "nan"},
    )
    args = [*SMALL, "--trials", "6", "--max-epochs", "3", "--grace-period", "2", "--max-failures", "1", "--out", str(out)]
    env["BILSTM_FAULTS_STATE"] = str(out.parent)
    done = subprocess.run(
        [sys.executable, "-m", "search.run", *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_a_trial_that_always_raises_is_retried_then_errored_and_the_search_goes_on(faulty_run):
    rows = {r["number"]: r for r in read_rows(RunDir(faulty_run).trials_csv)}
    errored = rows["2"]
    assert errored["state"] == State.ERRORED and errored["val_accuracy"] == ""
    assert "injected fault: trial 2 raises at epoch 1" in errored["reason"] and "(log: tune/trial_0002_" in errored["reason"]
    assert len(rows) == 6 and rows["5"]["state"] in (State.COMPLETED, State.STOPPED_EARLY)
    assert study_of(faulty_run).trials[2].state == optuna.trial.TrialState.FAIL
    report = (RunDir(faulty_run).report / "index.html").read_text()
    assert "injected fault: trial 2 raises at epoch 1" in report


def test_a_trial_that_raises_once_continues_from_its_checkpoint(faulty_run):
    rows = {r["number"]: r for r in read_rows(RunDir(faulty_run).trials_csv)}
    recovered = rows["3"]
    assert recovered["state"] in (State.COMPLETED, State.STOPPED_EARLY) and int(recovered["epochs"]) >= 2
    epochs = [int(e["epoch"]) for e in read_rows(RunDir(faulty_run).epochs_csv) if e["trial_id"] == "trial_0003"]
    assert epochs == list(range(1, int(recovered["epochs"]) + 1))  # epoch 1 was not trained again


def test_a_diverged_trial_is_failed_in_the_study_and_never_best(faulty_run):
    files = RunDir(faulty_run)
    rows = {r["number"]: r for r in read_rows(files.trials_csv)}
    diverged = rows["4"]
    assert diverged["state"] == State.DIVERGED and diverged["reason"] == "diverged at epoch 1: training loss is nan"
    assert diverged["val_accuracy"] == ""
    results = list(files.tune.glob("trial_0004_*/result.json"))
    assert results
    for result in results:  # strict JSON, as jq reads it: no bare NaN
        for line in result.read_text().splitlines():
            json.loads(line, parse_constant=_not_json)
    study = study_of(faulty_run)
    assert study.trials[4].state == optuna.trial.TrialState.FAIL
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
    summary = read_json(files.summary_json)
    assert summary["best"]["number"] not in (2, 4) and summary["best"]["number"] == study.best_trial.number
    assert summary["counts"]["diverged"] == 1 and summary["counts"]["errored"] == 1


def test_a_trial_killed_by_rays_memory_monitor_is_retried_then_errored_and_the_search_goes_on(tmp_path):
    """Ray's memory monitor kills the worker of trial 0 for real, on every attempt; the driver lives on."""
    import psutil

    memory = psutil.virtual_memory()  # Ray kills past a share of the node's memory: 6 GiB above its use now
    threshold = min(0.9, (memory.total - memory.available + 6 * 2**30) / memory.total)
    out = tmp_path / "run"
    env = faults({"trial": 0, "epoch": 1, "fault": "memory"}) | {"RAY_memory_usage_threshold": f"{threshold:.3f}"}
    args = ["--data", str(SAMPLE), "--cpus", "1", *TINY, "--trials", "2", "--max-epochs", "1", "--max-failures", "1"]
    done = subprocess.run(
        [sys.executable, "-m", "search.run", *args, "--out", str(out)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    rows = {r["number"]: r for r in read_rows(RunDir(out).trials_csv)}
    assert rows["0"]["state"] == State.ERRORED and rows["0"]["reason"].startswith("Ray killed the trial's worker for memory")
    assert "\n" not in rows["0"]["reason"] and rows["1"]["state"] == State.COMPLETED
    errors = (RunDir(out).tune / next(p.name for p in RunDir(out).tune.glob("trial_0000_*")) / "error.txt").read_text()
    assert errors.count("Ray killed the trial's worker for memory") == 2  # the first attempt, then its retry
    assert (RunDir(out).best_model / "model.keras").is_file()


def _not_json(name: str):
    raise ValueError(f"{name} is not JSON")


def test_when_every_trial_diverges_nothing_is_exported(tmp_path):
    out = tmp_path / "run"
    env = faults(*({"trial": n, "epoch": 1, "fault": "nan"} for n in range(2)))
    done = subprocess.run(
        [sys.executable, "-m", "search.run", *SMALL, "--trials", "2", "--max-epochs", "2", "--out", str(out)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 1 and errors == [
        "error: every trial diverged (its loss became NaN or infinite); try a lower --fix learning_rate=..."
    ]
    assert not RunDir(out).best_model.exists()
    assert {r["state"] for r in read_rows(RunDir(out).trials_csv)} == {State.DIVERGED}
    summary = read_json(RunDir(out).summary_json)  # the run ended: it reads as finished, with nothing exported
    assert summary["finished"] is True and summary.get("best") is None and summary.get("exported") is None
    page = (RunDir(out).report / "index.html").read_text()
    assert "Finished run: 2 trials (2 diverged)" in page and "no model was exported" in page and "in progress" not in page


# ---------------------------------------------------------------- a driver killed at any moment


def _kill_when(process, ready, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        if ready():
            process.send_signal(signal.SIGKILL)
            return process.wait(timeout=60)
        time.sleep(0.05)
    raise AssertionError(f"the moment to kill never came (exit {process.poll()})")


def _running_without_epochs(out):
    return any(r["state"] == State.RUNNING for r in read_rows(RunDir(out).trials_csv)) and not RunDir(out).epochs_csv.exists()


def _first_epoch_reported(out):
    return RunDir(out).epochs_csv.exists()


def _exporting(out):
    return any(p.name.startswith(".best_model-") for p in out.iterdir()) if out.exists() else False


@pytest.mark.parametrize(
    "moment",
    [_running_without_epochs, _first_epoch_reported, _exporting],
    ids=["before-the-first-result", "mid-trial", "during-export"],
)
def test_a_killed_driver_resumes_to_a_finished_run_with_every_trial_once(tmp_path, moment):
    out = tmp_path / "run"
    # 3 trials on 2 CPUs: two run while the third waits in the queue, at each moment of the kill
    args = [*SMALL, "--trials", "3", "--max-epochs", "2", "--seed", "1", "--out", "run"]  # relative, as users type it
    env = {**os.environ, **faults({"point": "export", "fault": "pause", "seconds": 30})}
    driver = subprocess.Popen(
        [sys.executable, "-m", "search.run", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert _kill_when(driver, lambda: moment(out)) == -signal.SIGKILL
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # Ray's processes, orphaned by the kill
    finished_before = {r["trial_id"]: r for r in read_rows(RunDir(out).trials_csv) if State(r["state"]).ended}

    resume = [sys.executable, "-m", "search.run", *args, "--resume"]
    done = subprocess.run(resume, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_rows(RunDir(out).trials_csv)
    assert [r["number"] for r in rows] == ["0", "1", "2"] and all(State(r["state"]).ended for r in rows)
    for row in rows:
        if row["trial_id"] in finished_before:
            assert row == finished_before[row["trial_id"]]  # kept, identical
    study = study_of(out)
    assert len(study.trials) == 3
    assert not [t for t in study.trials if t.state in (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)]
    assert len({json.dumps(t.params, sort_keys=True) for t in study.trials}) == 3  # no configuration trained twice
    summary = read_json(RunDir(out).summary_json)
    assert summary["counts"]["total"] == 3 and (RunDir(out).best_model / "model.keras").is_file()


# ---------------------------------------------------------------- budgets and resumes


def test_a_time_budget_ends_the_search_exports_and_a_resume_keeps_the_export(tmp_path):
    out = tmp_path / "run"
    # more trials than any machine trains in 45 s, so the time budget, not the trial count, ends the run
    args = [*SMALL, "--trials", "500", "--max-epochs", "3", "--time-budget", "0.75", "--out", str(out)]
    assert search_run.main(args) == 0
    trials = read_rows(RunDir(out).trials_csv)
    assert len(trials) < 500 and all(t["state"] in (State.COMPLETED, State.STOPPED_EARLY) for t in trials)
    assert any(t["reason"].startswith("time budget ran out") for t in trials)
    assert read_json(RunDir(out).summary_json)["counts"]["total"] == len(trials)
    assert (RunDir(out).best_model / "model.keras").is_file()
    assert not [t for t in study_of(out).trials if t.state == optuna.trial.TrialState.RUNNING]
    card = (RunDir(out).best_model / "card.json").stat().st_mtime_ns  # exported, though the budget cut the search

    done = subprocess.run([sys.executable, "-m", "search.run", *args, "--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0
    assert "the run's budget is spent: nothing left to train" in done.stdout
    assert (RunDir(out).best_model / "card.json").stat().st_mtime_ns == card  # the test split is not evaluated again
    assert not [t for t in study_of(out).trials if t.state == optuna.trial.TrialState.RUNNING]


def test_a_time_budget_too_short_for_any_epoch_says_so(tmp_path, capsys):
    out = tmp_path / "run"
    assert search_run.main([*SMALL, "--trials", "2", "--max-epochs", "2", "--time-budget", "0.001", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "error: no trial finished an epoch within the time budget; raise --time-budget"
    assert not [t for t in study_of(out).trials if t.state == optuna.trial.TrialState.RUNNING]
