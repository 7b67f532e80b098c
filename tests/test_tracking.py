"""The trial tables' cost per reported result and per trial end stays the same as the search grows
(a trial's end is appended to trials.csv's ledger at once, trials.csv rewritten at most every few
seconds and only once the events since the last rewrite paid for it), a resume rebuilds what the
last few seconds before a kill did not write, and the searcher keeps nothing of ended trials."""

import io
import re
import time
from pathlib import Path

import pytest
from ray.tune.experiment import Trial

from reports.load import read_trials as read_report_trials
from runfiles.io import read_rows, write_rows
from runfiles.layout import TUTORIAL_PRESETS, RunDir, trial_columns
from runfiles.trials import lost_rows, lost_trials, read_trials, searched_s
from search import internals
from search.config import SearchConfig
from search.console import Progress
from search.scheduler import Ledger, StoppingScheduler
from search.searcher import NUMBER
from search.space import SPACE, preset_point
from search.tracking import ROWS_PER_EVENT, TrialTable

EPOCHS = 4


def bytes_written() -> int:
    """Bytes this process has written so far (Linux's /proc/self/io `wchar`)."""
    line = next(line for line in Path("/proc/self/io").read_text().splitlines() if line.startswith("wchar:"))
    return int(line.split()[1])


def table_in(folder: Path, write_every_s: float) -> TrialTable:
    (folder / "tune").mkdir(parents=True, exist_ok=True)  # RunDir(folder).tune, where the scheduler's state goes
    ledger = Ledger(examples_per_epoch=1)
    scheduler = StoppingScheduler(ledger, max_epochs=EPOCHS, grace_period=1)
    return TrialTable(RunDir(folder), SPACE, ledger, scheduler, 1, Progress(stream=io.StringIO()), write_every_s=write_every_s)


def run_trials(table: TrialTable, count: int, folder: Path | None = None, end: bool = True) -> tuple[int, int]:
    """`count` trials through the table's Tune hooks, each reporting EPOCHS epochs, then (with `end`)
    the end of the search. Returns the bytes written while trials started and reported, and those
    written at their ends; with `folder`, checks that each trial's end is on disk at once."""
    params = preset_point(TUTORIAL_PRESETS[0], SPACE)
    reporting = ending = 0
    for number in range(count):
        trial = Trial("sleeper", config={**params, NUMBER: number}, stub=True)
        before = bytes_written()
        table.on_trial_start(0, [], trial)
        for epoch in range(1, EPOCHS + 1):
            result = {"epoch": epoch, "val_accuracy": 0.5 + epoch / 100, "val_loss": 1 / epoch, "examples": 10}
            trial.update_last_result(result)  # as Tune does before calling the callbacks
            table.on_trial_result(0, [], trial, result)
        reporting += bytes_written() - before
        before = bytes_written()
        table.on_trial_complete(0, [], trial)
        ending += bytes_written() - before
        if folder is not None:
            assert read_trials(RunDir(folder))[-1]["state"] == "completed"  # never left to a later rewrite
    if end:
        table.on_experiment_end([])
    return reporting, ending


def bytes_per_event(folder: Path, count: int, write_every_s: float) -> tuple[float, float]:
    """Bytes written per reported result, and per trial end, by a search of `count` trials."""
    reporting, ending = run_trials(table_in(folder, write_every_s=write_every_s), count, folder)
    return reporting / (count * EPOCHS), ending / count


def test_the_bytes_written_per_result_and_per_trial_end_do_not_grow_with_the_number_of_trials(tmp_path):
    for write_every_s in (3600, 0):  # appends alone; appends and every rewrite the events pay for
        small = bytes_per_event(tmp_path / f"small{write_every_s}", 20, write_every_s)
        large = bytes_per_event(tmp_path / f"large{write_every_s}", 100, write_every_s)
        assert large[0] < 1.5 * small[0] and large[1] < 1.5 * small[1], (write_every_s, small, large)
    rows = read_rows(tmp_path / "large0" / "trials.csv")  # whole once the search ended, its ledger folded in
    assert len(rows) == 100 and {row["state"] for row in rows} == {"completed"} and rows[-1]["epochs"] == str(EPOCHS)
    assert not RunDir(tmp_path / "large0").trial_ends.exists()
    assert len(read_rows(tmp_path / "large0" / "epochs.csv")) == 100 * EPOCHS


