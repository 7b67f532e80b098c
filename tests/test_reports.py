"""The report (python -m reports RUN_DIR) on real run directories.

    python -m pytest -q tests/test_reports.py

The tests read the real search of tests/conftest.py (`real_run`: 6 trials on the sample,
finished, exported and reported by the driver; never changed) or a copy of it (`run_copy`)
turned into an edge case through the run directory's contract (runfiles/layout.py): tutorial
presets, a resumed epoch, a run in progress, diverged and errored trials, a trial stopped
early above every completed one (the best; PRUNED in the study), studies with few or many
completed trials, best trials at the edges of the search space, hostile strings, missing columns and files. Expected values
come from the files (the contract's ranking, the trials' own numbers), not from the report's
functions. Also: the pure assemble(), the atomic replacement of report/, the CLI, the Pareto
mask, and the page in headless Chromium (skipped only when no chromium binary is found).
"""

import html
import math
import re
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from itertools import accumulate
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import optuna
import pytest
from matplotlib.figure import Figure
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

import reports
from reports import analysis, figures, page
from reports.__main__ import main
from reports.load import load, read_study
from runfiles.documents import Baseline, DataFacts, LinearBaseline, RunFacts, Summary
from runfiles.io import append_row, read_json, read_rows, write_json, write_rows
from runfiles.layout import (
    EPOCH_COLUMNS,
    OBJECTIVE,
    STUDY_NAME,
    TRIAL_HEAD,
    TUTORIAL_PRESETS,
    Param,
    RunDir,
    State,
    as_float,
    best_row,
    names,
    objective_named,
    rank_key,
    trial_columns,
)
from runfiles.trials import lost_rows
from search.baseline import keeping_models

import browser
from conftest import snapshot

REPO = Path(__file__).parents[1]
RECORDED = REPO / "tests" / "data" / "recorded"
REFERENCES = [RECORDED / "reference", RECORDED / "reference-seed1"]
METRIC = OBJECTIVE.metric
FIGURES = {"families.png", "curves.png", "pareto.png", "progress.png", "timeline.png"}
SECTIONS = ["headline", "leaderboard", "families", "curves", "pareto", "progress", "params", "importance", "timeline", "facts"]
MIN_IMPORTANCE = 5  # completed trials the importance section needs
PNG_MAGIC = browser.PNG_MAGIC
# Leaderboard cells: rank, #, trial, preset, state, reason, one per hyperparameter, then the tail.
TRIAL, STATE, REASON = 1, 3, 4

optuna.logging.set_verbosity(optuna.logging.WARNING)


# --- reading and changing run directories through the contract -------------------------------


def _space(run_dir: Path) -> list[Param]:
    return [Param.from_json(entry) for entry in read_json(RunDir(run_dir).run_json)["space"]]


def _param_names(run_dir: Path) -> list[str]:
    return [p.name for p in _space(run_dir)]


def _pinned(space: list[Param]) -> dict:
    """The hyperparameters a run held fixed: a categorical with one choice (what --fix declares)."""
    return {p.name: p.choices[0] for p in space if p.kind == "categorical" and len(p.choices) == 1}


def _searched_names(run_dir: Path) -> list[str]:
    space = _space(run_dir)
    return [p.name for p in space if p.name not in _pinned(space)]


def _headers(text: str) -> list[str]:
    """The header cells of the first table in text, as read (a <wbr> break opportunity is no text)."""
    head = text.split("<thead>")[1].split("</thead>")[0]
    return [html.unescape(h.replace("<wbr>", "")) for h in re.findall(r"<th[^>]*>(.*?)</th>", head)]


def _trials(run_dir: Path) -> list[dict]:
    return read_rows(RunDir(run_dir).trials_csv)


def _write_trials(run_dir: Path, rows: list[dict]) -> list[dict]:
    write_rows(RunDir(run_dir).trials_csv, trial_columns(_param_names(run_dir)), rows)
    return rows


def _edit_trials(run_dir: Path, edits: dict[str, dict]) -> list[dict]:
    """Rewrite trials.csv with some cells replaced (by trial id), every other cell as the driver wrote it."""
    rows = _trials(run_dir)
    assert set(edits) <= {r["trial_id"] for r in rows}
    for row in rows:
        row.update(edits.get(row["trial_id"], {}))
    return _write_trials(run_dir, rows)


def _by_rank(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=rank_key)


def _best_scored(rows: list[dict]) -> dict:
    """The harness's best trial, found without rank_key: of the ended ones with a value that neither
    diverged nor errored (completed or stopped early), the highest value, then more epochs, then lowest number."""
    ended = (State.COMPLETED, State.STOPPED_EARLY)
    scored = [r for r in rows if r["state"] in ended and not math.isnan(as_float(r[METRIC]))]
    return max(scored, key=lambda r: (float(r[METRIC]), int(r["epochs"]), -int(r["number"])))


def _listed(rows: list[dict]) -> str:
    """The banner's counts: "3 completed, 3 stopped early"."""
    return ", ".join(f"{n} {State(s).label}" for s, n in sorted(Counter(r["state"] for r in rows).items()))


def _in_progress(run_dir: Path) -> None:
    """What a run directory holds mid-run: no summary, no exported model, no report, no study yet."""
    files = RunDir(run_dir)
    files.summary_json.unlink()
    files.study_db.unlink()
    shutil.rmtree(files.best_model)
    shutil.rmtree(files.report)


def _restudy(run_dir: Path, complete: int, pruned: int = 1) -> None:
    """Replace the copy's study.db by one with `complete` COMPLETE and `pruned` PRUNED trials over the
    real study's distributions, through Optuna's API; the value grows with the learning rate only."""
    files = RunDir(run_dir)
    real = optuna.load_study(study_name=STUDY_NAME, storage=files.study_url)
    distributions, directions = real.trials[0].distributions, real.directions
    files.study_db.unlink()
    study = optuna.create_study(
        study_name=STUDY_NAME, storage=files.study_url, directions=directions, sampler=optuna.samplers.RandomSampler(seed=0)
    )
    for _ in range(complete):
        trial = study.ask(distributions)
        study.tell(trial, 0.5 + 0.1 * math.log10(trial.params["learning_rate"] / 1e-4))
    for _ in range(pruned):
        study.tell(study.ask(distributions), state=optuna.trial.TrialState.PRUNED)


def _completed_in_study(run_dir: Path) -> int:
    """COMPLETE trials in study.db, read without writing (the real run must stay as it is)."""
    storage = f"sqlite:///file:{RunDir(run_dir).study_db.resolve()}?mode=ro&uri=true"
    study = optuna.load_study(study_name=STUDY_NAME, storage=storage)
    return sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.get_trials(deepcopy=False))


# --- reading the page -------------------------------------------------------------------------


def _pngs(report: Path) -> set[str]:
    return {p.name for p in report.glob("*.png")}


def _referenced_images(text: str) -> set[str]:
    return set(re.findall(r'<img src="([^"]+)"', text))


def _section(text: str, anchor: str) -> str:
    return text.split(f'<section id="{anchor}">')[1].split("</section>")[0]


