"""Benchmark the search driver at scale: many trials that only sleep, scheduled as `search.run`
schedules real ones (Ray Tune, Optuna's TPE on a SQLite study for the first --tpe-trials trials and
its RandomSampler after them, ASHA) on a local Ray.

    python -m tools.scale --trials 100 1000 5000 --json scale.json
    python -m tools.scale --trials 100 1000 --repeats 3

Each trial runs `sleeper`: --iterations iterations of --sleep seconds, each reporting a
validation accuracy that depends on the trial's learning rate and grows with the iteration,
so TPE and ASHA have something to act on. No data, no model, no checkpoints: what is measured
is the driver. For each trial count, in a fresh process so Ray and peak memory start clean,
it prints the wall time, the driver's peak memory (RSS) and how much it grew during the
search, the share of the trial slots' time (wall time x concurrent trials) not spent on the
trials' own work (their sleeps), the time trials waited inside `tune.report` for the driver,
the searcher's own time and the trial tables' (in all and per reported result), and, as Ray
Tune's scalability table does, the theoretical minimum (the trials' own work divided by the
slots) with the ratio of the wall time to it. Given two or more counts, it then prints one row
per count and how each figure grew from the smallest count to the largest. With --repeats N, each
count runs N times, the counts taking turns (so that the machine's load falls on each alike), and
each figure is the median of its N runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from runfiles.cli import ArgumentParser, UsageError, fail, flag
from runfiles.io import write_json
from runfiles.layout import OBJECTIVE, TUTORIAL_PRESETS, RunDir
from search import internals
from search.config import TPE_TRIALS
from search.space import SPACE, optuna_space, preset_point

BEST_LEARNING_RATE = 1e-3
"""The learning rate at which `score` peaks."""


@dataclass(frozen=True)
class ScaleConfig:
    """One benchmark run: how many trials, how long each, how many at once."""

    trials: int = 100
    """Trials in the search, the tutorial's two models included."""
    iterations: int = 4
    """Reports per trial that ASHA does not stop (ASHA's max_t)."""
    sleep_s: float = 0.05
    """Seconds a trial sleeps before each report."""
    concurrency: int = 4
    """Trials running at once; Ray is started with this many (logical) CPUs."""
    seed: int = 0
    """Seeds Optuna's sampler."""
    tpe_trials: int = TPE_TRIALS
    """Study trials TPE proposes; Optuna's RandomSampler the rest (`search.run --tpe-trials`)."""

    def __post_init__(self) -> None:
        for name, low in (("trials", 1), ("iterations", 1), ("concurrency", 1), ("tpe_trials", 0)):
            if getattr(self, name) < low:
                raise UsageError(f"{flag(name)} {getattr(self, name)} is invalid: expected an integer >= {low}")
        if not math.isfinite(self.sleep_s) or self.sleep_s < 0:
            raise UsageError(f"--sleep {self.sleep_s} is invalid: expected finite seconds >= 0")


# ---------------------------------------------------------------- the trial


def score(params: dict, iteration: int) -> float:
    """A made-up validation accuracy in (0.5, 1): best at BEST_LEARNING_RATE, rising with iteration (1-based)."""
    import math

    distance = abs(math.log10(params["learning_rate"] / BEST_LEARNING_RATE))
    return 0.5 + 0.45 / (1 + distance) * (1 - 0.5**iteration)


def sleeper(params: dict, iterations: int, sleep_s: float) -> None:
    """The benchmark's trainable: sleeps and reports `score`.

    Each report also carries, in seconds so far, `work_s` (sleeping: the trial's own work)
    and `busy_s` (all of this function, so work plus waits inside `tune.report`).
    """
    from ray import tune

    started, work_s = time.perf_counter(), 0.0
    for iteration in range(1, iterations + 1):
        slept = time.perf_counter()
        time.sleep(sleep_s)
        work_s += time.perf_counter() - slept
        tune.report(
            {
                OBJECTIVE.metric: score(params, iteration),
                "epoch": iteration,
                "examples": 0,
                "work_s": work_s,
                "busy_s": time.perf_counter() - started,
            }
        )


