"""The study side of a search: Optuna on the run's SQLite study, which records which trials exist.

- `StudySearch`: Ray's `OptunaSearch` on the run's study. A resumed run re-issues the
  study's unfinished trials (same number, same parameters, continued from their
  checkpoints) before asking Optuna for new ones. Optuna learns what the report ranks by:
  each epoch's intermediate value is the trial's best objective so far, and a trial that
  ended is told as `trial_ending` classifies it (`STUDY_STATES`): COMPLETE with its best
  epoch's value, PRUNED, or FAIL.
- `trial_ending`: how a trial ended, the one rule both the study and the trial tables
  (`search.tracking`) follow.
- The sampler's state beside the study (`save_sampler`, `load_sampler`), and readers of a
  stored study (`open_study`, `started_trials`, `trial_of`, `best_reported`).

Where trials get stopped (ASHA, the budgets) is `search.scheduler`.
"""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass

import optuna
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from runfiles.layout import ADDED, NUMBER, OBJECTIVE, ORIGIN, STUDY_NAME, Objective, RunDir, State, as_float
from search import internals
from search.config import TPE_TRIALS
from search.scheduler import LATENCY, LatencyLimit, Ledger, MedianLatency
from search.train import DIVERGED

SAMPLER_FILE = "sampler.pkl"

STUDY_STATES = {
    State.COMPLETED: optuna.trial.TrialState.COMPLETE,
    State.STOPPED_EARLY: optuna.trial.TrialState.PRUNED,
    State.DIVERGED: optuna.trial.TrialState.FAIL,
    State.ERRORED: optuna.trial.TrialState.FAIL,
}
"""How the study records a trial that ended in each trials.csv state."""


def trial_ending(result: dict, stop_reason: str | None, scored: bool, error: str | None = None) -> tuple[State, str]:
    """How a trial ended, and why: its trials.csv state (the study's through `STUDY_STATES`).

    `result` is the last result Tune hands over, `stop_reason` why the scheduler or a
    budget stopped it (`Ledger.reasons`, None when nothing did), `scored` whether any of
    its epochs (earlier sessions' included) reported a finite objective value, and `error`
    what it raised (None when it did not). A trial that ended by itself without a value
    finished no epoch, so it is errored, never completed.
    """
    if error is not None:
        return State.ERRORED, error
    if result.get(DIVERGED):
        return State.DIVERGED, f"diverged at epoch {result.get('epoch')}: {result[DIVERGED]}"
    if stop_reason is not None:
        return State.STOPPED_EARLY, stop_reason
    if not scored:
        return State.ERRORED, "it ended before finishing an epoch"
    return State.COMPLETED, ""


@dataclass
class Unfinished:
    """A study trial that a stopped driver left RUNNING: continued under its own number."""

    number: int
    params: dict
    checkpoint: object | None = None
    """A `tune.Checkpoint` of its latest epoch, or None when it had not finished one."""
    best: float | None = None
    """Its best objective value so far (`best_reported`), or None."""


