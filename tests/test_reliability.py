"""Runs that go wrong, for real: trials that raise or diverge, drivers killed at any moment, budgets spent.

    python -m pytest -q tests/test_reliability.py

Faults are injected through BILSTM_FAULTS (search/faults.py), which the trainable reads:
the trials really raise, really train on NaN weights, the driver really dies by SIGKILL.
"""

import contextlib
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
"""A search on the sample, two trials at a time."""
ONE_AT_A_TIME = ["--data", str(SAMPLE), "--cpus", "1", *TINY]
"""A search on the sample, one trial at a time (one worker: where no check needs two side by side)."""


def study_of(out):
    return optuna.load_study(study_name=STUDY_NAME, storage=RunDir(out).study_url)


def faults(*planned: dict) -> dict:
    return {"BILSTM_FAULTS": json.dumps(list(planned))}


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory):
    """6 trials, one at a time: Ray's memory monitor kills trial 0's worker on every attempt, trial 2 raises on
    every attempt, trial 3 raises once at epoch 2, trial 4 diverges; 1 and 5 train as usual. The driver's
    stderr is kept in driver.err beside the run."""
    import psutil

    out = tmp_path_factory.mktemp("faulty") / "run"
    memory = psutil.virtual_memory()  # Ray kills past a share of the node's memory: 6 GiB above its use now
    threshold = min(0.9, (memory.total - memory.available + 6 * 2**30) / memory.total)
    env = faults(
        {"trial": 0, "epoch": 1, "fault": "memory"},
        {"trial": 2, "epoch": 1, "fault": "raise"},
        {"trial": 3, "epoch": 2, "fault": "raise", "once": True},
        {"trial": 4, "epoch": 1, "fault": "nan"},
    )
    env |= {"RAY_memory_usage_threshold": f"{threshold:.3f}", "BILSTM_FAULTS_STATE": str(out.parent)}
    args = [*ONE_AT_A_TIME, "--trials", "6", "--max-epochs", "2", "--grace-period", "2", "--max-failures", "1", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "search.run", *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=900
    )
    (out.parent / "driver.err").write_text(done.stderr)
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
    assert summary["best"]["number"] not in (0, 2, 4) and summary["best"]["number"] == study.best_trial.number
    assert summary["counts"]["diverged"] == 1 and summary["counts"]["errored"] == 2


def test_a_trial_killed_by_rays_memory_monitor_is_retried_then_errored_and_the_search_goes_on(faulty_run):
    """Ray's memory monitor kills the worker of trial 0 for real, on every attempt; the driver lives on."""
    files = RunDir(faulty_run)
    assert "Traceback" not in (faulty_run.parent / "driver.err").read_text()
    rows = {r["number"]: r for r in read_rows(files.trials_csv)}
    assert rows["0"]["state"] == State.ERRORED and rows["0"]["reason"].startswith("Ray killed the trial's worker for memory")
    assert "\n" not in rows["0"]["reason"] and rows["1"]["state"] == State.COMPLETED
    errors = (next(files.tune.glob("trial_0000_*")) / "error.txt").read_text()
    assert errors.count("Ray killed the trial's worker for memory") == 2  # the first attempt, then its retry
    assert study_of(faulty_run).trials[0].state == optuna.trial.TrialState.FAIL
    assert (files.best_model / "model.keras").is_file()


def _not_json(name: str):
    raise ValueError(f"{name} is not JSON")


