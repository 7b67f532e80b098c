"""Warm start from earlier runs (search.warm) and continuing a finished run, on the sample's real run."""

import dataclasses
import json
import shutil

import optuna
import pytest

from runfiles.documents import RunFacts
from runfiles.io import read_json, read_rows, write_json
from runfiles.layout import ADDED, ORIGIN, RunDir, rank_key
from search import run as search_run
from search import warm
from search.config import REDUCTION_FACTOR
from search.scheduler import Ledger, StoppingScheduler
from search.searcher import new_sampler, open_study, started_trials
from search.space import narrowed, optuna_space

from conftest import SAMPLE, TINY, snapshot


def _checked(run_dir) -> tuple[RunFacts, list[warm.WarmRun]]:
    facts = RunFacts.read(RunDir(run_dir))
    return facts, warm.check_runs([run_dir], facts.fingerprint, facts.ranking)


def test_an_earlier_runs_trials_inform_tpes_first_proposal_and_asha_s_rungs(real_run, tmp_path):
    facts, runs = _checked(real_run)
    assert runs[0].takes_trials
    space = tuple(facts.params)
    plan = warm.plan(runs, space)
    earlier = open_study(RunDir(real_run)).trials
    assert len(plan.trials) == len(earlier) == plan.sources[0].kept and plan.sources[0].dropped == 0
    assert [t.params for t in plan.trials] == [t.params for t in earlier]
    assert [t.intermediate_values for t in plan.trials] == [t.intermediate_values for t in earlier]

    new = RunDir(tmp_path / "new")
    new.root.mkdir()
    warm.seed_study(new, plan, facts.ranking)
    study = open_study(new)
    assert started_trials(study) == 0  # never counted against the new run's trials
    assert {t.user_attrs[ORIGIN] for t in study.trials} == {f"{real_run.resolve()}/trial_000{i}" for i in range(len(earlier))}

    distributions = optuna_space(space)
    warm_study = optuna.load_study(study_name=facts.study, storage=new.study_url, sampler=new_sampler(0, 2))
    cold_study = optuna.create_study(direction="maximize", sampler=new_sampler(0, 2))
    assert warm_study.ask(distributions).params != cold_study.ask(distributions).params

    scheduler = StoppingScheduler(Ledger(192), max_epochs=3, grace_period=1, objective=facts.ranking)
    assert warm.seed_rungs(scheduler, plan.trials, facts.ranking) == sum(
        1 for t in earlier if t.state != optuna.trial.TrialState.FAIL for e in (1, REDUCTION_FACTOR) if e in t.intermediate_values
    )


def test_another_space_drops_what_lies_outside_and_fills_what_the_earlier_run_lacks(real_run):
    facts, runs = _checked(real_run)
    batch = open_study(RunDir(real_run)).trials[3].params["batch_size"]
    space = narrowed(tuple(facts.params), {"batch_size": batch})
    plan = warm.plan(runs, space)
    others = sum(1 for t in open_study(RunDir(real_run)).trials if t.params["batch_size"] != batch)
    assert others and plan.sources[0].dropped == others and plan.sources[0].kept == len(plan.trials)
    assert {t.params["batch_size"] for t in plan.trials} == {batch}
    lacking = {k: v for k, v in plan.trials[0].params.items() if k != "dropout"}
    assert warm.moved(lacking, space, {"dropout": 0.25})["dropout"] == 0.25
    assert warm.moved(lacking, space, {}) is None  # nothing fills the gap


