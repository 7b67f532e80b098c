"""The tuner phase of a run: which LSTM trials use, and a Ray Tune Tuner on the run's study.

A new run starts a study with the tutorial's two models queued first, then the space's
start point (`search.space.start_point`). A resumed run
reads the study, which is the run's record of its trials: those a stopped driver left
RUNNING continue under their own numbers from their latest checkpoints, a table row the
driver did not get to update takes the study's word, and the budgets count what earlier
sessions spent. The searcher is `search.searcher`; what stops trials, `search.scheduler`.
"""

from __future__ import annotations

import math
import re
import signal
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import optuna
from ray import tune
from ray.exceptions import OutOfMemoryError, RayActorError

from models import kernels, lstm_for
from runfiles.cli import UsageError
from runfiles.documents import LstmFacts, Resources, RunFacts
from runfiles.io import read_rows
from runfiles.layout import ADDED, RunDir, State, as_float, trial_columns, trial_id
from runfiles.trials import examples_used, fold, read_trials
from search import internals, warm
from search.cluster import storage_path
from search.config import SearchConfig
from search.console import Progress
from search.scheduler import Ledger, StoppingScheduler, TimeBudget, scheduler_path
from search.searcher import (
    NUMBER,
    STUDY_STATES,
    StudySearch,
    Unfinished,
    best_reported,
    load_sampler,
    new_sampler,
    open_study,
    started_trials,
)
from search.session import Session
from search.space import optuna_space
from search.tracking import TrialsToMLflow, TrialTable, lags, summarize
from search.trainable import bilstm


def choose_lstm(search: SearchConfig, resources: Resources, progress: Progress) -> LstmFacts:
    """The LSTM trials use, as run.json records it; builds the fused kernel first when wanted.

    Trials on a GPU take 'auto' as Keras's layers (`models.lstm_for`). Raises UsageError for
    --lstm fused on a machine that cannot build the kernel; with 'auto', says once why it
    falls back to Keras's layers.
    """
    if lstm_for(search.lstm, on_gpu=resources.gpus_per_trial > 0) == "keras":
        return LstmFacts(requested=search.lstm, trials=search.lstm)
    try:
        library = kernels.build()
    except kernels.KernelBuildError as error:
        if search.lstm == "fused":
            raise UsageError(f"--lstm fused: {error}") from None
        progress.warn(f"trials use Keras's LSTM layers: the fused kernel is unavailable here ({error})")
        return LstmFacts(requested=search.lstm, trials="keras", reason=str(error))
    return LstmFacts(requested=search.lstm, trials=search.lstm, kernel=str(library))


@dataclass
class Built:
    """The tuner of one session and the pieces the outcome phase reads back."""

    table: TrialTable
    ledger: Ledger
    time_budget: TimeBudget
    trials: int = 0
    concurrency: int = 1
    searcher: StudySearch | None = None
    tuner: object | None = None
    search_s: float = 0.0

    @property
    def runnable(self) -> bool:
        return self.tuner is not None

    def fit(self, progress: Progress) -> None:
        """Run the trials, showing progress; returns when Tune does (finished, stopped or interrupted).
        `search_s` counts from the time budget's start, as its deadline does, so that a search the
        budget ended records at least the budget (a resume then finds it spent)."""
        time_left = None if self.time_budget.deadline is None else self.time_budget.deadline - time.time()
        progress.start(
            self.table.rows,
            self.trials,
            self.concurrency,
            self.ledger.budget_examples,
            time_left,
            self.ledger.used,
            self.table.param_names,
            self.table.objective,
        )
        ctrl_c = signal.getsignal(signal.SIGINT)
        try:
            with memory_kills_fail_trials(), internals.trial_results_unread():
                self.tuner.fit()  # its ResultGrid goes unused: the tables hold the trials
        finally:
            # Tune leaves its SIGINT handler in place when no signal came (Ray 2.60), so the next Ctrl-C
            # (or SIGTERM, runfiles.cli.stop_on_sigterm), during the export, would only set its flag
            signal.signal(signal.SIGINT, ctrl_c)
            progress.stop()
            self.search_s = time.time() - self.time_budget.start
        self.table.reload()  # what Tune's own copies of the callbacks wrote (the Ray client runs them remotely)
        self.ledger.used = examples_used(self.table.run_dir)
        self.ledger.exhausted = self.ledger.exhausted or not self.ledger.can_fund_epoch()

    def searcher_done(self) -> bool:
        """Whether the searcher created every trial it was asked for (or the budget stopped it), counted
        from the study once: with the Ray client, Tune's copy of the searcher ran on the cluster's head,
        so this one's own count (`StudySearch.study_size`) never moved."""
        if self.searcher is None or self.ledger.exhausted:
            return True
        return started_trials(self.searcher.study) >= self.searcher.total


