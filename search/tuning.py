"""Ray Tune and Optuna, fitted to how this harness ranks, stops and resumes trials.

- `Ledger`: the examples budget and why each trial was stopped early, shared by the
  searcher, the scheduler and the trial tables of one driver session.
- `StudySearch`: Ray's `OptunaSearch` on the run's SQLite study, which is the run's record
  of which trials exist: a resumed run re-issues the study's unfinished trials (same
  number, same parameters, continued from their checkpoints) before asking Optuna for new
  ones. Optuna learns what the report ranks by: each epoch's intermediate value is the
  trial's best objective so far, a trial that trained every epoch is told COMPLETE with
  its best epoch's value, one stopped by ASHA or a budget PRUNED, one that diverged or
  raised FAIL.
- `StoppingScheduler`: ASHA, plus the examples budget, recording why it stops a trial.
- `TimeBudget`: ends every trial at once when the time budget runs out.
"""

from __future__ import annotations

import math
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from ray import tune
from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from runfiles.layout import OBJECTIVE, STUDY_NAME, RunDir, State, as_float
from search.train import DIVERGED

NUMBER = "trial_number"
"""The key of a trial's config that holds its study trial number."""
SAMPLER_FILE = "sampler.pkl"
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
    exhausted: bool = False

    def can_fund_epoch(self, excluding: str | None = None) -> bool:
        """Whether one more epoch fits beside those in progress (other than `excluding`'s)."""
        if self.budget_examples is None:
            return True
        in_progress = len(self.mid_epoch - {excluding}) * self.examples_per_epoch
        return self.used + in_progress + self.examples_per_epoch <= self.budget_examples

    def remaining(self) -> int | None:
        return None if self.budget_examples is None else max(0, self.budget_examples - self.used)


@dataclass
class Unfinished:
    """A study trial that a stopped driver left RUNNING: continued under its own number."""

    number: int
    params: dict
    checkpoint: object | None = None
    """A `tune.Checkpoint` of its latest epoch, or None when it had not finished one."""
    best: float = -math.inf


class StudySearch(OptunaSearch):
    """OptunaSearch on the run's study; see the module's docstring."""

    def __init__(
        self, space: dict, run_dir: RunDir, ledger: Ledger, sampler, presets: list[dict], unfinished: list[Unfinished], total: int
    ):
        super().__init__(
            space=space,
            metric=OBJECTIVE.metric,
            mode=OBJECTIVE.mode,
            points_to_evaluate=presets,
            sampler=sampler,
            study_name=STUDY_NAME,
            storage=optuna.storages.RDBStorage(run_dir.study_url),
        )
        self._run_dir, self._ledger, self._total = run_dir, ledger, total
        self._unfinished = list(unfinished)
        self._best: dict[str, float] = {}
        self._reported: dict[str, int] = {}

    def suggest(self, trial_id: str) -> dict | str | None:
        if not self._ledger.can_fund_epoch():
            self._ledger.exhausted = True
            return Searcher.FINISHED
        if not self._unfinished and self.study_size() >= self._total:
            return Searcher.FINISHED
        if self._unfinished:
            again = self._unfinished.pop(0)
            self._ot_trials[trial_id] = optuna.trial.Trial(self._ot_study, self._storage_id(again.number))
            self._best[trial_id] = again.best
            params = again.params
        else:
            params = super().suggest(trial_id)
            self._best[trial_id] = -math.inf
            save_sampler(self._run_dir, self._ot_study.sampler, self.study_size())
        self._ledger.mid_epoch.add(trial_id)
        return {**params, NUMBER: self._ot_trials[trial_id].number}

    def study_size(self) -> int:
        """Trials the study holds, queued ones (the tutorial's, not yet started) excluded."""
        states = (optuna.trial.TrialState.WAITING,)
        return len(self._ot_study.get_trials(deepcopy=False)) - len(self._ot_study.get_trials(deepcopy=False, states=states))

    def _storage_id(self, number: int) -> int:
        return self._ot_study._storage.get_trial_id_from_study_id_trial_number(self._ot_study._study_id, number)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Report the trial's best value so far at this epoch (once per epoch)."""
        value, epoch = as_float(result.get(OBJECTIVE.metric)), int(result.get("epoch", 0))
        if math.isnan(value) or trial_id in self._completed_trials or self._reported.get(trial_id, 0) >= epoch:
            return
        self._best[trial_id] = max(self._best.get(trial_id, -math.inf), value if OBJECTIVE.mode == "max" else -value)
        best = self._best[trial_id] if OBJECTIVE.mode == "max" else -self._best[trial_id]
        self._ot_trials[trial_id].report(best, epoch)
        self._reported[trial_id] = epoch

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        if result:  # the result a stopped trial ended on reaches the searcher only here
            self.on_trial_result(trial_id, result)
        self._ledger.mid_epoch.discard(trial_id)
        state, reason = self.outcome(trial_id, result or {}, error)
        self.tell(trial_id, state, reason)

    def outcome(self, trial_id: str, result: dict, error: bool) -> tuple[optuna.trial.TrialState, str]:
        """What Optuna is told about a trial that ended, and why."""
        TrialState = optuna.trial.TrialState
        if error:
            return TrialState.FAIL, "it raised an error (see trials.csv)"
        if result.get(DIVERGED):
            return TrialState.FAIL, f"diverged at epoch {result.get('epoch')}: {result[DIVERGED]}"
        if trial_id in self._ledger.reasons:
            return TrialState.PRUNED, self._ledger.reasons[trial_id]
        if not math.isfinite(self._best.get(trial_id, -math.inf)):
            return TrialState.FAIL, "it ended before finishing an epoch"
        return TrialState.COMPLETE, ""

    def tell(self, trial_id: str, state, reason: str) -> None:
        """Tell the study how a trial ended (COMPLETE with its best epoch's value), and why."""
        ot_trial = self._ot_trials[trial_id]
        ot_trial.set_user_attr("state", _table_state(state, reason))
        if reason:
            ot_trial.set_user_attr("reason", reason)
        best = self._best.get(trial_id, -math.inf)
        value = (best if OBJECTIVE.mode == "max" else -best) if state == optuna.trial.TrialState.COMPLETE else None
        self._ot_study.tell(ot_trial, value, state=state)
        self._completed_trials.add(trial_id)

    def prune_unfinished(self, reason: str) -> list[tuple[int, dict]]:
        """Tell PRUNED every trial still running (the time budget ended them); their (number, params)."""
        ended = [t for t in self._ot_trials if t not in self._completed_trials]
        for trial_id in ended:
            self._ledger.reasons[trial_id] = reason
            self.tell(trial_id, optuna.trial.TrialState.PRUNED, reason)
        return [(self._ot_trials[t].number, self._ot_trials[t].params) for t in ended]


