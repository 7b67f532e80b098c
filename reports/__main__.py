"""Build the HTML report of a search run from its run directory, or compare runs.

    python -m reports RUN_DIR
    python -m reports compare RUN_A RUN_B [...] --out DIR

The first writes RUN_DIR/report/index.html and its PNG figures (replacing report/
atomically) and prints the path of index.html; it works on a finished, running or resumed
run. The second writes DIR/index.html and its PNGs, one page comparing the runs (replacing
DIR atomically), and prints the path of index.html.
"""

from __future__ import annotations

import sys

from reports import ReportError, build, build_comparison
from runfiles.cli import ArgumentParser, UsageError, fail

COMPARE = "compare"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [COMPARE]:
        return _run(_compare_parser(), argv[1:], lambda args: build_comparison(args.run_dirs, args.out), "comparison")
    return _run(_report_parser(), argv, lambda args: build(args.run_dir), "report")


def _run(parser: ArgumentParser, argv: list[str], write, what: str) -> int:
    """Parse, write, print index.html's path; a user mistake is one line and exit 2, an
    unwritable destination one line and exit 1."""
    try:
        args = parser.parse_args(argv)
        index = write(args)
    except (ReportError, UsageError) as error:
        return fail(error)
    except OSError as error:
        print(f"error: cannot write the {what}: {error}", file=sys.stderr)
        return 1
    print(index)
    return 0


def _report_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m reports",
        description=__doc__.splitlines()[0],
        epilog=f"Compare runs: python -m reports {COMPARE} RUN_A RUN_B [...] --out DIR",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the --out folder of a search run (holds run.json, trials.csv)")
    return parser


def _compare_parser() -> ArgumentParser:
    parser = ArgumentParser(
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
    return parser


if __name__ == "__main__":
    sys.exit(main())
