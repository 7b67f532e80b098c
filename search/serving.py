"""What a run ships, measured for serving: load time, latency per request, throughput, size, memory.

    python -m search.serving RUN_DIR [--threads 1]
    python -m search.run ...   # at the end of every search that exports, unless --no-benchmark

Measured on this machine's CPUs with the run's own test texts (their real lengths; a test split
smaller than the largest batch is repeated to fill one, and the output says so), each model in a
fresh process whose TensorFlow thread pools (intra-op and inter-op) are pinned to `--threads`:
the exported `model.keras` and the tutorial's two models, built at the exported model's
vocabulary (at most the tutorial's 1,000 words) with untrained weights, since their cost does not
depend on the values of their weights. For each: the time `keras.saving.load_model` takes; the
latency of one request of one text (p50, p95, p99 over `requests` texts drawn from the test
split, after warm-up), through one traced function as a server runs it; throughput at batch 32
and 256 (texts per second, over `texts` texts, or all of a smaller test split, and at least a
whole batch of each size); model.keras's size on disk, the parameter count and the measuring
process's own peak resident memory (`peak_resident_mib`). Results go to best_model/benchmark.json
and card.json's benchmark (`runfiles.documents.Benchmark`, `Card`); the report shows them beside
the linear baseline's speed (baseline.json). The command measures a finished run again (after
`search.certify`, say), holding the run directory's lock, and rebuilds its report; what TensorFlow
prints goes to the run's driver.log, as in a search.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import os
import platform
import random
import resource
import shlex
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runfiles.cli import ArgumentParser, UsageError, add_fields, fail, given_path
from runfiles.documents import Benchmark, Card, Latency, Machine, RunFacts, ServedModel
from runfiles.layout import CARD_FILE, MODEL_FILE, NO_TEST_SPLIT, TUTORIAL_PRESETS, RunDir

EXPORTED = "exported"
"""benchmark.json's name for the run's exported model, beside the tutorial presets' names."""


@dataclass(frozen=True)
class ServingConfig:
    """How the serving benchmark measures."""

    threads: int = 1
    """TensorFlow's intra-op and inter-op threads in each measuring process."""
    requests: int = 300
    """Single-text requests timed for the latency percentiles."""
    texts: int = 2048
    """Texts classified for each batch size's throughput: at least the largest batch."""
    batch_sizes: tuple[int, ...] = (32, 256)
    """Batch sizes whose throughput is measured."""
    seed: int = 0
    """Draws the test texts measured."""

    def __post_init__(self) -> None:
        for name in ("threads", "requests", "texts"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name} {getattr(self, name)} is invalid: expected an integer >= 1")
        if self.texts < max(self.batch_sizes):
            raise UsageError(f"--texts {self.texts} is invalid: expected at least the largest batch, {max(self.batch_sizes)}")


def benchmark_run(run_dir: RunDir, config: ServingConfig = ServingConfig(), texts: list[str] | None = None) -> Benchmark:
    """Measure the run's exported model and the tutorial's two models (see the module's docstring);
    writes best_model/benchmark.json and card.json's benchmark and returns benchmark.json.

    `texts`: the run's test texts, or None to read them from the run's data (run.json's source).
    Raises UsageError when the run has no exported model.keras or no test split (--test-fraction 0),
    DataError when its data cannot be read.
    """
    model = run_dir.best_model / MODEL_FILE
    card_path = run_dir.best_model / CARD_FILE
    if not model.is_file() or not card_path.is_file():
        raise UsageError(f"{run_dir.root}: no exported model ({model} and its {CARD_FILE}); finish a search first")
    facts = RunFacts.read(run_dir)
    if texts is None:
        from search.data import DataConfig, raw_splits

        texts = raw_splits(DataConfig.recorded(facts.data_config))["test"][0]
    if not texts:
        raise UsageError(f"{run_dir.root}: {NO_TEST_SPLIT}: the serving benchmark times the run's test texts, and it has none")
    drawn = texts_measured(texts, config)
    card = Card.read(run_dir.best_model, facts.ranking)
    vocabulary = vocabulary_of(model)
    specs = {EXPORTED: {"path": str(model)}} | {
        preset: {"preset": preset, "vocabulary": vocabulary, "num_classes": len(card.classes or [0, 1])}
        for preset in TUTORIAL_PRESETS
    }
    measured = {name: in_fresh_process(spec, drawn, config) for name, spec in specs.items()}
    result = Benchmark(
        threads=config.threads,
        requests=min(config.requests, len(drawn)),
        texts=min(config.texts, len(drawn)),
        test_texts=min(len(texts), len(drawn)),
        repeated=len(texts) < len(drawn),
        machine=Machine(cpus=os.cpu_count(), processor=platform.processor() or platform.machine()),
        note="tutorial models: built at the exported model's vocabulary, untrained (cost does not depend on weights)",
        models=measured,
    )
    result.write(run_dir)
    card.benchmark = dataclasses.replace(measured[EXPORTED], threads=config.threads)
    card.write(run_dir.best_model, facts.ranking)
    return result