def test_a_driver_killed_before_a_rewrite_loses_no_ended_trial(tmp_path):
    killed = table_in(tmp_path, write_every_s=3600)
    run_trials(killed, 5, end=False)  # no rewrite after the first trial's start
    assert killed.counts()["completed"] == 5 and killed.counts()["running"] == 0 and killed.counts()["total"] == 5
    assert [row["state"] for row in read_rows(tmp_path / "trials.csv")] == ["running"]
    table = table_in(tmp_path, write_every_s=3600)  # as a resumed driver reads them back
    assert [row["state"] for row in table.rows.values()] == ["completed"] * 5
    assert table.counts()["completed"] == 5 and table.counts()["total"] == 5
    frame = read_report_trials(RunDir(tmp_path), list(SPACE), [])  # a report of the killed run
    assert list(frame["state"]) == ["completed"] * 5 and list(frame["epochs"]) == [EPOCHS] * 5


def test_a_driver_killed_before_a_rewrite_resumes_from_the_latest_checkpoint(tmp_path):
    # Tune calls on_checkpoint after on_trial_result: the checkpoint's name reaches the ledger at once,
    # so a resume (which reads read_trials) continues from it and trains no reported epoch again.
    from ray import tune

    killed = table_in(tmp_path, write_every_s=3600)
    trial = Trial("sleeper", config={**preset_point(TUTORIAL_PRESETS[0], SPACE), NUMBER: 0}, stub=True)
    killed.on_trial_start(0, [], trial)  # the last rewrite of trials.csv before the kill
    for epoch in (1, 2):
        folder = tmp_path / "tune" / "trial_0000_x" / f"checkpoint_{epoch - 1:06d}"
        folder.mkdir(parents=True)
        result = {"epoch": epoch, "val_accuracy": 0.5 + epoch / 100, "val_loss": 1 / epoch, "examples": 10}
        trial.update_last_result(result)
        killed.on_trial_result(0, [], trial, result)
        killed.on_checkpoint(0, [], trial, tune.Checkpoint(str(folder)))
    assert read_rows(tmp_path / "trials.csv")[0]["checkpoint"] == ""
    latest = "tune/trial_0000_x/checkpoint_000001"
    row = read_trials(RunDir(tmp_path))[0]
    assert (row["state"], row["epochs"], row["checkpoint"], row["best_checkpoint"]) == ("running", "2", latest, latest)
    resumed = table_in(tmp_path, write_every_s=3600)  # as a resumed driver reads them back
    assert resumed.rows["trial_0000"]["checkpoint"] == latest


def test_a_checkpoint_is_kept_from_its_result_when_a_stop_drops_tunes_save(tmp_path):
    # Ray stores a reported checkpoint before the result leaves the trial, and Tune registers it
    # (on_checkpoint) a step later, from a save task that a Ctrl-C in between drops: the resume then
    # trained the reported epoch again. The result's checkpoint_dir_name names it at once.
    from ray.train._internal.storage import StorageContext
    from ray.train.constants import CHECKPOINT_DIR_NAME

    stopped = table_in(tmp_path, write_every_s=3600)
    trial = Trial("sleeper", config={**preset_point(TUTORIAL_PRESETS[0], SPACE), NUMBER: 0}, stub=True)
    trial.set_storage(StorageContext(str(tmp_path), "tune", trial_dir_name="trial_0000_x"))
    stopped.on_trial_start(0, [], trial)
    folders = [tmp_path / "tune" / "trial_0000_x" / f"checkpoint_{n:06d}" for n in range(3)]
    for epoch, (accuracy, folder) in enumerate(zip((0.5, 0.7, 0.6), folders, strict=True), start=1):  # the 2nd is best
        folder.mkdir(parents=True)
        result = {"epoch": epoch, "val_accuracy": accuracy, "val_loss": 1.0, "examples": 10, CHECKPOINT_DIR_NAME: folder.name}
        stopped.on_trial_result(0, [], trial, result)
    stopped.write(now=True)
    row, kept = read_trials(RunDir(tmp_path))[0], [f"tune/trial_0000_x/{f.name}" for f in folders]
    assert (row["checkpoint"], row["best_checkpoint"]) == (kept[2], kept[1])
    assert all(f.is_dir() for f in folders)  # Tune has registered none of them: none is deleted yet

    written = stopped.rows_written  # Tune's registration, when it comes, records nothing again
    trial.update_last_result(result)
    stopped.on_checkpoint(0, [], trial, internals.reported_checkpoint(trial, folders[2].name))
    assert stopped.rows_written == written
    stopped.write(now=True)
    assert [f.is_dir() for f in folders] == [False, True, True]  # now what was displaced goes


