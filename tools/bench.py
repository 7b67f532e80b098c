"""Benchmark the harness's trial pipeline against the tutorial's, side by side.

    python -m tools.bench --data ../shared/datasets/aclImdb_v1_labelled.tar.gz [--preset tutorial-single] --json bench.json

For each preset, two worker processes hold one pipeline each and train epochs in turn
(tutorial, harness, tutorial, harness, ...) on the same training reviews:
- tutorial: TextVectorization inside the model, shuffled batches of 64 padded to their
  longest review, Keras fit, Adam(1e-4) on binary cross-entropy, as the tutorial writes it;
- harness: search.train's pipeline (cached integer ids, length-bucketed batches, one
  traced training step, the fused LSTM kernel on a CPU) on the same model configuration.
Both start from the same initial weights, so their validation accuracy after the same
epochs shows what the harness's shortcuts cost, if anything.
Prints training examples/s of each, their ratio, tokens/s, peak memory (each worker's own:
`search.serving.peak_resident_mib`), validation accuracy after the same epochs, and the LSTM's
floating-point rate against the cores' peak.
`--overhead RUN_DIR` prints how much of a finished search's CPU time went into training.
What a finished search ships is measured for serving by `python -m search.serving RUN_DIR`.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from models import LSTM_CHOICES, PRESETS, TUTORIAL_LEARNING_RATE
from runfiles.cli import ArgumentParser, UsageError, fail
from runfiles.documents import RunFacts
from runfiles.io import read_rows, write_json
from runfiles.layout import TUTORIAL_PRESETS, RunDir
from runfiles.trials import read_trials
from search.data import DataConfig, DataError, default_source, prepare, raw_splits
from search.serving import peak_resident_mib
from search.train import TrainConfig, configure_tensorflow, start_training, train_and_evaluate

PIPELINES = ("tutorial", "harness")


# ---------------------------------------------------------------- the two pipelines (worker side)


class CpuClock:
    """CPUs a process keeps busy: CPU seconds of all its threads per wall second, between `start` and `read`."""

    def start(self) -> None:
        self.cpu_s, self.wall_s = time.process_time(), time.perf_counter()

    def read(self) -> float:
        return (time.process_time() - self.cpu_s) / max(1e-9, time.perf_counter() - self.wall_s)


def _tutorial_worker(conn, preset: str, data_config: DataConfig, threads: int, seed: int, vocab_size: int) -> None:
    """The tutorial's pipeline: raw strings in, TextVectorization inside the model (of at most
    `vocab_size` tokens, the tutorial's 1,000 unless the corpus has fewer)."""
    configure_tensorflow(threads)
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    splits = raw_splits(data_config)
    texts, labels = splits["train"]
    val_texts, val_labels = splits["val"]
    encoder = keras.layers.TextVectorization(max_tokens=vocab_size)
    encoder.adapt(tf.data.Dataset.from_tensor_slices(np.array(texts, dtype=object)).batch(64))
    model = keras.Sequential([keras.Input(shape=(), dtype="string"), encoder, *tutorial_layers(preset, vocab_size)])
    model.compile(
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        optimizer=keras.optimizers.Adam(1e-4),
        metrics=["accuracy"],
    )
    model.set_weights(conn.recv())  # the harness's initial weights: both start from the same point
    train = (
        tf.data.Dataset.from_tensor_slices((np.array(texts, dtype=object), labels.astype(np.float32)))
        .shuffle(10000, seed=seed)
        .batch(64)
        .prefetch(tf.data.AUTOTUNE)
    )
    val = np.array(val_texts, dtype=object)
    clock = CpuClock()
    while conn.recv() == "epoch":
        clock.start()
        start = time.perf_counter()
        model.fit(train, epochs=1, verbose=0)
        epoch_s = time.perf_counter() - start
        logits = model.predict(val, batch_size=256, verbose=0)[:, 0]
        accuracy = float(((logits > 0) == (val_labels > 0.5)).mean())
        epoch = {"epoch_s": epoch_s, "examples": len(texts), "val_accuracy": accuracy, "peak_memory_mib": peak_resident_mib()}
        conn.send(epoch | {"cpus_used": clock.read()})


