"""Train one BiLSTM configuration and measure its accuracy and throughput.

    python -m search.train --preset tutorial-single --data PATH --epochs 1 --limit 2000 --json OUT.json

Prints one line per epoch (accuracy, loss, examples/s, tokens/s) and writes them to --json.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from models import LSTM_CHOICES, PRESETS, LstmChoice, one_of
from runfiles.cli import ArgumentParser, add_fields, fail
from runfiles.io import write_json
from search.data import READ_FIELDS, DataConfig, DataError, Prepared, Split, prepare
from search.memory import tokens_kept

Schedule = Literal["constant", "linear"]
"""The learning rate over training (`TrainConfig.schedule`)."""
SCHEDULES: tuple[str, ...] = get_args(Schedule)


@dataclass(frozen=True)
class TrainConfig:
    """How one configuration is trained (the model's shape lives in models.ModelConfig)."""

    epochs: int = 10
    """Passes over the training split."""
    batch_size: int = 64
    """Reviews per training step."""
    learning_rate: float = 1e-4
    """Adam's step size."""
    max_len: int = 0
    """Keep only the first max_len tokens of each review; 0 keeps whole reviews."""
    bucket: bool = True
    """Group reviews of similar length into a batch so that it pads to its own length."""
    seed: int = 0
    """Seeds weights, dropout and batch order."""
    threads: int | None = None
    """TensorFlow threads, in each of its two pools (intra-op and inter-op); None = the CPUs this process may use."""
    lstm: LstmChoice = "auto"
    """The LSTM implementation (models.LstmChoice): "auto" runs the fused CPU kernel on a
    machine without a GPU when the kernel builds, and Keras's layers (cuDNN) on a GPU."""
    schedule: Schedule = "constant"
    """The learning rate over training: constant, or "linear": warm-up from 0 over `warmup`
    of the planned steps, then linear decay to 0 at the last planned epoch's end."""
    warmup: float = 0.05
    """Share of the planned steps spent warming up (with schedule "linear")."""
    schedule_epochs: int = 0
    """The epochs the "linear" schedule is planned over; 0 = `epochs`. A retraining that stops at
    its trial's peak epoch keeps its trial's schedule (search.certify), so that it learns at the
    rates its trial learned at up to that epoch."""
    memory_mb: int = 0
    """MiB the network, its optimizer and its batches may use (search.memory.training_memory_mb):
    where the longest review (within max_len) would not fit at this batch size and width, reviews
    are cut to the tokens that do (`review_tokens`); 0 = no bound."""

    def __post_init__(self) -> None:
        for name, low in (("epochs", 1), ("batch_size", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"{name}={getattr(self, name)} is invalid: expected an integer >= {low}")
        if not 0 < self.learning_rate < 1:
            raise ValueError(f"learning_rate={self.learning_rate} is invalid: expected a value in (0, 1)")
        if self.max_len < 0:
            raise ValueError(f"max_len={self.max_len} is invalid: expected an integer >= 1, or 0 for whole reviews")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads={self.threads} is invalid: expected an integer >= 1")
        if self.lstm not in LSTM_CHOICES:
            raise ValueError(f"lstm={self.lstm!r} is invalid: expected {one_of(LSTM_CHOICES)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule={self.schedule!r} is invalid: expected {one_of(SCHEDULES)}")
        if self.schedule_epochs < 0:
            raise ValueError(f"schedule_epochs={self.schedule_epochs} is invalid: expected an integer >= 1, or 0 for epochs")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup={self.warmup} is invalid: expected a share in [0, 1)")
        if self.memory_mb < 0:
            raise ValueError(f"memory_mb={self.memory_mb} is invalid: expected MiB >= 1, or 0 for no bound")


DIVERGED = "diverged"
"""The key of an epoch's metrics that says why its loss was not finite (absent otherwise)."""

EpochMetrics = dict
"""epoch, train_loss, train_accuracy, val_loss, val_accuracy, val_macro_f1, examples, epoch_s, eval_s,
examples_per_s, tokens_per_s, padding_fraction, lstm ("fused" or "keras"), review_tokens and
reviews_cut (`review_tokens`, `reviews_cut`); setup_s on the first epoch run; diverged (why) on
an epoch whose loss was not finite, whose val_accuracy and val_macro_f1 are then NaN and which
ends the training."""


@dataclass
class Training:
    """What a checkpoint must hold to continue: the network, its optimizer, the epochs done."""

    network: object
    optimizer: object
    epoch: int = 0


def configure_tensorflow(threads: int | None) -> str:
    """Both of TensorFlow's thread pools sized to the CPUs given (`threads`; None: the CPUs this
    process may use), so a trial granted N CPUs keeps at most about N busy, and GPU memory
    growth; returns the device used ("CPU" or "GPU:0")."""
    import tensorflow as tf

    threads = threads or len(os.sched_getaffinity(0))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        for gpu in tf.config.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:  # TensorFlow already started in this process: keep its settings
        pass
    gpus = tf.config.list_physical_devices("GPU")
    return "GPU:0" if gpus else "CPU"


# ---------------------------------------------------------------- batching

EVAL_BATCH = 256
"""Reviews per evaluation batch (`evaluate`)."""


def review_tokens(model_config, config: TrainConfig, data: Prepared) -> int:
    """Tokens each review keeps in training and evaluation, 0 = whole: `config.max_len`, unless
    `config.memory_mb` cannot hold the longest training or validation review (within max_len) at
    this batch size and width; then the tokens it holds (`search.memory.tokens_kept`, with the LSTM
    the config runs on a CPU). A function of the configs and the data only, so that a trial, its
    retraining and its export cut alike."""
    if not config.memory_mb:
        return config.max_len
    longest = max(int(data.splits[name].lengths.max()) for name in ("train", "val"))
    wanted = min(longest, config.max_len) if config.max_len else longest
    lstm = "keras" if config.lstm == "keras" else "fused"
    held = tokens_kept(model_config, config.batch_size, EVAL_BATCH, config.memory_mb, lstm)
    return held if held < wanted else config.max_len


def reviews_cut(data: Prepared, max_len: int, kept: int) -> int:
    """Training and validation reviews that `kept` tokens (`review_tokens`) cut and `max_len` would not have."""
    if not kept or kept == max_len:
        return 0
    return sum(int(np.sum(data.splits[name].lengths > kept)) for name in ("train", "val"))


def pad_batch(split: Split, rows: np.ndarray, max_len: int) -> np.ndarray:
    """Right-padded ids [len(rows), longest] of the given reviews, cut to max_len (0: whole)."""
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


def make_optimizer(config: TrainConfig, train_examples: int):
    """Adam with the configured step size, constant or scheduled over the planned steps."""
    import keras

    from models.schedules import WarmupLinearDecay  # with Keras, not on --help

    if config.schedule == "constant":
        return keras.optimizers.Adam(config.learning_rate)
    total = (config.schedule_epochs or config.epochs) * math.ceil(train_examples / config.batch_size)
    return keras.optimizers.Adam(WarmupLinearDecay(config.learning_rate, total, int(config.warmup * total)))


def scores(labels, logits):
    """Per-review (loss, predicted class): the one definition of loss and prediction, used by
    training, validation and the test evaluation.

    labels [batch] int32 class indices; logits [batch, 1] (two classes: binary cross-entropy of
    the one logit, class 1 where it is positive) or [batch, K] (softmax cross-entropy, the
    largest logit's class). Both results [batch]; the prediction is -1 (never right) where a
    logit is NaN or infinite.
    """
    import tensorflow as tf

    if logits.shape[-1] == 1:
        logit = logits[:, 0]
        losses = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(labels, tf.float32), logits=logit)
        predicted = tf.cast(logit > 0, tf.int32)
    else:
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
    finite = tf.reduce_all(tf.math.is_finite(logits), axis=-1)
    return losses, tf.where(finite, predicted, -1)


def compiled_train_step(network, optimizer):
    """A training step traced once for any batch shape: ids [batch, time] int32 and class indices
    [batch] int32 in; applies the gradient of the mean loss; returns the batch's summed loss and
    its number of correct predictions."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((None,), tf.int32)])
    def train_step(x, y):
        with tf.GradientTape() as tape:
            losses, predicted = scores(y, network(x, training=True))
            loss = tf.reduce_mean(losses)
        variables = network.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return tf.reduce_sum(losses), tf.reduce_sum(tf.cast(tf.equal(predicted, y), tf.float32))

    return train_step


def compiled_eval_step(network):
    """Like `compiled_train_step` without training: the batch's summed loss and each review's
    predicted class [batch] (`scores`)."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((None,), tf.int32)])
    def eval_step(x, y):
        losses, predicted = scores(y, network(x, training=False))
        return tf.reduce_sum(losses), predicted

    return eval_step


@dataclass(frozen=True)
class Evaluation:
    """A network's scores on one split."""

    loss: float
    """Mean cross-entropy per review."""
    accuracy: float
    """Share of reviews whose predicted class is theirs."""
    macro_f1: float
    """Unweighted mean over the classes of F1 (a class never predicted nor present scores 0),
    as scikit-learn's f1_score(average="macro", zero_division=0)."""
    confusion: list[list[int]]
    """Reviews by true class (rows) and predicted class (columns); a review whose logits were
    not finite is in no column."""
    predicted: np.ndarray | None = None
    """The predicted class of each review [n], in the split's order (runfiles.predictions keeps the test split's)."""


def evaluate(eval_step, split: Split, max_len: int, num_classes: int, batch_size: int = EVAL_BATCH) -> Evaluation:
    """A split's `Evaluation`, in batches grouped by length."""
    from sklearn.metrics import confusion_matrix, f1_score  # here, not at the top: a second of import

    loss, predicted = 0.0, np.empty(len(split), np.int32)
    for rows in batch_rows(split.lengths, batch_size, None, bucket=True):
        batch_loss, batch_predicted = eval_step(pad_batch(split, rows, max_len), split.labels[rows].astype(np.int32))
        loss += float(batch_loss)
        predicted[rows] = batch_predicted.numpy()
    labels, classes = split.labels.astype(np.int32), list(range(num_classes))
    return Evaluation(
        loss=loss / len(split),
        accuracy=float(np.mean(predicted == labels)),
        macro_f1=float(f1_score(labels, predicted, labels=classes, average="macro", zero_division=0)),
        confusion=confusion_matrix(labels, predicted, labels=classes).tolist(),
        predicted=predicted,
    )


LATENCY_REVIEWS = 16
"""Validation reviews (the split's first, the same for every trial) timed one at a time for latency_ms."""


def inference_latency_ms(network, split: Split, max_len: int) -> float:
    """Median milliseconds a network (ids in, logits out) takes for one review at batch 1, over the
    first LATENCY_REVIEWS reviews of `split` (ids already within its vocabulary), cut to max_len,
    through one traced function after a warm-up call: the network only, without tokenizing (the
    exported model's text pipeline adds to it; `search.serving` measures that)."""
    import tensorflow as tf

    infer = tf.function(lambda ids: network(ids, training=False), input_signature=[tf.TensorSpec([1, None], tf.int32)])
    probes = [pad_batch(split, np.array([i]), max_len) for i in range(min(LATENCY_REVIEWS, len(split)))]
    infer(probes[0]).numpy()
    times = []
    for ids in probes:
        started = time.perf_counter()
        infer(ids).numpy()
        times.append((time.perf_counter() - started) * 1000)
    return float(np.median(times))


def start_training(model_config, train_config: TrainConfig, train_examples: int, vectors=None) -> Training:
    """A new network (seeded by train_config.seed) and its optimizer for `train_examples` per epoch, epoch 0;
    its embedding starts from `vectors` where the model config uses them (`models.build_model`)."""
    import keras

    from models import build_model

    keras.utils.set_random_seed(train_config.seed)
    network = build_model(model_config, lstm=train_config.lstm, vectors=vectors)
    return Training(network, make_optimizer(train_config, train_examples))


def train_and_evaluate(
    model_config,
    train_config: TrainConfig,
    data: Prepared,
    on_epoch: Callable[[EpochMetrics, Training], None] | None = None,
    resume: Training | None = None,
    before_epoch: Callable[[Training], None] | None = None,
) -> list[EpochMetrics]:
    """Train `model_config` on data's train split, validating after every epoch.

    `on_epoch(metrics, training)` is called after each epoch (reporting, checkpointing),
    `before_epoch(training)` before each one.
    `resume` (from a checkpoint) continues its network and optimizer after `resume.epoch`.
    Returns the metrics of the epochs run here; training ends early, after calling
    on_epoch, when an epoch's loss is not finite (metrics[DIVERGED] says which).
    """
    import keras

    from models import resolve_lstm

    t0 = time.perf_counter()
    kept = review_tokens(model_config, train_config, data)
    cut = {"review_tokens": kept, "reviews_cut": reviews_cut(data, train_config.max_len, kept)}
    train_config = replace(train_config, max_len=kept)
    if resume is not None:
        keras.utils.set_random_seed(train_config.seed + resume.epoch)  # dropout continues reproducibly
    training = resume or start_training(model_config, train_config, len(data.splits["train"]), data.embedding_matrix)
    train = data.splits["train"].with_vocab(model_config.vocab_size)
    val = data.splits["val"].with_vocab(model_config.vocab_size)
    train_step, eval_step = compiled_train_step(training.network, training.optimizer), compiled_eval_step(training.network)
    rng = np.random.default_rng(train_config.seed + training.epoch)
    context = {"lstm": resolve_lstm(train_config.lstm), **cut, "setup_s": time.perf_counter() - t0}
    history = []
    while training.epoch < train_config.epochs:
        if before_epoch is not None:
            before_epoch(training)
        metrics = {**_train_epoch(train_step, eval_step, train, val, train_config, rng, model_config.num_classes), **context}
        training.epoch = metrics["epoch"] = training.epoch + 1
        context.pop("setup_s", None)
        history.append(metrics)
        if on_epoch is not None:
            on_epoch(metrics, training)
        if DIVERGED in metrics:
            break
    return history


def _train_epoch(train_step, eval_step, train: Split, val: Split, config: TrainConfig, rng, num_classes: int) -> EpochMetrics:
    """One pass over the training split, then validation (skipped when the loss diverged)."""
    rows = batch_rows(train.lengths, config.batch_size, rng, config.bucket)
    start = time.perf_counter()
    sums = [train_step(pad_batch(train, r, config.max_len), train.labels[r].astype(np.int32)) for r in rows]
    train_loss = sum(float(loss) for loss, _ in sums) / len(train)
    train_correct = sum(float(correct) for _, correct in sums)
    epoch_s = time.perf_counter() - start
    real_tokens, padded_tokens = _token_counts(train, rows, config.max_len)
    metrics = {
        "train_loss": train_loss,
        "train_accuracy": train_correct / len(train),
        "examples": len(train),
        "epoch_s": epoch_s,
        "examples_per_s": len(train) / epoch_s,
        "tokens_per_s": real_tokens / epoch_s,
        "padding_fraction": 1 - real_tokens / padded_tokens,
    }
    unscored = {"val_accuracy": math.nan, "val_macro_f1": math.nan}
    if not np.isfinite(train_loss):
        return {**metrics, **unscored, "val_loss": math.nan, "eval_s": 0.0, DIVERGED: f"training loss is {train_loss}"}
    scored = evaluate(eval_step, val, config.max_len, num_classes)
    metrics.update(val_loss=scored.loss, eval_s=time.perf_counter() - start - epoch_s)
    if not np.isfinite(scored.loss):
        return {**metrics, **unscored, DIVERGED: f"validation loss is {scored.loss}"}
    return {**metrics, "val_accuracy": scored.accuracy, "val_macro_f1": scored.macro_f1}


def _token_counts(split: Split, rows: list[np.ndarray], max_len: int) -> tuple[int, int]:
    real = padded = 0
    for r in rows:
        lengths = np.minimum(split.lengths[r], max_len) if max_len else split.lengths[r]
        real += int(lengths.sum())
        padded += len(r) * max(1, int(lengths.max()))
    return real, padded


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m search.train", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--preset", choices=sorted(PRESETS), default=next(iter(PRESETS)), help="model to train (default: %(default)s)"
    )
    add_fields(parser, DataConfig, ["source", *READ_FIELDS, "limit"], flags={"source": "--data"})
    add_fields(parser, TrainConfig, [f.name for f in fields(TrainConfig)])
    parser.add_argument("--json", type=Path, default=None, help="write the per-epoch metrics here")
    try:
        args = parser.parse_args(argv)
        train_config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
        read = {name: getattr(args, name) for name in READ_FIELDS}
        data_config = DataConfig(
            source=args.source, limit=args.limit, seed=args.seed, max_vocab=PRESETS[args.preset].vocab_size, **read
        )
        if args.json is not None and not args.json.parent.is_dir():
            raise DataError(f"--json {args.json}: folder {args.json.parent} does not exist")
        device = configure_tensorflow(train_config.threads)
        data = prepare(data_config)
    except (DataError, ValueError) as error:
        return fail(error)
    print(f"{args.preset} on {device}: {len(data.splits['train'])} train / {len(data.splits['val'])} validation reviews")
    model_config = replace(PRESETS[args.preset], num_classes=len(data.classes))
    history = train_and_evaluate(model_config, train_config, data.for_trials(), on_epoch=_print_epoch)
    if args.json is not None:
        result = {
            "preset": args.preset,
            "device": device,
            "model": model_config.to_dict(),
            "train": asdict(train_config),
            "data": data.facts.to_json(),
            "epochs": history,
        }
        write_json(args.json, result)
    return 0


def _print_epoch(m: EpochMetrics, _training: Training) -> None:
    if DIVERGED in m:
        print(f"epoch {m['epoch']}: diverged ({m[DIVERGED]})", flush=True)
        return
    print(
        f"epoch {m['epoch']}: train_accuracy {m['train_accuracy']:.4f}  val_accuracy {m['val_accuracy']:.4f}  "
        f"val_loss {m['val_loss']:.4f}  {m['examples_per_s']:.1f} examples/s  {m['tokens_per_s']:.0f} tokens/s  "
        f"{m['epoch_s']:.1f} s",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