def texts_measured(test_texts: list[str], config: ServingConfig) -> list[str]:
    """The texts a measuring process times: max(`requests`, `texts`) test texts drawn at random
    (`seed`) without replacement, or all of a smaller test split, repeated in the same order to the
    largest batch where the split holds fewer, so that every batch size is timed on a whole batch at least."""
    drawn = random.Random(config.seed).sample(list(test_texts), min(len(test_texts), max(config.requests, config.texts)))
    return np.resize(np.array(drawn, dtype=object), max(len(drawn), *config.batch_sizes)).tolist()


def print_benchmark(result: Benchmark, say: Callable[[str], None]) -> None:
    """One line per model: `say(line)` (print, or the driver's progress)."""
    say(
        f"serving   {result.threads} thread{'s' * (result.threads > 1)}, {result.requests:,} requests of one "
        f"test text, {result.texts:,} texts per batch size"
        + (f", the test split's {result.test_texts:,} texts repeated" if result.repeated else "")
        + f" ({result.machine.cpus} CPUs)"
    )
    for name, m in result.models.items():
        latency = m.latency_ms
        say(
            f"  {name:<17} p50 {latency.p50:.1f} ms  p95 {latency.p95:.1f}  p99 {latency.p99:.1f}  |  "
            + "  ".join(f"batch {b}: {v:,.0f}/s" for b, v in m.throughput_per_s.items())
            + f"  |  load {m.load_s:.2f} s, {m.size_bytes / 2**20:.1f} MiB, {m.params:,} params, "
            f"peak {m.peak_memory_mib:,.0f} MiB"
        )


def vocabulary_of(model: Path) -> list[str]:
    """The vocabulary of a raw-text model.keras ("" and "[UNK]" first, as get_vocabulary() gives it),
    read from the archive's asset without loading the model (a measuring process loads nothing else)."""
    with zipfile.ZipFile(model) as archive:
        name = next(n for n in archive.namelist() if n.endswith("vectorization/vocabulary.txt") and "_lookup_layer" not in n)
        return archive.read(name).decode("utf-8").split("\n")


