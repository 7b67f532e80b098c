"""The comparison of runs (python -m reports compare RUN_A RUN_B --out DIR) on two real searches.

    python -m pytest -q tests/test_compare.py

`real_run` (tests/conftest.py: 6 trials of up to 3 epochs, seed 0) and `second_run` (conftest too: 3
trials of up to 2 epochs, seed 1, so another split of the sample and another fingerprint), both
finished and exported by the driver. Expected values come from their files, read through the run
directory's contract (runfiles/layout.py), not from the report's functions. Also: bad input fails
in one line and writes nothing, DIR is replaced atomically, hostile strings are escaped, and the
page opens in headless Chromium (skipped only when no chromium binary is found).
"""

import html
import math
import re
import shutil
import subprocess
import sys
from collections import Counter
from datetime import datetime
from itertools import accumulate
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

import reports
from reports import figures
from reports.__main__ import main
from reports.compare import run_names
from reports.load import load
from runfiles.io import read_json, read_rows, write_json, write_rows
from runfiles.layout import OBJECTIVE, Param, RunDir, State, as_float, trial_columns

import browser
from conftest import snapshot

REPO = Path(__file__).parents[1]
METRIC = OBJECTIVE.metric
SECTIONS = ["runs", "on-test", "progress", "pareto", "configs"]
FIGURES = {"progress.png", "pareto.png"}


# --- reading run directories and pages --------------------------------------------------------


def _trials(run_dir: Path) -> list[dict]:
    return read_rows(RunDir(run_dir).trials_csv)


def _space(run_dir: Path) -> list[Param]:
    return [Param.from_json(entry) for entry in read_json(RunDir(run_dir).run_json)["space"]]


def _pinned(run_dir: Path) -> set[str]:
    return {p.name for p in _space(run_dir) if p.kind == "categorical" and len(p.choices) == 1}


def _edit_trials(run_dir: Path, edits: dict[str, dict]) -> list[dict]:
    rows = _trials(run_dir)
    for row in rows:
        row.update(edits.get(row["trial_id"], {}))
    write_rows(RunDir(run_dir).trials_csv, trial_columns(p.name for p in _space(run_dir)), rows)
    return rows


def _best_scored(rows: list[dict]) -> dict:
    """The harness's best: the highest value of an ended, scored trial, then more epochs, then lower number."""
    ended = (State.COMPLETED, State.STOPPED_EARLY)
    scored = [r for r in rows if r["state"] in ended and not math.isnan(as_float(r[METRIC]))]
    return max(scored, key=lambda r: (float(r[METRIC]), int(r["epochs"]), -int(r["number"])))


def _section(text: str, anchor: str) -> str:
    return text.split(f'<section id="{anchor}">')[1].split("</section>")[0]


def _tables(text: str) -> list[list[list[str]]]:
    """Every table in text: its body rows, each a list of cells as plain text (tags dropped, <br> as " | ")."""

    def plain(cell: str) -> str:
        return html.unescape(re.sub(r"<[^>]+>", "", cell.replace("<br>", " | ")))

    return [
        [[plain(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)] for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body)]
        for body in re.findall(r"<tbody>(.*?)</tbody>", text, re.S)
    ]


def _seconds(text: str) -> tuple[float, float]:
    """ "37.2 s", "2.1 min" or "1.05 h" back in seconds, with the most its rounding moved it
    (half its last digit: 0.05 s, 3 s, 18 s)."""
    number, unit = text.split()
    scale = {"s": 1, "min": 60, "h": 3600}[unit]
    return float(number) * scale, 0.5 * 10 ** -len(number.partition(".")[2]) * scale


# --- expectations computed from the files -------------------------------------------------------


def _progress(run_dir: Path) -> dict[str, list[float]]:
    """Trials in order of their end: examples processed until then, minutes since the run started,
    and the best value so far among them (-inf before the first)."""
    rows = sorted((r for r in _trials(run_dir) if r["ended_at"]), key=lambda r: (float(r["ended_at"]), int(r["number"])))
    start = datetime.fromisoformat(read_json(RunDir(run_dir).run_json)["started_at"]).timestamp()
    return {
        "examples": list(accumulate(float(r["examples"] or 0) for r in rows)),
        "minutes": [(float(r["ended_at"]) - start) / 60 for r in rows],
        "best": list(accumulate((float(r[METRIC]) if r[METRIC] else -math.inf for r in rows), max)),
    }


