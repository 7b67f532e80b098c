"""Train one BiLSTM configuration and measure its accuracy and throughput.

    python -m search.train --preset tutorial-single --data PATH --epochs 1 --limit 2000 --json OUT.json

Prints one line per epoch (accuracy, loss, examples/s, tokens/s) and writes them to --json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from search.atomic import write_json
from search.data import DataConfig, DataError, Prepared, Split, default_source, prepare


@dataclass(frozen=True)
class TrainConfig:
    """How one configuration is trained (the model's shape lives in models.ModelConfig)."""

    epochs: int = 10
    """Passes over the training split."""
    batch_size: int = 64
    """Reviews per training step."""
    learning_rate: float = 1e-4
    """Adam's step size."""
    max_len: int | None = None
    """Keep only the first max_len tokens of each review; None keeps whole reviews."""
    bucket: bool = True
    """Group reviews of similar length into a batch so that it pads to its own length."""
    seed: int = 0
    """Seeds weights, dropout and batch order."""
    threads: int | None = None
    """TensorFlow threads (intra-op); None = the CPUs this process may use."""
    fused_lstm: bool | None = None
    """Run the LSTMs as `models.FusedBiLSTM` (same network, compiled CPU kernel) instead of
    Keras's layers. None = where it pays: on a machine without a GPU (Keras uses cuDNN on
    one), when the kernel builds."""

    def __post_init__(self) -> None:
        for name, low in (("epochs", 1), ("batch_size", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"{name}={getattr(self, name)} is invalid: expected an integer >= {low}")
        if not 0 < self.learning_rate < 1:
            raise ValueError(f"learning_rate={self.learning_rate} is invalid: expected a value in (0, 1)")
        if self.max_len is not None and self.max_len < 1:
            raise ValueError(f"max_len={self.max_len} is invalid: expected an integer >= 1, or None for no limit")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads={self.threads} is invalid: expected an integer >= 1")


EpochMetrics = dict
"""epoch, train_loss, train_accuracy, val_loss, val_accuracy, epoch_s, eval_s,
examples_per_s, tokens_per_s, padding_fraction, lstm ("fused" or "keras")."""


def configure_tensorflow(threads: int | None) -> str:
    """Thread counts from the CPUs given and GPU memory growth; returns the device used."""
    import tensorflow as tf

    threads = threads or len(os.sched_getaffinity(0))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(max(2, threads))
        for gpu in tf.config.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:  # TensorFlow already started in this process: keep its settings
        pass
    gpus = tf.config.list_physical_devices("GPU")
    return "GPU:0" if gpus else "CPU"


def use_fused_lstm(wanted: bool | None) -> bool:
    """Resolve `TrainConfig.fused_lstm`; True without a kernel is a RuntimeError."""
    import tensorflow as tf

    from models import kernels

    if wanted is False or (wanted is None and tf.config.list_logical_devices("GPU")):
        return False
    if kernels.load() is not None:
        return True
    if wanted:
        raise RuntimeError(f"fused_lstm=True: {kernels.why_unavailable()}")
    warnings.warn(f"Keras's LSTM layers instead of the fused kernel: {kernels.why_unavailable()}", stacklevel=2)
    return False


# ---------------------------------------------------------------- batching


def pad_batch(split: Split, rows: np.ndarray, max_len: int | None) -> np.ndarray:
    """Right-padded ids of the given reviews, as long as the longest of them."""
    lengths = np.minimum(split.lengths[rows], max_len) if max_len else split.lengths[rows]
    batch = np.zeros((len(rows), max(1, int(lengths.max()))), np.int32)
    for j, (row, n) in enumerate(zip(rows, lengths)):
        start = split.offsets[row]
        batch[j, :n] = split.tokens[start : start + n]
    return batch


def batch_rows(lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None, bucket: bool) -> list[np.ndarray]:
    """Row indices per batch. Shuffled when rng is given; with bucket, similar lengths together.

    Bucketing sorts pools of 50 batches by length, cuts them into batches and shuffles the
    batches, so each epoch sees a different order but pads little.
    """
    order = rng.permutation(len(lengths)) if rng is not None else np.arange(len(lengths))
    if bucket:
        pool = batch_size * 50  # a whole number of batches, so no batch straddles two pools
        chunks = (order[i : i + pool] for i in range(0, len(order), pool))
        order = np.concatenate([chunk[np.argsort(lengths[chunk], kind="stable")] for chunk in chunks])
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None and bucket:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


# ---------------------------------------------------------------- training


def compile_model(model, learning_rate: float) -> None:
    """Adam on binary cross-entropy of the logit; kept on the model so checkpoints carry it."""
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy(threshold=0.0, name="accuracy")],
    )