class StudySearch(OptunaSearch):
    """OptunaSearch on the run's study; see the module's docstring. What it needs of OptunaSearch's
    own records (`study`, `asked`, `told`) it reads through `search.internals`."""

    def __init__(
        self,
        space: dict,
        run_dir: RunDir,
        ledger: Ledger,
        sampler,
        presets: list[dict],
        unfinished: list[Unfinished],
        total: int,
        objective: Objective = OBJECTIVE,
    ):
        super().__init__(
            space=space,
            **objective.tune_kwargs,
            points_to_evaluate=presets,
            sampler=sampler,
            study_name=STUDY_NAME,
            storage=optuna.storages.RDBStorage(run_dir.study_url),
        )
        self._run_dir, self._ledger, self._objective = run_dir, ledger, objective
        self.total = total
        """Trials the study is to hold once this session's are created, the earlier sessions' included."""
        self._unfinished = list(unfinished)
        self._best: dict[str, float | None] = {}  # each trial's best objective value so far
        self._reported: dict[str, int] = {}
        self._latency = MedianLatency()
        self._started = started_trials(self.study)  # counted once; each `ask` then adds one (`study_size`)

    @property
    def study(self) -> optuna.Study:
        """The run's study, which OptunaSearch asks for trials and tells how they ended."""
        return internals.searcher_study(self)

    @property
    def asked(self) -> dict[str, optuna.trial.Trial]:
        """The study trial of every Tune trial this searcher started, by Tune trial id."""
        return internals.searcher_trials(self)

    @property
    def told(self) -> set[str]:
        """The Tune trial ids whose ending the study has been told."""
        return internals.searcher_told(self)

    def suggest(self, trial_id: str) -> dict | str | None:
        if not self._ledger.can_fund_epoch():
            self._ledger.exhausted = True
            return Searcher.FINISHED
        if not self._unfinished and self.study_size() >= self.total:
            return Searcher.FINISHED
        if self._unfinished:
            again = self._unfinished.pop(0)
            self.asked[trial_id] = internals.stored_trial(self.study, again.number)
            self._best[trial_id] = again.best
            params = again.params
        else:
            params = super().suggest(trial_id)  # the study's `ask`: a queued trial or a new one starts
            self._started += 1
            save_sampler(self._run_dir, self.study.sampler, self.study_size())
        self._ledger.mid_epoch.add(trial_id)
        origin = self.asked[trial_id].user_attrs.get(ORIGIN)  # a configuration --warm-start queued
        return {**params, NUMBER: self.asked[trial_id].number, **({ORIGIN: origin} if origin else {})}

    def study_size(self) -> int:
        """Trials the study holds, queued ones (the tutorial's, not yet started) excluded: counted
        from the study once, then one more per suggestion, so a suggestion costs no scan of the study."""
        return self._started

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Report the trial's best value so far at this epoch (once per epoch)."""
        value, epoch = as_float(result.get(self._objective.metric)), int(result.get("epoch", 0))
        if math.isnan(value) or trial_id in self.told or self._reported.get(trial_id, 0) >= epoch:
            return
        self._best[trial_id] = self._objective.best([self._best.get(trial_id), value])
        self.asked[trial_id].report(self._best[trial_id], epoch)
        latency = self._latency.add(trial_id, result.get(LATENCY))
        if latency is not None:
            self.asked[trial_id].set_user_attr(LATENCY, latency)
        self._reported[trial_id] = epoch

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self.told or trial_id not in self.asked:
            return
        if result:  # the result a stopped trial ended on reaches the searcher only here
            self.on_trial_result(trial_id, result)
        self._ledger.mid_epoch.discard(trial_id)
        best = self._best.get(trial_id)
        state, reason = trial_ending(
            result or {},
            self._ledger.reasons.get(trial_id),
            scored=best is not None and math.isfinite(best),
            error="it raised an error (see trials.csv)" if error else None,
        )
        self.tell(trial_id, state, reason)

    def tell(self, trial_id: str, state: State, reason: str) -> None:
        """Tell the study how a trial ended (COMPLETE with its best epoch's value), and why."""
        ot_trial = self.asked[trial_id]
        ot_trial.set_user_attr("state", state)
        if reason:
            ot_trial.set_user_attr("reason", reason)
        study_state = STUDY_STATES[state]
        value = self._best.get(trial_id) if study_state == optuna.trial.TrialState.COMPLETE else None
        self.study.tell(ot_trial, value, state=study_state)
        self.told.add(trial_id)
        self.forget(trial_id)

    def forget(self, trial_id: str) -> None:
        """Drop what this searcher kept of a trial the study has been told of (its live study trial,
        best value, last epoch reported, latencies), so its memory does not grow with the trials that ended;
        `told` keeps the id, so late results of the trial are ignored."""
        for kept in (self.asked, self._best, self._reported):
            kept.pop(trial_id, None)
        self._latency.forget(trial_id)

    def prune_unfinished(self, reason: str) -> list[tuple[int, dict]]:
        """Tell PRUNED every trial still running (the time budget ended them); their (number, params)."""
        ended = {t: (self.asked[t].number, self.asked[t].params) for t in self.asked if t not in self.told}
        for trial_id in ended:
            self._ledger.reasons[trial_id] = reason
            self.tell(trial_id, State.STOPPED_EARLY, reason)
        return list(ended.values())


# ---------------------------------------------------------------- the sampler's state


