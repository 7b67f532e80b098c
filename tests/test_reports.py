"""The report (python -m reports RUN_DIR) on run directories built by tests/reports_fixture.py.

    python -m pytest -q tests/test_reports.py

Finished, in-progress, resumed runs and runs with errored / stopped-early trials; the pure
assemble(); escaping and self-containment; the atomic replacement of report/; the CLI's
errors; and the page in headless Chromium (skipped only when no chromium binary is found).
"""

import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import reports
from reports import analysis, figures
from reports.__main__ import main
from reports.load import Run, load, parse_space
from reports_fixture import SCRIPT, make_run

REPO = Path(__file__).parents[1]
FIGURES = {"families.png", "curves.png", "pareto.png", "progress.png", "timeline.png"}
SECTIONS = ["headline", "leaderboard", "families", "curves", "pareto", "progress", "params", "importance",
            "timeline", "facts"]
ALERT = "<script>alert(1)</script>"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _pngs(report: Path) -> set[str]:
    return {p.name for p in report.glob("*.png")}


def _referenced_images(html: str) -> set[str]:
    return set(re.findall(r'<img src="([^"]+)"', html))


def _section(html: str, anchor: str) -> str:
    return html.split(f'<section id="{anchor}">')[1].split("</section>")[0]


def _snapshot(root: Path) -> dict[str, tuple]:
    """Every path under root with its size, mtime and content hash: to prove nothing was written."""
    return {str(p.relative_to(root)): (p.is_dir(), p.stat().st_mtime_ns,
                                       None if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*"))}


def _edit_trials(run_dir: Path, edits: dict[str, dict[str, str]]) -> None:
    """Rewrite trials.csv with some cells replaced, every other cell kept as written."""
    path = run_dir / "trials.csv"
    trials = pd.read_csv(path, dtype=str, keep_default_na=False)
    for trial_id, values in edits.items():
        for column, value in values.items():
            trials.loc[trials["trial_id"] == trial_id, column] = value
    trials.to_csv(path, index=False)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished run (12 trials: 2 stopped early, 1 errored, a resumed epoch) with its report built once."""
    run_dir = make_run(tmp_path_factory.mktemp("finished") / "run")
    reports.build(run_dir)
    return run_dir


# --- whole runs ---------------------------------------------------------------------------------


def test_finished_run_report(finished):
    index = finished / "report" / "index.html"
    html = index.read_text()
    pngs = _pngs(index.parent)

    # Files: every figure written is referenced by relative path, every referenced one exists, all real PNGs.
    assert FIGURES | {"importance.png"} <= pngs
    assert len([p for p in pngs if p.startswith("param_")]) == 8
    assert _referenced_images(html) == pngs
    assert all((index.parent / p).read_bytes()[:8] == PNG_MAGIC for p in pngs)
    assert sorted(p.name for p in index.parent.iterdir()) == sorted(pngs | {"index.html"})
    assert not list(finished.glob(".report-*"))  # no staging folder left behind

    # Sections 1-10, in order, numbered.
    assert re.findall(r'<section id="([^"]+)">', html) == SECTIONS
    titles = re.findall(r"<h2>(\d+)\. ", html)
    assert titles == [str(i) for i in range(1, 11)]
    assert "Finished run: 12 trials (9 completed, 1 errored, 2 stopped early)" in html

    # 1. Headline: the exported best beside the tutorial's two models; test accuracy only for the best.
    summary = json.loads((finished / "summary.json").read_text())
    headline = _section(html, "headline")
    assert "best (exported)" in headline and "tutorial-single" in headline and "tutorial-stacked" in headline
    assert f"{summary['best']['test_accuracy']:.2%}" in headline and summary["best"]["trial_id"] == "t_00003"
    assert "vs tutorial-single: " in headline and "vs tutorial-stacked: " in headline

    # 2. Leaderboard by validation accuracy; the errored trial (no accuracy) last; state and reason shown.
    trials = pd.read_csv(finished / "trials.csv")
    expected = trials.sort_values("val_accuracy", ascending=False, na_position="last")["trial_id"].tolist()
    board = _section(html, "leaderboard")
    assert re.findall(r"<td>(t_\d+)</td>", board) == expected
    assert board.count('<tr class="stopped_early">') == 2 and board.count('<tr class="errored">') == 1
    assert board.count("ASHA: below the median at epoch 1") == 2 and "<td>stopped early</td>" in board
    assert "<td>errored</td><td>ResourceExhaustedError: OOM when allocating tensor</td>" in board
    assert '<tr class="completed best">' in board

    # 3-6. Single vs stacked, learning curves, accuracy vs throughput with its front, progress.
    assert '<img src="families.png"' in _section(html, "families")
    assert '<img src="curves.png"' in _section(html, "curves")
    pareto = _section(html, "pareto")
    assert '<img src="pareto.png"' in pareto and "Pareto front: no other trial is both more accurate and faster" in pareto
    front = re.findall(r"<td>(t_\d+)</td>", pareto)
    rows = trials[trials["val_accuracy"].notna()]
    expected_front = rows[analysis.pareto_mask(rows["val_accuracy"].to_numpy(), rows["examples_per_s"].to_numpy())]
    assert sorted(front) == sorted(expected_front["trial_id"]) and "t_00003" in front
    assert '<img src="progress.png"' in _section(html, "progress")

    # 7. One plot per hyperparameter; the best learning rate is at the top of its range (warned),
    # dropout at 0 is a natural bound (never warned).
    params = _section(html, "params")
    for i, name in enumerate(["depth", "units", "learning_rate", "dropout", "vocab_size", "embedding_dim",
                              "batch_size", "max_len"]):
        assert f'<img src="param_{i:02d}_{name}.png"' in params
    assert "best learning_rate sits at the top of its range [0.0001, 0.01]" in params
    assert "best dropout" not in html

    # 8. Importance computed by Optuna on the stored study, one row per searched hyperparameter.
    importance = _section(html, "importance")
    assert '<img src="importance.png"' in importance
    assert "PED-ANOVA" in importance and "11 completed trials" in importance
    assert all(f"<td>{name}</td>" in importance for name in ("learning_rate", "depth", "max_len"))

    # 9. Where trials ran, with utilization.
    timeline = _section(html, "timeline")
    assert '<img src="timeline.png"' in timeline
    assert re.search(r"2 lanes .* utilization \d+% \(busy time / \(lanes × wall time\)\)", timeline)
    assert "The run allowed 2 trials at once." in timeline and "<td>node-a · CPU</td>" in timeline

    # 10. Run facts: fingerprint, split sizes, versions, command line.
    facts = _section(html, "facts")
    assert "<dt>data fingerprint</dt><dd>361a4aabcc28a4f7</dd>" in facts
    assert "<dt>split sizes</dt><dd>train 1,600, val 400, test 2,000</dd>" in facts
    assert "tensorflow 2.21.0" in facts and "optuna 5.0.0" in facts and "python 3.11.7" in facts
    assert f"<dt>command</dt><dd>python -m search.run --smoke --out {finished}</dd>" in facts


def test_resumed_epoch_keeps_the_last_row(finished):
    # The fixture re-reports trial 3's epoch 2 with val_accuracy 0.6551 (a resume): the last row wins.
    written = pd.read_csv(finished / "epochs.csv")
    assert len(written[(written["trial_id"] == "t_00003") & (written["epoch"] == 2)]) == 2

    run = load(finished)

    rows = run.epochs[run.epochs["trial_id"] == "t_00003"]
    assert rows["epoch"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert rows.loc[rows["epoch"] == 2, "val_accuracy"].item() == pytest.approx(0.6551)
    curves = reports.assemble(run)[1]["curves.png"]
    line = next(line for line in curves.axes[0].get_lines() if line.get_label() == "#3")
    assert line.get_xdata().tolist() == [1.0, 2.0, 3.0, 4.0] and line.get_ydata()[1] == pytest.approx(0.6551)


def test_in_progress_run_without_summary_model_or_study(tmp_path):
    run_dir = make_run(tmp_path / "run", finished=False, study=False)
    assert not (run_dir / "summary.json").exists() and not (run_dir / "best_model").exists()

    html = reports.build(run_dir).read_text()

    report = run_dir / "report"
    assert _referenced_images(html) == _pngs(report) and FIGURES <= _pngs(report)
    assert "importance.png" not in _pngs(report)
    assert "Run in progress" in html and "1 running" in html and "1 pending" in html
    headline = _section(html, "headline")
    assert "best so far" in headline and "best (exported)" not in headline
    assert "Test accuracy appears when the run finishes" in headline
    board = _section(html, "leaderboard")
    # The running trial is ranked by what it has reported so far; the pending one (no value) comes last.
    assert re.search(r'<tr class="running"><td class="num">\d+</td><td class="num">11</td><td>t_00011</td>', board)
    assert re.findall(r"<td>(t_\d+)</td>", board)[-2:] == ["t_00006", "t_00012"]  # errored 6, pending 12 by number
    assert "<td>running</td>" in board and "<td>pending</td>" in board
    assert "study.db is absent" in _section(html, "importance")
    assert not (run_dir / "study.db").exists()  # the report never creates the driver's database


def test_importance_says_so_when_too_few_trials(tmp_path):
    run_dir = make_run(tmp_path / "run", trials=4)  # 4 completed trials in the study

    html, pictures = reports.assemble(load(run_dir))

    assert "too few completed trials in the study for importances: 4 (at least 5 are needed)" in html
    assert "importance.png" not in pictures


def test_assemble_is_pure(finished):
    before = _snapshot(finished)

    html, pictures = reports.assemble(load(finished))

    assert _snapshot(finished) == before  # nothing written, not even a SQLite journal next to study.db
    assert html.startswith("<!DOCTYPE html>") and _referenced_images(html) == set(pictures)
    assert all(isinstance(p, Figure) for p in pictures.values())
    assert html == (finished / "report" / "index.html").read_text()  # the same page build() wrote


# --- edges of the search space ------------------------------------------------------------------


def _best_two(run_dir: Path) -> list[str]:
    trials = pd.read_csv(run_dir / "trials.csv")
    return trials.sort_values("val_accuracy", ascending=False)["trial_id"].head(2).tolist()


@pytest.mark.parametrize("learning_rate, warning", [
    ("0.0099", "best learning_rate sits at the top of its range [0.0001, 0.01] (the 2 best trials): widen it"),
    ("0.00011", "best learning_rate sits at the bottom of its range [0.0001, 0.01] (the 2 best trials): widen it"),
    ("0.001", None),  # the middle of the (log) range
])
def test_edge_warning_when_the_best_trials_sit_at_an_edge(tmp_path, learning_rate, warning):
    run_dir = make_run(tmp_path / "run", study=False)
    best = _best_two(run_dir)  # 11 trials with a value: the top 10% rounds up to 2
    _edit_trials(run_dir, {trial_id: {"learning_rate": learning_rate} for trial_id in best})

    html, _ = reports.assemble(load(run_dir))

    params = _section(html, "params")
    if warning:
        assert f'<div class="warn">⚠ {warning}</div>' in params
    else:
        assert "best learning_rate" not in html


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
    assert "dropout" not in warnings and "max_len" not in warnings  # natural minimum; categorical
    assert analysis.format_value("max_len", 0) == "full" and analysis.format_value("units", 64.0) == "64"


# --- safety ------------------------------------------------------------------------------------


def test_hostile_strings_are_escaped_and_the_page_is_self_contained(tmp_path):
    run_dir = make_run(tmp_path / "run", hostile=True, study=False)  # SCRIPT in a hostname, max_len, the command
    _edit_trials(run_dir, {"t_00004": {"batch_size": ALERT}, "t_00006": {"reason": f"ValueError: {ALERT}"}})

    html = reports.build(run_dir).read_text()

    assert "<script>alert" not in html and SCRIPT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the parameter value
    assert "<td>ValueError: &lt;script&gt;alert(1)&lt;/script&gt;</td>" in _section(html, "leaderboard")
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html  # hostname, max_len, command
    assert html.count("<script") == 1  # only the page's own check script...
    assert "script-src &#x27;sha256-" in html  # ...and the CSP would refuse any other
    # Self-contained: nothing from the network, every src/href a file beside the page.
    assert "http://" not in html and "https://" not in html and "//" not in "".join(
        re.findall(r'(?:src|href)="([^"]*)"', html))
    assert all((run_dir / "report" / src).is_file() for src in re.findall(r'(?:src|href)="([^"]*)"', html))
    assert "url(" not in html and "@import" not in html


# --- atomic replacement -------------------------------------------------------------------------


def test_build_replaces_the_report_and_keeps_the_old_one_on_failure(tmp_path, monkeypatch):
    run_dir = make_run(tmp_path / "run", trials=4, study=False)
    (run_dir / "report").mkdir()
    (run_dir / "report" / "stale.png").write_bytes(b"old")

    reports.build(run_dir)
    assert not (run_dir / "report" / "stale.png").exists()
    before = _snapshot(run_dir / "report")

    # A figure function that raises: nothing is written.
    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    with monkeypatch.context() as patch:
        patch.setattr(figures, "pareto_figure", boom)
        with pytest.raises(RuntimeError, match="boom"):
            reports.build(run_dir)
    assert _snapshot(run_dir / "report") == before
    assert not list(run_dir.glob(".report-*"))

    # A figure that fails while being saved, after others were written into the staging folder.
    def half_broken(run):
        html, pictures = real(run)
        pictures["zz_broken.png"] = None  # savefig on None fails half-way through writing
        return html, pictures

    real = reports.assemble
    monkeypatch.setattr(reports, "assemble", half_broken)
    with pytest.raises(AttributeError):
        reports.build(run_dir)
    assert _snapshot(run_dir / "report") == before
    assert not list(run_dir.glob(".report-*"))


# --- command line -------------------------------------------------------------------------------


def test_cli_missing_or_invalid_run_dir_exits_2(tmp_path, capsys):
    assert main([str(tmp_path / "missing")]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1 and "does not exist" in captured.err
    assert captured.out == ""
    assert main([str(tmp_path)]) == 2
    assert "neither run.json nor trials.csv" in capsys.readouterr().err

    result = subprocess.run([sys.executable, "-m", "reports", "/missing/dir"], capture_output=True, text=True,
                            cwd=REPO, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr and result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "/missing/dir" in result.stderr


def test_cli_writes_the_report(tmp_path, capsys):
    run_dir = make_run(tmp_path / "run", trials=4, study=False)
    assert main([str(run_dir)]) == 0
    assert capsys.readouterr().out.strip() == str(run_dir / "report" / "index.html")
    assert (run_dir / "report" / "index.html").is_file()


# --- pure helpers -------------------------------------------------------------------------------


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
    html, _ = reports.assemble(run)

    assert run.trials["examples_per_s"].isna().all() and run.trials["hostname"].tolist() == ["", ""]
    assert run.trials["number"].tolist() == [1.0, 2.0] and run.epochs.empty
    assert "summary.json could not be read" in html
    assert "no epochs reported yet" in html and "no trial has started yet" in html


def test_pareto_mask_keeps_undominated_points():
    accuracy = np.array([0.9, 0.8, 0.85, 0.7, np.nan, 0.9])
    throughput = np.array([100, 300, 100, 200, 999, 50])
    assert analysis.pareto_mask(accuracy, throughput).tolist() == [True, True, False, False, False, False]


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


# --- in a real browser --------------------------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# Independent of the page's own check script: records failed resource loads (capture phase), script
# errors, console.error calls and CSP violations, then on 'load' counts the images that decoded.
PROBE = """(function(){var errors=[],csp=[];
window.addEventListener('error',function(e){var t=e.target;
errors.push(t&&t!==window&&(t.src||t.href)?'failed to load '+(t.src||t.href):'script error: '+(e.message||e.type));},true);
document.addEventListener('securitypolicyviolation',function(e){csp.push(e.violatedDirective+' '+e.blockedURI);});
var original=console.error;console.error=function(){errors.push('console.error: '+Array.prototype.join.call(arguments,' '));
return original.apply(console,arguments);};
window.addEventListener('load',function(){var images=document.images,ok=0,broken=[];
for(var i=0;i<images.length;i++){if(images[i].complete&&images[i].naturalWidth>0){ok++;}else{broken.push(images[i].getAttribute('src'));}}
var b=document.body;b.setAttribute('data-probe-images-ok',ok+'/'+images.length);b.setAttribute('data-probe-broken',broken.join(' '));
b.setAttribute('data-probe-errors',errors.join(' | '));b.setAttribute('data-probe-csp',csp.join(' | '));});})();"""
CANARY = "<script>document.documentElement.setAttribute('data-canary','ran')</script>"


def _probing_copy(report: Path, target: Path, canary: bool = False) -> Path:
    """A copy of report/ whose index.html runs PROBE first.

    The page's CSP (script-src by hash only) refuses inline scripts and would refuse
    <script src="probe.js"> too (no 'self' in script-src), so the copy adds PROBE's hash to
    script-src and nothing else: images and styles still load under the page's own policy.
    """
    shutil.copytree(report, target)
    html = (target / "index.html").read_text()
    digest = base64.b64encode(hashlib.sha256(PROBE.encode()).digest()).decode()
    assert html.count("script-src &#x27;sha256-") == 1
    html = html.replace("script-src &#x27;sha256-", f"script-src &#x27;sha256-{digest}&#x27; &#x27;sha256-")
    csp_meta = re.search(r'<meta http-equiv="Content-Security-Policy"[^>]*>\n', html).group(0)
    html = html.replace(csp_meta, f"{csp_meta}<script>{PROBE}</script>\n")
    if canary:
        html = html.replace("</body>", f"{CANARY}\n</body>")
    (target / "index.html").write_text(html)
    return target / "index.html"


def _chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=90)


def _body_attributes(dom: str) -> dict[str, str]:
    body = re.search(r"<body([^>]*)>", dom)
    assert body, f"no <body> in the dumped DOM: {dom[:300]!r}"
    return dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))


def test_report_opens_in_a_real_browser(finished, tmp_path):
    binary = shutil.which("chromium")
    if binary is None:
        pytest.skip("no chromium binary on PATH: the browser test needs Chromium (Debian: apt install chromium)")
    report = finished / "report"
    pngs = _pngs(report)
    dump = ("--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom")

    # Every image decodes, nothing fails, under the page's own CSP.
    index = _probing_copy(report, tmp_path / "probe")
    result = _chromium(binary, tmp_path / "profile-probe", *dump, index.as_uri())
    body = _body_attributes(result.stdout)
    assert "data-probe-images-ok" in body, f"the probe did not run: {body} {result.stderr[-2000:]}"
    assert body["data-probe-images-ok"] == f"{len(pngs)}/{len(pngs)}", body["data-probe-broken"]
    assert body["data-probe-errors"] == "" and body["data-probe-csp"] == ""
    assert body["data-images-ok"] == f"{len(pngs)}/{len(pngs)}" and body["data-errors"] == ""  # the page's own check
    assert not [line for line in result.stderr.splitlines() if ":CONSOLE" in line]  # nothing logged at all

    # The CSP refuses a script injected into the page.
    index = _probing_copy(report, tmp_path / "canary", canary=True)
    result = _chromium(binary, tmp_path / "profile-canary", *dump, index.as_uri())
    assert "data-canary" not in result.stdout.split("<body")[0]
    assert "script-src" in _body_attributes(result.stdout)["data-probe-csp"]

    # A screenshot of the page as shipped, to look at.
    shown = tmp_path / "shown"
    shutil.copytree(report, shown)
    screenshot = tmp_path / "report.png"
    _chromium(binary, tmp_path / "profile-shot", "--hide-scrollbars", "--window-size=1280,5000",
              f"--screenshot={screenshot}", (shown / "index.html").as_uri())
    assert screenshot.is_file() and screenshot.read_bytes()[:8] == PNG_MAGIC and screenshot.stat().st_size > 100_000
    shutil.copy(screenshot, "/tmp/report_screenshot.png")
