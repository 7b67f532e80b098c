"""Where trials get stopped: ASHA, the examples budget and the time budget.

- `Ledger`: the examples budget and why each trial was stopped early, shared by the
  searcher (`search.searcher`), the scheduler and the trial tables of one driver session.
- `LatencyLimit`: which networks --max-latency-ms lets through, the one rule of the
  scheduler, the study's sampler and trials.csv.
- `StoppingScheduler`: ASHA on the objective, plus the examples budget and the latency
  limit, recording why it stops a trial.
- `TimeBudget`: ends every trial at once when the time budget runs out.
"""

from __future__ import annotations

import math
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from ray import tune
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from runfiles.layout import NUMBER, OBJECTIVE, Objective, RunDir, as_float, trial_id
from search import internals
from search.config import REDUCTION_FACTOR
from search.train import DIVERGED

SCHEDULER_FILE = "scheduler.pkl"


@dataclass
class Ledger:
    """Examples processed and committed against the budget, and why trials stopped early.

    An epoch is committed when it starts: a trial's first one when the searcher creates
    it, the next one when its scheduler lets it continue. Keys are Tune trial ids.
    """

    examples_per_epoch: int
    budget_examples: int | None = None
    used: int = 0
    """Examples of every reported epoch, earlier sessions included."""
    mid_epoch: set = field(default_factory=set)
    reasons: dict = field(default_factory=dict)
    """Why the scheduler or a budget stopped a trial, by Tune trial id."""
    exhausted: bool = False

    def can_fund_epoch(self, excluding: str | None = None) -> bool:
        """Whether one more epoch fits beside those in progress (other than `excluding`'s)."""
        if self.budget_examples is None:
            return True
        in_progress = len(self.mid_epoch - {excluding}) * self.examples_per_epoch
        return self.used + in_progress + self.examples_per_epoch <= self.budget_examples

    def remaining(self) -> int | None:
        """Examples the budget has left, or None without a budget."""
        return None if self.budget_examples is None else max(0, self.budget_examples - self.used)


LATENCY = "latency_ms"
"""A network's latency in ms per review at batch 1: the key of an epoch's result, and of a study
trial's user attribute (the median over its epochs so far)."""


@dataclass(frozen=True)
class LatencyLimit:
    """--max-latency-ms: whether a network is fast enough to ship, the one rule that the scheduler
    (which stops a trial over the limit), the study's sampler (this is its constraints_func: Optuna's
    constrained TPE ranks infeasible trials after every feasible one) and trials.csv (feasible yes
    or no) follow, each on the median of a trial's epochs so far (`MedianLatency`)."""

    limit_ms: float

    def excess_ms(self, latency_ms: float) -> float:
        """How far `latency_ms` (ms per review) lies over the limit, negative within it: feasible
        at 0 or below, as Optuna reads a constraint's value."""
        return latency_ms - self.limit_ms

    def feasible(self, latency_ms: float) -> bool:
        """Whether a network of this latency (ms per review) meets the limit (`excess_ms` <= 0)."""
        return self.excess_ms(latency_ms) <= 0

    def __call__(self, trial) -> list[float]:
        """Optuna's constraints_func: [`excess_ms`] of a study trial's latency. A trial that
        reported none counts as feasible: it diverged or errored, and TPE skips it anyway."""
        return [self.excess_ms(float(trial.user_attrs.get(LATENCY, self.limit_ms)))]


class MedianLatency:
    """Each Tune trial's `latency_ms` as reported, and their median so far: the rule of trials.csv
    (`search.tracking.summarize`, over the trial's epochs), kept by the scheduler (which stops a
    trial over --max-latency-ms) and the searcher (which tells the study). A trial continued by a
    resumed driver starts again from its next epoch's latency."""

    def __init__(self, values: dict[str, list[float]] | None = None):
        self._values: dict[str, list[float]] = dict(values or {})

    def add(self, trial_id: str, latency) -> float | None:
        """The median of the trial's latencies (ms per review) with `latency` added; None, and
        nothing added, where the result has none (a diverged epoch)."""
        latency = as_float(latency)
        if math.isnan(latency):
            return None
        self._values.setdefault(trial_id, []).append(latency)
        return float(np.median(self._values[trial_id]))

    def forget(self, trial_id: str) -> None:
        """Drop a trial that ended, so the record holds only running trials'."""
        self._values.pop(trial_id, None)


