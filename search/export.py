"""Export the best trial: a raw-text model, a SavedModel for serving, and a model card.

The test split is evaluated here, once, for the exported model only.
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
from pathlib import Path

import numpy as np

from search.data import Prepared
from search.atomic import write_json
from search.space import configs_from
from search.train import TrainConfig, compiled_steps, evaluate

MODEL_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"
CARD_FILE = "card.json"


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for name in ("tensorflow", "keras", "ray", "optuna", "pandas", "matplotlib", "numpy"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def evaluate_test(network, data: Prepared, vocab_size: int, max_len: int | None) -> float:
    """Accuracy of a trained network (logit out) on the prepared test split."""
    _, predict_step = compiled_steps(network)
    return evaluate(predict_step, data.splits["test"].with_vocab(vocab_size), max_len)[1]


def export_best(checkpoint_model: Path, params: dict, data: Prepared, dest: Path, facts: dict) -> dict:
    """Write dest/{model.keras, saved_model/, card.json}; returns the card.

    Built in a temporary folder beside `dest` and moved into place at the end, so an
    earlier export stays intact until the new one is complete.
    """
    import keras

    from models import build_model, make_vectorizer, with_vectorizer

    model_config, overrides = configs_from(params)
    train_config = TrainConfig(**overrides)
    # Ship Keras's own layers (cuDNN on a GPU, no compiled kernel needed to load it),
    # whichever LSTM implementation the trial trained with: the weights are the same.
    network = build_model(model_config)
    network.set_weights(keras.saving.load_model(checkpoint_model).get_weights())
    test_accuracy = evaluate_test(network, data, model_config.vocab_size, train_config.max_len)

    vectorizer = make_vectorizer(data.vocabulary[: model_config.vocab_size], train_config.max_len)
    model = with_vectorizer(network, vectorizer)
    card = {
        **facts,
        "model": model_config.to_dict(),
        "train": overrides,
        "params": params,
        "test_accuracy": test_accuracy,
        "test_examples": len(data.splits["test"]),
        "data": data.facts,
        "versions": library_versions(),
        "inputs": "a batch of raw review strings (shape [batch], dtype string)",
        "outputs": "one logit per review; sigmoid(logit) is the probability the review is positive",
        "load": "keras.saving.load_model('model.keras', safe_mode=True)",
    }
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".best_model-", dir=dest.parent))
    try:
        model.save(staging / MODEL_FILE)
        model.export(str(staging / SAVED_MODEL_DIR), format="tf_saved_model", verbose=False)
        write_json(staging / CARD_FILE, card)
        if dest.exists():
            old = dest.with_name(dest.name + ".old")
            os.replace(dest, old)
            shutil.rmtree(old)
        os.replace(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return card


def find_model(path: Path) -> Path | None:
    """The raw-text model.keras of a run directory, an exported model folder, or the file itself."""
    path = Path(path)
    for candidate in (path, path / MODEL_FILE, path / "best_model" / MODEL_FILE):
        if candidate.is_file() and candidate.suffix == ".keras":
            return candidate
    return None


def probabilities(model, texts: list[str]) -> np.ndarray:
    logits = model.predict_on_batch(np.array(texts, dtype=object))[:, 0]
    return 1 / (1 + np.exp(-logits))
