"""The private members of Ray, Optuna and MLflow the project relies on (search/internals.py): each
is still where its accessor looks in the installed versions, a missing one is named with those
versions, and no other module reaches one.

python -m pytest -q tests/test_internals.py
"""

import ast
import json
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import optuna
import pytest
from ray.air.integrations.mlflow import MLflowLoggerCallback
from ray.train._internal.storage import StorageContext
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.optuna import OptunaSearch

from search import internals
from search.internals import REACHES, MissingInternal
from search.mlflow_tracking import FILE_STORE_OPT_IN

ROOT = Path(__file__).resolve().parents[1]


def optuna_search() -> OptunaSearch:
    """A real OptunaSearch on an in-memory study that has started one trial, "t1"."""
    searcher = OptunaSearch(space={"x": optuna.distributions.FloatDistribution(0, 1)}, metric="m", mode="max", seed=0)
    searcher.suggest("t1")
    return searcher


def asha() -> ASHAScheduler:
    """A real ASHAScheduler with one trial, "a", added to a bracket."""
    scheduler = ASHAScheduler(time_attr="epoch", metric="m", mode="max", max_t=9, grace_period=1, reduction_factor=3)
    scheduler.on_trial_add(None, SimpleNamespace(trial_id="a"))
    return scheduler


def mlflow_callback(folder: Path) -> MLflowLoggerCallback:
    """A real MLflowLoggerCallback, set up as Tune sets it up, on a file store in `folder`."""
    callback = MLflowLoggerCallback(tracking_uri=folder.as_uri(), experiment_name="reaches")
    with pytest.MonkeyPatch.context() as env:
        env.setenv(FILE_STORE_OPT_IN, "true")
        callback.setup()
    return callback


@pytest.fixture(scope="module")
def instances(tmp_path_factory) -> dict[str, object]:
    """A real instance of every class whose instances hold a member of REACHES, by the class's path."""
    searcher, scheduler, trial = optuna_search(), asha(), Trial("sleeper", config={}, stub=True)
    trial.set_storage(StorageContext(str(tmp_path_factory.mktemp("storage")), "experiment", trial_dir_name="trial"))
    return {
        "ray.tune.experiment.Trial": trial,
        "ray.train._internal.storage.StorageContext": trial.storage,
        "ray.tune.trainable.metadata._TrainingRunMetadata": trial.run_metadata,
        internals.OPTUNA_SEARCH: searcher,
        "optuna.study.Study": internals.searcher_study(searcher),
        "ray.tune.schedulers.ASHAScheduler": scheduler,
        internals.BRACKET: internals.bracket_of(scheduler, "a"),
        "ray.air.integrations.mlflow.MLflowLoggerCallback": mlflow_callback(tmp_path_factory.mktemp("mlflow")),
    }


def test_every_private_member_is_where_its_accessor_looks(instances):
    assert {r.owner for r in REACHES if r.on_instance} <= set(instances), "give every owner of a member an instance here"
    missing = []
    for reach in REACHES:
        owner = instances[reach.owner] if reach.on_instance else internals.defined(reach)
        assert not reach.on_instance or isinstance(owner, internals.defined(reach))
        try:
            internals.member(owner, reach)
        except MissingInternal as error:  # an upgrade removed it: each one named, with the installed versions
            missing.append(str(error))
    assert not missing, "\n".join(missing)


def test_the_accessors_read_what_ray_optuna_and_mlflow_hold(instances):
    searcher = optuna_search()
    asked, study = internals.searcher_trials(searcher), internals.searcher_study(searcher)
    assert isinstance(study, optuna.Study) and set(asked) == {"t1"} and internals.searcher_told(searcher) == set()
    assert internals.stored_trial(study, 0).params == asked["t1"].params

    scheduler = asha()
    bracket = internals.bracket_of(scheduler, "a")
    assert [milestone for milestone, _ in internals.rungs(bracket)] == [9, 3, 1] and internals.rungs(None) == []
    assert internals.rung_cutoff(bracket, {"a": 0.5, "b": 0.7, "c": 0.9}) == pytest.approx(0.76667, abs=1e-4)
    internals.forget_trial(scheduler, "a")
    assert internals.bracket_of(scheduler, "a") is None

    trial = Trial("sleeper", config={}, stub=True)
    trial.update_last_result({"m": 0.5, "training_iteration": 1})
    assert trial.metric_analysis["m"]["max"] == 0.5 and '"max": 0.5' in trial.get_json_state()[1]
    trial.update_last_result({"m": 0.7, "loss": 0.9, "training_iteration": 2})
    internals.forget_metric_statistics(trial, keep=["m"])
    kept = trial.metric_analysis
    assert set(kept) == {"m"} and (kept["m"]["max"], kept["m"]["min"]) == (0.7, 0.5)
    assert trial.metric_n_steps == {} and trial.last_result["loss"] == 0.9
    saved = json.loads(trial.get_json_state()[1])  # what Tune saves of the trial is rebuilt without the others
    assert set(saved["metric_analysis"]) == {"m"} and saved["metric_n_steps"] == {}
    internals.forget_metric_statistics(trial)
    assert trial.metric_analysis == {} and json.loads(trial.get_json_state()[1])["metric_analysis"] == {}

    trial = instances["ray.tune.experiment.Trial"]  # a reported checkpoint, named where Tune stores it
    checkpoint = internals.reported_checkpoint(trial, "checkpoint_000002")
    assert checkpoint.path == f"{trial.path}/checkpoint_000002" and checkpoint.filesystem.type_name == "local"

    assert internals.mlflow_runs(instances["ray.air.integrations.mlflow.MLflowLoggerCallback"]) == {}
    internals.check_store_scheme("sqlite:///mlflow.db")
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException):
        internals.check_store_scheme("nosuch://host/path")
    assert internals.latest_schema_revision()