def is_fused(model) -> bool:
    from models import FusedBiLSTM

    return any(isinstance(layer, FusedBiLSTM) for layer in model.layers)


def rebuilt(model, model_config, learning_rate: float, fused: bool):
    """The same trained network and optimizer state with the other LSTM implementation."""
    from models import build_model

    twin = build_model(model_config, fused=fused)
    compile_model(twin, learning_rate)
    twin.set_weights(model.get_weights())
    twin.optimizer.build(twin.trainable_variables)
    theirs = model.optimizer.variables
    if [v.shape for v in twin.optimizer.variables] != [v.shape for v in theirs]:
        raise ValueError("the checkpoint's optimizer state does not match its network")
    for mine, value in zip(twin.optimizer.variables, theirs):
        mine.assign(value)
    return twin


def compiled_steps(model):
    """(train_step, predict_step): traced once for any batch shape, so no retracing."""
    import tensorflow as tf

    ids = tf.TensorSpec((None, None), tf.int32)
    labels = tf.TensorSpec((None,), tf.float32)

    @tf.function(input_signature=[ids, labels])
    def train_step(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)[:, 0]
            loss = model.loss(y, logits)
        variables = model.trainable_variables
        model.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss, logits

    @tf.function(input_signature=[ids])
    def predict_step(x):
        return model(x, training=False)[:, 0]

    return train_step, predict_step


def evaluate(predict_step, split: Split, max_len: int | None, batch_size: int = 256) -> tuple[float, float]:
    """(loss, accuracy) of the logits on a split, batched by length."""
    losses, correct = [], 0
    for rows in batch_rows(split.lengths, batch_size, None, bucket=True):
        logits = predict_step(pad_batch(split, rows, max_len)).numpy()
        y = split.labels[rows]
        losses.append(np.logaddexp(0, logits) - y * logits)  # binary cross-entropy from logits
        correct += int(((logits > 0) == (y > 0.5)).sum())
    return float(np.concatenate(losses).mean()), correct / len(split)


def train_and_evaluate(
    model_config,
    train_config: TrainConfig,
    data: Prepared,
    on_epoch: Callable[[EpochMetrics, object], None] | None = None,
    model=None,
    start_epoch: int = 0,
) -> list[EpochMetrics]:
    """Train `model_config` on data's train split, validating after every epoch.

    `on_epoch(metrics, model)` is called after each epoch (reporting, checkpointing).
    A compiled `model` restored from a checkpoint continues from `start_epoch`.
    Returns the metrics of the epochs run here, plus `setup_s` on the first one.
    """
    import keras

    from models import build_model

    t0 = time.perf_counter()
    keras.utils.set_random_seed(train_config.seed + start_epoch)
    train = data.splits["train"].with_vocab(model_config.vocab_size)
    val = data.splits["val"].with_vocab(model_config.vocab_size)
    fused = use_fused_lstm(train_config.fused_lstm)
    if model is None:
        model = build_model(model_config, fused=fused)
        compile_model(model, train_config.learning_rate)
    elif is_fused(model) != fused:  # a checkpoint from a machine that ran the other LSTM
        model = rebuilt(model, model_config, train_config.learning_rate, fused)
    train_step, predict_step = compiled_steps(model)
    lstm = "fused" if fused else "keras"
    rng = np.random.default_rng(train_config.seed + start_epoch)
    setup_s = time.perf_counter() - t0

    history = []
    for epoch in range(start_epoch, train_config.epochs):
        rows = batch_rows(train.lengths, train_config.batch_size, rng, train_config.bucket)
        start = time.perf_counter()
        outputs = [train_step(pad_batch(train, r, train_config.max_len), train.labels[r]) for r in rows]
        loss_sum = sum(float(loss) * len(r) for (loss, _), r in zip(outputs, rows))
        correct = sum(int(((logits.numpy() > 0) == (train.labels[r] > 0.5)).sum()) for (_, logits), r in zip(outputs, rows))
        epoch_s = time.perf_counter() - start
        val_loss, val_accuracy = evaluate(predict_step, val, train_config.max_len)
        eval_s = time.perf_counter() - start - epoch_s
        real_tokens, padded_tokens = _token_counts(train, rows, train_config.max_len)
        metrics = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / len(train),
            "train_accuracy": correct / len(train),
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
            "epoch_s": epoch_s,
            "eval_s": eval_s,
            "examples_per_s": len(train) / epoch_s,
            "tokens_per_s": real_tokens / epoch_s,
            "padding_fraction": 1 - real_tokens / padded_tokens,
            "lstm": lstm,
        }
        if not history:
            metrics["setup_s"] = setup_s
        history.append(metrics)
        if on_epoch is not None:
            on_epoch(metrics, model)
    return history