# ---------------------------------------------------------------- one measured search


def timed(method):
    """Adds the seconds a method spends to its object's `seconds`."""

    def wrapper(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            self.seconds = getattr(self, "seconds", 0.0) + time.perf_counter() - started

    return wrapper


def driver_pieces(seed: int, iterations: int, scratch: Path, tpe_trials: int = TPE_TRIALS):
    """search.run's searcher (its sampler: TPE for `tpe_trials` trials, then random), scheduler and
    trial tables on a run directory in `scratch`, the searcher's and the tables' methods timed (their
    `seconds`)."""
    import io

    from search.console import Progress  # Optuna and Ray Tune load once the benchmark runs, not on --help
    from search.scheduler import Ledger, StoppingScheduler
    from search.searcher import StudySearch, new_sampler
    from search.tracking import TrialTable

    class TimedSearch(StudySearch):
        suggest, on_trial_result, on_trial_complete = (
            timed(StudySearch.suggest),
            timed(StudySearch.on_trial_result),
            timed(StudySearch.on_trial_complete),
        )

    class TimedTable(TrialTable):
        on_trial_start, on_trial_result, on_checkpoint, on_trial_complete = (
            timed(TrialTable.on_trial_start),
            timed(TrialTable.on_trial_result),
            timed(TrialTable.on_checkpoint),
            timed(TrialTable.on_trial_complete),
        )

        def on_experiment_end(self, trials, **info):
            super().on_experiment_end(trials, **info)
            self.rss_at_end_mb = rss_mb()  # before Tune builds its ResultGrid (a Result per trial)

    run_dir, ledger = RunDir(scratch), Ledger(examples_per_epoch=1)
    presets = [preset_point(name, SPACE) for name in TUTORIAL_PRESETS]
    sampler = new_sampler(seed, startup_trials=10, tpe_trials=tpe_trials)
    searcher = TimedSearch(optuna_space(SPACE), run_dir, ledger, sampler, presets, [], 10**9)
    scheduler = StoppingScheduler(ledger, max_epochs=iterations, grace_period=1)
    table = TimedTable(run_dir, SPACE, ledger, scheduler, 1, Progress(stream=io.StringIO()))
    return searcher, scheduler, table


def rss_mb() -> float:
    """This process's resident memory now, in MB."""
    import psutil

    return psutil.Process().memory_info().rss / 2**20


class RssSampler:
    """The peak resident memory of this process, sampled every `period_s` seconds in a thread."""

    def __init__(self, period_s: float = 0.1):
        self._period_s = period_s
        self._stop = threading.Event()
        self.start_mb = self.peak_mb = self._rss_mb()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss_mb(self) -> float:
        return rss_mb()

    def _run(self) -> None:
        while not self._stop.wait(self._period_s):
            self.peak_mb = max(self.peak_mb, self._rss_mb())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self._rss_mb())