class SlowSave(StoppingScheduler):
    """A scheduler that counts its saves (each takes `save_s`, as a large search's state does)."""

    saves, save_s = 0, 0.05

    def save(self, checkpoint_path: str) -> None:
        time.sleep(self.save_s)
        self.saves += 1
        super().save(checkpoint_path)


def test_a_rewrite_waits_for_the_events_that_pay_for_its_rows(tmp_path):
    table = table_in(tmp_path, write_every_s=0)
    table.scheduler = SlowSave(table.ledger, max_epochs=EPOCHS, grace_period=1)
    for number in range(5 * ROWS_PER_EVENT):
        table.add(number, preset_point(TUTORIAL_PRESETS[0], SPACE))
    saves = []
    for _ in range(15):
        table.write()
        saves.append(table.scheduler.saves)
    assert saves == [0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3]  # every fifth event pays for 5 x ROWS_PER_EVENT rows
    assert table.rows_written == 3 * 5 * ROWS_PER_EVENT
    table.write(now=True)
    assert table.scheduler.saves == 4


def test_a_resume_rebuilds_rows_the_driver_had_not_rewritten_from_epochs_csv(tmp_path):
    run_trials(table_in(tmp_path, write_every_s=0), 2)
    rows = read_rows(tmp_path / "trials.csv")
    stale = dict(rows[1], epochs="1", val_accuracy="0.51", best_epoch="1")  # as the row stood after its first epoch
    write_rows(tmp_path / "trials.csv", trial_columns([p.name for p in SPACE]), [rows[0], stale])
    row = table_in(tmp_path, write_every_s=0).rows[rows[1]["trial_id"]]
    assert row["epochs"] == EPOCHS and row["best_epoch"] == str(EPOCHS) and row["val_accuracy"] == "0.54"


def test_the_searcher_keeps_nothing_of_the_trials_the_study_was_told_of(tmp_path):
    import optuna

    from search.searcher import StudySearch
    from search.space import optuna_space

    (tmp_path / "tune").mkdir()
    searcher = StudySearch(
        optuna_space(SPACE), RunDir(tmp_path), Ledger(examples_per_epoch=1), optuna.samplers.RandomSampler(seed=0), [], [], 30
    )
    for number in range(30):
        trial_id = f"t{number}"
        assert searcher.suggest(trial_id)[NUMBER] == number
        for epoch in (1, 2):
            searcher.on_trial_result(trial_id, {"val_accuracy": 0.5 + epoch / 10, "epoch": epoch, "latency_ms": 1.0})
        searcher.on_trial_complete(trial_id, {"val_accuracy": 0.7, "epoch": 2})
        searcher.on_trial_result(trial_id, {"val_accuracy": 0.9, "epoch": 3})  # late: ignored
    assert searcher.asked == {} and searcher._best == {} and searcher._reported == {} and searcher._latency._values == {}
    assert searcher.study_size() == 30 and len(searcher.told) == 30
    assert [t.value for t in searcher.study.trials] == [0.7] * 30


def test_a_resume_ends_a_trial_the_driver_left_without_its_configuration(tmp_path):
    # A driver stopped inside the study's ask (between the trial's creation and its last parameter)
    # leaves a RUNNING trial without every parameter: it cannot be trained, so it ends errored.
    import optuna

    from runfiles.layout import STUDY_NAME
    from search.tuner import UNCONFIGURED, reconcile

    run_dir = RunDir(tmp_path)
    study = optuna.create_study(storage=run_dir.study_url, study_name=STUDY_NAME, direction="maximize")
    x, depth = optuna.distributions.FloatDistribution(0, 1), optuna.distributions.IntDistribution(1, 3)
    whole = study.ask({"x": x, "depth": depth})
    cut_short = study.ask({"x": x})  # as if stopped before "depth"
    write_rows(
        run_dir.trials_csv,
        ["trial_id", "number", "state", "reason"],
        [
            {"trial_id": "trial_0000", "number": 0, "state": "running", "reason": ""},
            {"trial_id": "trial_0001", "number": 1, "state": "running", "reason": ""},
        ],
    )
    unfinished = reconcile(run_dir, SearchConfig(), ["x", "depth"], {"x", "depth"})
    assert [(u.number, u.params) for u in unfinished] == [(whole.number, whole.params)]
    stored = optuna.load_study(study_name=STUDY_NAME, storage=run_dir.study_url).trials[cut_short.number]
    assert stored.state == optuna.trial.TrialState.FAIL and stored.user_attrs == {"state": "errored", "reason": UNCONFIGURED}
    rows = read_trials(run_dir)
    assert [(r["state"], r["reason"]) for r in rows] == [("running", ""), ("errored", UNCONFIGURED)]


