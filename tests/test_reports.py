import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import reports
from reports import analysis
from reports.__main__ import main
from reports.load import Run, load, parse_space
from reports_fixture import SCRIPT, make_run

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FIGURES = {"families.png", "curves.png", "pareto.png", "progress.png", "timeline.png"}


def _pngs(report: Path) -> set[str]:
    return {p.name for p in report.glob("*.png")}


def _referenced_images(html: str) -> set[str]:
    return set(re.findall(r'<img src="([^"]+)"', html))


def test_finished_run_report(tmp_path):
    run_dir = make_run(tmp_path / "run")
    index = reports.build(run_dir)

    assert index == run_dir / "report" / "index.html"
    html = index.read_text()
    pngs = _pngs(index.parent)
    assert FIGURES | {"importance.png"} <= pngs
    assert len([p for p in pngs if p.startswith("param_")]) == 8
    assert _referenced_images(html) == pngs  # every figure written is shown, by relative path
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in index.parent.glob("*.png"))
    assert not list(run_dir.glob(".report-*"))  # no staging folder left behind
    assert "http://" not in html and "https://" not in html  # nothing fetched from the network

    # Headline: the exported best beside the tutorial's two models, test accuracy only for the best.
    summary = json.loads((run_dir / "summary.json").read_text())
    headline = html.split('id="headline"')[1].split("</section>")[0]
    assert "best (exported)" in headline and "tutorial-single" in headline and "tutorial-stacked" in headline
    assert f"{summary['best']['test_accuracy']:.2%}" in headline
    # Leaderboard ordered by validation accuracy; the errored trial (no accuracy) last, with its reason.
    trials = pd.read_csv(run_dir / "trials.csv")
    expected = trials.sort_values("val_accuracy", ascending=False, na_position="last")["trial_id"].tolist()
    board = html.split('id="leaderboard"')[1].split("</section>")[0]
    assert re.findall(r"<td>(t_\d+)</td>", board) == expected
    assert "stopped early" in board and "ASHA: below the median at epoch 1" in board
    assert "ResourceExhaustedError: OOM when allocating tensor" in board
    # The best learning rate is at the top of its range; dropout at 0 is a natural bound, never flagged.
    assert "best learning_rate sits at the top of its range [0.0001, 0.01]" in html
    assert "best dropout" not in html
    # Importance computed by Optuna on the stored study, one row per searched hyperparameter.
    importance = html.split('id="importance"')[1].split("</section>")[0]
    assert "PED-ANOVA" in importance and "11 completed trials" in importance
    assert all(f"<td>{name}</td>" in importance for name in ("learning_rate", "depth", "max_len"))
    assert "Finished run: 12 trials" in html and "361a4aabcc28a4f7" in html and "optuna 5.0.0" in html
    assert "utilization" in html


def test_in_progress_run_without_summary_or_study(tmp_path):
    run_dir = make_run(tmp_path / "run", finished=False, study=False)

    html = reports.build(run_dir).read_text()

    assert "Run in progress" in html and "1 running" in html and "1 pending" in html
    assert "best so far" in html and "Test accuracy appears when the run finishes" in html
    assert "study.db is absent" in html
    assert "importance.png" not in _pngs(run_dir / "report")
    assert FIGURES <= _pngs(run_dir / "report")
    assert not (run_dir / "study.db").exists()  # the report never creates the driver's database


def test_importance_says_so_when_too_few_trials(tmp_path):
    run_dir = make_run(tmp_path / "run", trials=4)  # 4 completed trials in the study

    html = reports.build(run_dir).read_text()

    assert "too few completed trials in the study for importances: 4 (at least 5 are needed)" in html