def _front(run_dir: Path) -> list[float]:
    """The throughputs of the run's Pareto front (accuracy and examples/s both maximized), ascending."""
    points = [
        (float(r[METRIC]), float(r["examples_per_s"]))
        for r in _trials(run_dir)
        if r[METRIC] and as_float(r["examples_per_s"]) > 0
    ]
    return sorted(s for a, s in points if not any(b >= a and u >= s and (b > a or u > s) for b, u in points))


def _shown(name: str, value) -> str:
    """A hyperparameter's value as the page shows it: integers without .0, others to 3 significant digits,
    ngram_buckets as "none" or 2^k."""
    if isinstance(value, str):
        return value
    if name == "ngram_buckets":
        return f"2^{int(value).bit_length() - 1}" if value else "none"
    return str(int(value)) if float(value).is_integer() else f"{value:.3g}"


def _line_y(line) -> list[float]:
    return [-math.inf if math.isnan(y) else y for y in line.get_ydata()]


# --- the comparison of two real runs ----------------------------------------------------------


def test_compare_two_real_runs(real_run, second_run, tmp_path, capsys):
    out = tmp_path / "compare"
    run_dirs = [real_run, second_run]
    before = {run: snapshot(run) for run in run_dirs}

    assert main(["compare", str(real_run), str(second_run), "--out", str(out)]) == 0

    assert capsys.readouterr().out.strip() == str(out / "index.html")
    assert {run: snapshot(run) for run in run_dirs} == before  # the runs are only read
    text = (out / "index.html").read_text()
    assert sorted(p.name for p in out.iterdir()) == sorted(FIGURES | {"index.html"})
    assert set(re.findall(r'<img src="([^"]+)"', text)) == FIGURES
    assert all((out / name).read_bytes()[:8] == browser.PNG_MAGIC for name in FIGURES)
    assert not list(tmp_path.glob(".compare-*"))  # no staging folder left
    assert re.findall(r'<section id="([^"]+)">', text) == SECTIONS
    assert re.findall(r"<h2>(\d+)\. ", text) == ["1", "2", "3", "4", "5"]
    names = [f"{run.parent.name}/run" for run in run_dirs]  # the folders are both "run": one parent more tells them apart
    assert names[0] != names[1]
    assert run_names(run_dirs) == names
    assert f"<h1>BiLSTM search comparison: {names[0]} vs {names[1]}</h1>" in text

    # The page assemble_comparison() makes of the loaded runs is the page written.
    page, pictures = reports.assemble_comparison([load(run) for run in run_dirs])
    assert page == text and set(pictures) == FIGURES

    # 1. The runs: data, budget, trials, best validation and test accuracy and configuration, wall time, examples.
    infos = [read_json(RunDir(run).run_json) for run in run_dirs]
    summaries = [read_json(RunDir(run).summary_json) for run in run_dirs]
    table = _tables(_section(text, "runs"))[0]
    assert len(table) == 2
    for cells, name, run, info, summary in zip(table, names, run_dirs, infos, summaries, strict=True):
        data, search, best = info["data"], info["configs"]["search"], summary["best"]
        rows = _trials(run)
        assert cells[0] == f"{name} | {run}"
        sizes = ", ".join(f"{k} {v:,}" for k, v in data["sizes"].items())
        assert cells[1] == f"{data['source']} | fingerprint {data['fingerprint']} | {sizes}"
        assert cells[2] == (
            f"{search['trials']} trials, at most {search['max_epochs']} epochs each, no time budget, no examples budget"
        )
        counts = ", ".join(f"{n} {State(s).label}" for s, n in sorted(Counter(r["state"] for r in rows).items()))
        assert cells[3] == f"{len(rows)}: {counts}"
        assert best["trial_id"] == _best_scored(rows)["trial_id"]
        assert cells[4:6] == [f"{best[METRIC]:.2%}", f"{best['test_accuracy']:.2%}"]
        assert cells[6] == f"{best['trial_id']}: " + ", ".join(f"{k}={_shown(k, v)}" for k, v in best["params"].items())
        shown, rounding = _seconds(cells[7])
        assert shown == pytest.approx(summary["wall_s"], abs=rounding * 1.001)  # over 2 minutes it is shown in minutes
        used = summary["budget"]["examples_used"]
        assert used == sum(int(r["examples"]) for r in rows) and cells[8] == f"{used:,}"
    assert [len(_trials(run)) for run in run_dirs] == [6, 3]
    fingerprints = [info["data"]["fingerprint"] for info in infos]
    assert fingerprints[0] != fingerprints[1]  # another seed, another split of the sample
    assert f"the runs used different data (fingerprints {names[0]}: {fingerprints[0]}, {names[1]}: {fingerprints[1]})" in text

    # 2. Best so far of each run against examples processed and wall time, on shared axes.
    by_examples, by_time = pictures["progress.png"].axes
    for index, (name, run, summary) in enumerate(zip(names, run_dirs, summaries, strict=True)):
        expected = _progress(run)
        left = [line for line in by_examples.get_lines() if line.get_label() == f"{name}: best so far"]
        assert len(left) == 1
        right = by_time.get_lines()[index]
        assert left[0].get_xdata().tolist() == pytest.approx(expected["examples"])
        assert left[0].get_xdata()[-1] == summary["budget"]["examples_used"]
        assert right.get_xdata().tolist() == pytest.approx(expected["minutes"])
        for line in (left[0], right):
            assert _line_y(line) == pytest.approx(expected["best"])
            assert expected["best"][-1] == summary["best"][METRIC]
    assert by_examples.get_shared_y_axes().joined(by_examples, by_time)

    # 3. The accuracy-throughput fronts, overlaid: one line per run through its front.
    (ax,) = pictures["pareto.png"].axes
    for name, run, line in zip(names, run_dirs, ax.get_lines(), strict=True):
        front = _front(run)
        assert line.get_label() == f"{name}: front of {len(front)} (of {len(_trials(run))} trials)"
        assert line.get_xdata().tolist() == pytest.approx(front)

    # 4. The best configurations: the hyperparameters that differ, then those that match, separated.
    section = _section(text, "configs")
    params = [summary["best"]["params"] for summary in summaries]
    differ = [p.name for p in _space(real_run) if params[0][p.name] != params[1][p.name]]
    match = [p.name for p in _space(real_run) if params[0][p.name] == params[1][p.name]]
    assert differ and set(_pinned(real_run)) <= set(match)
    different, same = section.split("<h3>The same in every run</h3>")
    assert "<h3>Different</h3>" in different
    for part, expected in ((different, differ), (same, match)):
        rows = _tables(part)[0]
        assert [cells[0] for cells in rows] == expected
        for cells in rows:
            marks = [" (pinned)" if cells[0] in _pinned(run) else "" for run in run_dirs]
            assert cells[1:] == [f"{_shown(cells[0], p[cells[0]])}{mark}" for p, mark in zip(params, marks, strict=True)]
    headers = [h.replace("<wbr>", "") for h in re.findall(r"<th>(.*?)</th>", section)[:3]]
    assert headers == ["hyperparameter", *(f"{n} ({s['best']['trial_id']})" for n, s in zip(names, summaries, strict=True))]