def rung_key(trial) -> str:
    """A Tune trial's key in ASHA's brackets and rungs: its study trial's id (trial_0003), which a
    trial a resumed driver continues keeps, where Tune gives it a new id."""
    return trial_id(int(trial.config[NUMBER]))


def in_rungs(trial) -> SimpleNamespace:
    """What Ray's ASHAScheduler is handed for a Tune trial: the trial as its rungs know it (`rung_key`);
    Ray's ASHA reads nothing of a trial but its id (Ray 2.60)."""
    return SimpleNamespace(trial_id=rung_key(trial))


class StoppingScheduler(ASHAScheduler):
    """ASHA on the objective, after the examples budget; records why it stops a trial.

    One rule for every trial, the queued ones included: a trial goes on only while its value
    at each rung it passed stays in the best 1/eta of all the trials that reached that rung
    (checked at every epoch once eta of them have). Ray's ASHA judges a trial once, when it
    reaches a rung, so the first trials to arrive (the queued tutorial models and start point)
    would pass every rung unopposed; rechecking makes the outcome that of synchronous
    successive halving without waiting for it.

    With `max_latency_ms` (its `LatencyLimit`), a trial whose network measured over the limit
    (the median of its epochs' `latency_ms` so far; its weights do not change it) is stopped
    there rather than trained on for nothing it could ship, and leaves the rungs, so it sets no
    cut-off for the feasible ones. ASHA's brackets and rungs are read through `search.internals`.

    The rungs hold a trial's values under its study trial's id (`rung_key`), not Tune's: a trial a
    resumed driver continues has a new Tune id, and under it ASHA would judge it again at once,
    at an epoch that is no rung, and count its configuration twice.
    """

    def __init__(
        self,
        ledger: Ledger,
        max_epochs: int,
        grace_period: int,
        objective: Objective = OBJECTIVE,
        max_latency_ms: float | None = None,
    ):
        super().__init__(
            time_attr="epoch",
            **objective.tune_kwargs,
            max_t=max_epochs,
            grace_period=grace_period,
            reduction_factor=REDUCTION_FACTOR,
        )
        self.ledger, self.max_epochs, self.objective = ledger, max_epochs, objective
        self.limit = None if max_latency_ms is None else LatencyLimit(max_latency_ms)
        self.latency = MedianLatency()
        """Each Tune trial's latency_ms so far."""
        self.infeasible: set[str] = set()
        """The trials (`rung_key`) whose median latency so far is over the limit."""

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        self.ledger.used += int(result.get("examples", 0))
        epoch = int(result["epoch"])
        if result.get(DIVERGED):  # the trial ends by itself; its NaN never enters a rung
            return TrialScheduler.CONTINUE
        latency = self.latency.add(trial.trial_id, result.get(LATENCY))
        if self.limit is not None and latency is not None and not self.limit.feasible(latency):
            self._leave_rungs(rung_key(trial))
            if epoch >= self.max_epochs:  # it ends by itself
                return TrialScheduler.CONTINUE
            self.ledger.reasons[trial.trial_id] = (
                f"over --max-latency-ms {self.limit.limit_ms:g} after epoch {epoch}: {latency:.2f} ms per review"
            )
            return TrialScheduler.STOP
        if epoch >= self.max_epochs:
            return super().on_trial_result(tune_controller, in_rungs(trial), result)
        if not self.ledger.can_fund_epoch(excluding=trial.trial_id):
            self.ledger.reasons[trial.trial_id] = f"examples budget spent after epoch {epoch}"
            return TrialScheduler.STOP
        decision = super().on_trial_result(tune_controller, in_rungs(trial), result)
        metric = self.objective.metric
        if decision == TrialScheduler.STOP:
            self.ledger.reasons[trial.trial_id] = (
                f"ASHA stopped it after epoch {epoch}: {metric} {result[metric]:.4f} worse than its rung's cut-off"
            )
            return decision
        overtaken = self._overtaken_at(rung_key(trial), epoch)
        if overtaken is not None:
            milestone, reached = overtaken
            self.ledger.reasons[trial.trial_id] = (
                f"ASHA stopped it after epoch {epoch}: its {metric} at epoch {milestone} fell below the best "
                f"1/{REDUCTION_FACTOR} of the {reached} trials that reached that rung"
            )
            return TrialScheduler.STOP
        return decision

    def _overtaken_at(self, key: str, epoch: int) -> tuple[int, int] | None:
        """(milestone, trials recorded there) of an earlier rung whose cut-off the value of the trial
        `key` (`rung_key`) there no longer meets, once eta trials reached it; None while it meets them all."""
        bracket = internals.bracket_of(self, key)
        for milestone, recorded in internals.rungs(bracket):
            value = recorded.get(key)
            if milestone >= epoch or value is None or len(recorded) < REDUCTION_FACTOR:
                continue
            if value < internals.rung_cutoff(bracket, recorded):
                return int(milestone), len(recorded)
        return None

    def _leave_rungs(self, key: str) -> None:
        """Mark the trial `key` (`rung_key`) infeasible and take back the values it recorded in its bracket's rungs."""
        self.infeasible.add(key)
        for _, recorded in internals.rungs(internals.bracket_of(self, key)):
            recorded.pop(key, None)

    def on_trial_add(self, tune_controller, trial) -> None:
        super().on_trial_add(tune_controller, in_rungs(trial))

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        self._ended(trial.trial_id)
        diverged = result is not None and result.get(self.objective.metric) is None  # null, never in a rung
        key = rung_key(trial)
        if diverged or key in self.infeasible:
            self.infeasible.discard(key)
            internals.forget_trial(self, key)
            return
        super().on_trial_complete(tune_controller, in_rungs(trial), result)

    def on_trial_error(self, tune_controller, trial) -> None:
        self._ended(trial.trial_id)
        super().on_trial_error(tune_controller, in_rungs(trial))

    def on_trial_remove(self, tune_controller, trial) -> None:
        self._ended(trial.trial_id)
        super().on_trial_remove(tune_controller, in_rungs(trial))

    def _ended(self, trial_id: str) -> None:
        """Drop what the scheduler kept of a trial only while it ran (its epoch in progress, its
        latencies), so its memory and saved state do not grow with the trials that ended; the rungs
        keep the values ASHA's cut-offs need."""
        self.ledger.mid_epoch.discard(trial_id)
        self.latency.forget(trial_id)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump({k: v for k, v in self.__dict__.items() if k != "ledger"}, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            state = pickle.load(f)
        if "latencies" in state:  # saved before MedianLatency: the same record as a plain dict
            state["latency"] = MedianLatency(state.pop("latencies"))
        if "max_latency_ms" in state:  # saved before LatencyLimit: the same limit as a number
            limit = state.pop("max_latency_ms")
            state["limit"] = None if limit is None else LatencyLimit(limit)
        self.__dict__.update(state)


class TimeBudget(tune.Stopper):
    """Stops the whole search once `budget_s` seconds have passed since `start` (Unix seconds)."""

    def __init__(self, budget_s: float | None, start: float):
        self.start = start
        self.deadline = None if budget_s is None else start + budget_s

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    @property
    def spent(self) -> bool:
        return self.deadline is not None and time.time() >= self.deadline

    def stop_all(self) -> bool:
        return self.spent


def scheduler_path(run_dir: RunDir) -> Path:
    """Where the trial tables keep ASHA's rungs, so a resumed run cuts trials as before."""
    return run_dir.tune / SCHEDULER_FILE
