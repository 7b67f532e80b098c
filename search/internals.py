"""Every reach into a private part of Ray Tune, Optuna or MLflow, in one place.

The searcher (`search.searcher.StudySearch`, a subclass of Ray's `OptunaSearch`), its sampler's
TPE proposals (`search.searcher.TpeThenRandom`), the scheduler (`search.scheduler.StoppingScheduler`,
a subclass of Ray's `ASHAScheduler`), the memory-kill handling and the trials' results left
unread as a search ends (`search.tuner`), the trial table
(`search.tracking.TrialTable`, which drops what Tune keeps of ended trials), the MLflow callback
(`search.tracking.TrialsToMLflow`) and the --mlflow check (`search.mlflow_tracking`) need members
these libraries do not publish. Each is reached here only, through one accessor below, and listed
in REACHES. Where an upgrade has removed one, its accessor raises `MissingInternal`, which names
the member and the installed versions, and tests/test_internals.py checks every member of REACHES
on real instances of the installed libraries. Written against Ray 2.60, Optuna 5.1 and MLflow 3.17.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Any

LIBRARIES = ("ray", "optuna", "mlflow")
"""The libraries whose private members REACHES lists: their versions are named when one is missing."""


@dataclass(frozen=True)
class Reach:
    """One private member this project relies on."""

    owner: str
    """The class or module that defines it, by its import path."""
    name: str
    """The member's name."""
    why: str
    """What the project does with it."""
    on_instance: bool = True
    """Whether instances hold it (set in their __init__), rather than the class or module."""

    def __str__(self) -> str:
        return f"{self.owner}.{self.name}"


OPTUNA_SEARCH = "ray.tune.search.optuna.OptunaSearch"
BRACKET = "ray.tune.schedulers.async_hyperband._Bracket"
ACTOR_MANAGER = "ray.air.execution._internal.actor_manager.RayActorManager"
OT_TRIALS = Reach(OPTUNA_SEARCH, "_ot_trials", "the Optuna trial of each Tune trial the searcher started")
OT_STUDY = Reach(OPTUNA_SEARCH, "_ot_study", "the study the searcher asks and tells")
COMPLETED = Reach(OPTUNA_SEARCH, "_completed_trials", "the Tune trials the searcher has told the study of")
STORAGE = Reach("optuna.study.Study", "_storage", "a stored trial's id, to continue a trial a stopped driver left running")
STUDY_ID = Reach("optuna.study.Study", "_study_id", "a stored trial's id, to continue a trial a stopped driver left running")
TRIAL_INFO = Reach("ray.tune.schedulers.ASHAScheduler", "_trial_info", "each trial's bracket, to recheck and leave its rungs")
RUNGS = Reach(BRACKET, "_rungs", "each rung's milestone and the values recorded there")
BRACKETS = Reach("ray.tune.schedulers.ASHAScheduler", "_brackets", "its brackets, to seed their rungs with a warm start's values")
CUTOFF = Reach(BRACKET, "cutoff", "the value a rung keeps", on_instance=False)
TASK_FAILED = Reach(ACTOR_MANAGER, "_actor_task_failed", "a trial task that failed (memory kills)", on_instance=False)
START_FAILED = Reach(ACTOR_MANAGER, "_actor_start_failed", "a worker that failed to start (memory kills)", on_instance=False)
RUN_METADATA = Reach("ray.tune.experiment.Trial", "run_metadata", "a trial's running statistics, dropped when it ends")
METRIC_ANALYSIS = Reach(
    "ray.tune.trainable.metadata._TrainingRunMetadata",
    "metric_analysis",
    "each metric's max, min and means, dropped when it ends",
)
METRIC_N_STEPS = Reach(
    "ray.tune.trainable.metadata._TrainingRunMetadata", "metric_n_steps", "each metric's last values, dropped when it ends"
)
STORAGE_FILESYSTEM = Reach(
    "ray.train._internal.storage.StorageContext", "storage_filesystem", "the filesystem a trial's checkpoints are stored on"
)
TRIAL_RUNS = Reach("ray.air.integrations.mlflow.MLflowLoggerCallback", "_trial_runs", "the MLflow run of each Tune trial")
STORE_REGISTRY = Reach(
    "mlflow.tracking._tracking_service.utils", "_tracking_store_registry", "MLflow's tracking-URI schemes", on_instance=False
)
TRIAL_DATAFRAMES = Reach(
    "ray.tune.analysis.experiment_analysis.ExperimentAnalysis",
    "_fetch_trial_dataframes",
    "every trial's result.json read back into a DataFrame as Tuner.fit ends, left unread",
    on_instance=False,
)
SCHEMA_REVISION = Reach(
    "mlflow.store.db.utils", "_get_latest_schema_revision", "the schema revision of an MLflow database", on_instance=False
)
LOG_NDTR = Reach(
    "optuna.samplers._tpe._truncnorm",
    "_log_ndtr",
    "TPE's log of the normal CDF, computed by SciPy's log_ndtr while TPE proposes",
    on_instance=False,
)
REACHES = (
    OT_TRIALS,
    OT_STUDY,
    COMPLETED,
    STORAGE,
    STUDY_ID,
    TRIAL_INFO,
    RUNGS,
    BRACKETS,
    CUTOFF,
    TASK_FAILED,
    START_FAILED,
    RUN_METADATA,
    METRIC_ANALYSIS,
    METRIC_N_STEPS,
    STORAGE_FILESYSTEM,
    TRIAL_DATAFRAMES,
    TRIAL_RUNS,
    STORE_REGISTRY,
    SCHEMA_REVISION,
    LOG_NDTR,
)
"""Every private member of Ray, Optuna and MLflow the project uses."""