def _table(text: str) -> list[tuple[str, list[str]]]:
    """(row class, unescaped cells) of each body row of the first table in text."""
    body = text.split("<tbody>")[1].split("</tbody>")[0]
    return [
        (cls, [html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", cells)])
        for cls, cells in re.findall(r'<tr(?: class="([^"]*)")?>(.*?)</tr>', body)
    ]


def _staging_left(run_dir: Path) -> list[Path]:
    return list(run_dir.glob(f".{RunDir(run_dir).report.name}-*"))


# --- expectations computed from the files ------------------------------------------------------


def _place(row: dict) -> str:
    return f"{row['hostname']} · {row['device']}" + (f" (GPU ids {row['gpu_ids']})" if row["gpu_ids"] else "")


def _lanes_needed(rows: list[dict]) -> dict[str, int]:
    """Per place, the most trials running there at once (one ending as another starts: not at once)."""
    events = defaultdict(list)
    for r in rows:
        events[_place(r)] += [(float(r["started_at"]), 1), (float(r["ended_at"]), -1)]
    return {place: max(accumulate(step for _, step in sorted(e))) for place, e in events.items()}


def _pareto_front(rows: list[dict]) -> set[str]:
    """Trials that no other trial matches on accuracy and throughput while beating it on one."""
    points = {
        r["trial_id"]: (float(r[METRIC]), float(r["examples_per_s"]))
        for r in rows
        if not math.isnan(as_float(r[METRIC])) and as_float(r["examples_per_s"]) > 0
    }
    return {t for t, (a, s) in points.items() if not any(b >= a and u >= s and (b > a or u > s) for b, u in points.values())}


def _best_tenth(rows: list[dict]) -> list[dict]:
    """The best 10% of the trials with a value (at least 1, at most 5): those the edge warnings look at."""
    scored = [r for r in _by_rank(rows) if not math.isnan(as_float(r[METRIC]))]
    return scored[: max(1, min(5, math.ceil(0.1 * len(scored))))]


def _edges(rows: list[dict], space: list[Param]) -> set[tuple[str, str]]:
    """(param, "top" | "bottom") where the best tenth all sit within 10% of a numeric range's bound
    (log width where log); a bottom at 0 (float) or 1 (int) is natural, never an edge."""
    top, found = _best_tenth(rows), set()
    for p in space:
        if p.kind == "categorical" or p.low is None or p.high is None:
            continue
        scale = math.log if p.log else float
        where = [(scale(float(r[p.name])) - scale(p.low)) / (scale(p.high) - scale(p.low)) for r in top]
        if all(w >= 0.9 for w in where):
            found.add((p.name, "top"))
        elif all(w <= 0.1 for w in where) and not ((p.kind == "float" and p.low == 0) or (p.kind == "int" and p.low <= 1)):
            found.add((p.name, "bottom"))
    return found


# --- the finished real run, as the driver reported it ------------------------------------------


def test_finished_run_report(real_run):
    files = RunDir(real_run)
    text = (files.report / "index.html").read_text()
    pngs = _pngs(files.report)
    rows, space, info, summary = _trials(real_run), _space(real_run), read_json(files.run_json), read_json(files.summary_json)
    param_names = [p.name for p in space]
    pinned = _pinned(space)
    searched = [name for name in param_names if name not in pinned]
    pinned_text = ", ".join(f"{name}={value}" for name, value in pinned.items())
    space = [Param.from_json(entry) for entry in info["space"]]
    assert pinned == info["configs"]["search"]["fixed"] and len(searched) == len(space) - 4  # conftest's TINY pins four
    completed_in_study = _completed_in_study(real_run)
    assert list(rows[0]) == trial_columns(param_names) and list(read_rows(files.epochs_csv)[0]) == names(EPOCH_COLUMNS)

    # Files: every figure written is referenced by relative path, every referenced one exists, all real PNGs;
    # one plot per searched hyperparameter, none for a pinned one.
    params = {f"param_{i:02d}_{name}.png" for i, name in enumerate(searched)}
    importance = {"importance.png"} if completed_in_study >= MIN_IMPORTANCE else set()
    confusion = {"confusion.png"} if (summary.get("exported") or {}).get("test_confusion") else set()
    latency = {"latency.png"}  # every trial reported its network's latency
    assert pngs == FIGURES | params | importance | confusion | latency and len(params) == len(searched)
    assert _referenced_images(text) == pngs
    assert all((files.report / p).read_bytes()[:8] == PNG_MAGIC for p in pngs)
    assert sorted(p.name for p in files.report.iterdir()) == sorted(pngs | {"index.html"})
    assert not _staging_left(real_run)
    # nothing else was tested on its split: no comparison column, empty in every row
    on_test = text.split("<h3>On the test split</h3>")[1].split("<h3>")[0]
    assert "shipped (best_model/)" in on_test and "− it" not in on_test

    # The sections in order, numbered by it; the banner counts the trials of trials.csv, as summary.json does.
    assert re.findall(r'<section id="([^"]+)">', text) == SECTIONS and len(SECTIONS) == len(reports.SECTIONS)
    assert re.findall(r"<h2>(\d+)\. ", text) == [str(i) for i in range(1, len(SECTIONS) + 1)]
    counts = Counter(r["state"] for r in rows)
    assert all(summary["counts"][state] == n for state, n in counts.items()) and summary["counts"]["total"] == len(rows)
    assert re.search(rf"Finished run: {len(rows)} trials \({re.escape(_listed(rows))}\), wall time [\d.]+ (s|min|h)\.", text)

    # 1. Headline: the exported best (the best trial by value, however it ended) beside the tutorial's two models.
    best = _best_scored(rows)
    assert summary["best"]["trial_id"] == best["trial_id"] == best_row(rows)["trial_id"]
    headline = _section(text, "headline")
    first, *tutorial = _table(headline)
    assert first[1][:2] == ["best (exported)", best["trial_id"]]
    assert [part.split("=")[0] for part in first[1][2].split(", ")] == searched  # pinned ones are listed once, below
    assert first[1][3:5] == [f"{float(best[METRIC]):.2%}", f"{summary['best']['test_accuracy']:.2%}"]
    assert first[1][7] == State(best["state"]).label
    assert not any(r["preset"] for r in rows)  # the pinned presets are not the tutorial's models
    assert [cells for _, cells in tutorial] == [[p, "", "", "", "", "", "", "not in this run"] for p in TUTORIAL_PRESETS]
    assert "vs tutorial" not in headline and "Test accuracy is measured only for what is exported or certified" in headline

    # 2. Leaderboard in the contract's ranking: state, reason, class (with the best marked) per trial.
    board = _section(text, "leaderboard")
    assert f". Leaderboard ({len(rows)} trials, by {METRIC})</h2>" in board
    shown = _table(board)
    ranked = _by_rank(rows)
    # Macro-F1 where trials.csv has it, in place of the loss (not the objective here); runs before it keep the loss.
    macro = any(r.get("val_macro_f1") for r in rows)
    headers = _headers(board)
    assert headers == [
        "rank",
        "trial",
        "preset",
        "state",
        "reason",
        *searched,
        "epochs (best)",
        "validation accuracy",
        "validation macro-F1" if macro else "validation loss",
        "examples/s",
    ]  # every trial ran on this machine: where is said once, under the table
    (place,) = {(r["hostname"], r["device"], r["lstm"]) for r in rows}
    lstm = {"fused": "fused LSTM", "keras": "Keras LSTM"}[place[2]]
    assert f'<p class="note">Every trial ran on {html.escape(place[0])} · {place[1]} · {lstm}.</p>' in board
    epochs_at = headers.index("epochs (best)")
    assert [cells[TRIAL] for _, cells in shown] == [r["trial_id"] for r in ranked]
    assert shown[0][1][TRIAL] == best["trial_id"]
    for rank, ((cls, cells), row) in enumerate(zip(shown, ranked, strict=True), start=1):
        assert cls == row["state"] + (" best" if row is best else "")
        assert cells[: REASON + 1] == [str(rank), row["trial_id"], row["preset"], State(row["state"]).label, row["reason"]]
        assert (
            cells[epochs_at] == f"{row['epochs']} ({row['best_epoch']})" and cells[epochs_at + 1] == f"{float(row[METRIC]):.2%}"
        )
    values = [float(r[METRIC]) for r in ranked]
    assert values == sorted(values, reverse=True)  # by value, however each trial ended

    # 3-6. Single vs stacked, learning curves, accuracy vs throughput with its front, progress.
    for anchor in ("families", "curves", "pareto", "progress"):
        assert f'<img src="{anchor}.png"' in _section(text, anchor)
    pareto = _section(text, "pareto")
    assert "Pareto front: no other trial is both more accurate and faster" in pareto
    front = [cells[1] for _, cells in _table(pareto)]
    assert set(front) == _pareto_front(rows)
    speeds = {r["trial_id"]: float(r["examples_per_s"]) for r in rows}
    assert front == sorted(front, key=speeds.get)

    # 7. One plot per searched hyperparameter, the pinned ones listed once, and the edge warnings that the
    # best trials' values call for.
    section = _section(text, "params")
    for i, name in enumerate(searched):
        assert f'<img src="param_{i:02d}_{name}.png"' in section
    assert section.count("<img ") == len(searched)
    assert f"<p>pinned: {pinned_text} (the same in every trial, so not plotted)</p>" in section
    shown_edges = set(re.findall(r'<div class="warn">⚠ best (\w+) sits at the (top|bottom) of its range', section))
    assert shown_edges == _edges(rows, space)
    assert "best dropout sits at the bottom" not in text

    # 8. Importance: PED-ANOVA on the stored study once it has enough completed trials, else why not.
    section = _section(text, "importance")
    if completed_in_study >= MIN_IMPORTANCE:
        assert '<img src="importance.png"' in section and f"on {completed_in_study} completed trials" in section
        assert sorted(cells[0] for _, cells in _table(section)) == sorted(searched)
    else:
        assert (
            f"too few completed trials in the study for importances: {completed_in_study} (at least {MIN_IMPORTANCE} are needed)"
        ) in section

    # 9. Where trials ran: the lanes the trials' start and end times need, and the utilization they give.
    section = _section(text, "timeline")
    assert '<img src="timeline.png"' in section
    needed = _lanes_needed(rows)
    lanes = sum(needed.values())
    busy = sum(float(r["ended_at"]) - float(r["started_at"]) for r in rows)
    wall = max(float(r["ended_at"]) for r in rows) - min(float(r["started_at"]) for r in rows)
    assert f"<p>{lanes} lanes (one per host · device" in section
    assert f"utilization {busy / (lanes * wall):.0%} (busy time / (lanes × wall time))." in section
    assert f"The run allowed {info['resources']['concurrency']} trials at once." in section
    per_place = Counter(_place(r) for r in rows)
    assert _table(section) == [("", [place, str(per_place[place]), str(needed[place])]) for place in sorted(per_place)]

    # 10. Run facts: fingerprint, split sizes, versions, command line, the search space.
    facts = _section(text, "facts")
    data = info["data"]
    assert f"<dt>data fingerprint</dt><dd>{data['fingerprint']}</dd>" in facts
    assert data["sizes"] == {"train": 192, "val": 48, "test": 240}
    assert "<dt>split sizes</dt><dd>train 192, val 48, test 240</dd>" in facts
    assert "<dt>versions</dt><dd>" + ", ".join(f"{k} {v}" for k, v in info["versions"].items()) + "</dd>" in facts
    assert f"<dt>command</dt><dd>{html.escape(info['command'])}</dd>" in facts
    assert f"<dt>run directory</dt><dd>{html.escape(str(real_run))}</dd>" in facts
    assert [(cells[0], cells[1]) for _, cells in _table(facts.split("<h3>Search space</h3>")[1])] == [
        (p.name, p.kind) for p in space if p.name in searched
    ]
    assert f"<dt>pinned</dt><dd>{pinned_text}</dd>" in facts
    assert text.count(pinned_text) == 2  # once among the hyperparameters, once in the facts


def test_assemble_is_pure(real_run):
    before = snapshot(real_run)

    text, pictures = reports.assemble(load(real_run))

    assert snapshot(real_run) == before  # nothing written, not even a SQLite journal next to study.db
    assert text.startswith("<!DOCTYPE html>") and _referenced_images(text) == set(pictures)
    assert all(isinstance(p, Figure) for p in pictures.values())
    assert text == (RunDir(real_run).report / "index.html").read_text()  # the page the driver's build() wrote


# --- copies changed into edge cases ------------------------------------------------------------


def test_tutorial_presets_in_the_headline(run_copy):
    # The first two trials are the presets' points (pinned small): label them as the tutorial's models.
    presets = read_json(RunDir(run_copy).run_json)["presets"]
    rows = _trials(run_copy)
    tutorial = {}
    for preset in TUTORIAL_PRESETS:
        row = next(r for r in rows if all(r[k] == str(v) for k, v in presets[preset].items()))
        tutorial[preset] = row
    rows = _edit_trials(run_copy, {row["trial_id"]: {"preset": preset} for preset, row in tutorial.items()})
    summary = read_json(RunDir(run_copy).summary_json)

    text, _ = reports.assemble(load(run_copy))

    headline = _section(text, "headline")
    shown = {cells[0]: cells for _, cells in _table(headline)}
    assert list(shown) == ["best (exported)", *TUTORIAL_PRESETS]
    for preset, row in tutorial.items():
        cells = shown[preset]
        assert cells[1] == row["trial_id"] and cells[3] == f"{float(row[METRIC]):.2%}"
        assert cells[4] == "" and cells[7] == State(row["state"]).label  # test accuracy only for the exported model
        speed = summary["best"]["examples_per_s"] / float(row["examples_per_s"])  # scores are compared on test only
        assert f"<p>vs {preset}: {speed:.2f}× its training throughput</p>" in headline
    board = {cells[TRIAL]: cells for _, cells in _table(_section(text, "leaderboard"))}
    assert all(board[row["trial_id"]][2] == preset for preset, row in tutorial.items())


def test_resumed_epoch_keeps_the_last_row(run_copy):
    # A resume re-reports an epoch of the best trial: appended, as the driver appends, with another value.
    files = RunDir(run_copy)
    best = _best_scored(_trials(run_copy))
    epochs = [e for e in read_rows(files.epochs_csv) if e["trial_id"] == best["trial_id"]]
    assert [e["epoch"] for e in epochs] == ["1", "2", "3"]
    again = dict(epochs[1], val_accuracy="0.4321", time=str(float(epochs[1]["time"]) + 0.5))
    append_row(files.epochs_csv, names(EPOCH_COLUMNS), again)
    assert sum(e["trial_id"] == best["trial_id"] and e["epoch"] == "2" for e in read_rows(files.epochs_csv)) == 2

    run = load(run_copy)

    rows = run.epochs[run.epochs["trial_id"] == best["trial_id"]]
    assert rows["epoch"].tolist() == [1.0, 2.0, 3.0]
    assert rows[METRIC].tolist() == [float(epochs[0][METRIC]), 0.4321, float(epochs[2][METRIC])]
    curves = reports.assemble(run)[1]["curves.png"]
    line = next(line for line in curves.axes[0].get_lines() if line.get_label().split()[0] == f"#{best['number']}")
    assert line.get_xdata().tolist() == [1.0, 2.0, 3.0] and line.get_ydata()[1] == pytest.approx(0.4321)


def test_in_progress_run_without_summary_model_or_study(run_copy):
    # The last two trials by number: one running (it has reported epochs), one pending (nothing yet).
    files = RunDir(run_copy)
    _in_progress(run_copy)
    rows = _trials(run_copy)
    running, pending = rows[-2], rows[-1]
    running.update(state=State.RUNNING, reason="", ended_at="")
    kept = set(names(TRIAL_HEAD)) | set(_param_names(run_copy))
    pending.update({k: "" for k in pending if k not in kept}, state=State.PENDING, reason="")
    _write_trials(run_copy, rows)
    write_rows(
        files.epochs_csv, names(EPOCH_COLUMNS), [e for e in read_rows(files.epochs_csv) if e["trial_id"] != pending["trial_id"]]
    )

    text = reports.build(run_copy).read_text()

    pngs = _pngs(files.report)
    assert _referenced_images(text) == pngs and pngs >= FIGURES and "importance.png" not in pngs
    assert (
        f"Run in progress or interrupted (no final {files.summary_json.name}): {len(rows)} trials so far ({_listed(rows)})."
    ) in text
    assert "1 running" in _listed(rows) and "1 pending" in _listed(rows)
    headline = _table(_section(text, "headline"))
    assert headline[0][1][:2] == ["best so far", best_row(rows)["trial_id"]]
    assert best_row(rows) is _best_scored(rows)  # a running trial is not the best yet
    assert "best (exported)" not in text and "Test accuracy appears when the run finishes" in text
    # The running trial is ranked by what it has reported so far; the pending one (no value) comes last.
    board = _table(_section(text, "leaderboard"))
    assert [cells[TRIAL] for _, cells in board] == [r["trial_id"] for r in _by_rank(rows)]
    classes = {cells[TRIAL]: (cls, cells[STATE]) for cls, cells in board}
    assert classes[running["trial_id"]] == ("running", "running") and classes[pending["trial_id"]] == ("pending", "pending")
    assert board[-1][1][TRIAL] == pending["trial_id"]
    assert f"{files.study_db.name} is absent" in _section(text, "importance")
    assert not files.study_db.exists()  # the report never creates the driver's database


def test_diverged_and_errored_trials(run_copy):
    # The two last-ranked trials diverge and error, as the driver writes them: a reason, no value.
    rows = _trials(run_copy)
    best = _best_scored(rows)
    diverged, errored = [r for r in _by_rank(rows) if r is not best][-2:]
    rows = _edit_trials(
        run_copy,
        {
            diverged["trial_id"]: {
                "state": State.DIVERGED,
                "reason": "diverged at epoch 2: loss is nan",
                METRIC: "",
                "val_loss": "",
            },
            errored["trial_id"]: {
                "state": State.ERRORED,
                METRIC: "",
                "val_loss": "",
                "reason": "ResourceExhaustedError: OOM when allocating tensor (log: tune/x/error.txt)",
            },
        },
    )
    # Even with a value left in the row, the contract never scores them: they rank after every scored trial.
    for row in (diverged, errored):
        fake = {**next(r for r in rows if r["trial_id"] == row["trial_id"]), METRIC: "1.0"}
        assert rank_key(fake)[0] == 2 and best_row([fake, best]) is best

    text, pictures = reports.assemble(load(run_copy))

    assert f"Finished run: {len(rows)} trials ({_listed(rows)})" in text
    # The learning curves say which trials they fade: every state that did not train all its epochs.
    faded = "stopped early, diverged or errored"
    assert pictures["curves.png"].axes[0].get_title().endswith(f"(faded, dashed: {faded})")
    assert f'<p class="note">Faded, dashed lines: trials {faded}.</p>' in _section(text, "curves")
    assert "1 diverged" in _listed(rows) and "1 errored" in _listed(rows)
    board = _table(_section(text, "leaderboard"))
    assert [cells[TRIAL] for _, cells in board] == [r["trial_id"] for r in _by_rank(rows)]
    last_two = {cells[TRIAL]: (cls, cells[STATE], cells[REASON]) for cls, cells in board[-2:]}
    assert last_two[diverged["trial_id"]] == ("diverged", "diverged", "diverged at epoch 2: loss is nan")
    assert last_two[errored["trial_id"]][:2] == ("errored", "errored")
    assert last_two[errored["trial_id"]][2].startswith("ResourceExhausted")
    assert board[0][0] == f"{best['state']} best" and board[0][1][TRIAL] == best["trial_id"]
    # Each state that is not "completed" has its own row colour.
    style = text.split("<style>")[1].split("</style>")[0]
    for state in (State.STOPPED_EARLY, State.DIVERGED, State.ERRORED, State.RUNNING):
        assert re.search(rf"tr\.{state}\{{[^}}]*background:", style), state  # on the row: a sticky cell inherits it
    assert re.search(r"tr\.pending td\{[^}]*color:", style)
    # Without summary.json the headline's best so far is still the best trial by value.
    RunDir(run_copy).summary_json.unlink()
    text, _ = reports.assemble(load(run_copy))
    assert _table(_section(text, "headline"))[0][1][:2] == ["best so far", best["trial_id"]]


def test_a_trial_stopped_early_above_every_completed_one_is_the_best(run_copy):
    # What a trial found counts however it ended: a stopped trial's higher value wins the ranking,
    # while the study keeps the truth (PRUNED: Optuna's best_trial is still the best completed one).
    rows = _trials(run_copy)
    completed = max((r for r in rows if r["state"] == State.COMPLETED), key=lambda r: (float(r[METRIC]), -int(r["number"])))
    stopped = next((r for r in rows if r["state"] == State.STOPPED_EARLY), None) or next(r for r in rows if r is not completed)
    higher = (1 + float(_best_scored(rows)[METRIC])) / 2
    rows = _edit_trials(
        run_copy,
        {stopped["trial_id"]: {"state": State.STOPPED_EARLY, METRIC: str(higher), "reason": "ASHA stopped it after epoch 1"}},
    )
    study = optuna.load_study(study_name=STUDY_NAME, storage=RunDir(run_copy).study_url)
    assert study.best_trial.number == int(completed["number"])
    assert best_row(rows)["trial_id"] == stopped["trial_id"] == _best_scored(rows)["trial_id"]
    RunDir(run_copy).summary_json.unlink()  # in progress: the report ranks by itself

    text, pictures = reports.assemble(load(run_copy))

    # Progress: the best-so-far line, by number and by end time, moves with every ended trial's value.
    by_number, by_end = pictures["progress.png"].axes
    for ax, order in ((by_number, lambda r: int(r["number"])), (by_end, lambda r: float(r["ended_at"]))):
        scored = sorted((r for r in rows if r[METRIC]), key=order)
        expected = list(accumulate((float(r[METRIC]) for r in scored), max))
        line = next(line for line in ax.get_lines() if line.get_label() == "best so far")
        assert [y if not math.isnan(y) else -math.inf for y in line.get_ydata()] == pytest.approx(expected)
        assert np.nanmax(line.get_ydata()) == pytest.approx(higher)
    assert "a trial still running, diverged or errored shows as a hollow point" in _section(text, "progress")
    assert _table(_section(text, "headline"))[0][1][:2] == ["best so far", stopped["trial_id"]]
    board = _table(_section(text, "leaderboard"))
    assert board[0][0] == "stopped_early best" and board[0][1][TRIAL] == stopped["trial_id"]
    assert [cells[TRIAL] for _, cells in board] == [r["trial_id"] for r in _by_rank(rows)]


@pytest.mark.parametrize("complete", [4, 10])
def test_importance_needs_enough_completed_trials(run_copy, complete):
    _restudy(run_copy, complete)  # and one pruned trial, which does not count

    text, pictures = reports.assemble(load(run_copy))

    section = _section(text, "importance")
    if complete < MIN_IMPORTANCE:
        assert f"too few completed trials in the study for importances: {complete} (at least 5 are needed)" in section
        assert "importance.png" not in pictures
        return
    assert '<img src="importance.png"' in section and "importance.png" in pictures
    assert (
        html.escape(
            f"PED-ANOVA (optuna.importance.PedAnovaImportanceEvaluator, Optuna's default) on {complete} "
            "completed trials of the stored study"
        )
        in section
    )
    shown = [(cells[0], float(cells[1])) for _, cells in _table(section)]
    assert sorted(name for name, _ in shown) == sorted(_searched_names(run_copy))  # no row for a pinned one
    assert sum(v for _, v in shown) == pytest.approx(1, abs=0.01) and shown == sorted(shown, key=lambda s: -s[1])
    assert shown[0][0] == "learning_rate"  # the study's value depends on the learning rate only


@pytest.mark.parametrize("where", ["top", "bottom", "middle"])
def test_edge_warning_when_the_best_trials_sit_at_an_edge(run_copy, where):
    learning_rate = next(p for p in _space(run_copy) if p.name == "learning_rate")
    low, high = learning_rate.low, learning_rate.high
    value = {"top": high * 0.99, "bottom": low * 1.1, "middle": math.sqrt(low * high)}[where]
    top = _best_tenth(_trials(run_copy))
    # dropout 0 and depth 1 are natural minimums: never at an edge.
    _edit_trials(run_copy, {r["trial_id"]: {"learning_rate": str(value), "dropout": "0.0", "depth": "1"} for r in top})

    text, _ = reports.assemble(load(run_copy))

    section = _section(text, "params")
    best = "the best trial" if len(top) == 1 else f"the {len(top)} best trials"
    if where == "middle":
        assert "best learning_rate" not in text
    else:
        warning = f"best learning_rate sits at the {where} of its range [{low:g}, {high:g}] ({best}): widen it"
        assert f'<div class="warn">⚠ {warning}</div>' in section
    assert "best dropout" not in text and "best depth" not in text


def test_edge_warning_on_an_int_log_range_never_on_a_categorical(run_copy):
    # Unpin units into an int log range and put the best trial near its bottom; max_len stays pinned (categorical).
    files = RunDir(run_copy)
    info = read_json(files.run_json)
    units = Param("units", "int", low=16, high=128, log=True)
    info["space"] = [units.to_json() if e["name"] == "units" else e for e in info["space"]]
    write_json(files.run_json, info)
    best = _by_rank(_trials(run_copy))[0]
    _edit_trials(run_copy, {best["trial_id"]: {"units": "17"}})

    text, _ = reports.assemble(load(run_copy))

    assert ("best units sits at the bottom of its range [16, 128] (the best trial): widen it") in _section(text, "params")
    assert "best max_len" not in text and "best batch_size" not in text
    assert analysis.format_value("max_len", 0) == "full" and analysis.format_value("units", 64.0) == "64"
    assert [analysis.format_value("ngram_buckets", v) for v in (0, 2**20, "262144", 1000)] == ["none", "2^20", "2^18", "1000"]


# --- safety ------------------------------------------------------------------------------------


HOSTILE_HOST = r"$\oops$<script>alert('host')</script>"  # mathtext that would not parse, and a script
HOSTILE_REASON = "ValueError: <script>alert('reason')</script> & more"
HOSTILE_CHOICE = "<script>alert('choice')</script>"
HOSTILE_COMMAND = "python -m search.run --note '<script>alert(\"command\")</script>'"


def test_hostile_strings_are_escaped_and_the_page_is_self_contained(run_copy):
    rows = _by_rank(_trials(run_copy))
    _edit_trials(
        run_copy,
        {
            rows[0]["trial_id"]: {"hostname": HOSTILE_HOST},
            rows[-1]["trial_id"]: {"reason": HOSTILE_REASON},
            rows[1]["trial_id"]: {"batch_size": HOSTILE_CHOICE},
        },
    )
    info = read_json(RunDir(run_copy).run_json)
    write_json(RunDir(run_copy).run_json, {**info, "command": HOSTILE_COMMAND})

    text = reports.build(run_copy).read_text()

    assert "<script>alert" not in text
    board = _section(text, "leaderboard")
    assert f'<td class="reason">{html.escape(HOSTILE_REASON)}</td>' in board
    assert f'<td class="where">{html.escape(HOSTILE_HOST)} · ' in board  # two hosts: a column says each trial's
    assert f"<td>{html.escape(HOSTILE_HOST)} · " in _section(text, "timeline")
    assert f">{html.escape(HOSTILE_CHOICE)}</td>" in board
    assert f"<dt>command</dt><dd>{html.escape(HOSTILE_COMMAND)}</dd>" in _section(text, "facts")
    assert text.count("<script") == 1  # only the page's own check script...
    assert "script-src &#x27;sha256-" in text  # ...and the CSP would refuse any other
    # Self-contained: nothing from the network, every src/href a file beside the page.
    links = re.findall(r'(?:src|href)="([^"]*)"', text)
    assert "http://" not in text and "https://" not in text and "//" not in "".join(links)
    assert links and all((RunDir(run_copy).report / link).is_file() for link in links)
    assert "url(" not in text and "@import" not in text


def test_build_replaces_the_report_and_keeps_the_old_one_on_failure(run_copy, monkeypatch, capsys):
    report = RunDir(run_copy).report
    (report / "stale.png").write_bytes(b"old")

    # The CLI builds a new report/ in place of the old one and prints the page's path.
    assert main([str(run_copy)]) == 0
    assert capsys.readouterr().out.strip() == str(report / "index.html")
    assert not (report / "stale.png").exists()
    assert _referenced_images((report / "index.html").read_text()) == _pngs(report)
    before = snapshot(report)

    # A figure function that raises: nothing is written.
    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    with monkeypatch.context() as patch:
        patch.setattr(figures, "pareto_figure", boom)
        with pytest.raises(RuntimeError, match="boom"):
            reports.build(run_copy)
    assert snapshot(report) == before
    assert not _staging_left(run_copy)

    # A figure that fails while being saved, after another was written into the staging folder.
    real = reports.assemble

    def half_broken(run):
        text, pictures = real(run)
        first = next(iter(pictures))
        return text, {first: pictures[first], "zz_broken.png": None}  # savefig on None fails half-way

    monkeypatch.setattr(reports, "assemble", half_broken)
    with pytest.raises(AttributeError):
        reports.build(run_copy)
    assert snapshot(report) == before
    assert not _staging_left(run_copy)


# --- command line -------------------------------------------------------------------------------


def test_cli_missing_or_invalid_run_dir_exits_2(tmp_path, capsys):
    assert main([str(tmp_path / "missing")]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1 and "does not exist" in captured.err
    assert captured.out == ""
    assert main([str(tmp_path)]) == 2
    files = RunDir(tmp_path)
    assert f"neither {files.run_json.name} nor {files.trials_csv.name}" in capsys.readouterr().err

    result = subprocess.run(
        [sys.executable, "-m", "reports", "/missing/dir"], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr and result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "/missing/dir" in result.stderr


def test_a_finished_runs_trials_csv_cut_short_is_refused_and_its_report_kept(reference_copy, capsys):
    files = RunDir(reference_copy)
    assert main([str(reference_copy)]) == 0
    capsys.readouterr()
    before = (files.report / "index.html").read_bytes()
    header = files.trials_csv.read_text().splitlines(keepends=True)[0]
    files.trials_csv.write_text(header)  # what a cut or an editor left: no trial, while epochs.csv holds 15
    assert main([str(reference_copy)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {lost_rows(files)}\n" and "lacks trial_0000, trial_0001, trial_0002 and 12 more" in err
    assert (files.report / "index.html").read_bytes() == before


# --- tolerance and pure helpers ------------------------------------------------------------------


def test_loader_tolerates_missing_columns_and_empty_files(run_copy):
    # trials.csv of another driver version: only the head's text columns, the objective and the
    # hyperparameters (no number, no times, no hosts) plus a column this version does not know.
    files = RunDir(run_copy)
    space_names = _param_names(run_copy)
    columns = names(TRIAL_HEAD, str) + [METRIC] + space_names + ["from_the_future"]
    rows = _trials(run_copy)
    write_rows(files.trials_csv, columns, [dict(r, from_the_future="x") for r in rows])
    files.epochs_csv.write_text("")
    files.summary_json.write_text("{not json")

    run = load(run_copy)
    text, _ = reports.assemble(run)

    assert run.trials["trial_id"].tolist() == [r["trial_id"] for r in rows]
    assert run.trials["examples_per_s"].isna().all() and run.trials["hostname"].tolist() == [""] * len(rows)
    assert run.trials["number"].tolist() == list(range(len(rows))) and run.epochs.empty  # Optuna's numbering, from 0
    assert run.summary is None and f"{files.summary_json.name} could not be read" in text
    assert "Run in progress" in text
    assert "no epochs reported yet" in text and "no trial has started yet" in text


def test_pareto_mask_keeps_undominated_points():
    accuracy = np.array([0.9, 0.8, 0.85, 0.7, np.nan, 0.9])
    throughput = np.array([100, 300, 100, 200, 999, 50])
    assert analysis.pareto_mask(accuracy, throughput).tolist() == [True, True, False, False, False, False]


def test_family_lanes_and_utilization(run_copy):
    # Four trials on two hosts: two at once on h1, a third after the second, one still running on a GPU of h2.
    files = RunDir(run_copy)
    rows = _trials(run_copy)[:4]
    t0 = float(rows[0]["started_at"])
    places = [("h1", "CPU", ""), ("h1", "CPU", ""), ("h1", "CPU", ""), ("h2", "GPU:0", "0")]
    times = [(0, 100), (0, 50), (50, 100), (0, None)]
    for row, depth, (host, device, gpus), (start, end) in zip(rows, ["", "1", "3", "2"], places, times, strict=True):
        row.update(
            depth=depth,
            hostname=host,
            device=device,
            gpu_ids=gpus,
            started_at=str(t0 + start),
            ended_at="" if end is None else str(t0 + end),
            state=State.COMPLETED if end else State.RUNNING,
        )
    _write_trials(run_copy, rows)
    running = dict(read_rows(files.epochs_csv)[0], trial_id=rows[3]["trial_id"], epoch="1", time=str(t0 + 60))
    write_rows(files.epochs_csv, names(EPOCH_COLUMNS), [running])

    run = load(run_copy)

    assert analysis.family(run.trials).tolist() == ["unknown", "single", "stacked", "stacked"]
    placed = analysis.lanes(run.trials, run.epochs)
    assert placed.set_index("trial_id")["lane"].to_dict() == {
        rows[0]["trial_id"]: "h1 · CPU #1",
        rows[1]["trial_id"]: "h1 · CPU #2",
        rows[2]["trial_id"]: "h1 · CPU #2",
        rows[3]["trial_id"]: "h2 · GPU:0 (GPU ids 0) #1",
    }
    usage = analysis.utilization(placed)
    assert usage["lanes"] == 3 and usage["busy_s"] == pytest.approx(260)
    assert usage["utilization"] == pytest.approx(260 / 300)


def test_a_trial_that_moved_to_another_node_has_a_lane_on_each(run_copy):
    files = RunDir(run_copy)
    epochs = read_rows(files.epochs_csv)
    trial = next(r["trial_id"] for r in _trials(run_copy) if int(r["epochs"]) >= 2)
    mine = [e for e in epochs if e["trial_id"] == trial]
    for row in mine[1:]:  # its node was lost after epoch 1; it went on elsewhere, on the same host
        row.update(node_id="f" * 56, trial_time_s=str(float(row["trial_time_s"]) / 4))
    write_rows(files.epochs_csv, names(EPOCH_COLUMNS), epochs)

    run = load(run_copy)
    placed = analysis.lanes(run.trials, run.epochs)
    html, _ = reports.assemble(run)

    lanes = placed[placed["trial_id"] == trial]["place"].tolist()
    assert len(lanes) == 2 and lanes[0] != lanes[1] and "node ffffffff" in lanes[1]
    (move,) = analysis.moves(placed)
    assert move["trial_id"] == trial and move["from"] == lanes[0] and move["to"] == lanes[1]
    assert f"({trial}) moved from {lanes[0]} to {lanes[1]} after " in _section(html, "timeline").replace("&#x27;", "'")


# --- in a real browser --------------------------------------------------------------------------


def test_report_opens_in_a_real_browser(real_run, tmp_path):
    binary = browser.chromium()
    report = RunDir(real_run).report

    # Every image decodes, nothing fails, the page fits a 1280 px window, the CSP refuses an injected script.
    body = browser.assert_loads_cleanly(binary, report, tmp_path, images=len(_pngs(report)))
    # No table needs sideways scrolling: the leaderboard has a column per searched hyperparameter only
    # (the pinned ones are listed once) and its reasons wrap.
    assert body["data-probe-scrolling"] == ""

    # A screenshot of the page as shipped, to look at.
    screenshot = browser.screenshot(binary, report, tmp_path, height=5000)
    assert screenshot.stat().st_size > 100_000
    shutil.copy(screenshot, "/tmp/report_screenshot.png")


LONG_REASON = (
    "ResourceExhaustedError: OOM when allocating tensor with shape[128,256,512] and type float on "
    "/job:localhost/replica:0/task:0/device:GPU:0 by allocator GPU_0_bfc "
    "(log: tune/trial_0004_a06c3c7b/" + "x" * 120 + "/error.txt)"
)


def test_leaderboard_fits_a_1280px_window_and_reasons_wrap(run_copy, tmp_path):
    # The last-ranked trial errored with a long reason holding a long unbroken path.
    binary = browser.chromium()
    last = _by_rank(_trials(run_copy))[-1]
    _edit_trials(run_copy, {last["trial_id"]: {"state": State.ERRORED, "reason": LONG_REASON, METRIC: "", "val_loss": ""}})
    report = reports.build(run_copy).parent

    body, _ = browser.probe(binary, report, tmp_path)

    width, window = map(int, body["data-probe-width"].split("/"))
    assert width <= window == browser.WINDOW[0]
    assert "leaderboard" not in body["data-probe-scrolling"].split()
    # Every reason cell wraps at a readable width: 12 to 26 em of 12 px text, padding and border included.
    reason_px = [int(px) for px in body["data-probe-reason-px"].split()]
    assert len(reason_px) == len(_trials(run_copy)) and all(12 * 12 <= px <= 26 * 12 + 16 for px in reason_px), reason_px
    board = _section((report / "index.html").read_text(), "leaderboard")
    assert board.count('<td class="reason">') == len(reason_px) and html.escape(LONG_REASON) in board


@pytest.mark.parametrize("reference", REFERENCES, ids=lambda p: p.name)
def test_a_wide_leaderboard_scrolls_with_each_trial_named(reference, tmp_path):
    # A full search's board (every hyperparameter searched, the tutorial's presets) is wider than a 1280 px window:
    # it scrolls inside its box, the page does not, and each row's trial stays at the box's left edge.
    report = reports.build(shutil.copytree(reference, tmp_path / "run", ignore=shutil.ignore_patterns("report"))).parent

    body, _ = browser.probe(browser.chromium(), report, tmp_path)

    width, window = map(int, body["data-probe-width"].split("/"))
    assert width <= window and body["data-probe-scrolling"].split() == ["leaderboard"]
    pinned = [int(px) for px in body["data-probe-pinned-px"].split()]
    assert len(pinned) == len(_trials(reference)) and all(abs(px) <= 1 for px in pinned), pinned
    board = _section((report / "index.html").read_text(), "leaderboard")
    assert board.count('<td class="sticky">trial_') == len(pinned)


def _placed_elsewhere(run_dir: Path, case: str) -> None:
    """Change where trials ran, as a driver would have recorded it."""
    rows = _trials(run_dir)
    if case == "pending and starting trials, not yet placed":
        unplaced = {"hostname": "", "node_id": "", "device": "", "gpu_ids": "", "lstm": ""}
        _edit_trials(run_dir, {rows[0]["trial_id"]: {**unplaced, "state": State.PENDING, "started_at": ""}})
        _edit_trials(run_dir, {rows[1]["trial_id"]: {**unplaced, "state": State.RUNNING}})
    elif case == "a second host":
        _edit_trials(run_dir, {rows[0]["trial_id"]: {"hostname": "node-b", "node_id": "b" * 56}})
    elif case == "four GPUs of one host":
        _edit_trials(run_dir, {r["trial_id"]: {"device": "GPU:0", "gpu_ids": str(i % 4)} for i, r in enumerate(rows)})
    elif case == "a trial that moved":
        files = RunDir(run_dir)
        epochs = read_rows(files.epochs_csv)
        first = next(e for e in epochs if e["trial_id"] == rows[0]["trial_id"] and e["epoch"] == "1")
        first.update(hostname="old-vm", node_id="a" * 56)
        assert any(e["trial_id"] == rows[0]["trial_id"] and e["epoch"] == "2" for e in epochs)  # it went on elsewhere
        write_rows(files.epochs_csv, names(EPOCH_COLUMNS), epochs)


@pytest.mark.parametrize(
    ("case", "one_place"),
    [
        ("as recorded", True),
        ("pending and starting trials, not yet placed", True),
        ("a second host", False),
        ("four GPUs of one host", False),
        ("a trial that moved", False),
    ],
)
def test_where_trials_ran_is_one_line_only_where_it_was_one_place(reference_copy, case, one_place):
    # A column where trials ran in several places, as section 9 places them (host, node, device, GPU ids, each
    # epoch's); one line under the table where every trial that has started reporting ran in the same one.
    _placed_elsewhere(reference_copy, case)

    board = _section(reports.assemble(load(reference_copy))[0], "leaderboard")

    note = '<p class="note">Every trial ran on vm · CPU · fused LSTM.</p>'
    assert (note in board, "where" in _headers(board)) == (one_place, not one_place)


# --- classes, the majority-class floor and the objective (issue 21) ----------------------------
#
# A copy of tests/data/recorded/reference (a real run the driver wrote before classes were recorded: two classes,
# ranked by val_accuracy) is given what a driver of issue 21 records, through the documents' types:
# run.json's data facts "classes" and "class_counts", summary.json's exported "classes",
# "test_confusion" and "test_macro_f1". No training: these tests take seconds.

CLASSES = ["1-2", "3-4", "$7-10 <stars>"]  # a name that matplotlib and HTML must both take as text
CONFUSION = [[50, 0, 10], [5, 0, 15], [8, 0, 60]]  # nothing predicted as "3-4": precision 0/0 → 0
BY_CLASS = "<h3>The exported model by class (test split)</h3>"


@pytest.fixture
def reference_copy(tmp_path) -> Path:
    """A copy of tests/data/recorded/reference without its report (a test may change it)."""
    return Path(shutil.copytree(RECORDED / "reference", tmp_path / "run", ignore=shutil.ignore_patterns("report")))


def _labels(confusion: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(true, predicted) class indices, one pair per example the confusion matrix counts."""
    pairs = [(i, j) for i, row in enumerate(confusion) for j, n in enumerate(row) for _ in range(n)]
    return np.array([i for i, _ in pairs]), np.array([j for _, j in pairs])


def _counts(classes: list[str], train: list[int], val: list[int], test: list[int]) -> dict:
    return {split: dict(zip(classes, n, strict=True)) for split, n in (("train", train), ("val", val), ("test", test))}


def _with_classes(run_dir: Path, classes: list[str], counts: dict, confusion: list[list[int]], **exported) -> None:
    """Record classes as a driver of issue 21 does; `exported`: more of summary.json's exported fields."""
    files = RunDir(run_dir)
    facts = RunFacts.read(files)
    summary = Summary.read(files, facts.ranking)
    facts.data.classes, facts.data.class_counts = classes, counts
    true, predicted = _labels(confusion)
    summary.exported.classes, summary.exported.test_confusion = classes, confusion
    summary.exported.test_macro_f1 = float(f1_score(true, predicted, average="macro", zero_division=0))
    for name, value in exported.items():
        setattr(summary.exported, name, value)
    facts.write(files)
    summary.write(files, facts.ranking)


def _percent(value: float) -> str:
    return f"{value:.2%}"


def test_k_classes_per_class_results_balance_and_head(reference_copy):
    counts = _counts(CLASSES, [900, 400, 700], [225, 100, 175], [sum(row) for row in CONFUSION])
    _with_classes(reference_copy, CLASSES, counts, CONFUSION)

    text, pictures = reports.assemble(load(reference_copy))

    # 1. The exported model by class: sklearn's precision, recall, F1 and support on the same confusion.
    headline = _section(text, "headline")
    true, predicted = _labels(CONFUSION)
    precision, recall, f1, support = precision_recall_fscore_support(true, predicted, labels=[0, 1, 2], zero_division=0)
    shown = [cells for _, cells in _table(headline.split(BY_CLASS)[1])]
    assert [cells[0] for cells in shown] == [*CLASSES, "macro average (3 classes)"]
    for k, cells in enumerate(shown[:-1]):
        assert cells[1:] == [
            f"{support[k]:,}",
            f"{(predicted == k).sum():,}",
            _percent(precision[k]),
            _percent(recall[k]),
            _percent(f1[k]),
        ]
    macro = f1_score(true, predicted, average="macro", zero_division=0)
    assert shown[-1][3:] == [_percent(precision.mean()), _percent(recall.mean()), _percent(macro)]
    assert f"accuracy {_percent(accuracy_score(true, predicted))}, macro-F1 {_percent(macro)}" in html.unescape(headline)
    assert '<img src="confusion.png"' in headline and isinstance(pictures["confusion.png"], Figure)
    scores = analysis.per_class(CONFUSION, CLASSES)
    assert np.array_equal(scores[["precision", "recall", "f1"]].to_numpy().T, np.array([precision, recall, f1]))

    # 4. Three classes: the presets' K-way head is said, once.
    assert html.unescape(text).count("the tutorial's presets are shown with a 3-way head (softmax over 3 logits)") == 1

    # 2. Each split's class balance and the majority-class floor, in the run facts; the floor beside test accuracy too.
    facts = _section(text, "facts")
    balance = [cells for _, cells in _table(facts.split("<h3>Classes</h3>")[1])]
    for cells, name in zip(balance, CLASSES, strict=False):
        assert cells == [name] + [f"{counts[s][name]:,} ({counts[s][name] / sum(counts[s].values()):.1%})" for s in counts]
    assert balance[-1] == ["all 3 classes"] + [f"{sum(counts[s].values()):,}" for s in counts]
    floor = f'Always answering "{CLASSES[2]}", the test split\'s largest class, scores {68 / 148:.2%}'
    assert floor in html.unescape(facts) and floor in html.unescape(headline)
    assert "<dt>classes</dt><dd>3: " in facts
    # The class names are text: escaped on the page (drawn as text by matplotlib: see build below).
    assert "<stars>" not in text and "&lt;stars&gt;" in text
    # The exported model's test accuracy (the reference's) beats 46%: no floor warning.
    assert "does not beat always answering" not in text

    report = reports.build(reference_copy).parent
    assert (report / "confusion.png").read_bytes()[:8] == PNG_MAGIC and _referenced_images(text) == _pngs(report)


@pytest.mark.parametrize("test_accuracy", [0.73, 0.95, 0.9501])
def test_warning_when_the_export_does_not_beat_the_majority_class(reference_copy, test_accuracy):
    # 95% negative: always answering "neg" scores 95.00% on test.
    counts = _counts(["neg", "pos"], [1900, 100], [475, 25], [950, 50])
    _with_classes(reference_copy, ["neg", "pos"], counts, [[700, 250], [20, 30]], test_accuracy=test_accuracy)

    text, _ = reports.assemble(load(reference_copy))

    warning = (
        f"⚠ the exported model's test accuracy {test_accuracy:.2%} does not beat always answering "
        '"neg" (95.00% of the test split)'
    )
    top = text.split('<section id="headline">')[0]  # shown above the first section, beside the run's banner
    assert (warning in html.unescape(top)) == (test_accuracy <= 0.95)
    assert text.count("does not beat always answering") == (test_accuracy <= 0.95)
    assert "-way head" not in text  # two classes: one logit, as the tutorial's


def test_a_pages_sections_are_numbered_by_their_order():
    first, second = page.section("a", "First", "<p>x</p>", ""), page.section("b", "Second")
    assert page.numbered([second, first]) == (
        '<section id="b">\n<h2>1. Second</h2>\n\n</section>\n<section id="a">\n<h2>2. First</h2>\n<p>x</p>\n</section>'
    )


def test_the_floor_warning_advises_macro_f1_only_for_unbalanced_classes():
    balanced, unbalanced = (DataFacts(class_counts={"test": {"neg": n, "pos": 1000 - n}}) for n in (500, 950))
    assert balanced.floor_note(0.5).endswith('"neg" (50.00% of the test split)')
    assert unbalanced.floor_note(0.9).endswith("; the classes are unbalanced: rank by --objective val_macro_f1")
    assert unbalanced.floor_note(0.9, objective_named("val_macro_f1")).endswith('"neg" (95.00% of the test split)')
    assert unbalanced.floor_note(0.96) == DataFacts().floor_note(0.5) == ""


def test_per_class_equals_sklearn_on_any_confusion():
    rng = np.random.default_rng(0)
    for k in (2, 3, 5, 8):
        for _ in range(5):
            confusion = rng.integers(0, 20, (k, k)) * (rng.random((k, k)) < 0.6)  # zero rows and columns happen
            confusion[0, -1] += 1  # at least one example
            true, predicted = _labels(confusion.tolist())
            expected = precision_recall_fscore_support(true, predicted, labels=list(range(k)), zero_division=0)
            scores = analysis.per_class(confusion.tolist(), [f"c{i}" for i in range(k)])
            for column, values in zip(["precision", "recall", "f1", "support"], expected, strict=True):
                assert np.allclose(scores[column].to_numpy(), values, rtol=0, atol=1e-12), (column, confusion)
    for bad in ([[1, 2], [3]], [[1, 2, 3], [4, 5, 6]], [[1]], [[1, -1], [0, 2]], "x", None):
        assert analysis.per_class(bad, []) is None


@pytest.mark.parametrize("metric", ["val_macro_f1", "val_loss"])
def test_the_run_objective_names_and_directs_the_page(reference_copy, metric):
    # Rank by macro-F1 (here 1 - accuracy, so the order turns round) or by the validation loss (smaller is better).
    objective = objective_named(metric)
    rows = _trials(reference_copy)
    for row in rows:
        row["val_macro_f1"] = f"{1 - float(row[METRIC]):.4f}" if row[METRIC] else ""
    _write_trials(reference_copy, rows)
    files = RunDir(reference_copy)
    write_json(files.run_json, {**read_json(files.run_json), "objective": {"metric": metric, "mode": objective.mode}})

    text, _ = reports.assemble(load(reference_copy))

    name = {"val_macro_f1": "validation macro-F1", "val_loss": "validation loss"}[metric]
    board = _section(text, "leaderboard")
    assert f". Leaderboard ({len(rows)} trials, by {metric})</h2>" in board
    headers = _headers(board)
    # Accuracy and macro-F1; the loss only where it is the objective (so that a narrow space fits 1280 px).
    assert headers[headers.index("epochs (best)") :] == [
        "epochs (best)",
        "validation accuracy",
        "validation macro-F1",
        *(["validation loss"] if metric == "val_loss" else []),
        "examples/s",
    ]
    ranked = sorted(rows, key=lambda r: rank_key(r, objective))
    assert [cells[TRIAL] for _, cells in _table(board)] == [r["trial_id"] for r in ranked]
    values = [float(r[metric]) for r in ranked]
    assert values == sorted(values, reverse=objective.mode == "max")
    column = headers.index("validation macro-F1")
    assert [cells[column] for _, cells in _table(board)] == [f"{float(r['val_macro_f1']):.2%}" for r in ranked]
    assert _headers(_section(text, "headline"))[3] == name

    # The Pareto front: the trials that no other trial beats on both the objective (in its direction) and throughput.
    pareto = _section(text, "pareto")
    assert f"5. {name[0].upper() + name[1:]} vs throughput" in pareto and _headers(pareto)[2] == name
    points = {
        r["trial_id"]: (objective.oriented(float(r[metric])), float(r["examples_per_s"]))
        for r in rows
        if r[metric] and as_float(r["examples_per_s"]) > 0
    }
    front = {t for t, (a, s) in points.items() if not any(b >= a and u >= s and (b > a or u > s) for b, u in points.values())}
    assert {cells[1] for _, cells in _table(pareto)} == front
    assert f"best {name} so far" in _section(text, "progress")


def test_a_linear_only_baseline_shows_what_ran_and_nothing_of_what_did_not(reference_copy):
    # search.baseline --linear-only on a run without the tutorial's models: baseline.json holds the linear baseline alone.
    files = RunDir(reference_copy)
    linear = LinearBaseline(
        c=1.0,
        values={"0.1": 0.87, "1": 0.89, "10": 0.88, "100": 0.88},
        value=0.89,
        test_accuracy=0.885,
        test_macro_f1=0.885,
        test_confusion=[[11000, 1500], [1375, 11125]],
        test_examples=25000,
        features=1_200_000,
        fit_s=40.0,
        predict_per_s=9000.0,
    )
    keeping_models(None, read_json(files.run_json)["data"]["fingerprint"], linear).write(files)
    assert Baseline.read(files).models == {} and read_json(files.baseline_json)["examples"] is None

    text, _ = reports.assemble(load(reference_copy))

    compute = text.split("<h3>Compute</h3>")[1].split("<h3>")[0]
    summary = read_json(files.summary_json)
    assert re.findall(r"<p>([^<:]+): [\d,]+ training examples", compute) == [analysis.SEARCH, analysis.CERTIFICATION]
    assert f"certification over seeds (and the refit): {summary['certification']['examples']:,} training examples" in compute
    assert analysis.LINEAR_MODEL in _section(text, "headline") and "the tutorial&#x27;s two models" not in compute
    assert not re.findall(r"\b(?:nan|None)\b", re.sub(r"<[^>]+>", " ", text))


@pytest.mark.parametrize("reference", REFERENCES, ids=lambda p: p.name)
def test_runs_recorded_before_classes_render_as_before(reference):
    # The recorded reference runs: no classes facts, no confusion, no macro-F1, ranked by val_accuracy.
    text, pictures = reports.assemble(load(reference))

    assert "confusion.png" not in pictures and set(pictures) <= FIGURES | {"latency.png"} | {
        p for p in pictures if p.startswith("param_")
    }
    assert BY_CLASS not in text and "<h3>Classes</h3>" not in text and "<dt>classes</dt>" not in text
    assert "-way head" not in text and "majority" not in text and "Always answering" not in text
    assert "macro-F1" not in text and ". Accuracy vs throughput</h2>" in text
    assert re.findall(r'<section id="([^"]+)">', text) == SECTIONS
    assert _headers(_section(text, "headline"))[3] == "validation accuracy"
    assert _headers(_section(text, "leaderboard"))[-4:] == [
        "epochs (best)",
        "validation accuracy",
        "validation loss",
        "examples/s",
    ]


def test_a_study_db_that_holds_no_study_is_a_note_and_is_never_written(tmp_path):
    cases = {b"": "it holds no Optuna study (no studies table; 0 tables)", bytes(range(256)) * 32: "it is not a SQLite database"}
    for content, why in cases.items():
        path = tmp_path / "study.db"
        path.write_bytes(content)
        study, note = read_study(path)
        assert study is None and note.startswith(f"study.db could not be read: {why}") and path.read_bytes() == content
