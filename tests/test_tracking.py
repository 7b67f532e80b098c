"""The trial tables' cost per reported result stays the same as the search grows (a trial's end
still rewrites trials.csv at once), a resume rebuilds what the last few seconds before a kill did not
write, and the searcher keeps nothing of ended trials."""

import io
from pathlib import Path

from ray.tune.experiment import Trial

from runfiles.io import read_rows, write_rows
from runfiles.layout import TUTORIAL_PRESETS, RunDir, trial_columns
from search.console import Progress
from search.scheduler import Ledger, StoppingScheduler
from search.searcher import NUMBER
from search.space import SPACE, preset_point
from search.tracking import TrialTable

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


def run_trials(table: TrialTable, count: int, folder: Path | None = None) -> int:
    """`count` trials through the table's Tune hooks, each reporting EPOCHS epochs, then the end of
    the search. Returns the bytes written while trials started and reported (their ends left out);
    with `folder`, checks that each trial's end is in its trials.csv at once."""
    params = preset_point(TUTORIAL_PRESETS[0], SPACE)
    reporting = 0
    for number in range(count):
        trial = Trial("sleeper", config={**params, NUMBER: number}, stub=True)
        before = bytes_written()
        table.on_trial_start(0, [], trial)
        for epoch in range(1, EPOCHS + 1):
            result = {"epoch": epoch, "val_accuracy": 0.5 + epoch / 100, "val_loss": 1 / epoch, "examples": 10}
            trial.update_last_result(result)  # as Tune does before calling the callbacks
            table.on_trial_result(0, [], trial, result)
        reporting += bytes_written() - before
        table.on_trial_complete(0, [], trial)
        if folder is not None:
            assert read_rows(folder / "trials.csv")[-1]["state"] == "completed"  # never left to a later rewrite
    table.on_experiment_end([])
    return reporting


def bytes_per_result(folder: Path, count: int) -> float:
    return run_trials(table_in(folder, write_every_s=3600), count, folder) / (count * EPOCHS)


def test_the_bytes_written_per_reported_result_do_not_grow_with_the_number_of_trials(tmp_path):
    small = bytes_per_result(tmp_path / "small", 20)
    large = bytes_per_result(tmp_path / "large", 100)
    assert large < 1.5 * small, (small, large)
    rows = read_rows(tmp_path / "large" / "trials.csv")
    assert len(rows) == 100 and {row["state"] for row in rows} == {"completed"} and rows[-1]["epochs"] == str(EPOCHS)
    assert len(read_rows(tmp_path / "large" / "epochs.csv")) == 100 * EPOCHS


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
            searcher.on_trial_result(trial_id, {"val_accuracy": 0.5 + epoch / 10, "epoch": epoch})
        searcher.on_trial_complete(trial_id, {"val_accuracy": 0.7, "epoch": 2})
        searcher.on_trial_result(trial_id, {"val_accuracy": 0.9, "epoch": 3})  # late: ignored
    assert searcher.asked == {} and searcher._best == {} and searcher._reported == {}
    assert searcher.study_size() == 30 and len(searcher.told) == 30
    assert [t.value for t in searcher.study.trials] == [0.7] * 30
