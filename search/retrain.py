"""Train chosen configurations outside the search, as Ray tasks: certification seeds, the tutorial's baseline.

Each job trains one configuration on the prepared train split, validating every epoch,
and hands back the weights of the epoch it keeps (the best by validation, or the last)
with its history; the driver then evaluates the test split on them, so the test split
still never reaches a trial.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from runfiles import predictions
from runfiles.layout import OBJECTIVE, Objective, RunDir
from search.data import Prepared
from search.export import evaluate_test
from search.space import model_config
from search.train import DIVERGED, EpochMetrics, Evaluation, TrainConfig, configure_tensorflow, review_tokens, train_and_evaluate


@dataclass
class Job:
    """One configuration to train: its searched values, how it is trained, and whose it is."""

    params: dict
    """Its hyperparameters: {name: value}."""
    train: TrainConfig
    """The whole TrainConfig (`search.space.configs_from`: the run's base, the values, the job's own
    epochs and seed)."""
    keep: Literal["best", "last"] = "best"
    """"best": the weights of the best epoch by the objective; "last": of the last epoch."""
    objective: Objective = OBJECTIVE
    """The run's objective: what "best" means, and the metric handed back."""
    trial_id: str = ""
    """The trial whose configuration it retrains (certification), or ""."""
    rank: int | None = None
    """That trial's rank among the configurations certified (1 = the best), or None."""
    preset: str = ""
    """The tutorial preset it trains (the baseline), or ""."""

    @property
    def name(self) -> str:
        """How lines and errors name it: its preset, or its trial and seed."""
        return self.preset or f"{self.trial_id} seed {self.train.seed}"


@dataclass
class JobResult:
    """What a job hands back: the epoch it kept with that epoch's weights, and its history."""

    history: list[EpochMetrics]
    """Every epoch's metrics, in order (epochs.csv's columns)."""
    epoch: int
    """The epoch kept."""
    value: float
    """The objective's metric at that epoch (on validation)."""
    weights: list
    """The network's weights at that epoch (Keras's `get_weights()`)."""
    test: Evaluation | None = None
    """The kept network on the test split, evaluated in the driver by `run_jobs`; never in the job;
    None without a test split (--test-fraction 0)."""

    @property
    def examples(self) -> int:
        """Training examples processed, all epochs."""
        return sum(m["examples"] for m in self.history)

    @property
    def test_accuracy(self) -> float | None:
        """Accuracy on the test split (after `run_jobs`); None without one (--test-fraction 0)."""
        return None if self.test is None else self.test.accuracy

    @property
    def test_macro_f1(self) -> float | None:
        """Macro-F1 on the test split (after `run_jobs`); None without one."""
        return None if self.test is None else self.test.macro_f1

    def mean(self, metric: str) -> float:
        """An epoch metric's mean over the epochs (examples_per_s, tokens_per_s, ...)."""
        return statistics.fmean(m[metric] for m in self.history)


def train_job(job: Job, data: Prepared) -> JobResult:
    """Train a job (in a Ray task); RuntimeError when every epoch diverged."""
    import keras

    keras.backend.clear_session()  # the worker may have run an earlier job
    network_config, config, metric = model_config(job.params, len(data.classes)), job.train, job.objective.metric
    configure_tensorflow(config.threads)
    kept: dict = {"value": -math.inf}  # "value": the objective oriented, larger is better

    def keep(metrics: dict, training) -> None:
        value = job.objective.oriented(metrics[metric])
        if DIVERGED not in metrics and (job.keep == "last" or value > kept["value"]):
            kept.update(value=value, epoch=metrics["epoch"], metric=metrics[metric], weights=training.network.get_weights())

    history = train_and_evaluate(network_config, config, data, on_epoch=keep)
    if "weights" not in kept:
        raise RuntimeError(f"{job.name}: every epoch diverged")
    return JobResult(history, kept["epoch"], kept["metric"], kept["weights"])


def run_jobs(
    jobs: list[Job],
    data: Prepared,
    cpus: float,
    gpus: float,
    on_done: Callable[[Job, JobResult], None] | None = None,
    refit: bool = False,
) -> list[JobResult]:
    """Run jobs as Ray tasks, each with `cpus` CPUs and `gpus` GPUs; results in the jobs' order,
    each with its `test` evaluated here, in the driver, on the weights it kept.

    `refit` trains on train + validation (Prepared.for_refit). `on_done(job, result)` is called
    as each finishes. A task that fails is retried twice by Ray.
    """
    import ray

    shared = ray.put(data.for_refit() if refit else data.for_trials())
    task = ray.remote(train_job).options(num_cpus=cpus, num_gpus=gpus, max_retries=2)
    pending = {task.remote(job, shared): i for i, job in enumerate(jobs)}
    results: list = [None] * len(jobs)
    while pending:
        (done,), _ = ray.wait(list(pending), num_returns=1)
        index = pending.pop(done)
        results[index] = ray.get(done)
        if on_done is not None:
            on_done(jobs[index], results[index])
    for job, result in zip(jobs, results, strict=True):
        result.test = tested(job, result.weights, data)
    return results


def network_of(params: dict, weights: list, num_classes: int, name: str | None = None):
    """A Keras-layers network of `params` for `num_classes` classes holding `weights` (from either
    LSTM implementation); `name` it to put several in one model."""
    from models import build_model  # Keras loads in the jobs and at the export, not on --help

    network = build_model(model_config(params, num_classes), lstm="keras", name=name)
    network.set_weights(weights)
    return network


def tested(job: Job, weights: list, data: Prepared):
    """A job's retrained network on the prepared test split (`search.train.Evaluation`); None without one."""
    network, config = network_of(job.params, weights, len(data.classes)), model_config(job.params, len(data.classes))
    return evaluate_test(network, data, config.vocab_size, review_tokens(config, job.train, data))


def keep_predictions(run_dir: RunDir, data: Prepared, tested: dict[str, Evaluation]) -> None:
    """Write each model's test predictions ({name: its Evaluation on the test split}) to
    DIR/predictions/NAME.csv (runfiles.predictions)."""
    for name, evaluation in tested.items():
        if evaluation is None:  # no test split (--test-fraction 0)
            continue
        predictions.write(predictions.path_of(run_dir, name), data.splits["test"].labels, evaluation.predicted)


def spread(values: list[float | None]) -> tuple[float | None, float | None]:
    """(mean, sample standard deviation; 0 for one value); (None, None) where a value is None (a
    test figure without a test split)."""
    if any(v is None for v in values):
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0