class KilledForMemory(RayActorError):
    """A trial's worker that Ray's memory monitor killed, as Tune's actor manager understands a dead worker."""


def memory_kills_fail_trials():
    """While Tune runs, a trial whose worker Ray kills for memory fails as a trial, not the driver.

    Ray reports a worker its memory monitor killed as `ray.exceptions.OutOfMemoryError`, which
    is no `RayActorError`; Tune's actor manager (Ray 2.60) raises RuntimeError("Caught unexpected
    exception") out of `Tuner.fit` for any failure of a trial's task that is neither a dead actor
    nor a task's error, so one trial that outgrew the node's memory ended the search with a
    traceback. Here that failure, and a worker killed while it starts, are handed on as the dead
    actor they are (`KilledForMemory`, one line that says why; `search.internals.actor_failures_through`),
    so Tune retries the trial from its last checkpoint up to --max-failures times and then counts
    it errored, as for a worker killed any other way.
    """
    return internals.actor_failures_through(as_dead_worker)


def as_dead_worker(exception: Exception) -> Exception:
    """A failure of a trial's task as Tune's actor manager should see it: a worker killed for memory
    as a dead worker (`KilledForMemory`), any other failure as it is."""
    if isinstance(exception, OutOfMemoryError):
        return KilledForMemory(error_msg=killed_for_memory(str(exception)))
    return exception


def killed_for_memory(message: str) -> str:
    """Ray's many-line OutOfMemoryError → one line: what was killed, the node's memory, what would help."""
    used = re.search(r"was ([\d.]+GB) used / ([\d.]+GB) limit", message)
    threshold = re.search(r"threshold of \d+B \(([\d.]+)% of", message)
    node = f": the node used {used[1]} of {used[2]}" if used else ""
    limit = f", over Ray's {float(threshold[1]):g}% limit" if threshold and used else ""
    return (
        f"Ray killed the trial's worker for memory{node}{limit} (fewer trials at once with --cpus-per-trial, "
        "or --fix a smaller batch_size, width or max_len, leaves each more)"
    )


def build(session: Session) -> Built:
    """Everything a session needs to fit, from run.json as the session wrote it (`Session.facts`);
    `Built.tuner` is None when nothing is left to run."""
    run_dir, search, facts = session.run_dir, session.search, session.facts
    params = [p.name for p in session.space]
    unfinished = reconcile(run_dir, search, params, set(optuna_space(session.space))) if session.resume else []
    ledger = Ledger(len(session.prepared.splits["train"]), search.budget_examples, examples_used(run_dir))
    time_left = None if search.time_budget_s is None else search.time_budget_s - time_used(facts)
    scheduler = StoppingScheduler(ledger, search.max_epochs, search.grace_period, search.ranking, search.max_latency_ms)
    if session.resume and scheduler_path(run_dir).exists():
        scheduler.restore(str(scheduler_path(run_dir)))
    elif session.warm_plan:
        warm.seed_rungs(scheduler, session.warm_plan.trials, search.ranking)
    table = TrialTable(
        run_dir,
        session.space,
        ledger,
        scheduler,
        session.resources.cpus_per_trial,
        session.progress,
        search.ranking,
        search.max_latency_ms,
    )
    built = Built(table, ledger, TimeBudget(time_left, time.time()), search.trials, session.resources.concurrency)
    study_size = started_trials(open_study(run_dir)) if session.resume else 0
    remaining = len(unfinished) + max(0, search.trials - study_size)
    if remaining == 0 or not ledger.can_fund_epoch() or (time_left is not None and time_left <= 0):
        ledger.exhausted = remaining > 0
        return built
    built.searcher = _searcher(session, facts, ledger, unfinished, study_size)
    built.tuner = _tuner(session, built, scheduler, facts.lstm, unfinished, remaining)
    return built