def test_a_resume_ends_a_trial_that_reported_its_last_epoch_before_the_driver_stopped(tmp_path):
    # The driver stopped between a trial's last report (with its checkpoint) and its end: continued,
    # it would train no epoch and report nothing, which Tune refuses. It ends completed instead;
    # one that has epochs left, or whose last epoch diverged, is continued.
    import optuna

    from runfiles.layout import STUDY_NAME
    from search.tracking import EPOCH_NAMES
    from search.tuner import reconcile

    run_dir = RunDir(tmp_path)
    study = optuna.create_study(storage=run_dir.study_url, study_name=STUDY_NAME, direction="maximize")
    x = {"x": optuna.distributions.FloatDistribution(0, 1)}
    trained, halfway, diverged = study.ask(x), study.ask(x), study.ask(x)
    for trial, values in ((trained, (0.7, 0.8)), (halfway, (0.6,)), (diverged, (0.65, float("nan")))):
        for epoch, value in enumerate(values, start=1):
            trial.report(value, epoch)
    epoch = dict.fromkeys(EPOCH_NAMES, "") | {"examples": 100, "examples_per_s": 10, "tokens_per_s": 1, "epoch_s": 10}
    epochs = [
        epoch | {"trial_id": "trial_0000", "epoch": 1, "val_accuracy": 0.7, "train_accuracy": 0.6},
        epoch | {"trial_id": "trial_0000", "epoch": 2, "val_accuracy": 0.8, "train_accuracy": 0.9},
        epoch | {"trial_id": "trial_0001", "epoch": 1, "val_accuracy": 0.6, "train_accuracy": 0.5},
        epoch | {"trial_id": "trial_0002", "epoch": 1, "val_accuracy": 0.65, "train_accuracy": 0.5},
        epoch | {"trial_id": "trial_0002", "epoch": 2, "val_accuracy": "", "train_accuracy": 0.5},
    ]
    write_rows(run_dir.epochs_csv, EPOCH_NAMES, epochs)
    running = [{"trial_id": f"trial_000{n}", "number": n, "state": "running", "reason": ""} for n in range(3)]
    write_rows(run_dir.trials_csv, trial_columns(["x"]), running)

    unfinished = reconcile(run_dir, SearchConfig(max_epochs=2), ["x"], {"x"})
    assert [u.number for u in unfinished] == [halfway.number, diverged.number]
    stored = optuna.load_study(study_name=STUDY_NAME, storage=run_dir.study_url).trials[trained.number]
    assert (stored.state, stored.value, stored.user_attrs) == (optuna.trial.TrialState.COMPLETE, 0.8, {"state": "completed"})
    rows = read_trials(run_dir)
    assert [(r["state"], r["val_accuracy"], r["epochs"]) for r in rows] == [
        ("completed", "0.8", "2"),
        ("running", "0.6", "1"),
        ("running", "0.65", "2"),
    ]
    assert float(rows[0]["ended_at"]) > 0