def save_sampler(run_dir: RunDir, sampler, study_size: int) -> None:
    """Keep the sampler's state beside the study, with the study size it belongs to."""
    tmp = run_dir.tune / (SAMPLER_FILE + ".tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(pickle.dumps({"study_size": study_size, "sampler": sampler}))
    tmp.replace(run_dir.tune / SAMPLER_FILE)


def load_sampler(
    run_dir: RunDir,
    study_size: int,
    seed: int,
    startup_trials: int = 10,
    max_latency_ms: float | None = None,
    tpe_trials: int = TPE_TRIALS,
):
    """The sampler as the last session left it; a freshly seeded one if it is missing or
    behind the study (the driver stopped between a trial's creation and the save)."""
    path = run_dir.tune / SAMPLER_FILE
    if path.exists():
        saved = pickle.loads(path.read_bytes())
        if saved["study_size"] == study_size:
            return saved["sampler"]
    return new_sampler(seed + study_size, startup_trials, max_latency_ms, tpe_trials)


def new_sampler(
    seed: int, startup_trials: int, max_latency_ms: float | None = None, tpe_trials: int = TPE_TRIALS
) -> TpeThenRandom:
    """TPE seeded, with `startup_trials` random ones first, and with a latency limit its constraints
    (`search.scheduler.LatencyLimit`: Optuna's constrained TPE ranks infeasible trials after every
    feasible one in its model), for the study's first `tpe_trials` trials; Optuna's RandomSampler
    after them (`TpeThenRandom`). A sampler saved by an earlier version names its constraints
    `search.searcher.LatencyLimit`, which this module's import keeps finding."""
    constraints = LatencyLimit(max_latency_ms) if max_latency_ms is not None else None
    tpe = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials, constraints_func=constraints)
    return TpeThenRandom(tpe, optuna.samplers.RandomSampler(seed=seed), tpe_trials)


class TpeThenRandom(optuna.samplers.BaseSampler):
    """Optuna's TPESampler proposes the study's trials numbered below `tpe_trials`, its RandomSampler
    (O(d) per proposal, reading no trial of the study) the rest: for searches beyond the ~1,000 trials
    Optuna's docs recommend TPE for. Each trial is handled, from its start to its end, by the sampler
    its number picks (`sampler_of`), which costs nothing that grows with the study. TPE proposes
    with SciPy's log of the normal CDF (`search.internals.tpe_log_ndtr_vectorised`), which halves
    its time per proposal at 1,000 trials."""

    def __init__(self, tpe: optuna.samplers.TPESampler, random: optuna.samplers.RandomSampler, tpe_trials: int):
        self.tpe, self.random, self.tpe_trials = tpe, random, tpe_trials

    def sampler_of(self, trial) -> optuna.samplers.BaseSampler:
        """The sampler of a study trial (an `optuna.Trial` or a `FrozenTrial`): TPE below `tpe_trials`."""
        return self.tpe if trial.number < self.tpe_trials else self.random

    def infer_relative_search_space(self, study, trial) -> dict:
        return self.sampler_of(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space) -> dict:
        with internals.tpe_log_ndtr_vectorised():
            return self.sampler_of(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        with internals.tpe_log_ndtr_vectorised():
            return self.sampler_of(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial) -> None:
        self.sampler_of(trial).before_trial(study, trial)

    def after_trial(self, study, trial, state, values) -> None:
        self.sampler_of(trial).after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.tpe.reseed_rng()
        self.random.reseed_rng()


# ---------------------------------------------------------------- reading a stored study


def open_study(run_dir: RunDir) -> optuna.Study:
    """The run's study, as study.db stores it."""
    return optuna.load_study(study_name=STUDY_NAME, storage=run_dir.study_url)


def started_trials(study: optuna.Study) -> int:
    """Trials a study holds that its run started: queued ones (WAITING: the tutorial's, not yet
    started) and those --warm-start added from earlier runs (`ADDED`) excluded."""
    waiting = optuna.trial.TrialState.WAITING
    return sum(1 for t in study.get_trials(deepcopy=False) if t.state != waiting and not t.user_attrs.get(ADDED))


def trial_of(run_dir: RunDir, number: int) -> optuna.trial.FrozenTrial:
    """The study's record of one trial (typed parameters, state, values)."""
    return open_study(run_dir).trials[number]


def best_reported(trial: optuna.trial.FrozenTrial, objective: Objective = OBJECTIVE) -> float | None:
    """The best objective value a study trial reported (its finite intermediate values), or None."""
    return objective.best(v for v in trial.intermediate_values.values() if math.isfinite(v))
