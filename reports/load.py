"""Read a run directory into plain data: the only module of the report that reads files.

Tolerant by design: a run in progress has no summary.json and maybe no study.db,
a resumed run repeats epochs, a driver of another version may add or drop columns.
Missing columns become NaN (numbers) or "" (text); unreadable optional files are
reported as notes instead of failing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from runfiles import predictions
from runfiles.documents import Baseline, Benchmark, RunFacts, Summary
from runfiles.layout import BENCHMARK_FILE, EPOCH_COLUMNS, STUDY_NAME, TRIAL_HEAD, TRIAL_TAIL, Objective, Param, RunDir, names
from runfiles.study import read_only_study, study_problem
from runfiles.trials import ledger_rows, lost_trials

TRIAL_TEXT = names(TRIAL_HEAD + TRIAL_TAIL, str)
TRIAL_NUMBERS = names(TRIAL_HEAD + TRIAL_TAIL, int) + names(TRIAL_HEAD + TRIAL_TAIL, float)
EPOCH_TEXT = names(EPOCH_COLUMNS, str)
EPOCH_NUMBERS = names(EPOCH_COLUMNS, int) + names(EPOCH_COLUMNS, float)


class ReportError(ValueError):
    """The run directory cannot be reported on; the message says which file and why."""


@dataclass
class Run:
    """Everything the report shows, read from one run directory."""

    run_dir: Path
    info: RunFacts
    """run.json (all defaults when absent)."""
    trials: pd.DataFrame
    """trials.csv, one row per trial, every contract column present."""
    epochs: pd.DataFrame
    """epochs.csv, one row per (trial, epoch): the last reported row wins."""
    summary: Summary | None
    """summary.json, None while the run is in progress."""
    space: list[Param]
    study: object | None = None
    """The Optuna study copied into memory, or None (see study_note)."""
    study_note: str = ""
    notes: list[str] = field(default_factory=list)
    """Problems met while reading optional files, shown on the page."""
    baseline: Baseline | None = None
    """baseline.json (the tutorial's models trained as the tutorial trains them), None when absent."""
    serving: Benchmark | None = None
    """best_model/benchmark.json (search.serving: the export measured for serving), None when absent."""
    predictions: dict = field(default_factory=dict)
    """Each tested model's test predictions, {name: (labels, predicted)} (runfiles.predictions.read_all)."""

    @property
    def metric(self) -> str:
        return self.info.ranking.metric

    @property
    def objective(self) -> Objective:
        """The run's objective, as run.json records it (`RunFacts.ranking`)."""
        return self.info.ranking

    @property
    def finished(self) -> bool:
        return bool(self.summary is not None and self.summary.finished)

    @property
    def untested(self) -> bool:
        """Whether the run has no test split (one table file, --test-fraction 0): its result is
        then the cross-validated estimate."""
        return self.info.data.untested


def load(run_dir: str | Path) -> Run:
    """Read RUN_DIR; raise ReportError when it is not a run directory at all."""
    files = RunDir(run_dir)
    if not files.root.is_dir():
        raise ReportError(f"run directory {files.root} does not exist or is not a directory")
    if not files.run_json.is_file() and not files.trials_csv.is_file():
        raise ReportError(
            f"{files.root} is not a run directory: it holds neither {files.run_json.name} nor {files.trials_csv.name}"
        )
    notes: list[str] = []
    info = RunFacts.from_json(_read_json(files.run_json, required=files.run_json.is_file()))
    summary = _read_json(files.summary_json, required=False, notes=notes)
    summary = None if summary is None else Summary.from_json(summary, info.ranking)
    baseline = _read_json(files.baseline_json, required=False, notes=notes)
    baseline = None if baseline is None else Baseline.from_json(baseline, info.ranking)
    space = info.params
    trials = read_trials(files, space, notes)
    epochs = read_epochs(files.epochs_csv, notes)
    study, study_note = read_study(files.study_db, info.study)
    serving = _read_json(files.best_model / BENCHMARK_FILE, required=False, notes=notes)
    serving = None if serving is None else Benchmark.from_json(serving)
    found = predictions.read_all(files)
    return Run(files.root, info, trials, epochs, summary, space, study, study_note, notes, baseline, serving, found)


def check_whole(run: Run) -> None:
    """ReportError when a finished run's (summary.json read) trials.csv or epochs.csv lacks trials
    (`runfiles.trials.lost_trials`): its page would show fewer trials than it ran. A run read as
    unfinished is shown as it stands (its tables may lag by seconds)."""
    if run.summary is not None and (lost := lost_trials(RunDir(run.run_dir))):
        raise ReportError(lost)


def _read_json(path: Path, required: bool, notes: list[str] | None = None) -> dict | None:
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(value, dict):
            raise ValueError("expected a JSON object")
        return value
    except (OSError, ValueError) as error:
        if required:
            raise ReportError(f"{path} is not valid JSON: {error}") from None
        if notes is not None:
            notes.append(f"{path.name} could not be read ({error}); it is ignored")
        return None


def _read_csv(path: Path, text_columns: list[str], notes: list[str]) -> pd.DataFrame:
    if not path.is_file():
        return pd.DataFrame()
    try:
        return pd.read_csv(path, dtype={c: "object" for c in text_columns}, on_bad_lines="skip")
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (OSError, ValueError, pd.errors.ParserError) as error:
        notes.append(f"{path.name} could not be read ({error}); it is ignored")
        return pd.DataFrame()


def _normalize(frame: pd.DataFrame, text: list[str], numbers: list[str]) -> pd.DataFrame:
    """Add missing contract columns; text → str ("" for missing), numbers → float (NaN)."""
    frame = frame.copy()
    for column in text:
        values = frame[column] if column in frame else pd.Series([None] * len(frame), index=frame.index)
        frame[column] = [("" if _missing(v) else str(v)) for v in values]
        frame[column] = frame[column].astype(object)
    for column in numbers:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float) if column in frame else np.nan
    return frame


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def read_trials(files: RunDir, space: list[Param], notes: list[str]) -> pd.DataFrame:
    """trials.csv with the rows its ledger holds (trials that ended or recorded a checkpoint since
    its last rewrite, `runfiles.trials`) after it, so that a trial's newest row is kept below."""
    frame = _read_csv(files.trials_csv, TRIAL_TEXT, notes)
    newer = ledger_rows(files)
    if newer:
        frame = pd.concat([frame, pd.DataFrame(newer)], ignore_index=True)
    frame = _normalize(frame, TRIAL_TEXT, TRIAL_NUMBERS)
    for param in space:
        if param.name not in frame:
            frame[param.name] = np.nan
        elif param.kind in ("int", "float"):
            frame[param.name] = pd.to_numeric(frame[param.name], errors="coerce").astype(float)
    frame["state"] = frame["state"].str.strip().str.lower().replace("", "unknown")
    frame = frame.drop_duplicates("trial_id", keep="last") if len(frame) else frame
    if newer:  # a ledger's row moved its trial to the end
        frame = frame.sort_values("number", kind="stable")
    if frame["number"].isna().all():  # a driver that wrote no numbers: Optuna's, in order (0, 1, ...)
        frame["number"] = np.arange(len(frame), dtype=float)
    return frame.reset_index(drop=True)


def read_epochs(path: Path, notes: list[str]) -> pd.DataFrame:
    frame = _normalize(_read_csv(path, EPOCH_TEXT, notes), EPOCH_TEXT, EPOCH_NUMBERS)
    frame = frame.dropna(subset=["epoch"])
    # A resumed trial may report an epoch twice: the last row wins.
    frame = frame.drop_duplicates(["trial_id", "epoch"], keep="last")
    return frame.sort_values(["trial_id", "epoch"]).reset_index(drop=True)


def read_study(path: Path, name: str = STUDY_NAME):
    """The persisted Optuna study `name` (run.json's "study") copied into memory, or (None, why not)."""
    if not path.is_file():
        return None, f"{path.name} is absent (the driver has not written the study yet, or the run predates it)"
    problem = study_problem(path, name)
    if problem:
        return None, f"{path.name} could not be read: it {problem}"
    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        stored = read_only_study(path, name)  # the report never creates or migrates the driver's database
        copy = optuna.create_study(directions=stored.directions)
        copy.add_trials(stored.get_trials(deepcopy=False))
        return copy, ""
    except Exception as error:  # any failure of an optional section is reported, not raised
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return None, f"{path.name} could not be read: {first_line}"