def _token_counts(split: Split, rows: list[np.ndarray], max_len: int | None) -> tuple[int, int]:
    real = padded = 0
    for r in rows:
        lengths = np.minimum(split.lengths[r], max_len) if max_len else split.lengths[r]
        real += int(lengths.sum())
        padded += len(r) * max(1, int(lengths.max()))
    return real, padded


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    from models import PRESETS, TUTORIAL_BATCH_SIZE, TUTORIAL_LEARNING_RATE

    parser = argparse.ArgumentParser(prog="python -m search.train", description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tutorial-single", help="model to train (default: %(default)s)")
    parser.add_argument("--data", default=default_source(), help="'tfds', an aclImdb folder or .tar.gz (default: $IMDB_DATA or 'tfds')")
    parser.add_argument("--epochs", type=int, default=1, help="epochs to train (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training reviews (default: all)")
    parser.add_argument("--batch-size", type=int, default=TUTORIAL_BATCH_SIZE, help="default: %(default)s")
    parser.add_argument("--learning-rate", type=float, default=TUTORIAL_LEARNING_RATE, help="default: %(default)s")
    parser.add_argument("--max-len", type=int, default=None, help="truncate reviews to N tokens (default: no limit)")
    parser.add_argument("--no-bucket", action="store_true", help="shuffle without grouping by length")
    parser.add_argument("--threads", type=int, default=None, help="TensorFlow threads (default: the CPUs available)")
    parser.add_argument("--keras-lstm", action="store_true", help="Keras's LSTM layers instead of the fused CPU kernel")
    parser.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    parser.add_argument("--json", type=Path, default=None, help="write the per-epoch metrics here")
    args = parser.parse_args(argv)
    try:
        train_config = TrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            max_len=args.max_len,
            bucket=not args.no_bucket,
            seed=args.seed,
            threads=args.threads,
            fused_lstm=False if args.keras_lstm else None,
        )
        data_config = DataConfig(source=args.data, limit=args.limit, seed=args.seed, max_vocab=PRESETS[args.preset].vocab_size)
        if args.json is not None and not args.json.parent.is_dir():
            raise DataError(f"--json {args.json}: folder {args.json.parent} does not exist")
        device = configure_tensorflow(train_config.threads)
        data = prepare(data_config)
    except (DataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{args.preset} on {device}: {len(data.splits['train'])} train / {len(data.splits['val'])} validation reviews")
    model_config = PRESETS[args.preset]

    def show(m: EpochMetrics, _model) -> None:
        print(
            f"epoch {m['epoch']}: train_accuracy {m['train_accuracy']:.4f}  val_accuracy {m['val_accuracy']:.4f}  "
            f"val_loss {m['val_loss']:.4f}  {m['examples_per_s']:.1f} examples/s  {m['tokens_per_s']:.0f} tokens/s  "
            f"{m['epoch_s']:.1f} s",
            flush=True,
        )

    history = train_and_evaluate(model_config, train_config, data.for_trials(), on_epoch=show)
    if args.json is not None:
        result = {
            "preset": args.preset,
            "device": device,
            "model": model_config.to_dict(),
            "train": asdict(train_config),
            "data": data.facts,
            "epochs": history,
        }
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