class MissingInternal(RuntimeError):
    """A private member of Ray, Optuna or MLflow that the project relies on is gone from the installed version."""


def installed_versions() -> str:
    """The installed versions of LIBRARIES, e.g. "ray 2.60.0, optuna 5.1.0, mlflow 3.17.2"."""

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    return ", ".join(f"{name} {version(name)}" for name in LIBRARIES)


def member(owner: Any, reach: Reach) -> Any:
    """`owner`'s member `reach.name` (an instance, a class or a module that holds it).

    Raises:
        MissingInternal: naming the member, what it is used for and the installed versions, where it is gone.
    """
    try:
        return getattr(owner, reach.name)
    except AttributeError:
        raise MissingInternal(
            f"{reach} is missing in the installed {installed_versions()} (search/internals.py uses it: {reach.why}); "
            "install the versions pyproject.toml names, or adapt its accessor"
        ) from None


def defined(reach: Reach) -> Any:
    """The class or module that defines a member (`reach.owner`), imported; MissingInternal where it is gone."""
    module, _, name = reach.owner.rpartition(".")
    try:
        return importlib.import_module(reach.owner)
    except ModuleNotFoundError:
        pass
    try:
        return member(importlib.import_module(module), Reach(module, name, reach.why))
    except ModuleNotFoundError:
        raise MissingInternal(f"{reach.owner} (for {reach}) is missing in the installed {installed_versions()}") from None


# ---------------------------------------------------------------- Ray's OptunaSearch and Optuna's study


def searcher_trials(searcher) -> dict:
    """{Tune trial id: `optuna.trial.Trial`} of every trial an OptunaSearch has started (its `_ot_trials`)."""
    return member(searcher, OT_TRIALS)


def searcher_study(searcher):
    """The `optuna.Study` an OptunaSearch asks for trials and tells how they ended (its `_ot_study`)."""
    return member(searcher, OT_STUDY)


def searcher_told(searcher) -> set:
    """The Tune trial ids an OptunaSearch has told its study of (its `_completed_trials`)."""
    return member(searcher, COMPLETED)


def stored_trial(study, number: int):
    """A live `optuna.trial.Trial` of the study's trial `number`, to report to and tell (Optuna
    publishes no way from a number to the storage's trial id: its `_storage` and `_study_id`)."""
    import optuna

    storage, study_id = member(study, STORAGE), member(study, STUDY_ID)
    return optuna.trial.Trial(study, storage.get_trial_id_from_study_id_trial_number(study_id, number))


# ---------------------------------------------------------------- Ray's ASHAScheduler


def bracket_of(scheduler, trial_id: str):
    """The ASHA bracket a trial was added to (its `_trial_info`), or None."""
    return member(scheduler, TRIAL_INFO).get(trial_id)


def brackets(scheduler) -> list:
    """An ASHA scheduler's brackets (its `_brackets`), each with its rungs (`rungs`)."""
    return member(scheduler, BRACKETS)


def forget_trial(scheduler, trial_id: str) -> None:
    """Drop a trial from ASHA's record of brackets, as its own on_trial_complete does."""
    member(scheduler, TRIAL_INFO).pop(trial_id, None)


def rungs(bracket) -> list[tuple[float, dict[str, float]]]:
    """A bracket's rungs, the top one first: (milestone epoch, {Tune trial id: value recorded there}); [] for None."""
    return [] if bracket is None else member(bracket, RUNGS)


def rung_cutoff(bracket, recorded: dict[str, float]) -> float | None:
    """The value a rung of `bracket` holding `recorded` keeps (its best 1/eta), as ASHA computes it; None while empty."""
    return member(bracket, CUTOFF)(recorded)


# ---------------------------------------------------------------- Ray Tune's trials


def forget_metric_statistics(trial, keep: Iterable[str] = ()) -> None:
    """Drop the running statistics Ray Tune keeps of every number an ended trial reported, for the
    driver's lifetime and in its saved experiment state: each metric's max, min, mean, last value
    and last-5 and last-10 means, with the last values behind them (`Trial.run_metadata`'s
    `metric_analysis` and `metric_n_steps`; about 20 kB per trial), except the statistics of the
    metrics named in `keep`, which Tune's `ExperimentAnalysis.get_best_trial` and
    `ResultGrid.get_best_result` read (the last values behind them go too). The trial's last
    result stays."""
    metadata, kept = member(trial, RUN_METADATA), set(keep)
    analysis = member(metadata, METRIC_ANALYSIS)
    member(metadata, METRIC_N_STEPS)  # there, or MissingInternal names it
    # each setter drops the trial's cached JSON too
    setattr(metadata, METRIC_ANALYSIS.name, {name: value for name, value in analysis.items() if name in kept})
    setattr(metadata, METRIC_N_STEPS.name, {})