def test_a_warm_start_adds_same_data_trials_queues_other_data_configurations_and_continues(real_run, tmp_path, capsys):
    other = tmp_path / "other"  # the same run, read as a run on other data: its data fingerprint differs
    shutil.copytree(real_run, other, ignore=shutil.ignore_patterns("tune"))
    facts = read_json(RunDir(other).run_json)
    facts["data"]["fingerprint"] = "0" * 16
    write_json(RunDir(other).run_json, facts)
    out = tmp_path / "run"
    args = ["--data", str(SAMPLE), "--cpus", "2", *TINY, "--budget-examples", str(4 * 192), "--startup-trials", "2"]
    args += ["--out", str(out)]
    warm_args = [*args, "--warm-start", str(real_run), str(other), "--warm-start-top", "2"]
    assert search_run.main(warm_args) == 0
    printed = capsys.readouterr().out
    assert f"{real_run.resolve()}: 6 trials added to the study" in printed
    assert f"{other.resolve()}: 2 configurations queued first (other data" in printed

    recorded = RunFacts.read(RunDir(out))
    assert [(s.taken, s.kept, s.dropped) for s in recorded.warm_start] == [("trials", 6, 0), ("configurations", 2, 0)]
    rows = read_rows(RunDir(out).trials_csv)
    assert len(rows) == 4  # the budget's 4 epochs; the added trials are neither trained nor counted
    earlier = sorted(read_rows(RunDir(real_run).trials_csv), key=lambda r: rank_key(r))[:2]
    assert [r[ORIGIN] for r in rows[:2]] == [f"{other.resolve()}/{r['trial_id']}" for r in earlier]
    study = open_study(RunDir(out))
    added = [t for t in study.trials if t.user_attrs.get(ADDED)]
    assert len(added) == 6 and {int(r["number"]) for r in rows}.isdisjoint(t.number for t in added)
    added_params = [json.dumps(t.params, sort_keys=True) for t in added]
    sampled = [study.trials[int(r["number"])].params for r in rows if not r[ORIGIN]]
    assert sampled and not [p for p in sampled if json.dumps(p, sort_keys=True) in added_params]  # no trial re-run
    summary = read_json(RunDir(out).summary_json)
    assert summary["best"]["trial_id"] in {r["trial_id"] for r in rows}  # exported only what this run trained
    assert "origin" in (RunDir(out).report / "index.html").read_text()

    before = snapshot(out)
    assert search_run.main([*args, "--resume", "--budget-examples", str(3 * 192)]) == 2
    assert capsys.readouterr().err.strip().startswith("error: --resume: --budget-examples 576 is smaller than the run's 768")
    assert snapshot(out) == before
    assert search_run.main([*args, "--resume", "--budget-examples", str(6 * 192)]) == 0
    rows = read_rows(RunDir(out).trials_csv)
    assert len(rows) == 6 and started_trials(open_study(RunDir(out))) == 6
    search = RunFacts.read(RunDir(out)).search_config
    assert search["budget_examples"] == 6 * 192 and search["trials"] == 30  # 20 planned, x 1.5
    assert len(RunFacts.read(RunDir(out)).warm_start) == 2 and len(RunFacts.read(RunDir(out)).sessions) == 2


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--warm-start", "NOT_A_RUN"], "error: --warm-start {tmp}/not_a_run: not a run (no run.json and study.db)"),
        (["--warm-start-top", "2"], "error: --warm-start-top 2: it counts what --warm-start RUN queues; add --warm-start"),
        (["--warm-start", "REAL", "--warm-start-top", "0"], "error: --warm-start-top 0 is invalid: expected an integer >= 1"),
    ],
)
def test_bad_warm_start_input_is_one_line_and_writes_nothing(real_run, tmp_path, capsys, extra, message):
    (tmp_path / "not_a_run").mkdir()
    extra = [{"NOT_A_RUN": str(tmp_path / "not_a_run"), "REAL": str(real_run)}.get(a, a) for a in extra]
    before = snapshot(tmp_path)
    assert search_run.main(["--data", str(SAMPLE), *TINY, "--out", str(tmp_path / "run"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message.format(tmp=tmp_path)) and err.count("\n") == 1, err
    assert snapshot(tmp_path) == before


def test_a_run_a_live_driver_holds_is_refused(run_copy, tmp_path, capsys):
    from runfiles.lock import holding

    with holding(RunDir(run_copy), "python -m search.run --out elsewhere"):
        assert search_run.main(["--data", str(SAMPLE), *TINY, "--out", str(tmp_path / "new"), "--warm-start", str(run_copy)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --warm-start {run_copy}: another command is writing into this run") and err.count("\n") == 1
    assert not (tmp_path / "new").exists()


def test_other_data_hands_on_its_certified_configurations_first_then_by_rank(run_copy):
    from runfiles.documents import Certification, CertifiedConfig, Summary

    files = RunDir(run_copy)
    facts = RunFacts.read(files)
    ranked = [r["trial_id"] for r in sorted(read_rows(files.trials_csv), key=lambda r: rank_key(r)) if rank_key(r)[0] == 0]
    summary = Summary.read(files)
    summary.certification = Certification(configurations=[CertifiedConfig(trial_id=ranked[3])], exported=ranked[3])
    summary.write(files)
    runs = warm.check_runs([run_copy], "0" * 16, facts.ranking)  # this run's data is other data
    assert runs[0].why_configurations.startswith("other data (fingerprint ")
    queued = warm.plan(runs, tuple(facts.params), top=2).queued
    assert [origin for _, origin in queued] == [f"{run_copy.resolve()}/{ranked[3]}", f"{run_copy.resolve()}/{ranked[0]}"]


def test_a_source_with_another_objective_hands_on_configurations_only(real_run):
    facts = RunFacts.read(RunDir(real_run))
    loss = dataclasses.replace(facts.ranking, metric="val_loss", mode="min")
    runs = warm.check_runs([real_run], facts.fingerprint, loss)
    assert not runs[0].takes_trials and runs[0].why_configurations == "ranked by val_accuracy, here by val_loss"
