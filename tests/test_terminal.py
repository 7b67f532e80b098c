"""What a user sees: a quiet terminal, and the tools people already use (TensorBoard, optuna-dashboard).

python -m pytest -q tests/test_terminal.py

What --verbose brings back (Tune's trial tables) is checked on the smoke search on TFDS (tests/test_tfds.py).
"""

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import pytest
from rich.console import Console
from test_serving import measured_again, written_for_the_sample

from runfiles.io import read_json, read_rows
from runfiles.layout import RunDir, State
from search.console import Progress, trial_line

from conftest import NOISE, SAMPLE


def test_a_smoke_run_and_measuring_it_again_print_a_few_plain_lines(tmp_path, capfd, monkeypatch):
    out, log = tmp_path / "run", tmp_path / "terminal.txt"
    with log.open("w") as sink:  # standard output and error both to one file, as `> log 2>&1` does
        done = subprocess.run(
            [sys.executable, "-m", "search.run", "--smoke", "--data", str(SAMPLE), "--out", str(out)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            timeout=900,
            env=os.environ | {"RAY_ADDRESS": "127.0.0.1:1"},  # without --address the run starts a Ray of its own
        )
    text = log.read_text()
    assert done.returncode == 0, text[-3000:]
    lines = text.splitlines()
    assert len(lines) <= 40, text
    assert not [line for line in lines if NOISE.search(line)], text
    assert "\x1b" not in text and "\r" not in text  # plain lines, no control characters off a terminal
    trials = read_rows(RunDir(out).trials_csv)
    assert sum(line.startswith("trial_") for line in lines) == len(trials) == 6
    for label in ("data", "space", "search", "resources", "run", "tools", "best", "model", "serving", "report"):
        assert any(line.startswith(f"{label} ") for line in lines), label
    assert f"tensorboard --logdir {RunDir(out).tune}" in text and f"optuna-dashboard {RunDir(out).study_url}" in text
    assert "oneDNN" in (out / "driver.log").read_text()  # what TensorFlow printed is kept, not shown
    first = written_for_the_sample(out, lines)  # the search ends with the serving benchmark, on the sample's 240 test texts
    measured_again(out, first, capfd, monkeypatch)  # python -m search.serving's work on the finished run


def test_the_live_display_counts_trials_and_budget():
    screen = io.StringIO()
    progress = Progress(stream=screen)
    progress.console = Console(file=screen, force_terminal=True, width=120)
    rows = {
        "trial_0000": {
            "trial_id": "trial_0000",
            "number": 0,
            "state": State.COMPLETED,
            "val_accuracy": "0.81",
            "started_at": 0.0,
            "ended_at": 60.0,
        },
        "trial_0001": {"trial_id": "trial_0001", "number": 1, "state": State.RUNNING, "val_accuracy": "0.9"},
    }
    progress.start(rows, total=4, concurrency=2, budget_examples=100_000, time_budget_s=None, examples_used=25_000)
    try:
        status = "\n".join(str(part) for part in progress.status().renderables)
    finally:
        progress.stop()
    assert "trials    1/4 done (1 completed), 1 running, 2 to go" in status
    assert "budget    25,000 examples of 100,000 (25%)" in status and "ETA 1.5 min" in status
    assert "best      trial_0000 val_accuracy 0.8100" in status  # a running trial is not the best yet


def test_a_finished_trial_line_says_why_it_ended():
    row = {
        "trial_id": "trial_0002",
        "state": "errored",
        "val_accuracy": "",
        "reason": "RuntimeError: boom (log: tune/trial_0002_ab/error.txt)",
    }
    assert trial_line(row) == "trial_0002  errored        (RuntimeError: boom (log: tune/trial_0002_ab/error.txt))"


def test_tensorboard_reads_every_trials_curves_as_in_epochs_csv(real_run):
    """TensorBoard's own reader, on the folder the header's `tensorboard --logdir` names."""
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    board = EventMultiplexer().AddRunsFromDirectory(str(RunDir(real_run).tune))
    board.Reload()
    runs = {name[: len("trial_0000")]: name for name in board.Runs()}
    trials = [row["trial_id"] for row in read_rows(RunDir(real_run).trials_csv)]
    assert sorted(runs) == trials
    epochs = read_rows(RunDir(real_run).epochs_csv)
    for trial, name in runs.items():
        assert {
            "ray/tune/val_accuracy",
            "ray/tune/train_accuracy",
            "ray/tune/val_loss",
            "ray/tune/train_loss",
            "ray/tune/examples_per_s",
        } <= set(board.Runs()[name]["scalars"])
        curve = [(e.step, e.value) for e in board.Scalars(name, "ray/tune/val_accuracy")]
        expected = [(int(e["epoch"]), float(e["val_accuracy"])) for e in epochs if e["trial_id"] == trial]
        assert [step for step, _ in curve] == [step for step, _ in expected]
        assert [value for _, value in curve] == pytest.approx([value for _, value in expected], abs=1e-6)


def test_optuna_dashboard_shows_the_study_and_the_reports_best_trial(real_run):
    import optuna_dashboard

    app = optuna_dashboard.wsgi(RunDir(real_run).study_url)

    def get(path: str) -> dict:
        environ = {}
        setup_testing_defaults(environ)
        environ.update(PATH_INFO=path, REQUEST_METHOD="GET")
        status = []
        body = b"".join(app(environ, lambda code, headers, *rest: status.append(code)))
        assert status == ["200 OK"]
        return json.loads(body)

    (study,) = get("/api/studies")["study_summaries"]
    assert study["study_name"] == "search"
    detail = get(f"/api/studies/{study['study_id']}")
    rows = {int(r["number"]): r for r in read_rows(RunDir(real_run).trials_csv)}
    assert {t["number"] for t in detail["trials"]} == set(rows)
    for trial in detail["trials"]:
        assert trial["values"][0] == float(rows[trial["number"]]["val_accuracy"])  # the best epoch's, finished or pruned
    summary = read_json(RunDir(real_run).summary_json)
    assert [t["number"] for t in detail["best_trials"]] == [summary["best"]["number"]]


def test_summary_numbers_are_json_numbers(real_run):
    def leaves(value, path=""):
        if isinstance(value, dict):
            for key, item in value.items():
                yield from leaves(item, f"{path}.{key}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                yield from leaves(item, f"{path}[{i}]")
        else:
            yield path, value

    summary = json.loads(Path(RunDir(real_run).summary_json).read_text())
    numeric_text = [(p, v) for p, v in leaves(summary) if isinstance(v, str) and re.fullmatch(r"-?[\d.]+(e-?\d+)?", v)]
    assert not numeric_text
    assert isinstance(summary["best"]["val_accuracy"], float) and isinstance(summary["wall_s"], float)