def in_fresh_process(spec: dict, texts: list[str], config: ServingConfig) -> ServedModel:
    """`measure` in a new process: its own TensorFlow thread pools, its own memory (`peak_resident_mib`).
    What TensorFlow prints there goes to the standard error (file descriptor 2) it inherits, which
    search.run and this module's command send to the run's driver.log."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # inherited by the new process: fewer of those lines
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(measure, spec, texts, config).result()


def peak_resident_mib() -> float:
    """This process's own peak resident memory, MiB: VmHWM in /proc/self/status (proc(5)), the
    high-water mark of the memory image since the process started its program.

    Not getrusage's ru_maxrss: Linux's exec carries the replaced image's high-water mark into it,
    so a process started by multiprocessing's "spawn" or by subprocess (vfork, then exec) reports
    at least its parent's peak. Without /proc, ru_maxrss (KiB on Linux, bytes on macOS).
    """
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024


def measure(spec: dict, texts: list[str], config: ServingConfig) -> ServedModel:
    """One model's serving numbers, in this process (a fresh one: thread pools are set first).

    `spec`: {"path": a model.keras} or {"preset": a tutorial preset, "vocabulary": the words it
    takes the first of, "num_classes": K}. Latencies in milliseconds, throughput in texts
    per second, sizes in bytes, memory in MiB.
    """
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(config.threads)
    tf.config.threading.set_inter_op_parallelism_threads(config.threads)
    import keras

    import models.text  # noqa: F401 - registers the standardization model.keras refers to

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(spec["path"]) if "path" in spec else _preset_file(spec, Path(scratch))
        started = time.perf_counter()
        model = keras.saving.load_model(path, safe_mode=True)
        load_s = time.perf_counter() - started
        size = path.stat().st_size
    infer = tf.function(lambda text: model(text, training=False), input_signature=[tf.TensorSpec([None], tf.string)])
    requests, batch_texts = texts[: config.requests], texts[: config.texts]
    for text in requests[:10]:  # warm-up: the trace, then the caches
        infer(tf.constant([text]))
    latencies = []
    for text in requests:
        started = time.perf_counter()
        infer(tf.constant([text])).numpy()
        latencies.append((time.perf_counter() - started) * 1000)
    throughput = {}
    for batch in config.batch_sizes:
        batches = [tf.constant(batch_texts[i : i + batch]) for i in range(0, len(batch_texts), batch)]
        infer(batches[0]).numpy()
        started = time.perf_counter()
        for chunk in batches:
            infer(chunk).numpy()
        throughput[str(batch)] = len(batch_texts) / (time.perf_counter() - started)
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99]).tolist()
    return ServedModel(
        load_s=load_s,
        latency_ms=Latency(p50=p50, p95=p95, p99=p99, mean=float(np.mean(latencies))),
        throughput_per_s=throughput,
        size_bytes=size,
        params=int(model.count_params()),
        peak_memory_mib=peak_resident_mib(),
    )


def _preset_file(spec: dict, folder: Path) -> Path:
    """A tutorial model (untrained) with the first words of `spec["vocabulary"]`, saved as model.keras in `folder`."""
    from models import PRESETS, build_model, make_vectorizer, with_vectorizer

    tutorial = PRESETS[spec["preset"]]
    vocabulary = spec["vocabulary"][: tutorial.vocab_size]
    network = build_model(dataclasses.replace(tutorial, vocab_size=len(vocabulary), num_classes=spec["num_classes"]))
    path = folder / MODEL_FILE
    with_vectorizer(network, make_vectorizer(vocabulary)).save(path)
    return path


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m search.serving", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "run_dir", type=given_path, metavar="RUN_DIR", help="a finished search's run directory (its best_model/ is measured)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="TensorFlow's intra-op and inter-op threads in each measuring process (default: the CPUs available, "
        "as at the end of a search)",
    )
    add_fields(parser, ServingConfig, ["seed"])
    from search.config import local_cpus  # loaded once the command runs, not in each measuring process
    from search.data import DataError

    try:
        argv = sys.argv[1:] if argv is None else argv
        args = parser.parse_args(argv)
        run_dir = RunDir(args.run_dir)
        if RunFacts.read(run_dir) is None:
            raise UsageError(f"{run_dir.root}: not a run directory (no {run_dir.run_json.name}); start a search first")
        threads = local_cpus() if args.threads is None else args.threads
        remeasure(run_dir, ServingConfig(threads=threads, seed=args.seed), shlex.join(["python", "-m", "search.serving", *argv]))
    except (UsageError, DataError) as error:
        return fail(error)
    return 0


def remeasure(run_dir: RunDir, config: ServingConfig, command: str) -> Benchmark:
    """`benchmark_run` on a finished run, holding its lock (as `command`), with TensorFlow's lines in
    its driver.log as in a search; prints the result and rebuilds the report (its Serving table)."""
    from runfiles.lock import holding
    from search.console import Progress, keep_log, quiet_libraries
    from search.session import build_report

    progress = Progress()
    with holding(run_dir, command), quiet_libraries(False, progress, run_dir.session_log) as log:
        try:
            result = benchmark_run(run_dir, config)
            print_benchmark(result, progress.say)
            build_report(run_dir, progress)
        finally:
            keep_log(log, run_dir)
    return result


if __name__ == "__main__":
    sys.exit(main())