def test_while_inside_the_analysis_tuner_fit_ends_with_leaves_each_trials_results_unread(tmp_path):
    from ray.tune import ExperimentAnalysis

    trial = Trial("sleeper", config={"x": 1}, stub=True)
    trial.set_storage(StorageContext(str(tmp_path), "experiment", trial_dir_name="trial"))
    Path(trial.storage.trial_fs_path).mkdir(parents=True)
    Path(trial.storage.trial_fs_path, "result.json").write_text('{"m": 0.5}\n{"m": 0.7}\n')
    trial.update_last_result({"m": 0.7, "training_iteration": 2})
    state = str(tmp_path / "experiment" / "experiment_state.json")  # not read: the trials are given, as Tune gives them
    assert list(ExperimentAnalysis(state, trials=[trial]).trial_dataframes[trial.trial_id]["m"]) == [0.5, 0.7]
    fetch = ExperimentAnalysis._fetch_trial_dataframes
    with internals.trial_results_unread():
        unread = ExperimentAnalysis(state, trials=[trial])
    assert unread.trial_dataframes == {} and unread.trials[0].last_result["m"] == 0.7
    assert ExperimentAnalysis._fetch_trial_dataframes is fetch


def test_while_inside_tpe_takes_the_log_normal_cdf_from_scipy_with_the_same_values(monkeypatch):
    from optuna.samplers._tpe import _truncnorm

    own, x = _truncnorm._log_ndtr, np.concatenate([np.linspace(-40, 40, 16001), [-1e3, 1e3]])
    with internals.tpe_log_ndtr_vectorised():
        assert _truncnorm._log_ndtr is not own
        np.testing.assert_allclose(_truncnorm._log_ndtr(x), own(x), rtol=1e-7, atol=1e-12)
    assert _truncnorm._log_ndtr is own

    monkeypatch.delattr(_truncnorm, "_log_ndtr")  # an Optuna without it: TPE proposes as that Optuna does
    with internals.tpe_log_ndtr_vectorised():
        assert not hasattr(_truncnorm, "_log_ndtr")
    gone = internals.Reach("optuna.samplers._tpe.gone", "_log_ndtr", "a module an upgrade removed", on_instance=False)
    monkeypatch.setattr(internals, "LOG_NDTR", gone)  # nor its module
    with internals.tpe_log_ndtr_vectorised():
        pass


def test_a_member_an_upgrade_removed_is_named_with_the_installed_versions(monkeypatch):
    searcher = optuna_search()
    del searcher._ot_trials  # as a Ray without it would build the searcher
    with pytest.raises(MissingInternal) as missing:
        internals.searcher_trials(searcher)
    message = str(missing.value)
    assert "ray.tune.search.optuna.OptunaSearch._ot_trials is missing" in message
    versions = [f"{name} {metadata.version(name)}" for name in ("ray", "optuna", "mlflow")]
    assert all(version in message for version in versions), message

    # A class's member: the test says so; a search still runs, leaving Tune's actor manager as it is.
    manager = internals.defined(internals.TASK_FAILED)
    monkeypatch.delattr(manager, "_actor_task_failed")
    with pytest.raises(MissingInternal, match=r"RayActorManager\._actor_task_failed is missing in the installed ray "):
        internals.member(manager, internals.TASK_FAILED)
    start_failed = manager._actor_start_failed
    with internals.actor_failures_through(lambda error: error):
        assert not hasattr(manager, "_actor_task_failed") and manager._actor_start_failed is not start_failed
    assert manager._actor_start_failed is start_failed


def test_while_inside_tunes_actor_manager_hands_each_failure_through_the_conversion(monkeypatch):
    manager, handed = internals.defined(internals.TASK_FAILED), []
    recorder = lambda self, exception, **tracked: handed.append((self, exception, tracked))
    monkeypatch.setattr(manager, "_actor_task_failed", recorder)  # Ray's own, as it would be called
    with internals.actor_failures_through(lambda error: KeyError(str(error))):
        manager._actor_task_failed("manager", exception=ValueError("killed"), tracked_actor="actor")
    manager._actor_task_failed("manager", exception=ValueError("after"))
    (inside, after) = handed
    assert inside[0] == "manager" and type(inside[1]) is KeyError and inside[2] == {"tracked_actor": "actor"}
    assert type(after[1]) is ValueError and manager._actor_task_failed is recorder


def test_no_other_module_reaches_a_private_member():
    names = {reach.name for reach in REACHES}
    found = []
    for path in sorted(p for package in ("search", "models", "runfiles", "reports") for p in (ROOT / package).rglob("*.py")):
        if path == ROOT / "search" / "internals.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in names:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
            elif isinstance(node, ast.alias) and node.name in names:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} import {node.name}")
    assert found == [], "reach these through search/internals.py"
