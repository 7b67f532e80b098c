"""Export the best trial: a raw-text model, a SavedModel for serving, and a model card.

The test split is evaluated here, once, for the exported model only.
"""

from __future__ import annotations

import dataclasses
import platform
import shutil
from pathlib import Path

import numpy as np

from runfiles import predictions
from runfiles.documents import Card
from runfiles.io import replace_dir, staging_dir
from runfiles.layout import MODEL_FILE, OBJECTIVE, PREDICTIONS_FILE, SAVED_MODEL_DIR, Objective, RunDir
from search import faults
from search.data import Prepared
from search.space import model_config, train_values
from search.train import Evaluation, TrainConfig, compiled_eval_step, evaluate, review_tokens


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for name in ("tensorflow", "keras", "ray", "optuna", "pandas", "matplotlib", "numpy"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def evaluate_test(network, data: Prepared, vocab_size: int, max_len: int) -> Evaluation | None:
    """A trained network (ids in, logits out) on the prepared test split; None where there is none
    (--test-fraction 0)."""
    if not len(data.splits["test"]):
        return None
    test = data.splits["test"].with_vocab(vocab_size)
    return evaluate(compiled_eval_step(network), test, max_len, len(data.classes))


def export_best(
    checkpoint: Path, params: dict, data: Prepared, dest: Path, card: Card, train: TrainConfig, objective: Objective = OBJECTIVE
) -> Card:
    """Write dest/{model.keras, saved_model/, card.json} from a trial's checkpoint, trained as
    `train` says (`search.space.configs_from`); `card` says which trial and epoch it is, the rest
    is filled in here; returns the card written.

    The network is rebuilt with Keras's own layers (cuDNN on a GPU, no compiled kernel
    needed to load it), whichever LSTM implementation the trial trained with.
    """
    from models import load_checkpoint  # Keras loads at the export, not on --help

    network, _, _, _ = load_checkpoint(checkpoint, lstm="keras")
    return export_network(network, params, data, dest, card, train, objective=objective)


def export_network(
    network,
    params: dict,
    data: Prepared,
    dest: Path,
    card: Card,
    train: TrainConfig,
    tested: Evaluation | None = None,
    objective: Objective = OBJECTIVE,
) -> Card:
    """Write dest/{model.keras, saved_model/, card.json, test_predictions.csv} for a network (Keras's layers) trained as
    `train` says; `card` says which trial, seed and epoch it is (its `value` the `objective`'s), the
    rest is filled in here; returns the card written. The model keeps the tokens of each review its
    training kept (`search.train.review_tokens`).

    The test split is evaluated here unless `tested` is given (it was, for this very network).
    Built in a staging folder beside `dest` and swapped in at the end, so an earlier export
    stays intact until the new one is complete.
    """
    from models import make_vectorizer, with_vectorizer  # Keras loads at the export, not on --help

    network_config, classes = model_config(params, len(data.classes)), data.classes
    tokens = review_tokens(network_config, train, data)
    if tested is None:
        tested = evaluate_test(network, data, network_config.vocab_size, tokens)
    model = with_vectorizer(network, make_vectorizer(data.vocabulary[: network_config.vocab_size], tokens))
    card = _filled(card, params, data, tested, tokens)
    staging = staging_dir(dest)
    try:
        model.save(staging / MODEL_FILE)
        faults.pause("export")  # test-only: a driver stopped here leaves a half-built export
        write_saved_model(model, staging / SAVED_MODEL_DIR, len(classes))
        card.write(staging, objective)
        if tested is not None and tested.predicted is not None:
            predictions.write(staging / PREDICTIONS_FILE, data.splits["test"].labels, tested.predicted)
        replace_dir(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return card


def _filled(card: Card, params: dict, data: Prepared, tested: Evaluation | None, tokens: int) -> Card:
    """`card` with what an export says of itself: its network, training, the tokens of a review it
    keeps, its test results (None without a test split), its data, the library versions, and what it takes and answers."""
    return dataclasses.replace(
        card,
        model=model_config(params, len(data.classes)).to_dict(),
        train=train_values(params),
        review_tokens=tokens,
        params=params,
        test_accuracy=tested and tested.accuracy,
        test_examples=len(data.splits["test"]),
        classes=data.classes,
        test_macro_f1=tested and tested.macro_f1,
        test_confusion=tested and tested.confusion,
        data=data.facts,
        versions=library_versions(),
        inputs="a batch of raw strings (shape [batch], dtype string)",
        outputs=_outputs(data.classes),
        load="import models.text; keras.saving.load_model('model.keras', safe_mode=True)  "
        "(models.text registers the standardization); saved_model/ needs only TensorFlow",
    )


def _outputs(classes: list[str]) -> str:
    """What card.json says the two exports answer, for two classes or K."""
    if len(classes) == 2:
        return (
            f"model.keras: one logit per text [batch, 1], sigmoid(logit) = P({classes[1]}), 1 - that = P({classes[0]}); "
            "saved_model/: signature serving_default, text [batch] string -> probability [batch] (of "
            f"{classes[1]}), logit [batch], probabilities [batch, 2] (in `classes` order) float32"
        )
    return (
        f"model.keras: {len(classes)} logits per text [batch, {len(classes)}], softmax(logits) = P(each class in `classes` "
        f"order); saved_model/: signature serving_default, text [batch] string -> probabilities [batch, {len(classes)}], "
        f"logits [batch, {len(classes)}] float32"
    )


def write_saved_model(model, path: Path, num_classes: int = 2) -> None:
    """A SavedModel for serving (TensorFlow Serving, `tf.saved_model.load`).

    Its one endpoint, `serve` (also the `serving_default` signature), takes `text`, a batch of
    raw strings [batch], and returns `probabilities` [batch, K] in the card's class order; for
    two classes also `probability` (of the second class) and `logit`, both [batch], as before;
    for K > 2 `logits` [batch, K]. All float32.
    """
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(text):
        logits = model(text, training=False)
        if num_classes > 2:
            return {"probabilities": tf.nn.softmax(logits), "logits": logits}
        logit = logits[:, 0]
        p = tf.sigmoid(logit)
        return {"probability": p, "logit": logit, "probabilities": tf.stack([1 - p, p], axis=1)}

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
    """Each class's probability [len(texts), K] from a raw-text model's logits, in its card's class
    order: [1 - p, p] with p = sigmoid(logit) for a one-logit (two-class) model, else softmax."""
    logits = np.asarray(model.predict_on_batch(np.array(texts, dtype=object)), dtype=np.float64)
    if logits.shape[1] == 1:
        p = 1 / (1 + np.exp(-logits[:, 0]))
        return np.stack([1 - p, p], axis=1)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