def test_a_trials_csv_cut_short_is_refused_on_a_finished_run_and_rebuilt_by_a_resume(tmp_path):
    # trials.csv cut to its header (a full disk, an editor): the study and epochs.csv still hold the trials
    import optuna

    from runfiles.cli import UsageError
    from runfiles.layout import STUDY_NAME
    from search.run import check_out
    from search.tracking import EPOCH_NAMES
    from search.tuner import reconcile

    run_dir = RunDir(tmp_path)
    study = optuna.create_study(storage=run_dir.study_url, study_name=STUDY_NAME, direction="maximize")
    x = {"x": optuna.distributions.FloatDistribution(0, 1)}
    completed, diverged = study.ask(x), study.ask(x)
    completed.set_user_attr("state", "completed")
    study.tell(completed, 0.8)
    diverged.set_user_attr("state", "diverged")
    study.tell(diverged, state=optuna.trial.TrialState.FAIL)
    study.enqueue_trial({"x": 0.5})  # queued, never started: no row
    epoch = dict.fromkeys(EPOCH_NAMES, "") | {"examples": 100, "examples_per_s": 10, "tokens_per_s": 1, "epoch_s": 10}
    epoch |= {"hostname": "node-a", "device": "CPU", "lstm": "fused"}
    epochs = [
        epoch | {"trial_id": "trial_0000", "epoch": 1, "val_accuracy": 0.7, "train_accuracy": 0.6},
        epoch | {"trial_id": "trial_0000", "epoch": 2, "val_accuracy": 0.8, "train_accuracy": 0.9},
        epoch | {"trial_id": "trial_0001", "epoch": 1, "val_accuracy": "nan", "train_accuracy": 0.5},
    ]
    write_rows(run_dir.epochs_csv, EPOCH_NAMES, epochs)
    write_rows(run_dir.trials_csv, trial_columns(["x"]), [])
    assert lost_rows(run_dir) is None  # a run still searching (no summary.json) may lag epochs.csv
    run_dir.summary_json.write_text("{}")
    assert lost_rows(run_dir) == (
        f"{run_dir.trials_csv}: lacks trial_0000, trial_0001, which epochs.csv holds (cut short or edited, or a resumed "
        f"driver was killed); rebuild it from the study and epochs.csv with: {run_dir.resume_command}"
    )

    assert reconcile(run_dir, SearchConfig(), ["x"], {"x"}) == []
    rows = read_trials(run_dir)
    assert list(rows[0]) == trial_columns(["x"]) and lost_rows(run_dir) is None
    assert [(r["trial_id"], r["state"], r["val_accuracy"], r["best_epoch"], r["epochs"]) for r in rows] == [
        ("trial_0000", "completed", "0.8", "2", "2"),
        ("trial_0001", "diverged", "", "", ""),  # no value worth ranking, as when it ended
    ]
    assert rows[0]["examples"] == "200" and float(rows[0]["x"]) == completed.params["x"]
    stored = optuna.load_study(study_name=STUDY_NAME, storage=run_dir.study_url).trials[0]
    assert float(rows[0]["ended_at"]) == stored.datetime_complete.timestamp() > float(rows[0]["started_at"])
    assert (rows[0]["hostname"], rows[0]["device"], rows[0]["lstm"]) == ("node-a", "CPU", "fused")

    # a row cut in half takes its parameters from the study again
    write_rows(run_dir.trials_csv, trial_columns(["x"]), [rows[0] | {"x": ""}, rows[1]])
    reconcile(run_dir, SearchConfig(), ["x"], {"x"})
    assert float(read_trials(run_dir)[0]["x"]) == completed.params["x"]
    # the file cut inside its last row: refused, then rebuilt whole by a resume
    whole = run_dir.trials_csv.read_text()
    run_dir.trials_csv.write_text(whole[: whole.rindex("trial_0001") + 20])
    assert lost_rows(run_dir) == (
        f"{run_dir.trials_csv}: the row of trial_0001 is cut short (fewer cells than the header); "
        f"rebuild it from the study and epochs.csv with: {run_dir.resume_command}"
    )
    reconcile(run_dir, SearchConfig(), ["x"], {"x"})
    assert run_dir.trials_csv.read_text() == whole and lost_rows(run_dir) is None

    # epochs.csv gone: nothing can rebuild it, and a resume refuses before writing anything
    run_dir.epochs_csv.unlink()
    lost = f"{run_dir.epochs_csv}: lacks trial_0000, which the study was told a value for (deleted, cut short or edited)"
    assert lost_trials(run_dir) == f"{lost}; it cannot be rebuilt: put back a copy of it"
    run_dir.run_json.write_text("{}")
    with pytest.raises(UsageError, match=re.escape(f"--resume --out {run_dir.root}: {lost}")):
        check_out(run_dir, resume=True)


def test_a_killed_sessions_search_time_runs_from_its_first_trials_start_to_its_last_report(tmp_path):
    files = RunDir(tmp_path)
    rows = [  # (time of the report, seconds since the trial's part started): two sessions, one report unreadable
        {"trial_id": "trial_0000", "epoch": 1, "time": 1000.0, "trial_time_s": 30.0},
        {"trial_id": "trial_0001", "epoch": 1, "time": 1010.0, "trial_time_s": 25.0},
        {"trial_id": "trial_0000", "epoch": 2, "time": 1040.0, "trial_time_s": 70.0},
        {"trial_id": "trial_0001", "epoch": 2, "time": 1050.0, "trial_time_s": ""},
        {"trial_id": "trial_0002", "epoch": 1, "time": 2000.0, "trial_time_s": 20.0},
    ]
    write_rows(files.epochs_csv, ["trial_id", "epoch", "time", "trial_time_s"], rows)
    assert searched_s(files, 900.0, 1500.0) == 1050.0 - 970.0
    assert searched_s(files, 1500.0, 3000.0) == 20.0 and searched_s(files, 3000.0, 4000.0) == 0.0
