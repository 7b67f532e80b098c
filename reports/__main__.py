"""Build the HTML report of a search run from its run directory, or compare runs.

    python -m reports RUN_DIR
    python -m reports compare RUN_A RUN_B [...] --out DIR

The first writes RUN_DIR/report/index.html and its PNG figures (replacing report/
atomically) and prints the path of index.html; it works on a finished, running or resumed
run. The second writes DIR/index.html and its PNGs, one page comparing the runs (replacing
DIR atomically), and prints the path of index.html.
"""

from __future__ import annotations

import argparse
import sys

from reports import ReportError, build, build_comparison

COMPARE = "compare"


class _OneLineParser(argparse.ArgumentParser):
    """Bad arguments fail as every other bad input does: one line, exit status 2."""

    def error(self, message: str):
        raise ReportError(message)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [COMPARE]:
        return compare_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m reports",
        description=__doc__.splitlines()[0],
        epilog=f"Compare runs: python -m reports {COMPARE} RUN_A RUN_B [...] --out DIR",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the --out folder of a search run (holds run.json, trials.csv)")
    args = parser.parse_args(argv)
    try:
        index = build(args.run_dir)
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: cannot write the report into {args.run_dir}: {error}", file=sys.stderr)
        return 1
    print(index)
    return 0


def compare_main(argv: list[str]) -> int:
    parser = _OneLineParser(
        prog=f"python -m reports {COMPARE}",
        description="Compare search runs on one page: data, budgets, best models, progress "
        "against examples and wall time, accuracy-throughput fronts, configurations.",
    )
    parser.add_argument("run_dirs", metavar="RUN_DIR", nargs="*", help="two or more --out folders of search runs")
    parser.add_argument(
        "--out",
        metavar="DIR",
        required=True,
        help="the folder to write index.html and its PNGs into (absent, empty or an earlier comparison)",
    )
    try:
        args = parser.parse_args(argv)
        index = build_comparison(args.run_dirs, args.out)
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: cannot write the comparison into {args.out}: {error}", file=sys.stderr)
        return 1
    print(index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
