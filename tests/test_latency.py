"""--max-latency-ms: each trial's inference latency, a search constrained by it, the report's view.

python -m pytest -q tests/test_latency.py
"""

import numpy as np
import optuna

from runfiles.io import read_json, read_rows
from runfiles.layout import NUMBER, STUDY_NAME, RunDir, State
from search import run as search_run
from search.scheduler import LatencyLimit

from conftest import SAMPLE

# units and depth searched (TINY would pin units): the families differ in latency.
FIXES = ["--fix", "embedding_dim=16", "--fix", "max_len=128", "--fix", "vocab_size=2000", "--no-benchmark"]
ARGS = ["--data", str(SAMPLE), "--trials", "4", "--startup-trials", "10", "--cpus", "1", *FIXES]


def test_a_latency_limit_makes_slower_trials_infeasible_and_never_exported(tmp_path, capsys):
    # A limit no network meets: one line at the end, exit 1, nothing exported; every latency recorded.
    impossible = tmp_path / "impossible"
    assert search_run.main([*ARGS, "--max-epochs", "1", "--max-latency-ms", "0.000001", "--out", str(impossible)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: no trial met --max-latency-ms 1e-06 (the fastest took ")
    assert not RunDir(impossible).best_model.exists()
    rows = read_rows(RunDir(impossible).trials_csv)
    latencies = {r["trial_id"]: float(r["latency_ms"]) for r in rows}
    assert all(v > 0 for v in latencies.values()) and all(r["feasible"] == "no" for r in rows)
    epochs = read_rows(RunDir(impossible).epochs_csv)
    assert all(float(e["latency_ms"]) > 0 for e in epochs)

    # The same first configurations (same seed, all sampled at random), of up to 2 epochs, under a
    # limit between the fastest and the slowest: the slower ones are infeasible, stopped after the
    # epoch that measured them, for the table, the study and the export. (Latencies are re-measured;
    # on a busy machine they shift, so each row is judged by its own.)
    limit = float(f"{np.sqrt(min(latencies.values()) * max(latencies.values())):.4f}")
    out = tmp_path / "run"
    code = search_run.main([*ARGS, "--max-epochs", "2", "--max-latency-ms", str(limit), "--out", str(out)])
    files = RunDir(out)
    rows = read_rows(files.trials_csv)
    for row in rows:
        assert row["feasible"] == ("yes" if float(row["latency_ms"]) <= limit else "no")
        if row["feasible"] == "no" and int(row["epochs"]) < 2:  # at its last epoch it ends by itself
            assert State(row["state"]) == State.STOPPED_EARLY
            assert row["reason"].startswith(f"over --max-latency-ms {limit:g} after epoch 1: ")
        if row["reason"].startswith("over --max-latency-ms"):
            assert row["feasible"] == "no"
    feasible = [r for r in rows if r["feasible"] == "yes"]
    assert code == (0 if feasible else 1) and files.best_model.exists() == bool(feasible)
    study = optuna.load_study(study_name=STUDY_NAME, storage=files.study_url)
    for trial in study.trials:
        row = next(r for r in rows if int(r["number"]) == trial.number)
        assert trial.user_attrs["latency_ms"] == float(row["latency_ms"])
        if State(row["state"]) in (State.COMPLETED, State.STOPPED_EARLY):  # Optuna's constraints as stored
            assert (trial.system_attrs["constraints"][0] <= 0) == (row["feasible"] == "yes")
    if feasible:
        exported = read_json(files.summary_json)["best"]["trial_id"]
        assert exported in {r["trial_id"] for r in feasible}
        report = (files.report / "index.html").read_text()
        assert '<img src="latency.png"' in report
        assert len(feasible) == len(rows) or ("infeasible" in report and "(over the limit)" in report)

    # Bad input: a limit that is not positive.
    assert search_run.main([*ARGS, "--max-latency-ms", "0", "--out", str(tmp_path / "bad")]) == 2
    assert "--max-latency-ms 0.0 is invalid: expected milliseconds > 0" in capsys.readouterr().err


def test_a_trial_measured_over_the_limit_stops_there_and_sets_no_cut_off():
    from types import SimpleNamespace

    from search.scheduler import Ledger, StoppingScheduler

    ledger = Ledger(examples_per_epoch=100)
    scheduler = StoppingScheduler(ledger, max_epochs=3, grace_period=1, max_latency_ms=2.0)
    trials = {name: SimpleNamespace(trial_id=name, config={NUMBER: number}) for number, name in enumerate("abcd")}
    for trial in trials.values():
        scheduler.on_trial_add(None, trial)

    def report(name: str, epoch: int, value: float, latency: float) -> str:
        result = {"epoch": epoch, "val_accuracy": value, "examples": 100, "latency_ms": latency}
        return scheduler.on_trial_result(None, trials[name], result)

    # The best value, over the limit: stopped after its first epoch, said why, in no rung.
    assert report("a", 1, 0.9, 2.5) == "STOP"
    assert ledger.reasons["a"] == "over --max-latency-ms 2 after epoch 1: 2.50 ms per review"
    scheduler.on_trial_complete(None, trials["a"], {"epoch": 1, "val_accuracy": 0.9, "latency_ms": 2.5})
    # Three feasible trials reach rung 1; a's 0.9 is not among them, so the best of these goes on.
    assert [report(name, 1, value, 1.0) for name, value in zip("bcd", (0.6, 0.7, 0.8), strict=True)] == ["CONTINUE"] * 3
    assert [report(name, 2, 0.85, 1.0) for name in "bcd"] == ["STOP", "STOP", "CONTINUE"]

    # Judged on the median of its epochs so far, as trials.csv and the study judge it.
    scheduler = StoppingScheduler(Ledger(examples_per_epoch=100), max_epochs=3, grace_period=1, max_latency_ms=2.0)
    ledger = scheduler.ledger
    for trial in trials.values():
        scheduler.on_trial_add(None, trial)
    # Under the limit at epoch 1 (so in rung 1), over it by median at epoch 2: stopped, out of the rung.
    assert report("a", 1, 0.9, 1.5) == "CONTINUE"
    assert report("a", 2, 0.9, 2.6) == "STOP"
    assert ledger.reasons["a"] == "over --max-latency-ms 2 after epoch 2: 2.05 ms per review"
    scheduler.on_trial_complete(None, trials["a"], {"epoch": 2, "val_accuracy": 0.9, "latency_ms": 2.6})
    assert report("b", 1, 0.5, 1.0) == "CONTINUE"  # a's 0.9 would have made the cut-off 0.77
    # Over by median only at its last epoch: nothing left to save, it ends by itself.
    assert [report("c", epoch, 0.95, latency) for epoch, latency in ((1, 1.0), (2, 2.9), (3, 2.5))] == ["CONTINUE"] * 3
    assert "c" not in ledger.reasons and scheduler.infeasible == {"trial_0002"}  # c, by its study trial's id
    scheduler.on_trial_complete(None, trials["c"], {"epoch": 3, "val_accuracy": 0.95, "latency_ms": 2.5})
    assert not scheduler.infeasible and set(scheduler.latency._values) == {"b"}  # ended trials' records dropped


def test_a_scheduler_saved_before_median_latency_restores_its_record(tmp_path):
    import pickle

    from search.scheduler import Ledger, StoppingScheduler

    scheduler = StoppingScheduler(Ledger(examples_per_epoch=100), max_epochs=3, grace_period=1, max_latency_ms=2.0)
    state = {k: v for k, v in scheduler.__dict__.items() if k not in ("ledger", "latency", "limit")}
    old = {**state, "latencies": {"a": [1.0, 3.0]}, "max_latency_ms": 1.5}  # as saved before MedianLatency, LatencyLimit
    (tmp_path / "scheduler.pkl").write_bytes(pickle.dumps(old))

    scheduler.restore(str(tmp_path / "scheduler.pkl"))

    assert not hasattr(scheduler, "latencies") and not hasattr(scheduler, "max_latency_ms")
    assert scheduler.latency.add("a", 2.5) == 2.5 and scheduler.latency.add("b", None) is None
    assert scheduler.limit == LatencyLimit(1.5)


def test_a_network_at_the_limit_is_feasible_for_the_scheduler_the_study_and_the_table():
    from types import SimpleNamespace

    from search.scheduler import Ledger, StoppingScheduler
    from search.tracking import summarize

    limit = 2.0
    scheduler = StoppingScheduler(Ledger(examples_per_epoch=100), max_epochs=3, grace_period=1, max_latency_ms=limit)
    trial = SimpleNamespace(trial_id="a", config={NUMBER: 0})
    scheduler.on_trial_add(None, trial)
    epoch = {"epoch": 1, "val_accuracy": 0.8, "examples": 100, "latency_ms": limit}
    assert scheduler.on_trial_result(None, trial, epoch) == "CONTINUE" and not scheduler.infeasible
    stored = SimpleNamespace(user_attrs={"latency_ms": limit})
    assert LatencyLimit(limit)(stored) == [0.0]  # Optuna: feasible at 0 or below
    row = {"train_accuracy": 0.8, "examples_per_s": 1, "tokens_per_s": 1, "epoch_s": 1}
    assert summarize([{**row, **epoch}], max_latency_ms=limit)["feasible"] == "yes"
    # A hair over (the median of limit and limit + 2e-6): infeasible for all three.
    assert scheduler.on_trial_result(None, trial, {**epoch, "epoch": 2, "latency_ms": limit + 2e-6}) == "STOP"
    assert LatencyLimit(limit)(SimpleNamespace(user_attrs={"latency_ms": limit + 1e-6}))[0] > 0
    assert summarize([{**row, **epoch, "latency_ms": limit + 1e-6}], max_latency_ms=limit)["feasible"] == "no"


def test_a_sampler_saved_with_the_searchers_latency_limit_loads():
    import pickle

    from search.searcher import new_sampler

    saved = pickle.dumps(new_sampler(0, 10, 1.5), protocol=0)  # as an earlier version named the class
    assert b"search.scheduler\nLatencyLimit" in saved
    sampler = pickle.loads(saved.replace(b"search.scheduler\nLatencyLimit", b"search.searcher\nLatencyLimit"))
    assert sampler.tpe._constraints_func == LatencyLimit(1.5)
