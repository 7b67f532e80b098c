"""Build the HTML report of a search run from its run directory.

    python -m reports RUN_DIR

Writes RUN_DIR/report/index.html and its PNG figures (replacing report/ atomically) and
prints the path of index.html. Works on a finished, running or resumed run.
"""

from __future__ import annotations

import argparse
import sys

from reports import ReportError, build


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports", description=__doc__.splitlines()[0])
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


if __name__ == "__main__":
    sys.exit(main())
