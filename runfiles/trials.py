"""trials.csv and its ledger, read as one table.

While a search runs, the driver rewrites trials.csv every few seconds at most (a rewrite costs
O(trials)), and appends a trial's row to the ledger, `RunDir.trial_ends`, the moment the trial
ends or records a checkpoint (a cost that does not grow with the search), so a driver killed
outright loses no ended trial and no checkpoint's name. Each rewrite of trials.csv holds every
row the ledger held, and removes it (`fold`). Readers take the ledger's rows over trials.csv's
(`read_trials`): the ledger's are newer.

Standard library only, as `runfiles.io`.
"""

from __future__ import annotations

import json
import math

from runfiles.io import append_json_line, cell_text, read_header, read_rows, write_rows
from runfiles.layout import ADDED, STUDY_NAME, RunDir, as_float, trial_id
from runfiles.study import told_numbers


def examples_used(run_dir: RunDir) -> int:
    """Training examples of every epoch the run has reported so far (epochs.csv)."""
    values = (as_float(row.get("examples")) for row in read_rows(run_dir.epochs_csv))
    return int(sum(v for v in values if not math.isnan(v)))


def searched_s(run_dir: RunDir, start: float, end: float) -> float:
    """Seconds a session that recorded none (a driver killed outright) searched, as epochs.csv shows
    it: from the earliest start of a trial's part that reported in [start, end) (Unix seconds; a
    row's `time` less its `trial_time_s`) to the last such report; 0.0 where none reported. A lower
    bound: the epochs in progress when the driver died are not in it."""
    reports = [(as_float(row.get("time")), as_float(row.get("trial_time_s"))) for row in read_rows(run_dir.epochs_csv)]
    reports = [(at, took) for at, took in reports if start <= at < end]
    if not reports:
        return 0.0
    first = min((at - took for at, took in reports if math.isfinite(took)), default=min(at for at, _ in reports))
    return max(at for at, _ in reports) - first


def record_row(run_dir: RunDir, row: dict) -> None:
    """Append a trial's row as it stands (at its end, or naming a new checkpoint) to the ledger,
    cells as trials.csv writes them.

    Costs one short line however many trials the run holds.
    """
    append_json_line(run_dir.trial_ends, {key: cell_text(value) for key, value in row.items()})


def ledger_rows(run_dir: RunDir) -> list[dict]:
    """The ledger's rows, oldest first; [] without a ledger. A line cut short (the driver killed while
    writing it) is skipped: the study holds how that trial ended, and a resume takes its word."""
    if not run_dir.trial_ends.is_file():
        return []
    rows = []
    for line in run_dir.trial_ends.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and row.get("trial_id"):
            rows.append(row)
    return rows


def read_trials(run_dir: RunDir) -> list[dict]:
    """trials.csv's rows with the ledger's over them (the newest row of a trial wins), by trial number.

    Cells are text, as `runfiles.io.read_rows` gives them, and a ledger's row has trials.csv's
    columns too (empty where it holds none); [] when neither file holds a row.
    """
    rows = {row["trial_id"]: row for row in read_rows(run_dir.trials_csv)}
    newer = ledger_rows(run_dir)
    if not newer:
        return list(rows.values())
    empty = dict.fromkeys(read_header(run_dir.trials_csv), "")  # every column, as a row read from trials.csv
    rows.update((row["trial_id"], empty | row) for row in newer)
    return sorted(rows.values(), key=_number)


def lost_epochs(run_dir: RunDir) -> str | None:
    """What is wrong when a finished run's epochs.csv lacks trials its study was told a value for
    (deleted, cut short or edited): it cannot be rebuilt; None when it holds them all.

    Only for a finished run (summary.json written), as `lost_rows`.
    """
    if not run_dir.summary_json.is_file():
        return None
    held = {row["trial_id"] for row in read_rows(run_dir.epochs_csv)}
    lost = [key for key in map(trial_id, told_numbers(run_dir.study_db, STUDY_NAME, ADDED)) if key not in held]
    if not lost:
        return None
    return (
        f"{run_dir.epochs_csv}: lacks {_named(lost)}, which the study was told a value for (deleted, cut short or "
        "edited); it cannot be rebuilt: put back a copy of it"
    )


def lost_trials(run_dir: RunDir) -> str | None:
    """`lost_epochs`, else `lost_rows`: what a finished run's tables lack; None when they are whole."""
    return lost_epochs(run_dir) or lost_rows(run_dir)


def lost_rows(run_dir: RunDir) -> str | None:
    """What is wrong when epochs.csv holds trials that neither trials.csv nor its ledger holds, or a
    row of trials.csv has fewer cells than its header (a trials.csv cut short or edited), with the
    command that rebuilds it; None when they agree.

    Only for a finished run (summary.json written), whose last rewrite held every trial: while a
    search runs, or after its driver was killed, trials.csv may lag epochs.csv by a few seconds,
    and a resume adds those rows (`search.tuner.reconcile`).
    """
    if not run_dir.summary_json.is_file():
        return None
    rebuild = f"rebuild it from the study and {run_dir.epochs_csv.name} with: {run_dir.resume_command}"
    rows = read_trials(run_dir)
    cut = [str(row["trial_id"]) for row in rows if None in row.values()]
    if cut:  # csv.DictReader's value of the cells a short row lacks
        return f"{run_dir.trials_csv}: the row of {_named(cut)} is cut short (fewer cells than the header); {rebuild}"
    held = {row["trial_id"] for row in rows}
    lost = sorted({row["trial_id"] for row in read_rows(run_dir.epochs_csv)} - held)
    if not lost:
        return None
    return (
        f"{run_dir.trials_csv}: lacks {_named(lost)}, which {run_dir.epochs_csv.name} holds (cut short or edited, or a "
        f"resumed driver was killed); {rebuild}"
    )


def _named(trial_ids: list[str]) -> str:
    """The first three trial ids, and how many more."""
    return ", ".join(trial_ids[:3]) + (f" and {len(trial_ids) - 3} more" if len(trial_ids) > 3 else "")


def fold(run_dir: RunDir, rows: list[dict], columns: list[str] | None = None) -> None:
    """Replace trials.csv by `rows` (every trial's, the ledger's included), then remove the ledger.

    `columns` default to trials.csv's own (else the first row's keys). trials.csv is replaced at
    once before the ledger is removed, so a driver killed in between leaves both, which read the
    same (`read_trials`).
    """
    write_rows(run_dir.trials_csv, columns or read_header(run_dir.trials_csv) or list(rows[0]), rows)
    run_dir.trial_ends.unlink(missing_ok=True)


def _number(row: dict) -> float:
    try:
        return float(row.get("number"))
    except (TypeError, ValueError):
        return float("inf")
