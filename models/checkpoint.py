"""Checkpoints that hold a network's weights, its optimizer's state and its config.

A checkpoint records what the network is (`ModelConfig`), not which LSTM implementation
trained it, so it continues with either (`models.build_model(config, lstm=...)`): a trial
trained with the fused CPU kernel resumes with cuDNN on a GPU, and the export always
ships Keras's own layers.

    folder/model.json      {"model": ModelConfig, "optimizer": Keras's serialized optimizer, "state": ...}
    folder/weights.npz     the network's weights, in `get_weights()` order
    folder/optimizer.npz   the optimizer's variables, in `optimizer.variables` order
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np

from models import schedules  # noqa: F401  registers the learning-rate schedules an optimizer may hold
from models.build import build_model
from models.config import LstmChoice, ModelConfig

CONFIG_FILE = "model.json"
WEIGHTS_FILE = "weights.npz"
OPTIMIZER_FILE = "optimizer.npz"


def save_checkpoint(
    folder: Path, network: keras.Model, optimizer: keras.optimizers.Optimizer, config: ModelConfig, state: dict | None = None
) -> None:
    """Write a checkpoint of `network` (built from `config`) and `optimizer` into `folder`.

    `state` is any JSON-serializable record kept beside them (an epoch count, say).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    description = {"model": config.to_dict(), "optimizer": keras.optimizers.serialize(optimizer), "state": state or {}}
    (folder / CONFIG_FILE).write_text(json.dumps(description, indent=2))
    np.savez(folder / WEIGHTS_FILE, *network.get_weights())
    np.savez(folder / OPTIMIZER_FILE, *(v.numpy() for v in optimizer.variables))


def load_checkpoint(
    folder: Path, lstm: LstmChoice = "keras"
) -> tuple[keras.Model, keras.optimizers.Optimizer, ModelConfig, dict]:
    """(network, optimizer, config, state) from a checkpoint, the network built with `lstm`.

    Raises ValueError when the saved arrays do not fit the network or optimizer that its
    config describes (a checkpoint of another model).
    """
    folder = Path(folder)
    description = json.loads((folder / CONFIG_FILE).read_text())
    config = ModelConfig.from_dict(description["model"])
    network = build_model(config, lstm=lstm)
    network.set_weights(_arrays(folder / WEIGHTS_FILE))
    optimizer = keras.optimizers.deserialize(description["optimizer"])
    optimizer.build(network.trainable_variables)
    saved = _arrays(folder / OPTIMIZER_FILE)
    if [tuple(v.shape) for v in optimizer.variables] != [a.shape for a in saved]:
        raise ValueError(f"{folder}: the optimizer state does not match the network its config describes")
    for variable, value in zip(optimizer.variables, saved):
        variable.assign(value)
    return network, optimizer, config, description.get("state", {})


def _arrays(path: Path) -> list[np.ndarray]:
    with np.load(path) as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]