def tutorial_layers(preset: str, vocab: int) -> list:
    """The layers after the TextVectorization, exactly as the tutorial writes them (its embedding has
    `vocab` rows: its encoder's vocabulary, 1,000 on IMDB, and as many as the harness's network)."""
    import keras

    if preset == "tutorial-single":
        return [
            keras.layers.Embedding(input_dim=vocab, output_dim=64, mask_zero=True),
            keras.layers.Bidirectional(keras.layers.LSTM(64)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(1),
        ]
    return [
        keras.layers.Embedding(vocab, 64, mask_zero=True),
        keras.layers.Bidirectional(keras.layers.LSTM(64, return_sequences=True)),
        keras.layers.Bidirectional(keras.layers.LSTM(32)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(1),
    ]


def _harness_worker(conn, preset: str, data_config: DataConfig, threads: int, seed: int, vocab_size: int, lstm: str) -> None:
    """The harness's trial pipeline, driven one epoch per request through on_epoch; its embedding
    has `vocab_size` rows, as the tutorial pipeline's."""
    from models import resolve_lstm  # here, not at the top: it loads TensorFlow, which the driver need not

    configure_tensorflow(threads)
    lstm = resolve_lstm(lstm)
    data = prepare(data_config).for_trials()
    epochs = conn.recv()  # how many epochs will be asked for
    config = TrainConfig(epochs=epochs, seed=seed, threads=threads, learning_rate=TUTORIAL_LEARNING_RATE, lstm=lstm)
    start = time.perf_counter()
    model_config = dataclasses.replace(PRESETS[preset], vocab_size=vocab_size)
    training = start_training(model_config, config, len(data.splits["train"]))
    build_s = time.perf_counter() - start
    conn.send(training.network.get_weights())
    clock = CpuClock()

    def hand_over(metrics: dict, _training) -> None:
        cpus_used = clock.read()
        conn.send(
            {
                "epoch_s": metrics["epoch_s"],
                "examples": metrics["examples"],
                "val_accuracy": metrics["val_accuracy"],
                "peak_memory_mib": peak_resident_mib(),
                "setup_s": build_s + metrics.get("setup_s", 0.0),
                "lstm": metrics["lstm"],
                "cpus_used": cpus_used,
            }
        )
        conn.recv()
        clock.start()

    conn.recv()
    clock.start()
    train_and_evaluate(model_config, config, data, on_epoch=hand_over, resume=training)


# ---------------------------------------------------------------- measuring (driver side)


def lstm_flops_per_token(preset: str) -> float:
    """Training FLOPs per token of the BiLSTM layers: forward 2 x 4 gates x units x (in + units)
    multiply-adds per direction, and about twice that again for the backward pass."""
    config = PRESETS[preset]
    flops, width = 0.0, config.embedding_dim
    for units in config.units:
        flops += 2 * (2 * 4 * units * (width + units))
        width = 2 * units
    return 3 * flops


def peak_gflops(threads: int) -> tuple[float, str]:
    """The cores' fp32 peak, assuming two FMA units per core at the reported clock."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = next((line for line in text.splitlines() if line.startswith("flags")), "")
    mhz = [float(line.split(":")[1]) for line in text.splitlines() if line.startswith("cpu MHz")]
    lanes = 16 if " avx512f" in flags else 8 if " avx2" in flags else 4
    ghz = (max(mhz) if mhz else 2000.0) / 1000
    peak = threads * ghz * lanes * 2 * 2  # lanes x (multiply + add) x 2 FMA units
    isa = "AVX-512" if lanes == 16 else "AVX2" if lanes == 8 else "SSE"
    return peak, f"{threads} cores x {ghz:.2f} GHz x {lanes} fp32 lanes ({isa}) x 2 FMA units x 2 flops"


def measure_preset(
    preset: str, data_config: DataConfig, repeats: int, warmup: int, threads: int, seed: int, lstm: str = "auto"
) -> dict:
    """Train both pipelines of `preset` epoch by epoch in turn (see the module's docstring); their figures."""
    vocab_size = len(prepare(data_config).vocabulary)  # 1,000, or fewer on a small corpus
    ctx = multiprocessing.get_context("spawn")
    workers, conns = {}, {}
    for name, target, extra in (("tutorial", _tutorial_worker, ()), ("harness", _harness_worker, (lstm,))):
        parent, child = ctx.Pipe()
        args = (child, preset, data_config, threads, seed, vocab_size, *extra)
        workers[name] = ctx.Process(target=target, args=args, daemon=True)
        workers[name].start()
        conns[name] = parent
    conns["harness"].send(warmup + repeats)
    conns["tutorial"].send(conns["harness"].recv())  # same initial weights in both
    epochs: dict[str, list[dict]] = {name: [] for name in PIPELINES}
    try:
        for _ in range(warmup + repeats):
            for name in PIPELINES:  # alternate, so both see the same machine load
                conns[name].send("epoch")
                epochs[name].append(conns[name].recv())
        conns["tutorial"].send("stop")
        conns["harness"].send("stop")
    finally:
        for process in workers.values():
            process.join(timeout=60)
            if process.is_alive():
                process.terminate()
    tokens = int(prepare(data_config).splits["train"].lengths.sum())
    result = {name: summarize(epochs[name][warmup:], tokens) for name in PIPELINES}
    result["harness"]["setup_s"] = epochs["harness"][0]["setup_s"]
    result["harness"]["lstm"] = epochs["harness"][0]["lstm"]
    for name in PIPELINES:
        result[name]["first_epoch_s"] = epochs[name][0]["epoch_s"]
    result["ratio"] = result["harness"]["examples_per_s"] / result["tutorial"]["examples_per_s"]
    flops = lstm_flops_per_token(preset) * result["harness"]["tokens_per_s"]
    peak, assumption = peak_gflops(threads)
    result["limits"] = {
        "lstm_training_flops_per_token": lstm_flops_per_token(preset),
        "harness_gflops_per_s": flops / 1e9,
        "peak_gflops_per_s": peak,
        "fraction_of_peak": flops / 1e9 / peak,
        "peak_assumption": assumption,
    }
    result["epochs"] = {"warmup": warmup, "measured": repeats, "train_examples": epochs["harness"][0]["examples"]}
    return result


def summarize(epochs: list[dict], tokens: int) -> dict:
    seconds = statistics.median(e["epoch_s"] for e in epochs)
    examples = epochs[0]["examples"]
    return {
        "examples_per_s": examples / seconds,
        "tokens_per_s": tokens / seconds,
        "epoch_s": seconds,
        "epoch_s_all": [e["epoch_s"] for e in epochs],
        "val_accuracy": epochs[-1]["val_accuracy"],
        "peak_memory_mib": max(e["peak_memory_mib"] for e in epochs),
        "cpus_used": statistics.median(e["cpus_used"] for e in epochs),
    }


def tune_overhead(run_dir: Path) -> dict:
    """Share of the CPUs' time a finished search spent training, from its trial timelines."""
    files = RunDir(run_dir)
    trials, epochs = read_trials(files), read_rows(files.epochs_csv)
    cpus = RunFacts.read(files).resources.cpus
    starts = [float(t["started_at"]) for t in trials if t["started_at"]]
    ends = [float(t["ended_at"]) for t in trials if t["ended_at"]]
    wall = max(ends) - min(starts)
    per_trial_cpus = {t["trial_id"]: float(t["cpus"]) for t in trials}
    training = sum(float(e["epoch_s"]) * per_trial_cpus[e["trial_id"]] for e in epochs)
    evaluating = sum(float(e["eval_s"]) * per_trial_cpus[e["trial_id"]] for e in epochs)
    return {
        "trials": len(trials),
        "cpus": cpus,
        "wall_s": wall,
        "training_cpu_s": training,
        "evaluation_cpu_s": evaluating,
        "training_share": training / (cpus * wall),
        "training_and_evaluation_share": (training + evaluating) / (cpus * wall),
    }


# ---------------------------------------------------------------- command line


def print_preset(preset: str, r: dict) -> None:
    print(
        f"\n{preset}: {r['epochs']['train_examples']} training reviews, batch 64, no truncation, "
        f"median of {r['epochs']['measured']} epochs after {r['epochs']['warmup']} warm-up"
    )
    for name in PIPELINES:
        p = r[name]
        label = f"{name} ({p['lstm']})" if name == "harness" else name
        print(
            f"  {label:17s} {p['examples_per_s']:8.1f} examples/s  {p['tokens_per_s']:9.0f} tokens/s  "
            f"epoch {p['epoch_s']:6.1f} s (first {p['first_epoch_s']:.1f} s)  peak {p['peak_memory_mib']:6,.0f} MiB  "
            f"{p['cpus_used']:.2f} CPUs busy  "
            f"val_accuracy {p['val_accuracy']:.4f}"
        )
    print(
        f"  ratio             {r['ratio']:.2f}x harness / tutorial examples/s; harness setup before the first step "
        f"{r['harness']['setup_s']:.2f} s"
    )
    lim = r["limits"]
    print(
        f"  limits            LSTM training {lim['lstm_training_flops_per_token'] / 1e3:.0f} kFLOP/token x tokens/s = "
        f"{lim['harness_gflops_per_s']:.1f} GFLOP/s of a {lim['peak_gflops_per_s']:.0f} GFLOP/s peak "
        f"({lim['fraction_of_peak']:.1%}; {lim['peak_assumption']})"
    )


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.json is not None and not args.json.parent.is_dir():
            raise DataError(f"--json {args.json}: folder {args.json.parent} does not exist")
        if args.overhead is not None:
            result = _overhead(args.overhead)
        else:
            result = _measure(args)
    except (DataError, UsageError) as error:
        return fail(error)
    if args.json is not None:
        write_json(args.json, result)
    return 0


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", default=default_source(), help="'tfds', an aclImdb folder or .tar.gz (default: $IMDB_DATA or 'tfds')"
    )
    parser.add_argument("--preset", choices=TUTORIAL_PRESETS, default=None, help="one preset (default: both)")
    parser.add_argument(
        "--examples",
        type=int,
        default=2560,
        help="reviews taken from the training split, 20%% of them for validation (default: %(default)s)",
    )
    parser.add_argument("--repeats", type=int, default=2, help="measured epochs per pipeline (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=1, help="epochs per pipeline before measuring (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="TensorFlow threads per pipeline (default: the CPUs available)")
    parser.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    parser.add_argument(
        "--lstm",
        choices=LSTM_CHOICES,
        default="auto",
        help="the harness's LSTM implementation (default: %(default)s)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument(
        "--overhead",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="instead, print the training share of a finished search's CPU time",
    )
    return parser


def _overhead(run_dir: Path) -> dict:
    if not RunDir(run_dir).epochs_csv.exists():
        raise DataError(f"--overhead {run_dir}: not a search run directory (no {RunDir(run_dir).epochs_csv.name})")
    o = tune_overhead(run_dir)
    print(
        f"{o['trials']} trials on {o['cpus']} CPUs in {o['wall_s']:.1f} s: training {o['training_share']:.1%} "
        f"of CPUs x wall time, training + validation {o['training_and_evaluation_share']:.1%}"
    )
    return {"overhead": o}


def _measure(args) -> dict:
    for name in ("examples", "repeats"):
        if getattr(args, name) < (10 if name == "examples" else 1):
            raise DataError(f"--{name} {getattr(args, name)} is too small")
    data_config = DataConfig(source=args.data, limit=args.examples, test_limit=2, max_vocab=1000, seed=args.seed)
    prepare(data_config)  # fails here, with one line, on a bad source; warms the cache for the workers
    threads = args.threads or len(os.sched_getaffinity(0))
    result = {}
    for preset in [args.preset] if args.preset else list(TUTORIAL_PRESETS):
        result[preset] = measure_preset(preset, data_config, args.repeats, args.warmup, threads, args.seed, args.lstm)
        print_preset(preset, result[preset])
    return result


if __name__ == "__main__":
    sys.exit(main())
