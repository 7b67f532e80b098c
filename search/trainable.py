"""The Ray Tune trainable: a thin function of a trial's sampled values.

dict → typed configs → search.train.train_and_evaluate, reporting every epoch to Tune
with where it ran, the network's inference latency (search.train.inference_latency_ms,
measured after the epoch's training is timed) and a checkpoint (weights, optimizer state and model config, so a
resumed trial continues with whichever LSTM implementation its machine runs).
"""

from __future__ import annotations

import math
import os
import socket
import tempfile
import time

from search import faults
from search.data import Prepared
from search.searcher import NUMBER
from search.space import configs_from
from search.train import (
    DIVERGED,
    LATENCY_REVIEWS,
    TrainConfig,
    Training,
    configure_tensorflow,
    inference_latency_ms,
    train_and_evaluate,
)


def bilstm(config: dict, data: Prepared, train_base: TrainConfig, resume_from: dict) -> None:
    """Train one sampled configuration.

    `train_base` holds what all trials share (epochs, seed, threads, lstm: `Session.train_base`);
    `resume_from` maps study trial numbers to the `tune.Checkpoint` a resumed run
    continues them from (Tune's own checkpoint of this trial, after a retry, comes first).
    """
    import keras
    from ray import tune

    started = time.time()
    keras.backend.clear_session()  # the worker may have run an earlier trial
    params = {k: v for k, v in config.items() if k != NUMBER}
    model_config, train_config = configs_from(params, len(data.classes), train_base)
    where = _where(configure_tensorflow(train_config.threads))
    checkpoint = tune.get_checkpoint() or resume_from.get(config[NUMBER])
    resume = _restore(checkpoint, train_config) if checkpoint is not None else None
    probe = data.splits["val"].take(LATENCY_REVIEWS).with_vocab(model_config.vocab_size)

    def report(metrics: dict, training: Training) -> None:
        row = {**_finite(metrics), **where, "time": time.time(), "trial_time_s": time.time() - started}
        if DIVERGED in metrics:  # nothing worth continuing from
            tune.report(row)
            return
        row["latency_ms"] = inference_latency_ms(training.network, probe, metrics["review_tokens"])  # after the epoch's timing
        with tempfile.TemporaryDirectory() as folder:
            from models import save_checkpoint

            save_checkpoint(
                folder, training.network, training.optimizer, model_config, {"epoch": training.epoch, "params": params}
            )
            tune.report(row, checkpoint=tune.Checkpoint.from_directory(folder))

    def strike(training: Training) -> None:
        faults.before_epoch(config[NUMBER], training.epoch + 1, training)

    train_and_evaluate(model_config, train_config, data, on_epoch=report, resume=resume, before_epoch=strike)


def _finite(metrics: dict) -> dict:
    """The metrics with NaN and infinities as None, so that Ray's result.json stays strict JSON
    (a diverged epoch's losses; its `diverged` entry says which was not finite)."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in metrics.items()}


def _restore(checkpoint, train_config: TrainConfig) -> Training:
    from models import load_checkpoint

    with checkpoint.as_directory() as folder:
        network, optimizer, _, state = load_checkpoint(folder, lstm=train_config.lstm)
    return Training(network, optimizer, int(state["epoch"]))


def _where(device: str) -> dict:
    """Where this trial runs: node, host, device, Ray's GPU ids, process."""
    import ray

    return {
        "node_id": ray.get_runtime_context().get_node_id(),
        "hostname": socket.gethostname(),
        "device": device,
        "gpu_ids": ";".join(str(i) for i in ray.get_gpu_ids()),
        "pid": os.getpid(),
    }