def measure(config: ScaleConfig) -> dict:
    """Run one search of `config.trials` sleeping trials on a fresh local Ray; its figures (seconds, MB)."""
    import ray
    from ray import tune

    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    ray.init(address="local", num_cpus=config.concurrency, include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory(prefix="scale-") as scratch:
            searcher, scheduler, table = driver_pieces(config.seed, config.iterations, Path(scratch), config.tpe_trials)
            tuner = tune.Tuner(
                tune.with_resources(
                    tune.with_parameters(sleeper, iterations=config.iterations, sleep_s=config.sleep_s), {"cpu": 1}
                ),
                tune_config=tune.TuneConfig(
                    search_alg=searcher,
                    scheduler=scheduler,
                    num_samples=config.trials,
                    max_concurrent_trials=config.concurrency,
                    trial_dirname_creator=lambda trial: f"trial_{trial.trial_id}",
                    reuse_actors=True,
                ),
                run_config=tune.RunConfig(name="tune", storage_path=scratch, callbacks=[table], verbose=0),
            )
            with RssSampler() as rss, internals.trial_results_unread():  # as search.run's driver
                started = time.perf_counter()
                results = tuner.fit()
                wall_s = time.perf_counter() - started
            rss.peak_mb = max(rss.peak_mb, table.rss_at_end_mb)  # a moment between two samples
            return with_tables(figures(config, results, wall_s, rss, getattr(searcher, "seconds", 0.0)), table)
    finally:
        ray.shutdown()


def with_tables(one: dict, table) -> dict:
    """`one` with the trial tables' time, in all (`tables_s`) and per reported result (`tables_ms_per_result`),
    the rows they wrote per reported result, appended and rewritten (`tables_rows_per_result`), and the
    driver's RSS growth up to the search's end, before Tune builds its ResultGrid (a Result per trial)
    (`driver_rss_search_growth_mb`)."""
    tables_s, reports = getattr(table, "seconds", 0.0), max(one["reports"], 1)
    return one | {
        "driver_rss_search_growth_mb": table.rss_at_end_mb - one["driver_rss_before_mb"],
        "tables_s": tables_s,
        "tables_ms_per_result": 1000 * tables_s / reports,
        "tables_rows_per_result": table.rows_written / reports,
    }


def figures(config: ScaleConfig, results, wall_s: float, rss: RssSampler, searcher_s: float) -> dict:
    """What one search cost the driver, from Tune's results and the measurements around it."""
    finals = [r.metrics for r in results if r.metrics]
    work_s = sum(m["work_s"] for m in finals)
    slots = min(config.concurrency, config.trials)
    slots_s, minimum_s = wall_s * slots, work_s / slots
    return {
        "config": asdict(config),
        "trials": len(results),
        "errored": sum(r.error is not None for r in results),
        "stopped_early": sum(m["training_iteration"] < config.iterations for m in finals),
        "reports": sum(m["training_iteration"] for m in finals),
        "wall_s": wall_s,
        "trial_work_s": work_s,
        "report_wait_s": sum(m["busy_s"] - m["work_s"] for m in finals),
        "outside_trials_share": 1 - work_s / slots_s,
        "outside_trials_ms_per_trial": 1000 * (slots_s - work_s) / len(results),
        "minimum_s": minimum_s,
        "wall_to_minimum": wall_s / minimum_s if minimum_s else None,
        "searcher_s": searcher_s,
        "searcher_share": searcher_s / wall_s,
        "driver_rss_before_mb": rss.start_mb,
        "driver_rss_peak_mb": rss.peak_mb,
        "driver_rss_growth_mb": rss.peak_mb - rss.start_mb,
        "driver_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


# ---------------------------------------------------------------- several trial counts


def growth(small: dict, large: dict) -> dict:
    """How the figures of the largest count compare with the smallest's (ratios, large / small), and
    the driver's RSS growth per 1,000 more trials, at its peak and at the search's end (MB)."""
    names = (
        "trials",
        "wall_s",
        "outside_trials_ms_per_trial",
        "searcher_s",
        "tables_s",
        "tables_ms_per_result",
        "tables_rows_per_result",
        "driver_rss_peak_mb",
        "driver_rss_growth_mb",
    )
    ratios = {name: large[name] / small[name] if small[name] else None for name in names}
    ratios["searcher_s_per_trial"] = ratios["searcher_s"] / ratios["trials"] if ratios["searcher_s"] else None
    more = (large["trials"] - small["trials"]) / 1000
    per_1000 = lambda name: (large[name] - small[name]) / more if more else None
    return {
        "from_trials": small["trials"],
        "to_trials": large["trials"],
        "ratios": ratios,
        "rss_mb_per_1000_trials": {"peak": per_1000("driver_rss_growth_mb"), "search": per_1000("driver_rss_search_growth_mb")},
    }


def describe_sizes(by_count: dict[str, dict]) -> str:
    """Ray's scalability table for the counts measured: per count, wall time, the theoretical minimum
    (the trials' work divided by the slots), their ratio, and the time per trial outside the trials' work."""
    columns = (
        "wall s",
        "minimum s",
        "wall/minimum",
        "outside ms/trial",
        "tables ms/result",
        "tables rows/result",
        "RSS growth MB (peak)",
        "(at the search's end)",
    )
    lines = [" | ".join(("[scale] trials", *columns))]
    for one in by_count.values():
        lines.append(
            f"[scale] {one['trials']} | {one['wall_s']:.1f} | {one['minimum_s']:.1f} | {ratio_text(one['wall_to_minimum'])}"
            f" | {one['outside_trials_ms_per_trial']:.0f} | {one['tables_ms_per_result']:.2f}"
            f" | {one['tables_rows_per_result']:.1f} | {one['driver_rss_growth_mb']:.0f}"
            f" | {one['driver_rss_search_growth_mb']:.0f}"
        )
    return "\n".join(lines)


def measure_in_child(config: ScaleConfig) -> dict:
    """`measure` in a fresh Python process, so each count starts with a new Ray and its own peak memory."""
    with tempfile.TemporaryDirectory(prefix="scale-") as scratch:
        out = Path(scratch) / "one.json"
        argv = [
            sys.executable,
            "-m",
            "tools.scale",
            "--trials",
            str(config.trials),
            "--iterations",
            str(config.iterations),
            "--sleep",
            str(config.sleep_s),
            "--concurrency",
            str(config.concurrency),
            "--seed",
            str(config.seed),
            "--tpe-trials",
            str(config.tpe_trials),
            "--json",
            str(out),
        ]
        done = subprocess.run(argv, env=dict(os.environ, PYTHONWARNINGS="ignore"))
        if done.returncode != 0:
            raise RuntimeError(f"the {config.trials}-trial run failed (exit {done.returncode})")
        return json.loads(out.read_text())[str(config.trials)]


def median_figures(runs: list[dict]) -> dict:
    """One count's figures over repeated runs: each number the median of the runs' (None where none
    has one), the rest the first run's; the runs' own figures under "runs" where there are several."""
    one = dict(runs[0])
    for name, value in one.items():
        if isinstance(value, int | float) or value is None:
            values = [run[name] for run in runs if run[name] is not None]
            same = values and all(v == values[0] for v in values)  # a count of trials stays a whole number
            one[name] = values[0] if same else statistics.median(values) if values else None
    return one | ({"runs": runs} if len(runs) > 1 else {})


def ratio_text(value: float | None) -> str:
    """A ratio as "12.34x", or "n/a" where it has no denominator."""
    return "n/a" if value is None else f"{value:.2f}x"


def describe(one: dict) -> str:
    """One trial count's figures in one line."""
    return (
        f"[scale] {one['trials']} trials ({one['stopped_early']} stopped early, {one['errored']} errored, "
        f"{one['reports']} reports): wall {one['wall_s']:.1f} s, theoretical minimum {one['minimum_s']:.1f} s "
        f"(the trials' work / the slots), ratio {ratio_text(one['wall_to_minimum'])}; outside trials' work "
        f"{100 * one['outside_trials_share']:.1f}% of the slots' time ({one['outside_trials_ms_per_trial']:.0f} ms/trial), "
        f"trials waiting in tune.report {one['report_wait_s']:.1f} s; "
        f"searcher {one['searcher_s']:.1f} s ({100 * one['searcher_share']:.1f}% of wall); trial tables "
        f"{one['tables_s']:.1f} s ({one['tables_ms_per_result']:.2f} ms, {one['tables_rows_per_result']:.1f} rows per result); "
        f"driver RSS peak "
        f"{one['driver_rss_peak_mb']:.0f} MB (+{one['driver_rss_growth_mb']:.0f} MB during the search; "
        f"+{one['driver_rss_search_growth_mb']:.0f} MB at its end, before Tune builds its ResultGrid)"
    )


def describe_growth(g: dict) -> str:
    """How the figures grew from the smallest count to the largest, in one line."""
    ratio = lambda name: ratio_text(g["ratios"][name])

    return (
        f"[scale] {g['from_trials']} -> {g['to_trials']} trials ({ratio('trials')}): wall {ratio('wall_s')}, "
        f"outside-trials time per trial {ratio('outside_trials_ms_per_trial')}, searcher time {ratio('searcher_s')} "
        f"({ratio('searcher_s_per_trial')} per trial), driver RSS peak {ratio('driver_rss_peak_mb')}, "
        f"RSS growth {ratio('driver_rss_growth_mb')}; {mb(g['rss_mb_per_1000_trials']['peak'])} MB per 1,000 more trials "
        f"at the peak, {mb(g['rss_mb_per_1000_trials']['search'])} MB at the search's end"
    )


def mb(value: float | None) -> str:
    """Megabytes as "+12.3", or "n/a" without a value."""
    return "n/a" if value is None else f"{value:+.1f}"


# ---------------------------------------------------------------- command line


def parse_args(argv: list[str]) -> argparse.Namespace:
    defaults = ScaleConfig()
    parser = ArgumentParser(prog="python -m tools.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--trials",
        type=int,
        nargs="+",
        default=[defaults.trials],
        help="trial counts; each runs in a fresh process when more than one (default: %(default)s)",
    )
    parser.add_argument(
        "--iterations",
        type=int,
        default=defaults.iterations,
        help="reports per trial ASHA lets run to the end (default: %(default)s)",
    )
    parser.add_argument(
        "--sleep", type=float, default=defaults.sleep_s, help="seconds a trial sleeps per iteration (default: %(default)s)"
    )
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency, help="trials at once (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seeds the sampler (default: %(default)s)")
    parser.add_argument(
        "--tpe-trials",
        type=int,
        default=defaults.tpe_trials,
        help="study trials TPE proposes, Optuna's RandomSampler the rest, as search.run's flag (default: %(default)s)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="runs per count, in fresh processes, the counts taking turns; each figure the median (default: %(default)s)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the figures here, by trial count, with 'growth'")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        shared = (args.iterations, args.sleep, args.concurrency, args.seed, args.tpe_trials)
        configs = [ScaleConfig(n, *shared) for n in sorted(set(args.trials))]
        if args.repeats < 1:
            raise UsageError(f"--repeats {args.repeats} is invalid: expected an integer >= 1")
        if args.json is not None and not args.json.parent.is_dir():
            raise UsageError(f"--json {args.json}: folder {args.json.parent} does not exist")
        if args.json is not None and args.json.is_dir():
            raise UsageError(f"--json {args.json}: is a folder; give a file name for the figures")
    except UsageError as error:
        return fail(error)
    if len(configs) == 1 and args.repeats == 1:
        by_count = {str(configs[0].trials): measure(configs[0])}
        print(describe(by_count[str(configs[0].trials)]), flush=True)
    else:
        runs = {str(c.trials): [] for c in configs}
        for _ in range(args.repeats):
            for config in configs:
                runs[str(config.trials)].append(measure_in_child(config))
        by_count = {count: median_figures(figures) for count, figures in runs.items()}
        if args.repeats > 1:
            print(f"[scale] each figure below is the median of {args.repeats} runs per count", flush=True)
        print(describe_sizes(by_count), flush=True)
    if len(configs) > 1:
        by_count["growth"] = growth(by_count[str(configs[0].trials)], by_count[str(configs[-1].trials)])
        print(describe_growth(by_count["growth"]), flush=True)
    if args.json is not None:
        write_json(args.json, by_count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