def test_resumed_epoch_keeps_the_last_row(tmp_path):
    run = load(make_run(tmp_path / "run"))

    rows = run.epochs[(run.epochs["trial_id"] == "t_00003")]
    assert rows["epoch"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert rows.loc[rows["epoch"] == 2, "val_accuracy"].item() == pytest.approx(0.6551)


def test_strings_from_configs_data_and_errors_are_escaped(tmp_path):
    run_dir = make_run(tmp_path / "run", hostile=True)

    html = reports.build(run_dir).read_text()

    assert SCRIPT not in html and "<script>alert" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html  # error, hostname, max_len, command
    assert html.count("<script>") == 1  # only the page's own check script
    assert "script-src &#x27;sha256-" in html  # and the CSP would refuse any other


def test_loader_tolerates_missing_columns_and_empty_files(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps({"space": [{"name": "learning_rate", "kind": "float",
                                                              "low": 1e-4, "high": 1e-2, "log": True}]}))
    (run_dir / "trials.csv").write_text("trial_id,state,val_accuracy,learning_rate\na,completed,0.7,0.001\n"
                                        "b,running,,0.002\n")
    (run_dir / "epochs.csv").write_text("")
    (run_dir / "summary.json").write_text("{not json")

    run = load(run_dir)
    html = reports.build(run_dir).read_text()

    assert run.trials["examples_per_s"].isna().all() and run.trials["hostname"].tolist() == ["", ""]
    assert run.trials["number"].tolist() == [1.0, 2.0] and run.epochs.empty
    assert "summary.json could not be read" in html
    assert "no epochs reported yet" in html and "no trial has started yet" in html


def test_build_replaces_the_report_and_keeps_the_old_one_on_failure(tmp_path, monkeypatch):
    run_dir = make_run(tmp_path / "run", trials=4, study=False)
    (run_dir / "report").mkdir()
    (run_dir / "report" / "stale.png").write_bytes(b"old")

    reports.build(run_dir)
    assert not (run_dir / "report" / "stale.png").exists()

    def broken(run):
        html, pictures = real(run)
        pictures["broken.png"] = None  # savefig on None fails half-way through writing
        return html, pictures

    real = reports.assemble
    monkeypatch.setattr(reports, "assemble", broken)
    before = sorted(p.name for p in (run_dir / "report").iterdir())
    with pytest.raises(AttributeError):
        reports.build(run_dir)
    assert sorted(p.name for p in (run_dir / "report").iterdir()) == before
    assert not list(run_dir.glob(".report-*"))


def test_cli_missing_or_invalid_run_dir_exits_2(tmp_path, capsys):
    assert main([str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "does not exist" in err
    assert main([str(tmp_path)]) == 2
    assert "neither run.json nor trials.csv" in capsys.readouterr().err

    result = subprocess.run([sys.executable, "-m", "reports", str(tmp_path / "missing")], capture_output=True,
                            text=True, cwd=Path(__file__).parents[1], timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


def test_cli_writes_the_report(tmp_path, capsys):
    run_dir = make_run(tmp_path / "run", trials=4, study=False)
    assert main([str(run_dir)]) == 0
    assert capsys.readouterr().out.strip() == str(run_dir / "report" / "index.html")


def test_pareto_mask_keeps_undominated_points():
    accuracy = np.array([0.9, 0.8, 0.85, 0.7, np.nan, 0.9])
    throughput = np.array([100, 300, 100, 200, 999, 50])
    assert analysis.pareto_mask(accuracy, throughput).tolist() == [True, True, False, False, False, False]


def test_edge_warnings_and_axis_labels():
    space = parse_space([
        {"name": "learning_rate", "kind": "float", "low": 1e-4, "high": 1e-2, "log": True},
        {"name": "units", "kind": "int", "low": 16, "high": 128, "log": True},
        {"name": "dropout", "kind": "float", "low": 0.0, "high": 0.6},
        {"name": "max_len", "kind": "categorical", "choices": [128, 0]},
    ])
    trials = pd.DataFrame({"trial_id": ["a", "b", "c"], "number": [1.0, 2.0, 3.0], "state": ["completed"] * 3,
                           "preset": [""] * 3, "val_accuracy": [0.9, 0.5, 0.6],
                           "learning_rate": [9e-3, 1e-3, 2e-3], "units": [17.0, 64.0, 100.0],
                           "dropout": [0.0, 0.3, 0.3], "max_len": [0, 128, 128]})
    run = Run(Path("."), {}, trials, pd.DataFrame(), None, space)

    warnings = analysis.edge_warnings(run)

    assert warnings["learning_rate"] == ("best learning_rate sits at the top of its range [0.0001, 0.01] "
                                         "(the best trial): widen it")
    assert "bottom of its range [16, 128]" in warnings["units"]
    assert "dropout" not in warnings and "max_len" not in warnings
    assert analysis.format_value("max_len", 0) == "full" and analysis.format_value("units", 64.0) == "64"


def test_family_lanes_and_utilization():
    trials = pd.DataFrame({
        "trial_id": list("abcd"), "number": [1.0, 2.0, 3.0, 4.0], "state": ["completed"] * 3 + ["running"],
        "preset": ["tutorial-stacked", "", "", ""], "depth": [np.nan, 1, 3, 2],
        "started_at": [0.0, 0.0, 50.0, 0.0], "ended_at": [100.0, 50.0, 100.0, np.nan],
        "hostname": ["h1", "h1", "h1", "h2"], "node_id": ["n1"] * 3 + ["n2"], "device": ["CPU", "CPU", "CPU", "GPU:0"],
        "gpu_ids": ["", "", "", "0"],
    })
    epochs = pd.DataFrame({"trial_id": ["d"], "epoch": [1.0], "time": [60.0]})

    assert analysis.family(trials).tolist() == ["stacked", "single", "stacked", "stacked"]
    placed = analysis.lanes(trials, epochs)
    assert placed.set_index("trial_id")["lane"].to_dict() == {
        "a": "h1 · CPU #1", "b": "h1 · CPU #2", "c": "h1 · CPU #2", "d": "h2 · GPU:0 (GPU ids 0) #1"}
    usage = analysis.utilization(placed)
    assert usage["lanes"] == 3 and usage["busy_s"] == 260 and usage["utilization"] == pytest.approx(260 / 300)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent: the browser test needs Debian's chromium")
def test_report_opens_in_a_real_browser(tmp_path):
    run_dir = make_run(tmp_path / "run", hostile=True)
    index = reports.build(run_dir)
    url = index.resolve().as_uri()

    def chromium(*args: str) -> subprocess.CompletedProcess:
        profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
        return subprocess.run([str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url],
                              capture_output=True, text=True, timeout=120)

    dom = chromium("--virtual-time-budget=10000", "--dump-dom").stdout
    body = re.search(r"<body([^>]*)>", dom)
    assert body, f"no <body> in the dumped DOM: {dom[:300]!r}"
    images = re.search(r'data-images-ok="(\d+)/(\d+)"', body.group(1))
    errors = re.search(r'data-errors="([^"]*)"', body.group(1))
    assert images and errors, f"the page's check script did not run: {body.group(0)}"
    loaded, total = map(int, images.groups())
    assert total == len(_pngs(index.parent)) >= 14 and loaded == total
    assert errors.group(1) == ""
    assert "<script>alert" not in dom  # the hostile strings stayed text

    screenshot = tmp_path / "report.png"
    chromium("--hide-scrollbars", "--window-size=1280,4000", f"--screenshot={screenshot}")
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 50_000
    shutil.copy(screenshot, "/tmp/report_screenshot.png")
