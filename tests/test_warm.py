"""Warm start from earlier runs (search.warm) and continuing a finished run, on the sample's real run."""

import dataclasses
import json
import shutil
from pathlib import Path

import optuna
import pytest

from runfiles.cli import UsageError
from runfiles.documents import RunFacts
from runfiles.io import read_json, read_rows, write_json
from runfiles.layout import ADDED, OBJECTIVE, ORIGIN, STUDY_NAME, RunDir, rank_key
from runfiles.study import read_only_study
from search import run as search_run
from search import warm
from search.config import REDUCTION_FACTOR
from search.scheduler import Ledger, StoppingScheduler
from search.searcher import new_sampler, open_study, started_trials
from search.space import SPACE, WITH_VECTORS, narrowed, optuna_space, start_point

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
    other = tmp_path / "other"  # the same run, read as a run on other data (its data fingerprint differs), kept without study.db
    shutil.copytree(real_run, other, ignore=shutil.ignore_patterns("tune", "study.db"))
    facts = read_json(RunDir(other).run_json)
    facts["data"]["fingerprint"] = "0" * 16
    write_json(RunDir(other).run_json, facts)
    out = tmp_path / "run"
    args = ["--data", str(SAMPLE), "--cpus", "1", *TINY, "--budget-examples", str(3 * 192), "--startup-trials", "2"]
    args += ["--out", str(out)]
    warm_args = [*args, "--warm-start", str(real_run), str(other), "--warm-start-top", "2"]
    assert search_run.main(warm_args) == 0
    printed = capsys.readouterr().out
    assert f"{real_run.resolve()}: 6 trials added to the study" in printed
    assert f"{other.resolve()}: 2 configurations queued first (other data" in printed
    assert "the examples budget (576) ended the search: 3 of 20 trials started" in printed  # as the time budget's end is told

    recorded = RunFacts.read(RunDir(out))
    assert [(s.taken, s.kept, s.dropped) for s in recorded.warm_start] == [("trials", 6, 0), ("configurations", 2, 0)]
    rows = read_rows(RunDir(out).trials_csv)
    assert len(rows) == 3  # the budget's 3 epochs; the added trials are neither trained nor counted
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
    assert search_run.main([*args, "--resume", "--budget-examples", str(2 * 192)]) == 2
    assert capsys.readouterr().err.strip().startswith("error: --resume: --budget-examples 384 is smaller than the run's 576")
    assert snapshot(out) == before
    assert search_run.main([*args, "--resume", "--budget-examples", str(4 * 192)]) == 0
    rows = read_rows(RunDir(out).trials_csv)
    assert len(rows) == 4 and started_trials(open_study(RunDir(out))) == 4
    search = RunFacts.read(RunDir(out)).search_config
    assert search["budget_examples"] == 4 * 192 and search["trials"] == 27  # 20 planned, x 4/3, rounded up
    assert len(RunFacts.read(RunDir(out)).warm_start) == 2 and len(RunFacts.read(RunDir(out)).sessions) == 2


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--warm-start", "NOT_A_RUN"], "error: --warm-start {tmp}/not_a_run: not a run (no run.json beside a study.db or"),
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
    assert runs[0].why_configurations.startswith("other data: fingerprint ")
    queued = warm.plan(runs, tuple(facts.params), top=2).queued
    assert [origin for _, origin in queued] == [f"{run_copy.resolve()}/{ranked[3]}", f"{run_copy.resolve()}/{ranked[0]}"]


def test_a_run_kept_without_its_study_hands_on_its_configurations_as_its_study_held_them(real_run, tmp_path):
    kept = Path(shutil.copytree(real_run, tmp_path / "kept", ignore=shutil.ignore_patterns("tune", "study.db")))
    facts = RunFacts.read(RunDir(real_run))
    runs = warm.check_runs([kept], facts.fingerprint, facts.ranking)  # the same data: its trials cannot be added
    assert not runs[0].takes_trials and runs[0].why_configurations == warm.NO_STUDY
    plan = warm.plan(runs, tuple(facts.params), top=6)
    assert plan.trials == [] and plan.sources[0].why == warm.NO_STUDY and f"({warm.NO_STUDY})" in warm.origins_text(plan.sources)
    with_study = warm.plan(warm.check_runs([real_run], "0" * 16, facts.ranking), tuple(facts.params), top=6)
    assert len(plan.queued) == len(with_study.queued) == 6
    assert [p for p, _ in plan.queued] == [p for p, _ in with_study.queued]  # trials.csv's cells typed as the study held them
    trial_ids = [origin.rsplit("/", 1)[1] for _, origin in with_study.queued]
    assert [origin for _, origin in plan.queued] == [f"{kept.resolve()}/{tid}" for tid in trial_ids]


def test_the_recorded_reference_run_hands_on_its_certified_configurations_first(tmp_path):
    recorded = Path(__file__).parent / "data" / "recorded" / "reference"  # run.json, trials.csv, certify.csv, summary.json
    runs = warm.check_runs([recorded], "0" * 16, OBJECTIVE)
    space = tuple(p for p in SPACE if p.name not in WITH_VECTORS)  # a run without --embeddings
    plan = warm.plan(runs, space, top=4)
    summary = read_json(RunDir(recorded).summary_json)["certification"]
    certified = [c["trial_id"] for c in summary["configurations"]]
    assert certified[0] == summary["exported"]
    assert [origin.rsplit("/", 1)[1] for _, origin in plan.queued][:3] == certified
    assert plan.queued[2][0] == {**summary["configurations"][2]["params"], "ngram_buckets": start_point(space)["ngram_buckets"]}
    assert plan.sources[0].filled == ["ngram_buckets"]  # the recorded run predates the linear part
    copy = Path(shutil.copytree(recorded, tmp_path / "copy"))  # the same run given twice queues its configurations once
    twice = warm.plan(warm.check_runs([recorded, copy], "0" * 16, OBJECTIVE), space, top=4)
    assert twice.queued == plan.queued and [(s.kept, s.repeated) for s in twice.sources] == [(4, 0), (0, 4)]
    assert f"{copy.resolve()}: 0 configurations queued first (other data: fingerprint " in warm.origins_text(twice.sources)
    assert "; 4 left out as the same as an earlier run's" in warm.origins_text(twice.sources)


def test_a_source_with_another_objective_hands_on_configurations_only(real_run):
    facts = RunFacts.read(RunDir(real_run))
    loss = dataclasses.replace(facts.ranking, metric="val_loss", mode="min")
    runs = warm.check_runs([real_run], facts.fingerprint, loss)
    assert not runs[0].takes_trials and runs[0].why_configurations == "ranked by val_accuracy, here by val_loss"


# --- an earlier run that cannot be read: refused before data is prepared, and never written ---------


def _earlier_run(root, run_json: bytes | None = None, study_db: bytes = b"") -> RunDir:
    """An earlier run's folder: run.json (by default one recording what a warm start reads) and study.db."""
    from runfiles.documents import DataFacts

    files = RunDir(root)
    files.root.mkdir()
    if run_json is None:
        facts = RunFacts(space=[p.to_json() for p in SPACE], objective=OBJECTIVE, data=DataFacts(fingerprint="0" * 16))
        run_json = json.dumps(facts.to_json()).encode()
    files.run_json.write_bytes(run_json)
    files.study_db.write_bytes(study_db)
    return files


UNREADABLE_RUNS = {
    "empty run.json, empty study.db": (
        b"{}",
        b"",
        "{run_json} lacks an objective, the data's fingerprint, a space",
    ),
    "run.json not JSON": (b"not json{", b"", "{run_json} is not JSON (Expecting value: line 1 column 1 (char 0))"),
    "run.json a list": (b"[]", b"", "{run_json} is not a JSON object"),
    "run.json not UTF-8": (b"\xff{}", b"", "{run_json} is not UTF-8 text (invalid start byte at byte 0)"),
    "empty study.db": (None, b"", "{study_db} holds no Optuna study (no studies table; 0 tables)"),
    "random bytes as study.db": (None, bytes(range(256)) * 32, "{study_db} is not a SQLite database (file is not a database)"),
}


@pytest.mark.parametrize("case", UNREADABLE_RUNS)
def test_an_unreadable_earlier_run_is_refused_in_one_line_and_left_as_it_was(tmp_path, case):
    run_json, study_db, message = UNREADABLE_RUNS[case]
    files = _earlier_run(tmp_path / "earlier", run_json, study_db)
    before = snapshot(files.root)
    with pytest.raises(UsageError) as refused:
        warm.check_runs([files.root], "0" * 16, OBJECTIVE)
    line = str(refused.value)
    expected = f"--warm-start {files.root}: " + message.format(run_json=files.run_json, study_db=files.study_db)
    assert line.startswith(expected) and line.endswith(warm.WHAT_WORKS) and "\n" not in line, line
    assert snapshot(files.root) == before


def test_a_study_db_without_the_runs_study_is_refused_and_never_written(tmp_path):
    other = _earlier_run(tmp_path / "other")
    optuna.create_study(study_name="another", storage=other.study_url).add_trial(
        optuna.trial.create_trial(params={}, distributions={}, value=0.5)
    )
    before = snapshot(other.root)
    with pytest.raises(UsageError, match=f"{other.study_db} holds no study 'search'; "):
        warm.check_runs([other.root], "0" * 16, OBJECTIVE)
    assert snapshot(other.root) == before

    optuna.create_study(study_name=STUDY_NAME, storage=other.study_url)  # now it holds the run's study, with no trial
    before = snapshot(other.root)
    runs = warm.check_runs([other.root], "0" * 16, OBJECTIVE)
    assert runs[0].trials == () and warm.plan(runs, SPACE).sources[0].kept == 0
    assert snapshot(other.root) == before


def test_the_earlier_study_is_opened_read_only(tmp_path):
    empty = tmp_path / "study.db"
    empty.write_bytes(b"")
    with pytest.raises(Exception):  # noqa: B017 - Optuna would create its tables here; read-only, it cannot
        read_only_study(empty, STUDY_NAME)
    assert empty.read_bytes() == b""
    plain = tmp_path / "plain"
    plain.mkdir()
    optuna.create_study(study_name=STUDY_NAME, storage=f"sqlite:///{plain / 'study.db'}")
    odd = plain.rename(tmp_path / "a?b#c%20d")  # characters a URI gives a meaning to: the file is read where it lies
    before = snapshot(tmp_path)
    study = read_only_study(odd / "study.db", STUDY_NAME)
    assert study.trials == []
    with pytest.raises(Exception):  # noqa: B017 - whatever Optuna raises, the file is not written
        study.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=0.5))
    assert snapshot(tmp_path) == before and sorted(p.name for p in tmp_path.rglob("*")) == [odd.name, "study.db", "study.db"]


