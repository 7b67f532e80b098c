"""Train chosen configurations outside the search, as Ray tasks: certification seeds, the tutorial's baseline.

Each job trains one configuration on the prepared train split, validating every epoch,
and hands back the weights of the epoch it keeps (the best by validation, or the last)
with its history; the driver then evaluates the test split on them, so the test split
still never reaches a trial.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from runfiles.layout import OBJECTIVE, Objective
from search.data import Prepared
from search.export import evaluate_test
from search.space import model_config
from search.train import DIVERGED, TrainConfig, configure_tensorflow, review_tokens, train_and_evaluate


@dataclass
class Job:
    """One configuration to train: its searched values and how it is trained."""

    params: dict
    train: TrainConfig
    """The whole TrainConfig (`search.space.configs_from`: the run's base, the values, the job's own)."""
    keep: str = "best"
    """"best": the weights of the best epoch by the objective; "last": of the last epoch."""
    label: dict = field(default_factory=dict)
    """Anything the caller wants back with the result (which trial, which seed)."""
    objective: Objective = OBJECTIVE
    """The run's objective: what "best" means, and the metric handed back."""


def train_job(job: Job, data: Prepared) -> dict:
    """Train a job (in a Ray task): {"history", "epoch", the objective's metric, "weights", "examples", "label"}."""
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
        raise RuntimeError(f"{job.label}: every epoch diverged")
    return {
        "history": history,
        "epoch": kept["epoch"],
        metric: kept["metric"],
        "weights": kept["weights"],
        "examples": sum(m["examples"] for m in history),
        "label": job.label,
    }


def run_jobs(jobs: list[Job], data: Prepared, cpus: float, gpus: float, on_done=None, refit: bool = False) -> list[dict]:
    """Run jobs as Ray tasks, each with `cpus` CPUs and `gpus` GPUs; results in the jobs' order,
    each with its "test" (`search.train.Evaluation`) and "test_accuracy", evaluated here, in the
    driver, on the weights it kept.

    `refit` trains on train + validation (Prepared.for_refit). `on_done(result)` is called
    as each finishes. A task that fails is retried twice by Ray.
    """
    import ray

    shared = ray.put(data.for_refit() if refit else data.for_trials())
    task = ray.remote(train_job).options(num_cpus=cpus, num_gpus=gpus, max_retries=2)
    pending = {task.remote(job, shared): i for i, job in enumerate(jobs)}
    results: list = [None] * len(jobs)
    while pending:
        (done,), _ = ray.wait(list(pending), num_returns=1)
        results[pending.pop(done)] = result = ray.get(done)
        if on_done is not None:
            on_done(result)
    for job, result in zip(jobs, results, strict=True):
        result["test"] = tested(job, result["weights"], data)
        result["test_accuracy"] = result["test"].accuracy
    return results


def network_of(params: dict, weights: list, num_classes: int, name: str | None = None):
    """A Keras-layers network of `params` for `num_classes` classes holding `weights` (from either
    LSTM implementation); `name` it to put several in one model."""
    from models import build_model  # Keras loads in the jobs and at the export, not on --help

    network = build_model(model_config(params, num_classes), lstm="keras", name=name)
    network.set_weights(weights)
    return network


def tested(job: Job, weights: list, data: Prepared):
    """A job's retrained network on the prepared test split (`search.train.Evaluation`)."""
    network, config = network_of(job.params, weights, len(data.classes)), model_config(job.params, len(data.classes))
    return evaluate_test(network, data, config.vocab_size, review_tokens(config, job.train, data))


def spread(values: list[float]) -> tuple[float, float]:
    """(mean, sample standard deviation; 0 for one value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0
