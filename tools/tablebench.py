"""A benchmark, not a test: reading and preparing a large table, as CSV and as Parquet.

    python -m tools.tablebench --rows 500000 --archive ../shared/datasets/aclImdb_v1_labelled.tar.gz

Writes a table of ROWS rows (text, label: the archive's labelled reviews repeated in order, train
then test) as table.csv and table.parquet in a temporary folder (removed at the end, unless --keep),
then for each format runs each stage in a child process of its own, so that the formats and stages
do not share a peak: "read" (the table source's read, `search.data.read_reviews`) and "prepare"
(`search.data.prepare` on a DataConfig of the file: read, carve the test split, split validation,
build the vocabulary, vectorize; into an empty cache; copies allowed, as a repeated table's test
split copies its training rows). Prints each stage's wall time and peak resident memory (the
child's own, `search.serving.peak_resident_mib`, MiB), and the CSV / Parquet ratios.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FORMATS = {"csv": "table.csv", "parquet": "table.parquet"}
"""Each format benchmarked, and its file's name."""
STAGES = ("read", "prepare")


def write_tables(archive: Path, rows: int, folder: Path) -> dict[str, Path]:
    """table.csv and table.parquet in `folder`: `rows` rows of the archive's reviews (text, label
    "neg"/"pos"), repeated in order; {format: path}."""
    import pandas as pd

    from search.data import ReadOptions, aclimdb

    paths = {name: folder / file for name, file in FORMATS.items()}
    if all(p.is_file() for p in paths.values()) and len(pd.read_parquet(paths["parquet"], columns=["label"])) == rows:
        return paths  # kept from a run before (--keep)
    reviews, _ = aclimdb.read(str(archive), ReadOptions())
    texts = reviews["train"].texts + reviews["test"].texts
    labels = np.concatenate([reviews["train"].labels, reviews["test"].labels])
    order = np.resize(np.arange(len(texts)), rows)
    frame = pd.DataFrame({"text": [texts[i] for i in order], "label": labels[order]})
    frame.to_csv(paths["csv"], index=False)
    frame.to_parquet(paths["parquet"], index=False)
    return paths


def run_stage(stage: str, table: Path, cache: Path) -> dict:
    """In this process: one stage on `table`; its wall time (s), peak resident memory (MiB) and sizes."""
    from search.data import DataConfig, prepare, read_reviews
    from search.serving import peak_resident_mib

    config = DataConfig(source=str(table), allow_overlap=True)
    started = time.perf_counter()
    if stage == "read":
        reviews, _ = read_reviews(config.source, config.read_options)
        sizes = {split: len(r.texts) for split, r in reviews.items()}
    else:
        sizes = prepare(config, cache).facts.sizes
    wall_s = time.perf_counter() - started
    return {"wall_s": wall_s, "peak_mib": peak_resident_mib(), "sizes": sizes}


def measured(stage: str, table: Path, cache: Path) -> dict:
    """`run_stage` in a child process of its own (its peak memory is its own)."""
    command = [sys.executable, "-m", "tools.tablebench", "--child", stage, str(table), str(cache)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"error: {stage} of {table.name} failed: {result.stderr.strip().splitlines()[-1:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def report(results: dict[str, dict[str, dict]], paths: dict[str, Path], rows: int) -> str:
    """The table printed: per format and stage, wall time and peak MiB; then CSV / Parquet ratios."""
    lines = [f"{rows:,} rows; " + ", ".join(f"{name} {paths[name].stat().st_size / 2**20:,.0f} MiB" for name in paths)]
    for name, stages in results.items():
        for stage, r in stages.items():
            lines.append(f"{name:8} {stage:8} {r['wall_s']:8.1f} s {r['peak_mib']:9,.0f} MiB peak   {r['sizes']}")
    if {"csv", "parquet"} <= set(results):
        for stage in results["csv"]:
            csv, parquet = results["csv"][stage], results["parquet"][stage]
            lines.append(
                f"csv/parquet {stage}: {csv['wall_s'] / parquet['wall_s']:.2f}x the time, "
                f"{csv['peak_mib'] / parquet['peak_mib']:.2f}x the peak memory"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Write the tables, measure each format and stage in a child process, print the table."""
    parser = argparse.ArgumentParser(prog="python -m tools.tablebench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=500_000, help="rows of the table (default 500,000)")
    parser.add_argument("--archive", type=Path, default=Path("../shared/datasets/aclImdb_v1_labelled.tar.gz"))
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--keep", type=Path, help="write the tables into this folder and keep them (or reuse them there)")
    parser.add_argument("--child", nargs=3, metavar=("STAGE", "TABLE", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_stage(args.child[0], Path(args.child[1]), Path(args.child[2]))))
        return 0
    folder = args.keep or Path(tempfile.mkdtemp(prefix="table-benchmark-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        paths = write_tables(args.archive, args.rows, folder)
        print(f"wrote the tables in {time.perf_counter() - started:.0f} s", flush=True)
        results = {}
        for name, path in paths.items():
            for stage in args.stages:
                results.setdefault(name, {})[stage] = measured(stage, path, folder / f"cache-{name}")
                print(f"{name} {stage}: {results[name][stage]['wall_s']:.1f} s", flush=True)
        print(report(results, paths, args.rows))
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