@pytest.mark.parametrize("case", ["empty run.json, empty study.db", "run.json not JSON", "random bytes as study.db"])
def test_the_command_refuses_an_unreadable_earlier_run_before_preparing_data(tmp_path, capsys, case):
    run_json, study_db, message = UNREADABLE_RUNS[case]
    files = _earlier_run(tmp_path / "earlier", run_json, study_db)
    before = snapshot(tmp_path)
    argv = ["--data", str(SAMPLE), *TINY, "--out", str(tmp_path / "run"), "--warm-start", str(files.root)]
    assert search_run.main(argv) == 2
    err = capsys.readouterr().err
    expected = f"error: --warm-start {files.root}: " + message.format(run_json=files.run_json, study_db=files.study_db)
    assert err.startswith(expected) and err.count("\n") == 1, err
    assert snapshot(tmp_path) == before


HALF_WRITTEN = """
import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA cache_size=2")  # pages spill into the file before the commit, the old ones kept in the journal
db.execute("BEGIN IMMEDIATE")
db.execute("UPDATE trials SET state = 'FAIL'")
db.executemany("INSERT INTO trials (number, state) VALUES (?, 'COMPLETE')", [(n,) for n in range(100, 400)])
db.execute("CREATE TABLE filler (x)")
db.executemany("INSERT INTO filler VALUES (?)", [(b"x" * 4000,) for _ in range(200)])
os.kill(os.getpid(), 9)  # killed inside the write, as a driver by SIGKILL while Optuna commits
"""