def _searcher(session: Session, facts: RunFacts, ledger: Ledger, unfinished: list[Unfinished], study_size: int) -> StudySearch:
    """Optuna on the run's study; a new run queues the points run.json records (the tutorial's
    models, then the start point, if any)."""
    search = session.search
    if session.resume:
        sampler = load_sampler(
            session.run_dir, study_size, search.seed, search.startup_trials, search.max_latency_ms, search.tpe_trials
        )
        presets = []
    else:
        sampler = new_sampler(search.seed, search.startup_trials, search.max_latency_ms, search.tpe_trials)
        presets = [*facts.presets.values(), *[point for point in [facts.start_point] if point]]
        if session.warm_plan:  # the earlier runs' trials, then their configurations, ahead of the presets
            warm.seed_study(session.run_dir, session.warm_plan, search.ranking)
            presets = warm.untried(presets, session.warm_plan)
    space = optuna_space(session.space)
    return StudySearch(space, session.run_dir, ledger, sampler, presets, unfinished, search.trials, search.ranking)


def _tuner(
    session: Session, built: Built, scheduler: StoppingScheduler, lstm: LstmFacts, unfinished: list[Unfinished], samples: int
):
    resources = session.resources
    trainable = tune.with_parameters(
        bilstm,
        data=session.prepared.for_trials(),
        resume_from={u.number: u.checkpoint for u in unfinished},
        train_base=session.train_base(lstm.trials),
    )
    return tune.Tuner(
        tune.with_resources(trainable, {"cpu": resources.cpus_per_trial, "gpu": resources.gpus_per_trial}),
        tune_config=tune.TuneConfig(
            search_alg=built.searcher,
            scheduler=scheduler,
            num_samples=samples,
            max_concurrent_trials=resources.concurrency,
            trial_dirname_creator=_dirname,
            reuse_actors=True,  # a worker keeps TensorFlow loaded from one trial to the next
        ),
        run_config=tune.RunConfig(
            name=session.run_dir.tune.name,
            storage_path=storage_path(session.run_dir, session.search.storage),
            callbacks=[built.table, *_mlflow(session, built)],
            stop=built.time_budget,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),  # the trial table keeps the best and the latest
            failure_config=tune.FailureConfig(max_failures=session.search.max_failures),
            verbose=2 if session.verbose else 0,
        ),
    )


def _mlflow(session: Session, built: Built) -> list:
    """Ray Tune's MLflow callback (after the trial table, whose rows it reads), with --mlflow."""
    if not session.search.mlflow:
        return []
    return [TrialsToMLflow(session.search.mlflow, session.run_dir, built.table.rows)]


def _dirname(trial) -> str:
    """tune/trial_0003_<Tune's id>: the study's number first; Tune's id keeps sessions apart."""
    return f"{trial_id(int(trial.config[NUMBER]))}_{trial.trial_id}"


# ---------------------------------------------------------------- resuming


UNCONFIGURED = "the driver stopped while the sampler chose its configuration; never trained"
"""Why a resume ends a trial the study holds without every searched parameter."""


def reconcile(run_dir: RunDir, search: SearchConfig, params: list[str], searched: set[str]) -> list[Unfinished]:
    """The study's unfinished trials, and trials.csv (columns for the space's `params`) brought in
    line with the study.

    The ledger of trial ends (`runfiles.trials`) is folded into trials.csv. A trial the study ended
    but the table still shows running (the driver stopped between the two writes) takes the study's
    state and reason; one the table does not hold (trials.csv is rewritten every few seconds,
    `search.tracking.TABLE_WRITE_EVERY_S`; or it was cut short or edited, `runfiles.trials.lost_rows`)
    gets a row from the study, with its values from epochs.csv (`search.tracking.summarize`; the
    checkpoints it named and the reviews its memory cut are not known again), and a row cut short
    its parameters from the study. A running trial that lacks
    one of the `searched` parameters (the driver stopped inside the study's `ask`, between the
    trial's creation and its last parameter) cannot be continued: it ends errored (UNCONFIGURED),
    in the study and the table. A running trial whose epochs.csv holds its last epoch
    (`search.max_epochs`) with a value (the driver stopped between its last report and its end)
    has nothing left to train: it ends completed (`_end_trained`) instead of being continued.
    """
    table = read_trials(run_dir)  # trials.csv with the ends its ledger holds, folded in below
    rows = {int(row["number"]): row for row in table}
    epochs = defaultdict(list)
    for epoch in read_rows(run_dir.epochs_csv):
        epochs[epoch["trial_id"]].append(epoch)
    unfinished = []
    study = open_study(run_dir)
    for trial in study.get_trials(deepcopy=False):
        started = trial.state != optuna.trial.TrialState.WAITING and ADDED not in trial.user_attrs  # not queued, not added
        if trial.number not in rows and started:
            rows[trial.number] = {"trial_id": trial_id(trial.number), "number": trial.number, **trial.params}
            rows[trial.number].update(state=State.PENDING, reason="", **_times(trial))
            table.append(rows[trial.number])
        row = rows.get(trial.number)
        reports = epochs.get(trial_id(trial.number), [])
        if trial.state == optuna.trial.TrialState.RUNNING and not searched <= set(trial.params):
            _end_unconfigured(study, trial.number, row)
        elif trial.state == optuna.trial.TrialState.RUNNING and _trained_through(reports, search):
            _end_trained(study, trial, row, search)
        elif trial.state == optuna.trial.TrialState.RUNNING:
            reported = best_reported(trial, search.ranking)
            unfinished.append(Unfinished(trial.number, trial.params, _checkpoint(run_dir, row), reported))
        if row is not None:
            _repair(row, trial, reports, search)
    if table:
        fold(run_dir, table, trial_columns(params))
    return unfinished