def reported_checkpoint(trial, name: str):
    """The `tune.Checkpoint` named `name` (a result's `checkpoint_dir_name`) in `trial`'s folder on
    the run's storage. Ray's `session.report` stores it before the result leaves the trial; Tune
    registers it (`Callback.on_checkpoint`) only a step later, from a separate task that a stop in
    between drops. Tune publishes the folder (`Trial.path`) but not its filesystem."""
    from ray import tune

    filesystem = member(trial.storage, STORAGE_FILESYSTEM)  # Trial.storage: a private class's instance
    return tune.Checkpoint(f"{trial.path}/{name}", filesystem=filesystem)


def trial_results_unread() -> contextlib.AbstractContextManager[None]:
    """While inside, the `ExperimentAnalysis` that `Tuner.fit` builds for its `ResultGrid` as a search
    ends (Ray 2.60) does not read every trial's `result.json` back into a pandas DataFrame
    (`_fetch_trial_dataframes`): about 22 kB per trial, whether or not the caller looks, and the
    driver's peak memory at the end of a search of thousands of short trials. This project ranks
    and reports from its own tables; each `Result` keeps its `metrics` (the trial's last result) and
    its `metrics_dataframe` is None. Restored on leaving; a Ray without the member is left as it is."""
    return replaced(TRIAL_DATAFRAMES, lambda self: {})


# ---------------------------------------------------------------- Optuna's TPE


def tpe_log_ndtr_vectorised() -> contextlib.AbstractContextManager[None]:
    """While inside, Optuna's TPE takes the log of the normal CDF from SciPy's `scipy.special.log_ndtr`
    (compiled, one call per array) instead of its own port of it (Optuna 5.1's
    `_truncnorm._log_ndtr`: a Python function applied to each element through `np.frompyfunc`).
    TPE evaluates it for every candidate against every finished trial's kernel of each discrete
    parameter, so its time per proposal grows with the study; Optuna's own profile of that
    (optuna#5478) finds the same hot spot. The two agree to 4e-13 (absolute) over [-40, 40]; TPE's
    proposals then differ only in a float's last digits. Restored on leaving; an Optuna without the
    member is left as it is."""
    from scipy.special import log_ndtr

    return replaced(LOG_NDTR, log_ndtr)


@contextlib.contextmanager
def replaced(reach: Reach, replacement: Any) -> Iterator[None]:
    """While inside, the member `reach` of the class or module that defines it is `replacement`;
    the original is restored on leaving. Where an upgrade has removed the member or its owner,
    nothing changes."""
    try:
        owner = defined(reach)
        original = member(owner, reach)
    except MissingInternal:
        yield
        return
    setattr(owner, reach.name, replacement)
    try:
        yield
    finally:
        setattr(owner, reach.name, original)


# ---------------------------------------------------------------- Ray Tune's actor manager


@contextlib.contextmanager
def actor_failures_through(convert: Callable[[Exception], Exception]) -> Iterator[None]:
    """While inside, every failure of a trial's task or of its worker's start that Tune's actor
    manager handles is first passed through `convert` (Ray 2.60's `RayActorManager._actor_task_failed`
    and `_actor_start_failed`); restored on leaving. A Ray without them is left as it is (the
    test of REACHES says so), so that a search still runs there."""
    from ray.air.execution._internal.actor_manager import RayActorManager

    originals = {}
    for reach in (TASK_FAILED, START_FAILED):
        with contextlib.suppress(MissingInternal):
            originals[reach.name] = member(RayActorManager, reach)

    def converting(original: Callable):
        def failed(self, exception: Exception, **tracked):
            return original(self, exception=convert(exception), **tracked)

        return failed

    for name, original in originals.items():
        setattr(RayActorManager, name, converting(original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(RayActorManager, name, original)


# ---------------------------------------------------------------- MLflow


def mlflow_runs(callback) -> dict:
    """{Tune trial: MLflow run id} of a Ray `MLflowLoggerCallback` (its `_trial_runs`), which a
    subclass fills when it starts a trial's run itself."""
    return member(callback, TRIAL_RUNS)


def check_store_scheme(uri: str) -> None:
    """Whether MLflow has a tracking store for `uri`'s scheme, plugins' included: raises MLflow's
    MlflowException where it has none (`_tracking_store_registry.get_store_builder`)."""
    member(defined(STORE_REGISTRY), STORE_REGISTRY).get_store_builder(uri)


def latest_schema_revision() -> str:
    """The alembic revision this mlflow expects of a database store (`_get_latest_schema_revision`)."""
    return member(defined(SCHEMA_REVISION), SCHEMA_REVISION)()
