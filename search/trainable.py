"""The Ray Tune trainable: a thin function of a trial's sampled values.

dict → typed configs → search.train.train_and_evaluate, reporting every epoch to Tune
with where it ran and a checkpoint (the full model, so a resumed trial continues).
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from pathlib import Path

from search.data import Prepared
from search.space import configs_from
from search.train import TrainConfig, configure_tensorflow, train_and_evaluate

MODEL_FILE = "model.keras"
STATE_FILE = "state.json"


def bilstm(params: dict, data: Prepared, train_defaults: dict) -> None:
    """Train one sampled configuration; `train_defaults` holds what all trials share."""
    import keras
    import ray
    from ray import tune

    import models  # noqa: F401  registers FusedBiLSTM, which checkpoints may hold

    started = time.time()
    keras.backend.clear_session()  # the worker may have run an earlier trial
    model_config, overrides = configs_from(params)
    train_config = TrainConfig(**{**train_defaults, **overrides})
    device = configure_tensorflow(train_config.threads)
    where = {
        "node_id": ray.get_runtime_context().get_node_id(),
        "hostname": socket.gethostname(),
        "device": device,
        "gpu_ids": ";".join(str(i) for i in ray.get_gpu_ids()),
        "pid": os.getpid(),
    }

    model, start_epoch = None, 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            model = keras.saving.load_model(Path(folder) / MODEL_FILE)
            start_epoch = json.loads((Path(folder) / STATE_FILE).read_text())["epoch"]

    def report(metrics: dict, model) -> None:
        with tempfile.TemporaryDirectory() as folder:
            model.save(Path(folder) / MODEL_FILE)
            (Path(folder) / STATE_FILE).write_text(json.dumps({"epoch": metrics["epoch"], "params": params}))
            row = {**metrics, **where, "time": time.time(), "trial_time_s": time.time() - started}
            tune.report(row, checkpoint=tune.Checkpoint.from_directory(folder))

    train_and_evaluate(model_config, train_config, data, on_epoch=report, model=model, start_epoch=start_epoch)
