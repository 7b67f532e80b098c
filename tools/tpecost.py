"""Optuna's own share of a suggestion: how long TPE takes to propose one configuration of the
project's search space as the study grows, apart from Ray Tune and the project's wrapper.

    python -m tools.tpecost --trials 100 1000
    python -m tools.tpecost --trials 100 1000 5000 --tpe-trials 0

For each size, a SQLite study as `search.run` keeps (study.db) is filled with that many finished
trials of random configurations and values (no model), then the project's sampler
(`search.searcher.new_sampler`) proposes --asks configurations, each told back; it prints the median
milliseconds per proposal. The sampler is TPE unless --tpe-trials is at most the study's size:
then it is Optuna's RandomSampler, as `search.run --tpe-trials` switches to after that many trials.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from runfiles.cli import ArgumentParser, UsageError, fail


def filled_study(folder: Path, trials: int, seed: int):
    """A SQLite study in `folder` holding `trials` finished trials of random configurations."""
    import optuna

    from search.space import SPACE, optuna_space

    space, sampler = optuna_space(SPACE), optuna.samplers.RandomSampler(seed=seed)
    study = optuna.create_study(storage=f"sqlite:///{folder / 'study.db'}", direction="maximize", sampler=sampler)
    for number in range(trials):
        trial = study.ask(space)
        study.tell(trial, 0.5 + 0.4 * ((number * 7919) % 1000) / 1000)
    return study, space


def ms_per_suggestion(trials: int, asks: int, seed: int = 0, tpe_trials: int | None = None) -> float:
    """Median milliseconds the project's sampler takes to propose one configuration on a study of
    `trials` trials: TPE, or from `tpe_trials` trials on, Optuna's RandomSampler (None: TPE always)."""
    import optuna

    from search.searcher import new_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="tpe-") as scratch:
        study, space = filled_study(Path(scratch), trials, seed)
        study.sampler = new_sampler(seed, startup_trials=10, tpe_trials=trials + asks if tpe_trials is None else tpe_trials)
        times = []
        for _ in range(asks):
            started = time.perf_counter()
            trial = study.ask(space)
            times.append(1000 * (time.perf_counter() - started))
            study.tell(trial, 0.6)
        return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m tools.tpecost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[100, 1000], help="study sizes (default: %(default)s)")
    parser.add_argument("--asks", type=int, default=20, help="proposals timed per size (default: %(default)s)")
    parser.add_argument(
        "--tpe-trials", type=int, default=None, help="as search.run's: the study trials TPE proposes (default: all of them)"
    )
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
        for name, value in (("trials", min(args.trials)), ("asks", args.asks)):
            if value < 1:
                raise UsageError(f"--{name} {value} is invalid: expected an integer >= 1")
        if args.tpe_trials is not None and args.tpe_trials < 0:
            raise UsageError(f"--tpe-trials {args.tpe_trials} is invalid: expected an integer >= 0")
    except UsageError as error:
        return fail(error)
    for trials in sorted(set(args.trials)):
        ms = ms_per_suggestion(trials, args.asks, tpe_trials=args.tpe_trials)
        sampler = "TPE" if args.tpe_trials is None or args.tpe_trials > trials else "RandomSampler"
        print(f"[tpe] {trials} trials: {ms:.1f} ms per suggestion ({sampler}, median of {args.asks})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