def _table_state(state, reason: str) -> str:
    """The trials.csv state of a trial the study records as `state`."""
    TrialState = optuna.trial.TrialState
    if state == TrialState.FAIL:
        return State.DIVERGED if reason.startswith("diverged") else State.ERRORED
    return State.COMPLETED if state == TrialState.COMPLETE else State.STOPPED_EARLY


def save_sampler(run_dir: RunDir, sampler, study_size: int) -> None:
    """Keep the sampler's state beside the study, with the study size it belongs to."""
    tmp = run_dir.tune / (SAMPLER_FILE + ".tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(pickle.dumps({"study_size": study_size, "sampler": sampler}))
    tmp.replace(run_dir.tune / SAMPLER_FILE)


def load_sampler(run_dir: RunDir, study_size: int, seed: int, startup_trials: int = 10):
    """The sampler as the last session left it; a freshly seeded one if it is missing or
    behind the study (the driver stopped between a trial's creation and the save)."""
    path = run_dir.tune / SAMPLER_FILE
    if path.exists():
        saved = pickle.loads(path.read_bytes())
        if saved["study_size"] == study_size:
            return saved["sampler"]
    return optuna.samplers.TPESampler(seed=seed + study_size, n_startup_trials=startup_trials)


class StoppingScheduler(ASHAScheduler):
    """ASHA on the objective, after the examples budget; records why it stops a trial."""

    def __init__(self, ledger: Ledger, max_epochs: int, grace_period: int):
        super().__init__(
            time_attr="epoch",
            metric=OBJECTIVE.metric,
            mode=OBJECTIVE.mode,
            max_t=max_epochs,
            grace_period=grace_period,
            reduction_factor=3,
        )
        self.ledger, self.max_epochs = ledger, max_epochs

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        self.ledger.used += int(result.get("examples", 0))
        epoch = int(result["epoch"])
        if result.get(DIVERGED):  # the trial ends by itself; its NaN never enters a rung
            return TrialScheduler.CONTINUE
        if epoch >= self.max_epochs:
            return super().on_trial_result(tune_controller, trial, result)
        if not self.ledger.can_fund_epoch(excluding=trial.trial_id):
            self.ledger.reasons[trial.trial_id] = f"examples budget spent after epoch {epoch}"
            return TrialScheduler.STOP
        decision = super().on_trial_result(tune_controller, trial, result)
        if decision == TrialScheduler.STOP:
            value = result[OBJECTIVE.metric]
            self.ledger.reasons[trial.trial_id] = (
                f"ASHA stopped it after epoch {epoch}: {OBJECTIVE.metric} {value:.4f} below its rung's cut-off"
            )
        return decision

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        self.ledger.mid_epoch.discard(trial.trial_id)
        super().on_trial_complete(tune_controller, trial, result)

    def on_trial_error(self, tune_controller, trial) -> None:
        self.ledger.mid_epoch.discard(trial.trial_id)
        super().on_trial_error(tune_controller, trial)

    def on_trial_remove(self, tune_controller, trial) -> None:
        self.ledger.mid_epoch.discard(trial.trial_id)
        super().on_trial_remove(tune_controller, trial)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump({k: v for k, v in self.__dict__.items() if k != "ledger"}, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))


class TimeBudget(tune.Stopper):
    """Stops the whole search once `budget_s` seconds have passed since `start`."""

    def __init__(self, budget_s: float | None, start: float):
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