def test_when_every_trial_diverges_nothing_is_exported(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    for name, value in faults(*({"trial": n, "epoch": 1, "fault": "nan"} for n in range(2))).items():
        monkeypatch.setenv(name, value)
    assert search_run.main([*ONE_AT_A_TIME, "--trials", "2", "--max-epochs", "1", "--out", str(out)]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert errors == ["error: every trial diverged (its loss became NaN or infinite); try a lower --fix learning_rate=..."]
    assert not RunDir(out).best_model.exists()
    assert {r["state"] for r in read_rows(RunDir(out).trials_csv)} == {State.DIVERGED}
    summary = read_json(RunDir(out).summary_json)  # the run ended: it reads as finished, with nothing exported
    assert summary["finished"] is True and summary.get("best") is None and summary.get("exported") is None
    page = (RunDir(out).report / "index.html").read_text()
    assert "Finished run: 2 trials (2 diverged)" in page and "no model was exported" in page and "in progress" not in page


# ---------------------------------------------------------------- one run, stopped at every moment


def _stop_when(process, ready, sig=signal.SIGKILL, timeout=300, log=None):
    """Send `sig` to the driver once `ready()`; its exit code (`log`: its stderr, quoted when the moment never comes)."""
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        if ready():
            process.send_signal(sig)
            return process.wait(timeout=120)
        time.sleep(0.05)
    said = log.read_text()[-3000:] if log else ""
    raise AssertionError(f"the moment to stop never came (exit {process.poll()}){said and ': '}{said}")


def _running_without_epochs(out):
    return any(r["state"] == State.RUNNING for r in read_rows(RunDir(out).trials_csv)) and not RunDir(out).epochs_csv.exists()


def _epoch_reported(out):
    return RunDir(out).epochs_csv.exists()


def _reported_and_running(number):
    """Trial `number` has reported an epoch (in this session: it had none) and still runs."""

    def ready(out):
        key = f"trial_{number:04d}"
        running = any(r["trial_id"] == key and r["state"] == State.RUNNING for r in read_rows(RunDir(out).trials_csv))
        return running and any(e["trial_id"] == key for e in read_rows(RunDir(out).epochs_csv))

    return ready


def _exporting(out):
    return any(p.name.startswith(".best_model-") for p in out.iterdir())


def _pause(trial, epoch):
    return {"trial": trial, "epoch": epoch, "fault": "pause", "seconds": 120}


STOPS = [  # (what stops the driver, when, the faults that hold it at that moment, the exit code it gives)
    (signal.SIGKILL, _running_without_epochs, [_pause("*", 1)], -signal.SIGKILL),  # before the first result
    (signal.SIGTERM, _epoch_reported, [_pause("*", 2)], 130),  # as Ctrl-C: an epoch reported, 0 and 1 held before epoch 2
    (signal.SIGKILL, _reported_and_running(2), [_pause(2, 2)], -signal.SIGKILL),  # mid-trial: 0 or 1 ended, 2 after epoch 1
    (signal.SIGKILL, _exporting, [{"point": "export", "fault": "pause", "seconds": 120}], -signal.SIGKILL),  # during the export
]
"""The moments a driver of the chain's run is stopped at, in order; each resumed by a new driver.
Pause faults hold the run at each moment (the driver is stopped during the pause), so each is reached
on any machine: 3 trials on 2 CPUs, 2 epochs each (no trial stopped early), the third queued."""


def _drive(tmp_path, args, sig, ready, planned):
    """One driver of the chain (a process group of its own), stopped by `sig` once `ready(out)`; its exit code."""
    log = tmp_path / "driver.err"
    with log.open("w") as stderr:
        driver = subprocess.Popen(
            [sys.executable, "-m", "search.run", *args],
            cwd=tmp_path,
            env={**os.environ, **faults(*planned)},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        return _stop_when(driver, lambda: ready(tmp_path / "run"), sig, log=log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)  # Ray's processes, orphaned by a kill


def test_a_driver_stopped_at_every_moment_resumes_to_a_finished_run_with_every_trial_once(tmp_path, monkeypatch):
    """One run, stopped four times and resumed by a new driver each time: SIGKILL before the first
    result, SIGTERM (handled as Ctrl-C), SIGKILL mid-trial, SIGKILL during the export; then resumed to its end."""
    out = tmp_path / "run"
    args = [*SMALL, "--trials", "3", "--max-epochs", "2", "--grace-period", "2", "--seed", "1", "--out", "run"]  # relative
    ended, epochs = {}, []
    for number, (sig, ready, planned, code) in enumerate(STOPS):
        assert _drive(tmp_path, [*args, "--resume"] if number else args, sig, ready, planned) == code, ready.__name__
        rows = read_rows(RunDir(out).trials_csv)
        for row in rows:
            if row["trial_id"] in ended:
                assert row == ended[row["trial_id"]]  # an ended trial's row is kept, identical
        ended |= {r["trial_id"]: r for r in rows if State(r["state"]).ended}
        assert read_rows(RunDir(out).epochs_csv)[: len(epochs)] == epochs  # the first part is kept
        epochs = read_rows(RunDir(out).epochs_csv)
        if sig == signal.SIGTERM:  # what was recorded is kept, the run is not summarized as finished, the lock is freed
            assert epochs and not RunDir(out).summary_json.exists() and not RunDir(out).holder.exists()
    assert ended and epochs and not (RunDir(out).best_model / "model.keras").exists()  # the export was cut short

    monkeypatch.chdir(tmp_path)  # the last resume, in this process: no moment to stop it at
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    assert search_run.main([*args, "--resume"]) == 0
    # Ctrl-C and SIGTERM are handled after it as before it (Tune had left its own SIGINT handler, which
    # swallowed the next Ctrl-C or SIGTERM, during the export)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    rows = read_rows(RunDir(out).trials_csv)
    assert [r["number"] for r in rows] == ["0", "1", "2"]
    assert all(r["state"] in (State.COMPLETED, State.STOPPED_EARLY) for r in rows)  # every one ended, none failed
    assert all(row == ended[row["trial_id"]] for row in rows if row["trial_id"] in ended)
    assert read_rows(RunDir(out).epochs_csv)[: len(epochs)] == epochs
    study = study_of(out)
    assert len(study.trials) == 3
    assert not [t for t in study.trials if t.state in (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)]
    assert len({json.dumps(t.params, sort_keys=True) for t in study.trials}) == 3  # no configuration trained twice
    summary, sessions = read_json(RunDir(out).summary_json), read_json(RunDir(out).run_json)["sessions"]
    assert summary["counts"]["total"] == 3 and (RunDir(out).best_model / "model.keras").is_file()
    # a driver killed before its trials settled recorded no wall time; the others did, and the run's is their sum
    assert [s.get("wall_s") is not None for s in sessions] == [False, True, False, True, True]
    assert sessions[1]["wall_s"] > 0 and summary["wall_s"] == pytest.approx(sum(s.get("wall_s") or 0 for s in sessions))
    # a killed session's search time is taken from epochs.csv by the next resume: none before the first result
    assert sessions[0]["search_s"] == 0 and sessions[2]["search_s"] > 0 and all(s["search_s"] >= 0 for s in sessions)


def test_a_sigterm_while_ray_starts_stops_the_driver_as_ctrl_c():
    # ray.init sets a SIGTERM handler of its own (exit 15, no word said, until its end); the driver
    # takes SIGTERM there as Ctrl-C too, and stops the Ray it had started
    import threading

    import ray

    from runfiles.cli import sigterm_as_ctrl_c
    from search.config import SearchConfig
    from search.session import ray_session

    sigterm = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM))  # Ray takes several seconds to start
    with sigterm_as_ctrl_c(), pytest.raises(KeyboardInterrupt):
        sigterm.start()
        with ray_session(SearchConfig(cpus=1)):
            time.sleep(60)  # Ray started within a second: the SIGTERM lands here, as Ctrl-C all the same
    sigterm.join()
    assert not ray.is_initialized()


def test_a_sigterm_is_ctrl_c_also_where_sigint_is_ignored():
    # as in a driver a script started in the background, or nohup: SIGINT ignored
    from runfiles.cli import sigterm_as_ctrl_c

    ctrl_c = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with sigterm_as_ctrl_c(), pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
    finally:
        signal.signal(signal.SIGINT, ctrl_c)


# ---------------------------------------------------------------- budgets and resumes


def test_a_time_budget_ends_the_search_exports_and_a_resume_keeps_the_export(tmp_path, capsys):
    from runfiles.documents import RunFacts

    out = tmp_path / "run"
    # more trials than any machine trains in 30 s, so the time budget, not the trial count, ends the run
    args = [*ONE_AT_A_TIME, "--trials", "500", "--max-epochs", "3", "--time-budget", "0.5", "--out", str(out)]
    assert search_run.main(args) == 0
    trials = read_rows(RunDir(out).trials_csv)
    assert len(trials) < 500 and all(t["state"] in (State.COMPLETED, State.STOPPED_EARLY) for t in trials)
    assert any(t["reason"].startswith("time budget ran out") for t in trials)
    assert read_json(RunDir(out).summary_json)["counts"]["total"] == len(trials)
    assert RunFacts.read(RunDir(out)).search_s() >= 0.5 * 60  # the search time recorded is the budget's, at least
    assert (RunDir(out).best_model / "model.keras").is_file()
    assert not [t for t in study_of(out).trials if t.state == optuna.trial.TrialState.RUNNING]
    card = (RunDir(out).best_model / "card.json").stat().st_mtime_ns  # exported, though the budget cut the search
    said = capsys.readouterr().out  # every trial the budget ended has its line, and the search's end is told
    assert f"the time budget (0.5 min) ended the search: {len(trials)} of 500 trials started" in said
    assert all(f"{t['trial_id']}  " in said for t in trials if t["reason"].startswith("time budget ran out"))
    assert search_run.main([*args, "--resume"]) == 0
    said = capsys.readouterr().out
    assert "the run's budget is spent: nothing left to train" in said
    assert f"run         {out} (resumed: session 2; the run began " in said  # the header says it continues a run
    assert (RunDir(out).best_model / "card.json").stat().st_mtime_ns == card  # the test split is not evaluated again
    assert not [t for t in study_of(out).trials if t.state == optuna.trial.TrialState.RUNNING]


def test_a_time_budget_too_short_for_any_epoch_says_so(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        search_run.main([*ONE_AT_A_TIME, "--trials", "2", "--max-epochs", "2", "--time-budget", "0.001", "--out", str(out)]) == 1
    )
    said = capsys.readouterr()
    assert said.err.strip().splitlines()[-1] == "error: no trial finished an epoch within the time budget; raise --time-budget"
    assert "(time budget ran out before its first epoch ended)" in said.out  # not "after epoch 0"
    assert not [t for t in study_of(out).trials if t.state == optuna.trial.TrialState.RUNNING]