def test_a_stopped_trial_above_the_best_moves_the_line(run_copy, second_run):
    # As in the report: a trial stopped early counts with what it found.
    rows = _trials(run_copy)
    best = _best_scored(rows)
    stopped = next((r for r in rows if r["state"] == State.STOPPED_EARLY and r is not best), None) or next(
        r for r in rows if r is not best
    )
    higher = (1 + float(best[METRIC])) / 2
    _edit_trials(run_copy, {stopped["trial_id"]: {"state": State.STOPPED_EARLY, METRIC: str(higher)}})

    _, pictures = reports.assemble_comparison([load(run_copy), load(second_run)])

    expected = _progress(run_copy)
    assert max(expected["best"]) == higher
    for ax in pictures["progress.png"].axes:
        line = ax.get_lines()[0]  # the first run's
        assert _line_y(line) == pytest.approx(expected["best"])
        assert np.nanmax(line.get_ydata()) == higher


def test_a_run_in_progress_is_compared_on_what_it_has_reported(run_copy, second_run):
    # No summary.json yet: the best is the best trial so far, examples are the trials' sum.
    RunDir(run_copy).summary_json.unlink()
    rows = _trials(run_copy)
    best = _best_scored(rows)
    name = run_names([run_copy, second_run])[0]

    text, pictures = reports.assemble_comparison([load(run_copy), load(second_run)])

    assert f"{name} has no final summary.json (in progress or interrupted)" in text
    cells = _tables(_section(text, "runs"))[0][0]
    assert cells[4:6] == [f"{float(best[METRIC]):.2%} (so far)", ""]
    assert cells[6].startswith(f"{best['trial_id']}: ") and cells[7] == "not finished"
    assert cells[8] == f"{sum(int(r['examples']) for r in rows):,}"
    assert set(pictures) == FIGURES


