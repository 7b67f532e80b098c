"""Export the best trial: a raw-text model, a SavedModel for serving, and a model card.

The test split is evaluated here, once, for the exported model only.
"""

from __future__ import annotations

import platform
import shutil
from pathlib import Path

import numpy as np

from runfiles.io import replace_dir, staging_dir, write_json
from runfiles.layout import CARD_FILE, MODEL_FILE, SAVED_MODEL_DIR, RunDir
from search import faults
from search.data import Prepared
from search.space import model_config, train_values
from search.train import compiled_eval_step, evaluate


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for name in ("tensorflow", "keras", "ray", "optuna", "pandas", "matplotlib", "numpy"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def evaluate_test(network, data: Prepared, vocab_size: int, max_len: int) -> float:
    """Accuracy of a trained network (ids in, logit out) on the prepared test split."""
    return evaluate(compiled_eval_step(network), data.splits["test"].with_vocab(vocab_size), max_len)[1]


def export_best(checkpoint: Path, params: dict, data: Prepared, dest: Path, facts: dict) -> dict:
    """Write dest/{model.keras, saved_model/, card.json} from a trial's checkpoint; returns the card.

    The network is rebuilt with Keras's own layers (cuDNN on a GPU, no compiled kernel
    needed to load it), whichever LSTM implementation the trial trained with.
    """
    from models import load_checkpoint  # Keras loads at the export, not on --help

    network, _, _, _ = load_checkpoint(checkpoint, lstm="keras")
    return export_network(network, params, data, dest, facts)


def export_network(network, params: dict, data: Prepared, dest: Path, facts: dict, test_accuracy: float | None = None) -> dict:
    """Write dest/{model.keras, saved_model/, card.json} for a trained network (Keras's layers); returns the card.

    The test split is evaluated here unless `test_accuracy` is given (it was, for this very
    network). Built in a staging folder beside `dest` and swapped in at the end, so an
    earlier export stays intact until the new one is complete.
    """
    from models import make_vectorizer, with_vectorizer  # Keras loads at the export, not on --help

    network_config, train = model_config(params), train_values(params)
    if test_accuracy is None:
        test_accuracy = evaluate_test(network, data, network_config.vocab_size, train["max_len"])
    model = with_vectorizer(network, make_vectorizer(data.vocabulary[: network_config.vocab_size], train["max_len"]))
    card = {
        **facts,
        "model": network_config.to_dict(),
        "train": train,
        "params": params,
        "test_accuracy": test_accuracy,
        "test_examples": len(data.splits["test"]),
        "data": data.facts,
        "versions": library_versions(),
        "inputs": "a batch of raw review strings (shape [batch], dtype string)",
        "outputs": "model.keras: one logit per review [batch, 1], sigmoid(logit) = P(positive); saved_model/: "
        "signature serving_default, text [batch] string -> probability, logit [batch] float32",
        "load": "import models.text; keras.saving.load_model('model.keras', safe_mode=True)  "
        "(models.text registers the standardization); saved_model/ needs only TensorFlow",
    }
    staging = staging_dir(dest)
    try:
        model.save(staging / MODEL_FILE)
        faults.pause("export")  # test-only: a driver stopped here leaves a half-built export
        write_saved_model(model, staging / SAVED_MODEL_DIR)
        write_json(staging / CARD_FILE, card)
        replace_dir(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return card


def write_saved_model(model, path: Path) -> None:
    """A SavedModel for serving (TensorFlow Serving, `tf.saved_model.load`).

    Its one endpoint, `serve` (also the `serving_default` signature), takes `text`, a
    batch of raw review strings [batch], and returns `probability` (that the review is
    positive) and `logit`, both [batch] float32.
    """
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(text):
        logit = model(text, training=False)[:, 0]
        return {"probability": tf.sigmoid(logit), "logit": logit}

    archive.add_endpoint("serve", serve, input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    archive.write_out(str(path), verbose=False)


def find_model(path: Path) -> Path | None:
    """The raw-text model.keras of a run directory, an exported model folder, or the file itself."""
    path = Path(path)
    for candidate in (path, path / MODEL_FILE, RunDir(path).best_model / MODEL_FILE):
        if candidate.is_file() and candidate.suffix == ".keras":
            return candidate
    return None


def probabilities(model, texts: list[str]) -> np.ndarray:
    """P(positive) [len(texts)] from a raw-text model's logits."""
    logits = model.predict_on_batch(np.array(texts, dtype=object))[:, 0]
    return 1 / (1 + np.exp(-logits))
