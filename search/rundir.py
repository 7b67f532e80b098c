"""The run directory's trial tables, kept current while Tune runs (see README's layout).

`TrialLog` is a Tune callback on the driver: it appends a row to epochs.csv for every
reported epoch and rewrites trials.csv whenever a trial starts, reports or ends, so a
report can be built from the files at any moment.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

from ray import tune

from search.space import OBJECTIVE, Param, preset_of

EPOCH_COLUMNS = [
    "trial_id", "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "epoch_s", "eval_s",
    "examples_per_s", "tokens_per_s", "padding_fraction", "time", "trial_time_s", "node_id", "hostname",
    "device", "lstm", "gpu_ids",
]
TRIAL_HEAD = ["trial_id", "number", "preset", "state", "reason"]
TRIAL_TAIL = [
    "epochs", "best_epoch", "val_accuracy", "val_loss", "train_accuracy", "examples_per_s", "tokens_per_s",
    "epoch_s", "setup_s", "started_at", "ended_at", "node_id", "hostname", "device", "lstm", "gpu_ids", "cpus",
]


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def write_rows(path: Path, columns: list[str], rows: list[dict]) -> None:
    """Replace a CSV table at once (missing values empty, extra keys dropped)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, columns, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def _creation_number(trial, default: int) -> int:
    """Tune's counter of created trials, the head of its experiment tag ("3_depth=2,...")."""
    head = str(getattr(trial, "experiment_tag", "")).split("_")[0]
    return int(head) if head.isdigit() else default