def test_a_study_a_killed_driver_left_inside_a_write_reads_as_its_last_commit(tmp_path):
    import sqlite3
    import subprocess
    import sys

    from runfiles.study import damage, study_problem, told_numbers

    path = tmp_path / "study.db"
    with sqlite3.connect(path) as db:  # the tables told_numbers reads, as Optuna's storage has them
        db.execute("CREATE TABLE studies (study_id INTEGER PRIMARY KEY, study_name TEXT)")
        db.execute("CREATE TABLE trials (trial_id INTEGER PRIMARY KEY, number INTEGER, study_id INTEGER DEFAULT 1, state TEXT)")
        db.execute("CREATE TABLE trial_user_attributes (trial_id INTEGER, key TEXT)")
        db.execute("INSERT INTO studies VALUES (1, ?)", (STUDY_NAME,))
        db.executemany("INSERT INTO trials (number, state) VALUES (?, 'COMPLETE')", [(n,) for n in range(3)])
    assert subprocess.run([sys.executable, "-c", HALF_WRITTEN, str(path)]).returncode == -9
    assert Path(f"{path}-journal").stat().st_size > 0  # a hot journal: the read-only check alone read "readonly database"
    assert damage(path) == "" and study_problem(path, STUDY_NAME) == ""
    assert told_numbers(path, STUDY_NAME, ADDED) == [0, 1, 2]  # the last commit, not the half-done write
