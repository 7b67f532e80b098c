"""Build the HTML report of a search run from its run directory, or compare runs.

    python -m reports RUN_DIR
    python -m reports compare RUN_A RUN_B [...] --out DIR

The first writes RUN_DIR/report/index.html and its PNG figures (replacing report/
atomically) and prints the path of index.html; it works on a finished, interrupted or resumed
run. It holds the run directory's lock (`runfiles.lock`) while it writes there, so while a
search writes into the run, write its report elsewhere: `python -m reports RUN_DIR --out DIR`.
The second writes DIR/index.html and its PNGs, one page comparing the runs (replacing
DIR atomically), and prints the path of index.html.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from reports import ReportError, build, build_comparison
from runfiles.cli import ArgumentParser, UsageError, fail, given_path
from runfiles.layout import RunDir
from runfiles.lock import holding

COMPARE = "compare"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [COMPARE]:
        return _run(_compare_parser(), argv[1:], lambda args: build_comparison(args.run_dirs, args.out), "comparison")
    return _run(_report_parser(), argv, lambda args: _report(args, argv), "report")


def _report(args, argv: list[str]) -> Path:
    """The report into --out, or into the run directory while holding its lock."""
    if args.out is not None:
        return build(args.run_dir, args.out)
    run_dir = RunDir(args.run_dir)
    if not run_dir.root.is_dir():
        raise ReportError(f"run directory {run_dir.root} does not exist or is not a directory")
    hint = f"write its report elsewhere with: python -m reports {shlex.quote(str(args.run_dir))} --out FOLDER"
    with holding(run_dir, shlex.join(["python", "-m", "reports", *argv]), hint):
        return build(args.run_dir)


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
    parser.add_argument(
        "run_dir", type=given_path, metavar="RUN_DIR", help="the --out folder of a search run (holds run.json, trials.csv)"
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="write index.html and its PNGs here instead of RUN_DIR/report/ (absent, empty or an earlier report)",
    )
    return parser


def _compare_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog=f"python -m reports {COMPARE}",
        description="Compare search runs on one page: data, budgets, best models, progress "
        "against examples and wall time, accuracy-throughput fronts, configurations.",
    )
    parser.add_argument(
        "run_dirs", type=given_path, metavar="RUN_DIR", nargs="*", help="two or more --out folders of search runs"
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        required=True,
        help="the folder to write index.html and its PNGs into (absent, empty or an earlier comparison)",
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