def _repair(row: dict, trial: optuna.trial.FrozenTrial, epochs: list[dict], search: SearchConfig) -> None:
    """Bring trials.csv's `row` in line with its study `trial` and its `epochs`. A row cut short has
    None for the cells it lacks (csv.DictReader). From the study: the parameters a row lacks, a cut
    row's times, and an ended trial's state and reason where the row shows it pending or running,
    or is cut. From epochs.csv: its values where the row lags them or is cut (a diverged or
    errored trial's stay empty)."""
    cut = None in row.values()
    known = trial.params | (_times(trial) if cut else {})
    row.update({name: value for name, value in known.items() if row.get(name) in (None, "")})
    ended = trial.state != optuna.trial.TrialState.RUNNING and "state" in trial.user_attrs
    if ended and (cut or row["state"] in (State.PENDING, State.RUNNING)):
        row.update(state=trial.user_attrs["state"], reason=trial.user_attrs.get("reason", ""))
    if epochs and (cut or lags(row, epochs)) and str(row["state"]) not in (State.DIVERGED, State.ERRORED):
        row.update(summarize(epochs, search.ranking, search.max_latency_ms))


def _times(trial: optuna.trial.FrozenTrial) -> dict:
    """started_at and ended_at (Unix seconds) of a trial's row, from the study's datetimes."""
    ends = {"started_at": trial.datetime_start, "ended_at": trial.datetime_complete}
    return {key: when.timestamp() for key, when in ends.items() if when is not None}


def _end_unconfigured(study: optuna.Study, number: int, row: dict | None) -> None:
    """End study trial `number`, which never got its configuration, as errored (FAIL in the study)."""
    live = internals.stored_trial(study, number)
    live.set_user_attr("state", State.ERRORED)
    live.set_user_attr("reason", UNCONFIGURED)
    study.tell(number, state=optuna.trial.TrialState.FAIL)
    if row is not None:
        row.update(state=State.ERRORED, reason=UNCONFIGURED, ended_at=time.time())


def _trained_through(epochs: list[dict], search: SearchConfig) -> bool:
    """Whether a trial's epoch rows hold its last epoch (`search.max_epochs`) with a finite objective value."""
    last = {int(as_float(e["epoch"])): e for e in epochs}.get(search.max_epochs)  # an epoch reported twice: the last row
    return last is not None and math.isfinite(as_float(last.get(search.ranking.metric)))


def _end_trained(study: optuna.Study, trial: optuna.trial.FrozenTrial, row: dict | None, search: SearchConfig) -> None:
    """End a study trial that trained its last epoch but was not told of its end: COMPLETE with its
    best reported value in the study, completed in the table (as `search.searcher.StudySearch.tell`
    and the trial table end a trial that stopped by itself)."""
    live = internals.stored_trial(study, trial.number)
    live.set_user_attr("state", State.COMPLETED)
    study.tell(trial.number, best_reported(trial, search.ranking), state=STUDY_STATES[State.COMPLETED])
    if row is not None:
        row.update(state=State.COMPLETED, reason="", ended_at=time.time())


def _checkpoint(run_dir: RunDir, row: dict | None) -> tune.Checkpoint | None:
    path = (row or {}).get("checkpoint")
    if not path:
        return None
    full = path if "://" in path else str(run_dir.root.resolve() / path)  # Tune takes absolute paths only
    return tune.Checkpoint(full) if "://" in path or Path(full).is_dir() else None


def time_used(facts: RunFacts) -> float:
    """Seconds the run's earlier sessions spent searching."""
    return facts.search_s()