# --- bad input, atomic writes, safety ------------------------------------------------------------


def test_bad_input_fails_in_one_line_and_writes_nothing(real_run, run_copy, tmp_path, capsys):
    out = tmp_path / "compare"
    not_a_run = tmp_path / "empty"
    not_a_run.mkdir()
    a_file = tmp_path / "file"
    a_file.write_text("x")
    third = RunDir(tmp_path / "third")  # a run neither compared nor reported: its report is not --out's to take
    third.root.mkdir()
    third.run_json.write_text("{}")
    before = snapshot(tmp_path), snapshot(real_run)
    other = str(run_copy)
    files = RunDir(real_run)
    cases = [
        ([str(real_run), str(tmp_path / "missing"), "--out", str(out)], f"run directory {tmp_path / 'missing'} does not exist"),
        (
            [str(not_a_run), str(real_run), "--out", str(out)],
            f"{not_a_run} is not a run directory: it holds neither {files.run_json.name} nor {files.trials_csv.name}",
        ),
        ([str(real_run), "--out", str(out)], f"compare needs at least 2 run directories, got 1 ({real_run})"),
        (["--out", str(out)], "compare needs at least 2 run directories, got 0"),
        ([str(real_run), str(real_run)], "the following arguments are required: --out"),
        ([str(real_run), other, "--out", str(a_file)], f"--out {a_file} is a file"),
        ([str(real_run), other, "--out", str(real_run)], f"--out {real_run} is {real_run} or its report"),
        ([str(real_run), other, "--out", str(files.report)], "or its report"),
        ([str(real_run), other, "--out", str(third.report)], f"--out {third.report} is the report of another run, {third.root}"),
        ([str(real_run), other, "--out", str(real_run.parent)], f"--out {real_run.parent} holds other files ("),
        ([str(real_run), other, "--out", str(real_run.parent)], "); choose an empty folder or an earlier comparison's\n"),
    ]
    for argv, message in cases:
        assert main(["compare", *argv]) == 2, argv
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.startswith("error: ") and captured.err.count("\n") == 1, captured.err
        assert message in captured.err, (argv, captured.err)
    assert (snapshot(tmp_path), snapshot(real_run)) == before

    # As a command: one line on stderr, exit status 2, nothing written.
    result = subprocess.run(
        [sys.executable, "-m", "reports", "compare", "/missing/a", str(real_run), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr == "error: run directory /missing/a does not exist or is not a directory\n"
    assert not out.exists()


def _compare_refused(argv: list[str], capsys) -> str:
    assert main(["compare", *argv]) == 2, argv
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured.err
    return captured.err


def test_a_certified_run_is_compared_by_the_model_it_shipped(real_run, tmp_path):
    # the recorded reference run was certified: its best trial's own model was never tested, its refit was
    certified = Path(shutil.copytree(Path(__file__).parent / "data" / "recorded" / "reference", tmp_path / "reference"))
    reports.build_comparison([certified, real_run], tmp_path / "out")
    text = re.sub(r"<[^>]+>", " ", (tmp_path / "out" / "index.html").read_text())
    exported = read_json(RunDir(certified).summary_json)["exported"]
    assert f"{exported['test_accuracy'] * 100:.2f}% (certified, refit seed {exported['seed']})" in text


def test_a_run_named_twice_is_refused_before_it_is_read(tmp_path, capsys):
    run = tmp_path / "run"  # refused before anything is read: it need not even be a run
    run.mkdir()
    before = snapshot(tmp_path)
    for again in [run, tmp_path / "." / "run", tmp_path / "run" / ".." / "run"]:
        err = _compare_refused([str(run), str(again), "--out", str(tmp_path / "compare")], capsys)
        assert err == f"error: {run} and {again} are the same run ({run.resolve()}); name each run once\n"
    assert snapshot(tmp_path) == before


def test_a_run_without_an_ended_trial_is_refused(tmp_path, capsys):
    empty = tmp_path / "empty"  # run.json {} and an empty study.db
    empty.mkdir()
    (empty / "run.json").write_text("{}")
    (empty / "study.db").write_bytes(b"")
    running = tmp_path / "running"  # a run whose only trial is still running
    running.mkdir()
    write_rows(RunDir(running).trials_csv, trial_columns([]), [{"trial_id": "trial_0000", "number": 0, "state": State.RUNNING}])
    before = snapshot(tmp_path)
    for first, second in [(empty, running), (running, empty)]:
        err = _compare_refused([str(first), str(second), "--out", str(tmp_path / "compare")], capsys)
        assert err == (
            f"error: {first}: no trial has ended there (trials.csv holds none); compare runs that each have a finished trial\n"
        )
    assert snapshot(tmp_path) == before


def test_the_comparison_replaces_out_and_keeps_it_on_failure(real_run, second_run, tmp_path, monkeypatch):
    out = tmp_path / "compare"
    reports.build_comparison([real_run, second_run], out)
    (out / "stale.png").write_bytes(b"old")

    index = reports.build_comparison([second_run, real_run], out)  # an earlier comparison may be replaced

    assert index == out / "index.html" and not (out / "stale.png").exists()
    names = f"{second_run.parent.name}/run vs {real_run.parent.name}/run"
    assert f"BiLSTM search comparison: {names}" in index.read_text()
    before = snapshot(out)

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(figures, "comparison_pareto_figure", boom)
    with pytest.raises(RuntimeError, match="boom"):
        reports.build_comparison([real_run, second_run], out)
    assert snapshot(out) == before and not list(tmp_path.glob(".compare-*"))


HOSTILE_NAME = "<img src=x onerror=alert('name')>"
HOSTILE_SOURCE = "<script>alert('source')</script>.tar.gz"
HOSTILE_VALUE = "<script>alert('value')</script>"


def test_hostile_strings_are_escaped_and_the_page_is_self_contained(run_copy, second_run, tmp_path):
    hostile = run_copy.rename(run_copy.parent / HOSTILE_NAME)
    files = RunDir(hostile)
    info = read_json(files.run_json)
    write_json(files.run_json, {**info, "data": {**info["data"], "source": HOSTILE_SOURCE}})
    summary = read_json(files.summary_json)
    summary["best"]["params"]["batch_size"] = HOSTILE_VALUE
    write_json(files.summary_json, summary)

    text = reports.build_comparison([hostile, second_run], tmp_path / "compare").read_text()

    assert "<script>alert" not in text and "<img src=x" not in text
    assert text.count("<script") == 1 and "script-src &#x27;sha256-" in text  # only the page's own check script
    assert html.escape(HOSTILE_NAME) in _section(text, "runs") and html.escape(HOSTILE_SOURCE) in _section(text, "runs")
    assert f"<td>{html.escape(HOSTILE_VALUE)}</td>" in _section(text, "configs")
    assert f"batch_size={html.escape(HOSTILE_VALUE)}" in _section(text, "runs")
    links = re.findall(r'(?:src|href)="([^"]*)"', text)
    assert "http://" not in text and "https://" not in text and "//" not in "".join(links)
    assert links and all((tmp_path / "compare" / link).is_file() for link in links)


# --- in a real browser --------------------------------------------------------------------------


def test_comparison_opens_in_a_real_browser(real_run, second_run, tmp_path):
    binary = browser.chromium()
    out = tmp_path / "compare"
    reports.build_comparison([real_run, second_run], out)

    body = browser.assert_loads_cleanly(binary, out, tmp_path, images=len(FIGURES))
    assert body["data-probe-scrolling"] == ""  # every table fits its box at 1280 px

    screenshot = browser.screenshot(binary, out, tmp_path, height=2600)
    assert screenshot.stat().st_size > 50_000
    shutil.copy(screenshot, "/tmp/compare_screenshot.png")
