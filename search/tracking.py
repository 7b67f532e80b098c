"""The run directory's trial tables, kept current while Tune runs (see docs/run-directory.md).

`TrialTable` is a Tune callback on the driver: it appends a row to epochs.csv for every
reported epoch and a trial's row to trials.csv's ledger (`runfiles.trials`) when the trial ends
or records a checkpoint. It rewrites trials.csv (and saves the scheduler's state), each a cost
that grows with the trials, only once the events since the last rewrite have paid for it
(`ROWS_PER_EVENT` rows each), at most every `TABLE_WRITE_EVERY_S` seconds, and once more when
Tune stops, so its cost per result does not grow with the number of trials. A driver
killed outright loses no ended trial (the ledger holds it) and at most the last seconds of
running trials' rows; epochs.csv and the study keep those, and a resume rebuilds the rows from
them (`TrialTable.reload`, `search.tuner.reconcile`). A trial's state comes from
Tune's own events (started, ended, raised) plus why it ended: the scheduler's reason for
stopping it, or the trial's own report that its loss diverged; `search.searcher.trial_ending`
classifies it, for this table and the study alike. `TrialsToMLflow` (with --mlflow) sends
the same trials to an MLflow tracking server.
"""

from __future__ import annotations

import math
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from ray import tune
from ray.air.integrations.mlflow import MLflowLoggerCallback
from ray.train.constants import CHECKPOINT_DIR_NAME

from runfiles.cli import machine_fault
from runfiles.io import append_row, read_rows, write_rows
from runfiles.layout import (
    EPOCH_COLUMNS,
    OBJECTIVE,
    OBJECTIVES,
    ORIGIN,
    Objective,
    Param,
    RunDir,
    State,
    as_float,
    names,
    trial_columns,
    trial_id,
)
from runfiles.trials import fold, read_trials, record_row
from search import internals
from search.console import Progress
from search.mlflow_tracking import allow_file_store, experiment_name
from search.scheduler import LATENCY, LatencyLimit, Ledger, StoppingScheduler, scheduler_path
from search.searcher import NUMBER, trial_ending
from search.space import preset_of

EPOCH_NAMES = names(EPOCH_COLUMNS)
TABLE_WRITE_EVERY_S = 2.0
"""Seconds at least between two rewrites of trials.csv while Tune runs (a rewrite costs O(trials))."""
ROWS_PER_EVENT = 10
"""Rows of trials.csv each of Tune's events on a trial (started, reported, checkpointed, ended) pays
for: a rewrite of every row waits until the events since the last one have paid for it, so the
rows rewritten per event stay at most this many however many trials there are (the appended rows
come on top: one per result in epochs.csv, one per checkpoint or end in the ledger). A run of
1,000 trials rewrites trials.csv about every 100 events."""
PLACE = ("node_id", "hostname", "device", "lstm", "gpu_ids")
"""Where a trial trained, in each result, epochs.csv and trials.csv (its last epoch's)."""
MEMORY_CUT = ("review_tokens", "reviews_cut")
"""What a trial reports of the reviews its memory cut (search.train.review_tokens), kept in trials.csv."""