class TrialLog(tune.Callback):
    def __init__(
        self, run_dir: Path, space: tuple[Param, ...], max_epochs: int, cpus_per_trial: float,
        num_trials: int, time_budget_s: float | None,
    ):
        self.run_dir = Path(run_dir)
        self.num_trials = num_trials
        self.time_budget_s = time_budget_s
        self.started = time.time()
        self.space = space
        self.max_epochs = max_epochs
        self.cpus = cpus_per_trial
        self.budget_hit = False
        self.trials: dict[str, dict] = {}
        self.epochs: dict[str, list[dict]] = {}

    def setup(self, **info):
        """Start from the tables on disk: a resumed run keeps the rows of its first part."""
        self.started = time.time()
        self.trials = {row["trial_id"]: row for row in read_rows(self.trials_csv)}
        self.epochs = {}
        rows = read_rows(self.epochs_csv)
        for row in rows:
            self.epochs.setdefault(row["trial_id"], []).append(row)
        if rows and list(rows[0]) != EPOCH_COLUMNS:  # written by another version: new rows must line up
            write_rows(self.epochs_csv, EPOCH_COLUMNS, rows)

    @property
    def trials_csv(self) -> Path:
        return self.run_dir / "trials.csv"

    @property
    def epochs_csv(self) -> Path:
        return self.run_dir / "epochs.csv"

    # ------------------------------------------------------------ Tune's hooks

    def on_trial_start(self, iteration, trials, trial, **info):
        row = self._row(trial)
        row.update(state="running", reason="")
        row["started_at"] = row.get("started_at") or time.time()
        self._write_trials()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if "val_accuracy" not in result:
            return
        epoch = {k: result.get(k, "") for k in EPOCH_COLUMNS}
        epoch["trial_id"] = trial.trial_id
        self.epochs.setdefault(trial.trial_id, []).append(epoch)
        new_file = not self.epochs_csv.exists()
        with self.epochs_csv.open("a", newline="") as f:
            writer = csv.DictWriter(f, EPOCH_COLUMNS)
            if new_file:
                writer.writeheader()
            writer.writerow(epoch)
        row = self._row(trial)
        row.update(state="running", **{k: result.get(k, "") for k in ("node_id", "hostname", "device", "lstm", "gpu_ids")})
        if "setup_s" in result:
            row["setup_s"] = result["setup_s"]
        self._summarize(row)
        self._write_trials()

    def on_trial_complete(self, iteration, trials, trial, **info):
        row = self._row(trial)
        done = int(row.get("epochs") or 0)
        if done >= self.max_epochs:
            row.update(state="completed", reason="")
        elif self.budget_hit:
            row.update(state="stopped_early", reason=f"time budget ran out after epoch {done}")
        else:
            row.update(
                state="stopped_early",
                reason=f"ASHA stopped it after epoch {done}: {OBJECTIVE.metric} below its rung's cut-off",
            )
        row["ended_at"] = time.time()
        self._write_trials()
        self._print_progress()

    def on_trial_error(self, iteration, trials, trial, **info):
        row = self._row(trial)
        error = trial.get_error()
        message = str(error).strip().splitlines()[-1] if error and str(error).strip() else "the trial raised an error"
        row.update(state="errored", reason=message[:300], ended_at=time.time())
        self._write_trials()
        self._print_progress()

    def on_step_end(self, iteration, trials, **info):
        if self.time_budget_s and time.time() - self.started >= self.time_budget_s:
            self.budget_hit = True

    def _print_progress(self) -> None:
        counts = self.counts()
        done = counts["completed"] + counts["stopped_early"] + counts["errored"]
        line = (
            f"[search] {done} of {self.num_trials} trials done ({counts['completed']} completed, "
            f"{counts['stopped_early']} stopped early, {counts['errored']} errored)"
        )
        scored = [r for r in self.trials.values() if r.get("val_accuracy") not in (None, "")]
        if scored:
            best = max(scored, key=lambda r: float(r["val_accuracy"]))
            line += f"; best {OBJECTIVE.metric} {float(best['val_accuracy']):.4f} ({best['trial_id']}{' ' + best['preset'] if best['preset'] else ''})"
        elapsed = time.time() - self.started
        line += f"; {elapsed / 60:.1f} min elapsed"
        if self.time_budget_s:
            line += f", {max(0.0, self.time_budget_s - elapsed) / 60:.1f} min of the budget left"
        print(line, flush=True)

    # ------------------------------------------------------------ rows

    def _row(self, trial) -> dict:
        if trial.trial_id not in self.trials:
            params = {p.name: trial.config.get(p.name) for p in self.space}
            self.trials[trial.trial_id] = {
                "trial_id": trial.trial_id,
                "number": _creation_number(trial, default=len(self.trials) + 1),
                "preset": preset_of(params, self.space),
                "state": "pending",
                **params,
                "cpus": self.cpus,
            }
        return self.trials[trial.trial_id]

    def _summarize(self, row: dict) -> None:
        by_epoch = {int(e["epoch"]): e for e in self.epochs[row["trial_id"]]}  # a resumed epoch: last wins
        epochs = [by_epoch[k] for k in sorted(by_epoch)]
        best = max(epochs, key=lambda e: float(e[OBJECTIVE.metric]) * (1 if OBJECTIVE.mode == "max" else -1))
        mean = lambda key: sum(float(e[key]) for e in epochs) / len(epochs)
        row.update(
            epochs=len(epochs),
            best_epoch=best["epoch"],
            val_accuracy=best["val_accuracy"],
            val_loss=best["val_loss"],
            train_accuracy=epochs[-1]["train_accuracy"],
            examples_per_s=mean("examples_per_s"),
            tokens_per_s=mean("tokens_per_s"),
            epoch_s=mean("epoch_s"),
        )

    def _write_trials(self) -> None:
        columns = TRIAL_HEAD + [p.name for p in self.space] + TRIAL_TAIL
        write_rows(self.trials_csv, columns, sorted(self.trials.values(), key=lambda r: int(r["number"])))

    def stop_for_budget(self) -> None:
        """The time budget ended the search: trials it cut short are stopped early, not running."""
        for row in self.trials.values():
            if row["state"] in ("running", "pending"):
                done = int(row.get("epochs") or 0)
                row.update(state="stopped_early", reason=f"time budget ran out after epoch {done}", ended_at=time.time())
        self.budget_hit = True
        self._write_trials()

    def interrupted(self, num_trials: int) -> bool:
        """Tune returned before every trial ended (Ctrl-C, or the driver was stopped)."""
        counts = self.counts()
        ended = counts["completed"] + counts["stopped_early"] + counts["errored"]
        return ended < counts["total"] or (counts["total"] < num_trials and not self.budget_hit)

    def counts(self) -> dict[str, int]:
        states = [row["state"] for row in self.trials.values()]
        return {s: states.count(s) for s in ("completed", "stopped_early", "errored")} | {"total": len(states)}