class TrialTable(tune.Callback):
    """trials.csv and epochs.csv of one run directory, earlier sessions' rows kept."""

    def __init__(
        self,
        run_dir: RunDir,
        space: tuple[Param, ...],
        ledger: Ledger,
        scheduler: StoppingScheduler,
        cpus_per_trial: float,
        progress: Progress,
        objective: Objective = OBJECTIVE,
        max_latency_ms: float | None = None,
        write_every_s: float = TABLE_WRITE_EVERY_S,
    ):
        self.write_every_s, self.next_write_at, self.stale_checkpoints = write_every_s, -math.inf, set()
        self.displaced: dict[str, set[str]] = defaultdict(set)
        """Per trial, the checkpoints its latest result's displaced, until Tune registers that one."""
        self.credit, self.rows_written = 0, 0
        """Rows a rewrite may cost now (`ROWS_PER_EVENT` per event since the last); rows written in all."""
        self.run_dir, self.space, self.ledger, self.scheduler = run_dir, tuple(space), ledger, scheduler
        self.objective, self.max_latency_ms = objective, max_latency_ms
        self.param_names = [p.name for p in self.space]
        self.cpus, self.progress = cpus_per_trial, progress
        self.rows: dict[str, dict] = {}
        self._counts: Counter[str] = Counter()
        """Rows per state, kept by `_set_state`."""
        self.epochs: dict[str, list[dict]] = defaultdict(list)
        self.reload()

    def reload(self) -> None:
        """Read the tables back from the files: an earlier session's rows, or those a copy of this
        callback wrote elsewhere (with the Ray client, Tune runs on the cluster's head)."""
        self.rows.clear()
        self.rows.update((row["trial_id"], row) for row in read_trials(self.run_dir))
        self._counts = Counter(str(row["state"]) for row in self.rows.values())
        self.epochs.clear()
        epochs = read_rows(self.run_dir.epochs_csv)
        for row in epochs:
            self.epochs[row["trial_id"]].append(row)
        if epochs and list(epochs[0]) != EPOCH_NAMES:  # written with other columns: appended rows must line up
            write_rows(self.run_dir.epochs_csv, EPOCH_NAMES, epochs)
        for key, row in self.rows.items():  # rows the driver had not written yet when it stopped
            if self.epochs.get(key) and lags(row, self.epochs[key]):
                row.update(summarize(self.epochs[key], self.objective, self.max_latency_ms))

    # ------------------------------------------------------------ Tune's hooks

    def on_trial_start(self, iteration, trials, trial, **info):
        row = self._row(trial)
        self._set_state(row, State.RUNNING, "")
        row["started_at"] = row.get("started_at") or time.time()
        self.write()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if "epoch" not in result:
            return
        row = self._row(trial)
        epoch = {name: result.get(name, "") for name in EPOCH_NAMES} | {"trial_id": row["trial_id"]}
        append_row(self.run_dir.epochs_csv, EPOCH_NAMES, epoch)
        self.rows_written += 1
        self.epochs[row["trial_id"]].append(epoch)
        row.update({k: result.get(k, "") for k in MEMORY_CUT})
        if "setup_s" in result:
            row["setup_s"] = result["setup_s"]
        row.update(summarize(self.epochs[row["trial_id"]], self.objective, self.max_latency_ms))
        if result.get(CHECKPOINT_DIR_NAME):  # the trial stored it before it reported (ray.train's session.report)
            checkpoint = internals.reported_checkpoint(trial, result[CHECKPOINT_DIR_NAME])
            self.displaced[row["trial_id"]] |= self._keep(row, _uri(checkpoint), result["epoch"])
        self.write()
        self.progress.epoch(row, self.ledger.used)

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        """The checkpoint Tune registers, a step after its result, which kept it already (Tune asks
        the trial for it in a separate task, which a stop in between drops). Only now are the
        checkpoints it displaced deleted: until then a retry would restore Tune's previous one."""
        row = self._row(trial)
        displaced, uri = self.displaced.pop(row["trial_id"], set()), _uri(checkpoint)
        if row.get("checkpoint") != self._relative(uri):
            displaced |= self._keep(row, uri, trial.last_result.get("epoch"))
        self.stale_checkpoints |= displaced - {row.get("checkpoint"), row.get("best_checkpoint")}
        self.write()

    def _keep(self, row: dict, uri: str, epoch) -> set[str]:
        """Keep a trial's latest checkpoint (to resume) and its best epoch's (to export), named in
        the ledger at once (a driver stopped or killed before the next rewrite trains nothing
        reported again); the checkpoints this displaces, to delete once Tune has the new one."""
        before = {row.get("checkpoint"), row.get("best_checkpoint")}
        path = self._relative(uri)
        row["checkpoint"] = path
        if str(epoch) == str(row.get("best_epoch")):
            row["best_checkpoint"] = path
        self._record(row)
        return before - {row["checkpoint"], row["best_checkpoint"], "", None}

    def on_experiment_end(self, trials, **info):
        self.write(now=True)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._end(trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        error = _stop_on_machine_fault(_error_text(trial))
        message = error.splitlines()[-1] if error else "the trial raised an error"
        where = f" (log: {self._relative(str(Path(trial.path) / Path(trial.error_file).name))})" if trial.error_file else ""
        self._end(trial, error=message[:300] + where)

    def on_trial_recover(self, iteration, trials, trial, **info):
        row = self._row(trial)
        error = _stop_on_machine_fault(_error_text(trial))
        row["reason"] = "retried from its last checkpoint after: " + (error.splitlines()[-1][:200] if error else "an error")
        self.write()

    # ------------------------------------------------------------ rows

    def _row(self, trial) -> dict:
        return self.add(int(trial.config[NUMBER]), trial.config)

    def add(self, number: int, params: dict) -> dict:
        """The row of study trial `number`, added (pending) if the table has none yet."""
        key = trial_id(number)
        if key not in self.rows:
            values = {name: params.get(name) for name in self.param_names}
            self.rows[key] = {
                "trial_id": key,
                "number": number,
                "preset": preset_of(values, self.space),
                ORIGIN: params.get(ORIGIN) or "",
                "state": State.PENDING,
                **values,
                "cpus": self.cpus,
            }
            self._counts[State.PENDING.value] += 1
        return self.rows[key]

    def _set_state(self, row: dict, state: State, reason: str) -> None:
        """Set a row's state and reason, and the count of rows per state (`counts`)."""
        self._counts[str(row["state"])] -= 1
        self._counts[str(state)] += 1
        row.update(state=state, reason=reason)

    def _end(self, trial, error: str | None = None) -> None:
        """Record how a trial ended (`search.searcher.trial_ending`, the study's rule too)."""
        row = self._row(trial)
        scored = math.isfinite(as_float(row.get(self.objective.metric)))  # its best epoch's, earlier sessions' included
        state, reason = trial_ending(trial.last_result, self.ledger.reasons.get(trial.trial_id), scored, error)
        self._set_state(row, state, reason)
        if state in (State.DIVERGED, State.ERRORED):  # no value worth ranking
            row.update(val_accuracy="", val_loss="", val_macro_f1="")
        row["ended_at"] = time.time()
        self.epochs.pop(row["trial_id"], None)  # its row holds their summary; epochs.csv keeps them
        internals.forget_metric_statistics(trial, keep=OBJECTIVES)  # the driver's memory stays flat in ended trials
        self._record(row)  # how a trial ended is never left to a later rewrite
        self.write()
        self.progress.trial_ended(row, self.counts())

    def _record(self, row: dict) -> None:
        record_row(self.run_dir, row)
        self.rows_written += 1

    def _relative(self, path: str | None) -> str:
        """A path under the run directory relative to it (portable when the folder moves)."""
        if not path or "://" in path:
            return path or ""
        try:
            return str(Path(path).resolve().relative_to(self.run_dir.root.resolve()))
        except ValueError:
            return str(path)

    def mark(self, rows: list[dict], state: State, reason: Callable[[int], str]) -> None:
        """Set the state of trials the driver ended itself (the time budget ran out), each with
        `reason(epochs it trained)`, and print each one's line."""
        for row in rows:
            self._set_state(row, state, reason(int(row.get("epochs") or 0)))
            row["ended_at"] = row.get("ended_at") or time.time()
        self.write(now=True)
        for row in rows:
            self.progress.trial_ended(row, self.counts())

    def write(self, now: bool = False) -> None:
        """Rewrite trials.csv (removing its ledger, `runfiles.trials.fold`) and save the scheduler's
        state, unless `now` is False and it is too early: under `write_every_s` seconds since the
        last rewrite, or fewer than one row per trial paid for by the events since then
        (`ROWS_PER_EVENT` each; this call is one). Then delete the checkpoints no row names any
        more (only once the file no longer names them, so a resume never looks for a deleted one)."""
        self.credit += ROWS_PER_EVENT
        if not now and (time.monotonic() < self.next_write_at or self.credit < len(self.rows)):
            return
        ordered = sorted(self.rows.values(), key=lambda r: int(r["number"]))
        fold(self.run_dir, ordered, trial_columns(self.param_names))
        if self.scheduler is not None:
            self.scheduler.save(str(scheduler_path(self.run_dir)))
        self.rows_written += len(ordered)
        self.credit, self.next_write_at = 0, time.monotonic() + self.write_every_s
        for stale in self.stale_checkpoints:
            delete_checkpoint(self.run_dir, stale)
        self.stale_checkpoints.clear()

    def counts(self) -> dict[str, int]:
        """Trials per state, plus "total" (kept as states change, not counted from the rows)."""
        return {s.value: self._counts[s.value] for s in State} | {"total": len(self.rows)}


def lags(row: dict, epochs: list[dict]) -> bool:
    """Whether a trials.csv row misses epochs that epochs.csv holds (written after the row's last rewrite);
    a diverged or errored trial's emptied values stay empty."""
    if str(row.get("state")) in (State.DIVERGED, State.ERRORED):
        return False
    return as_float(row.get("epochs")) != max(as_float(e["epoch"]) for e in epochs)


def _uri(checkpoint) -> str:
    """A checkpoint's path as a local path, or a URI (s3://...) on another filesystem."""
    kind = getattr(checkpoint.filesystem, "type_name", "local")
    return checkpoint.path if kind == "local" else f"{kind}://{checkpoint.path}"


def _stop_on_machine_fault(error: str) -> str:
    """A trial's error text; a full or read-only disk instead stops the whole run (raised out of
    Tune to the driver, which says so in one line), leaving the trial RUNNING in the study so that
    a resume continues it, rather than counting it errored."""
    fault = machine_fault(RuntimeError(error))
    if fault is not None:
        raise RuntimeError(f"a trial could not write: {error.strip().splitlines()[-1]}")
    return error


def _error_text(trial) -> str:
    """The trial's error log as Tune wrote it on the driver (storage gets a copy later)."""
    if trial.error_file and Path(trial.error_file).is_file():
        return Path(trial.error_file).read_text(errors="replace").strip()
    return str(trial.get_error() or "").strip()


def delete_checkpoint(run_dir: RunDir, path: str) -> None:
    """Remove a checkpoint folder recorded in trials.csv (a path under the run directory, or a URI)."""
    import pyarrow.fs

    if "://" in path:
        filesystem, inside = pyarrow.fs.FileSystem.from_uri(path)
        filesystem.delete_dir(inside)
    else:
        shutil.rmtree(run_dir.root / path, ignore_errors=True)


def summarize(epochs: list[dict], objective: Objective = OBJECTIVE, max_latency_ms: float | None = None) -> dict:
    """A trial's row from its epoch rows: best epoch by `objective`, means, examples processed,
    where its last epoch trained (PLACE), the median latency_ms, and whether it meets
    `max_latency_ms` (feasible yes/no by `LatencyLimit`; empty without one)."""
    by_epoch = {int(as_float(e["epoch"])): e for e in epochs}  # an epoch reported twice: the last row wins
    ordered = [by_epoch[k] for k in sorted(by_epoch)]
    scored = [e for e in ordered if not math.isnan(as_float(e.get(objective.metric)))]
    mean = lambda key: sum(as_float(e[key]) for e in ordered) / len(ordered)
    row = {
        "epochs": max(by_epoch),
        "train_accuracy": ordered[-1]["train_accuracy"],
        "examples": int(sum(v for v in (as_float(e.get("examples")) for e in epochs) if not math.isnan(v))),
        "examples_per_s": mean("examples_per_s"),
        "tokens_per_s": mean("tokens_per_s"),
        "epoch_s": mean("epoch_s"),
        **{key: ordered[-1].get(key, "") for key in PLACE},
    }
    latencies = [v for v in (as_float(e.get(LATENCY)) for e in ordered) if not math.isnan(v)]
    if latencies:
        row[LATENCY] = float(np.median(latencies))
        if max_latency_ms is not None:
            row["feasible"] = "yes" if LatencyLimit(max_latency_ms).feasible(row[LATENCY]) else "no"
    if scored:
        best = min(scored, key=lambda e: objective.worst_first(as_float(e[objective.metric])))
        row.update({k: best.get(k, "") for k in ("val_accuracy", "val_loss", "val_macro_f1")}, best_epoch=best["epoch"])
    return row


class TrialsToMLflow(MLflowLoggerCallback):
    """Ray Tune's MLflowLoggerCallback, with runs named by trial id and the trial's state as tags.

    `rows` maps a trial id to its trials.csv row (search.tracking.TrialTable.rows); placed after
    the trial table among Tune's callbacks, it reads the row the table has just ended.
    """

    def __init__(self, uri: str, run_dir: RunDir, rows: dict[str, dict]):
        super().__init__(tracking_uri=uri, experiment_name=experiment_name(run_dir), tags={"run_dir": experiment_name(run_dir)})
        self.rows = rows

    def setup(self, *args, **kwargs) -> None:
        allow_file_store(self.tracking_uri)  # where Tune runs: here, or on the cluster's head with the Ray client
        super().setup(*args, **kwargs)

    def log_trial_start(self, trial) -> None:
        runs = internals.mlflow_runs(self)
        if trial not in runs:
            name = trial_id(int(trial.config[NUMBER]))
            run = self.mlflow_util.start_run(tags={**self.tags, "trial_id": name}, run_name=name)
            runs[trial] = run.info.run_id
            self.mlflow_util.log_params(run_id=runs[trial], params_to_log=trial.config)

    def log_trial_result(self, iteration: int, trial, result: dict) -> None:
        run_id = internals.mlflow_runs(self)[trial]
        self.mlflow_util.log_metrics(run_id=run_id, metrics_to_log=result, step=int(result.get("epoch", iteration)))

    def log_trial_end(self, trial, failed: bool = False) -> None:
        import mlflow

        row = self.rows.get(trial_id(int(trial.config[NUMBER])), {})
        client = mlflow.MlflowClient(self.tracking_uri)
        for key in ("state", "reason"):
            client.set_tag(internals.mlflow_runs(self)[trial], key, row.get(key, ""))
        super().log_trial_end(trial, failed)
