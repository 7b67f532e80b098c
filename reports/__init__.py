"""The HTML report of a search run: load → figures → html, written to RUN_DIR/report/;
and the comparison of several runs on one page.

    python -m reports RUN_DIR        # or reports.build(run_dir) at the end of a run
    python -m reports compare RUN_A RUN_B [...] --out DIR

assemble() and compare.assemble_comparison() are pure (loaded Runs in, the page and its
figures out); build() and build_comparison() are the only functions that write, and each
replaces its folder atomically.
"""

from __future__ import annotations

import dataclasses
import math
import re
import shutil
from pathlib import Path

import numpy as np

from reports import analysis, figures, page
from reports.analysis import format_value, metric_name, state_label
from reports.compare import assemble_comparison
from reports.load import ReportError, Run, load
from runfiles.documents import Summary
from runfiles.io import replace_dir, staging_dir
from runfiles.layout import RunDir, as_float

__all__ = ["build", "assemble", "build_comparison", "assemble_comparison", "load", "ReportError"]

TOP_CURVES = 10
PROGRESS_NOTE = (
    "Any trial that ended with a value can be the best, completed or stopped early (the harness's "
    "ranking, as for the exported model): a trial still running, diverged or errored shows as a "
    "hollow point and never moves the best-so-far line."
)


def build(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write RUN_DIR/report/index.html (or OUT/index.html) and its PNGs; return the path of index.html.

    Raises ReportError when RUN_DIR is not a run directory, or OUT is not a folder a report may
    replace (absent, empty, or an earlier report); the folder is replaced at once, and left as it
    was when anything fails.
    """
    run = load(run_dir)
    if out is not None:
        _check_comparison_out(Path(out), [run])
    html, pictures = assemble(run)
    return _write_page(RunDir(run_dir).report if out is None else Path(out), html, pictures)


def build_comparison(run_dirs: list[str | Path], out: str | Path) -> Path:
    """Write OUT/index.html comparing the runs, with its PNGs; return the path of index.html.

    Raises ReportError, before anything is written, when fewer than two runs are given, one is
    not a run directory, or OUT is not a folder a comparison may replace (absent, empty, or an
    earlier comparison: index.html and PNGs only). OUT is replaced at once, and left as it was
    when anything fails.
    """
    if len(run_dirs) < 2:
        raise ReportError(
            f"compare needs at least 2 run directories, got {len(run_dirs)}" + (f" ({run_dirs[0]})" if run_dirs else "")
        )
    runs = [load(run_dir) for run_dir in run_dirs]
    out = Path(out)
    _check_comparison_out(out, runs)
    html, pictures = assemble_comparison(runs)
    return _write_page(out, html, pictures)


def _check_comparison_out(out: Path, runs: list[Run]) -> None:
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {out} is a file; choose a folder")
    for run in runs:
        if out.resolve() in (run.run_dir.resolve(), RunDir(run.run_dir).report.resolve()):
            raise ReportError(f"--out {out} is {run.run_dir} or its report; choose a folder of its own")
    if out.is_dir():
        others = sorted(p.name for p in out.iterdir() if p.name != "index.html" and p.suffix != ".png")
        if others:
            raise ReportError(
                f"--out {out} holds other files ({', '.join(others[:3])}); choose an empty folder or an earlier report's"
            )


def _write_page(target: Path, html: str, pictures: dict) -> Path:
    """target/index.html and its figures, built in a staging folder and swapped in for target at once."""
    staging = staging_dir(target)
    try:
        for name, picture in pictures.items():
            picture.savefig(staging / name, dpi=100)
        (staging / "index.html").write_text(html, encoding="utf-8")
        replace_dir(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target / "index.html"


def assemble(run: Run) -> tuple[str, dict]:
    """The page's HTML and its figures by file name (matplotlib Figures, not yet written)."""
    pictures = figures.Pictures()
    add = pictures.add

    metric, trials = run.metric, run.trials
    rows = analysis.headline(run)
    best_id = rows[0]["trial_id"] if rows and rows[0]["model"].startswith("best") else ""
    sections = [
        _status(run),
        page.warnings_list(run.notes + _floor_warning(run)),
        _headline(run, rows, add),
        _leaderboard(run, best_id),
        page.section(
            "families",
            "3. Single vs stacked",
            page.paragraph("Depth 1 is a single BiLSTM layer, depth 2 and more a stacked one."),
            page.figure(add("families.png", figures.family_figure(trials, metric)), "objective and throughput by model family"),
        ),
        _curves(run, add),
        _pareto(run, add, best_id),
        _progress(run, add),
        _params(run, add, best_id),
        _importance(run, add),
        _timeline(run, add),
        _facts(run),
    ]
    title = f"BiLSTM search report: {run.run_dir.resolve().name}"
    body = f"<h1>{page.esc(title)}</h1>\n" + "\n".join(s for s in sections if s)
    return page.document(title, body), pictures


def _status(run: Run) -> str:
    counts = run.trials["state"].value_counts().to_dict()
    listed = ", ".join(f"{n} {state_label(s)}" for s, n in sorted(counts.items()))
    if run.finished:
        wall = page.fmt_seconds(run.summary.wall_s if run.summary else None)
        text = f"Finished run: {len(run.trials)} trials ({listed})" + (f", wall time {wall}" if wall else "") + "."
        if run.summary is not None and run.summary.best is None:
            text += " No trial reported a value to rank, so no model was exported (see each trial's reason below)."
        return f'<div class="banner done">{page.esc(text)}</div>'
    text = (
        f"Run in progress or interrupted (no final summary.json): {len(run.trials)} trials so far"
        + (f" ({listed})" if listed else "")
        + ". Figures show what has been reported until now."
    )
    return f'<div class="banner progress">{page.esc(text)}</div>'


def _config_text(params: dict, space: list | None = None) -> str:
    """name=value, ...; with a space, only its searched hyperparameters (the pinned ones are listed once)."""
    fixed = analysis.pinned(space or [])
    return ", ".join(f"{k}={format_value(k, v)}" for k, v in params.items() if k not in fixed)


def _floor_warning(run: Run) -> list[str]:
    """The warning when the exported model's test accuracy does not beat always answering the test
    split's largest class (`DataFacts.floor_note`, as the driver prints it); [] otherwise."""
    exported = run.summary.exported if run.summary else None
    accuracy = as_float(exported.test_accuracy) if exported else math.nan
    note = "" if math.isnan(accuracy) else run.info.data.floor_note(accuracy, run.objective)
    return [note] if note else []


def _headline(run: Run, rows: list[dict], add) -> str:
    table = page.table(
        ["model", "trial", "configuration", metric_name(run.metric), "test accuracy", "examples/s", "tokens/s", "state"],
        [
            [
                r["model"],
                r["trial_id"],
                _config_text(r["params"], run.space),
                r.get("val_text") or analysis.fmt_metric(run.metric, r["value"]),
                r.get("test_text") or page.fmt_accuracy(r["test_accuracy"]),
                page.fmt_number(r["examples_per_s"]),
                page.fmt_number(r["tokens_per_s"]),
                r["state"],
            ]
            for r in rows
        ],
        numeric={3, 4, 5, 6},
    )
    body = [
        table,
        "".join(page.paragraph(line) for line in _versus(run, rows)),
        page.note(_test_note(run)),
        page.note(_linear_note(run)),
        page.note(_head_note(run)),
        _compute(run),
        _serving(run),
        _certified(run),
        _by_class(run, add),
    ]
    return page.section("headline", "1. Best model vs the tutorial's two models", *body)


def _versus(run: Run, rows: list[dict]) -> list[str]:
    """The best model against each other row: the objective's difference and the ratio of throughputs."""
    if not rows or not rows[0]["model"].startswith("best"):
        return []
    best, lines = rows[0], []
    for other in rows[1:]:
        if math.isnan(other["value"]) or math.isnan(best["value"]):
            continue
        delta = best["value"] - other["value"]
        change = (
            f"{delta:+.4f} {metric_name(run.metric)}"
            if run.metric.endswith("loss")
            else f"{delta * 100:+.1f} points of {metric_name(run.metric)}"
        )
        speed = best["examples_per_s"] / other["examples_per_s"] if other["examples_per_s"] > 0 else math.nan
        lines.append(f"vs {other['model']}: {change}" + ("" if math.isnan(speed) else f", {speed:.2f}× its training throughput"))
    return lines


def _linear_note(run: Run) -> str:
    """How the linear baseline was fitted, its wall time and its inference speed; "" without one."""
    linear = run.baseline.linear if run.baseline else None
    if linear is None:
        return ""
    tried = ", ".join(linear.values)
    speed = as_float(linear.predict_per_s)
    return (
        f"The linear baseline (scikit-learn: TF-IDF word uni+bigrams, logistic regression) chose C={as_float(linear.c):g} "
        f"from {tried} on the validation split and was refitted on train + validation: {as_float(linear.fit_s):.1f} s "
        "for every fit"
        + ("" if math.isnan(speed) else f"; it classifies {speed:,.0f} test reviews/s from raw text on this machine's CPUs")
        + "."
    )


def _test_note(run: Run) -> str:
    """Where test accuracies come from, how many test reviews copy training ones, and the majority-class floor."""
    test_note = (
        "Test accuracy is measured only for what is exported or certified; trials are ranked on validation."
        if run.summary
        else "Test accuracy appears when the run finishes and exports its best model."
    )
    copies = run.info.data.test_copies
    if copies:
        tests = run.info.data.sizes.get("test")
        test_note += (
            f" {copies:,} of the {tests:,} test reviews cop{'ies' if copies == 1 else 'y'} a training review"
            " (after the standardization): every test accuracy here includes them."
        )
    floor = _floor_sentence(run)
    return test_note + (f" {floor}" if floor else "")


def _floor_sentence(run: Run) -> str:
    """The accuracy of always answering the test split's largest class, the floor any model must beat; ""
    for runs recorded without class counts."""
    floor = run.info.data.majority_floor()
    if floor is None:
        return ""
    name, share = floor
    test = analysis.class_balance(run.info.data).get("test")
    tied = test is not None and int((test == test.max()).sum()) > 1
    largest = "one of the test split's largest classes" if tied else "the test split's largest class"
    return f'Always answering "{name}", {largest}, scores {share:.2%}: the floor any model must beat.'


def _head_note(run: Run) -> str:
    """With more than two classes, how the tutorial's presets differ from the tutorial's models."""
    count = len(analysis.class_names(run))
    if count <= 2:
        return ""
    return (
        f"With {count} classes, the tutorial's presets are shown with a {count}-way head (softmax over {count} logits) "
        "instead of the tutorial's one logit (sigmoid); the layers before it are the tutorial's."
    )


def _by_class(run: Run, add) -> str:
    """The exported model on the test split per class (precision, recall, F1, macro-F1) and its confusion matrix."""
    exported = run.summary.exported if run.summary else None
    if exported is None or (exported.test_confusion is None and exported.test_macro_f1 is None):
        return ""
    title = "<h3>The exported model by class (test split)</h3>"
    scores = analysis.per_class(exported.test_confusion, analysis.class_names(run))
    if scores is None:
        recorded = analysis.fmt_metric("test_macro_f1", exported.test_macro_f1)
        why = (
            "no confusion matrix"
            if exported.test_confusion is None
            else "a confusion matrix that is not a square table of counts"
        )
        return title + page.paragraph(f"macro-F1 {recorded}" if recorded else "") + page.note(f"summary.json holds {why}.")
    total = int(scores["support"].sum())
    rows = [
        [
            name,
            f"{r.support:,}",
            f"{r.predicted:,}",
            page.fmt_accuracy(r.precision),
            page.fmt_accuracy(r.recall),
            page.fmt_accuracy(r.f1),
        ]
        for name, r in zip(scores.index, scores.itertuples(), strict=True)
    ]
    means = scores[["precision", "recall", "f1"]].mean()
    rows.append([f"macro average ({len(scores)} classes)", f"{total:,}", f"{total:,}", *map(page.fmt_accuracy, means)])
    accuracy = float(np.trace(np.asarray(exported.test_confusion, dtype=float))) / total if total else math.nan
    intro = (
        f"The exported model on the {total:,} test examples, evaluated once: accuracy {page.fmt_accuracy(accuracy)}, "
        f"macro-F1 {page.fmt_accuracy(means['f1'])} (F1 averaged over the {len(scores)} classes, unweighted). Precision: "
        "of the examples it predicts as a class, the share that are of it; recall: of a class's examples, the share it finds."
    )
    picture = figures.confusion_figure(exported.test_confusion, list(scores.index))
    return (
        title
        + page.paragraph(intro)
        + page.table(["class", "test examples", "predicted as it", "precision", "recall", "F1"], rows, numeric={1, 2, 3, 4, 5})
        + page.figure(add("confusion.png", picture), "confusion matrix of the exported model on the test split")
    )


def _compute(run: Run) -> str:
    """Training examples each part of the run processed; a bar of the search's budget used."""
    parts = []
    for what, examples, budget in analysis.compute(run):
        text = f"{what}: {examples:,.0f} training examples"
        if budget:
            text += f" of a budget of {budget:,.0f} ({examples / budget:.0%})"
            parts.append(page.paragraph(text) + f'<progress value="{examples:.0f}" max="{budget:.0f}"></progress>')
        else:
            parts.append(page.paragraph(text))
    total = _total_compute(run)
    if total:
        parts.insert(0, page.paragraph(total))
    return "<h3>Compute</h3>" + "".join(parts) if parts else ""


def _serving(run: Run) -> str:
    """The exported model and the tutorial's, measured for serving (best_model/benchmark.json), and the
    linear baseline's speed (baseline.json); "" without a benchmark."""
    bench = run.serving
    if not bench or not bench.models:
        return ""
    batches = list(next(iter(bench.models.values())).throughput_per_s)
    rows = [
        [
            "best (exported)" if name == "exported" else f"{name} (untrained: same cost)",
            f"{m.latency_ms.p50:.1f}",
            f"{m.latency_ms.p95:.1f}",
            f"{m.latency_ms.p99:.1f}",
            *(page.fmt_number(m.throughput_per_s.get(b)) for b in batches),
            f"{m.load_s:.2f}",
            f"{m.size_bytes / 2**20:.1f}",
            f"{m.params:,}",
            f"{m.peak_memory_mib:,.0f}",
        ]
        for name, m in bench.models.items()
    ]
    linear = run.baseline.linear if run.baseline else None
    if linear is not None and not math.isnan(as_float(linear.predict_per_s)):
        rows.append([analysis.LINEAR_MODEL, "", "", "", *("" for _ in batches), "", "", "", ""])
        rows[-1][4 + len(batches) - 1] = f"{as_float(linear.predict_per_s):,.0f} (all test texts at once)"
    table = page.table(
        [
            "model",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            *(f"texts/s at batch {b}" for b in batches),
            "load s",
            "MiB",
            "parameters",
            "peak MiB",
        ],
        rows,
        numeric=set(range(1, 9 + len(batches))),
    )
    threads = bench.threads
    return (
        "<h3>Serving</h3>"
        + page.paragraph(
            f"Each model loaded from model.keras in a fresh process with {threads} TensorFlow thread{'s' * (threads != 1)}, "
            f"on {bench.machine.cpus} CPUs: latency of one request of one test text ({bench.requests:,} requests), "
            f"throughput over {bench.texts:,} test texts per batch size"
            + (f" (the test split's {bench.test_texts:,} texts, repeated)" if bench.repeated else "")
            + ", size on disk, parameters, the measuring process's own peak resident memory "
            "(python -m search.bench --export DIR measures it again)."
        )
        + table
    )


def _total_compute(run: Run) -> str:
    """What the exported result cost in training examples (search, certification, refit) against
    the tutorial's way on the same data; "" without certification or split sizes."""
    tutorial = analysis.tutorial_compute(run)
    found = {what: examples for what, examples, _ in analysis.compute(run)}
    certified = found.get(analysis.CERTIFICATION)
    if tutorial is None or certified is None or analysis.SEARCH not in found:
        return ""
    reviews, budget = tutorial
    total = found[analysis.SEARCH] + certified
    return (
        f"In all, the certified result took {total:,.0f} training examples (search, certification and refit): "
        f"{total / budget:.2f}× the tutorial's {budget:,} (its 2 models × 10 epochs × {reviews:,} training reviews)."
    )


def _certified(run: Run) -> str:
    """Every certified configuration's seeds: validation and test accuracy (and test macro-F1 where
    the run ranks by it and recorded it)."""
    certified = run.summary.certification if run.summary else None
    if certified is None or not certified.configurations:
        return ""
    macro = run.metric == "val_macro_f1" and all(c.test_macro_f1_mean is not None for c in certified.configurations)
    rows = [
        [
            c.rank,
            c.trial_id,
            _config_text(c.params or {}, run.space),
            c.epochs,
            analysis.plus_minus(c.value_mean, c.value_std, run.metric),
            analysis.plus_minus(c.test_accuracy_mean, c.test_accuracy_std),
            *([analysis.plus_minus(c.test_macro_f1_mean, c.test_macro_f1_std)] if macro else []),
            ", ".join(page.fmt_accuracy(s.test_accuracy) for s in c.seeds),
        ]
        for c in certified.configurations
    ]
    headers = ["rank", "trial", "configuration", "epochs", "validation (mean ± std)", "test (mean ± std)"]
    headers += ["test macro-F1 (mean ± std)"] if macro else []
    table = page.table([*headers, "test per seed"], rows, numeric={0, 3})
    shipped = (
        "refit on train + validation with the same seeds; its test accuracy over those fits is the headline, and "
        "the refit of the seed that validated best in certification is the model shipped"
        if certified.refit is not None
        else "its best seed is the model shipped"
    )
    return (
        "<h3>Certified over seeds</h3>"
        + page.paragraph(
            f"The top {len(rows)} configurations re-trained with fresh seeds on the training split; "
            f"{certified.exported}, the best mean {metric_name(run.metric)}, is exported: {shipped}."
        )
        + table
    )


def _leaderboard(run: Run, best_id: str) -> str:
    trials = analysis.ranked(run.trials, run.objective)
    names = [p.name for p in analysis.searched(run.space) if p.name in trials]
    metrics = _leaderboard_metrics(run)
    limit = run.info.search_config.get("max_latency_ms")
    latency = ["latency ms"] if limit else []  # with a limit only: one column fewer to scroll to
    place = _one_place(run)
    where = [] if place else ["where"]  # one place is said once, under the table
    headers = (
        ["rank", "trial", "preset", "state", "reason"]
        + names
        + ["epochs (best)", *(metric_name(m) for m in metrics), "examples/s", *latency, *where]
    )
    rows, classes = [], []
    for rank, (_, t) in enumerate(trials.iterrows(), start=1):
        epochs = format_value("epochs", t["epochs"]) + (
            f" ({format_value('best_epoch', t['best_epoch'])})" if format_value("best_epoch", t["best_epoch"]) else ""
        )
        rows.append(
            [rank, t["trial_id"], t["preset"], state_label(t["state"]), t["reason"]]
            + [format_value(n, t[n]) for n in names]
            + [epochs, *(analysis.fmt_metric(m, t[m]) for m in metrics), page.fmt_number(t["examples_per_s"])]
            + ([_latency_cell(t, limit)] if limit else [])
            + ([_where(t)] if where else [])
        )
        infeasible = limit and t.get("feasible") == "no"
        classes.append(t["state"] + (" best" if t["trial_id"] == best_id else "") + (" infeasible" if infeasible else ""))
    first = 5 + len(names)
    table = page.table(
        headers,
        rows,
        numeric={0, *range(5, first + 2 + len(metrics) + len(latency))},
        row_classes=classes,
        column_classes={
            headers.index("trial"): "sticky",  # the trial's name stays in view while a wide board scrolls sideways
            headers.index("reason"): "reason",
            **({headers.index("where"): "where"} if where else {}),
        },
    )
    return page.section(
        "leaderboard",
        f"2. Leaderboard ({len(rows)} trials, by {run.metric})",
        table if rows else page.note("no trials yet"),
        page.note(f"Every trial ran on {place}." if rows and place else ""),
    )


def _latency_cell(trial, limit: float) -> str:
    """A trial's latency in ms, and "over the limit" where it is infeasible."""
    text = page.fmt_number(trial.get("latency_ms"), 2)
    return f"{text} (over the limit)" if trial.get("feasible") == "no" else text


def _leaderboard_metrics(run: Run) -> list[str]:
    """The leaderboard's validation columns: accuracy; macro-F1 where trials.csv has it; the loss where it is
    the objective or where there is no macro-F1 (runs recorded before it keep their columns), so that a
    leaderboard of a few searched hyperparameters still fits a 1280-pixel window."""
    macro = bool(run.trials["val_macro_f1"].notna().any()) if "val_macro_f1" in run.trials else False
    loss = not macro or run.metric == "val_loss"
    return ["val_accuracy"] + (["val_macro_f1"] if macro else []) + (["val_loss"] if loss else [])


def _one_place(run: Run) -> str:
    """Where every trial ran, where that is one place: host (node), device, GPU ids, as section 9
    places each epoch (`analysis.lanes`), and LSTM implementation; "" where trials ran in several
    places or none has reported one yet. Trials that have not reported where they run (pending,
    starting, errored before an epoch) are left out."""
    trials = run.trials
    reported = trials[(trials["hostname"] != "") | (trials["node_id"] != "")]
    places = set(analysis.lanes(reported, run.epochs)["place"])
    lstms = set(reported["lstm"]) - {""}
    if len(places) != 1 or len(lstms) != 1:
        return ""
    (place,), (lstm,) = places, lstms
    return " · ".join(x for x in (place, _LSTM.get(lstm, "")) if x)


_LSTM = {"fused": "fused LSTM", "keras": "Keras LSTM"}


def _where(trial) -> str:
    """Host and device, and which LSTM implementation trained (it sets the speed)."""
    lstm = _LSTM.get(trial["lstm"], "")
    return " · ".join(x for x in (trial["hostname"], trial["device"], lstm) if x)


def _curves(run: Run, add) -> str:
    top = analysis.top_trials(run.trials, run.objective, TOP_CURVES)
    picture = figures.curves_figure(run.trials, run.epochs, run.metric, top)
    return page.section(
        "curves",
        "4. Learning curves of the top trials",
        page.figure(
            add("curves.png", picture),
            f"{metric_name(run.metric)} per epoch of the top trials",
            "no epochs reported yet (epochs.csv is empty or absent)",
        ),
        page.note(f"Faded, dashed lines: trials {figures.FADED_TEXT}.") if picture else "",
    )


def _pareto(run: Run, add, best_id: str) -> str:
    rows = run.trials[run.trials[run.metric].notna() & (run.trials["examples_per_s"] > 0)]
    values = run.objective.oriented(rows[run.metric].to_numpy())  # larger is better, a loss too
    front = rows[analysis.pareto_mask(values, rows["examples_per_s"].to_numpy())]
    front = front.sort_values("examples_per_s")
    name = metric_name(run.metric)
    better = "more accurate" if run.metric == "val_accuracy" else f"better on {name}"
    listed = (
        page.table(
            ["#", "trial", name, "examples/s", "configuration"],
            [
                [
                    format_value("number", t["number"]),
                    t["trial_id"],
                    analysis.fmt_metric(run.metric, t[run.metric]),
                    page.fmt_number(t["examples_per_s"]),
                    _config_text(analysis.params_of(t, run.space), run.space),
                ]
                for _, t in front.iterrows()
            ],
            numeric={0, 2, 3},
        )
        if len(front)
        else ""
    )
    limit = run.info.search_config.get("max_latency_ms")
    latency = figures.latency_figure(run.trials, run.objective, best_id, limit)
    return page.section(
        "pareto",
        f"5. {figures.versus_title(run.metric)} vs throughput",
        page.figure(
            add("pareto.png", figures.pareto_figure(run.trials, run.objective, best_id)),
            f"{name} against throughput with the Pareto front",
        ),
        page.paragraph(f"Pareto front: no other trial is both {better} and faster.") if len(front) else "",
        listed,
        page.figure(add("latency.png", latency), f"{name} against inference latency with the Pareto front") if latency else "",
        page.paragraph(
            "Inference latency: each trial's network alone (token ids in) on one review at a time, the median over "
            "the first validation reviews and over its epochs"
            + (f"; trials over --max-latency-ms {limit:g} are infeasible: never exported, crosses here." if limit else ".")
        )
        if latency
        else "",
    )


def _progress(run: Run, add) -> str:
    by_number, by_time = analysis.progress(run)
    return page.section(
        "progress",
        "6. Search progress",
        page.figure(
            add("progress.png", figures.progress_figure(by_number, by_time, run.metric)),
            f"best {metric_name(run.metric)} so far by trial number and by wall time",
        ),
        page.note(PROGRESS_NOTE),
    )


def _params(run: Run, add, best_id: str) -> str:
    if not run.space:
        return page.section("params", "7. Hyperparameters", page.note("run.json declares no search space"))
    warnings = analysis.edge_warnings(run)
    cells = []
    for index, param in enumerate(analysis.searched(run.space)):
        name = f"param_{index:02d}_{re.sub(r'[^A-Za-z0-9_-]', '_', param.name)[:40]}.png"
        picture = figures.param_figure(run.trials, param, run.metric, best_id, warnings.get(param.name, ""))
        cells.append(
            f"<div>{page.figure(add(name, picture), f'{run.metric} against {param.name}', f'{param.name}: no values yet')}"
            f"{page.note(param.help)}</div>"
        )
    intro = page.paragraph(
        "The objective against each searched hyperparameter; the dotted lines are the range's "
        'bounds, the star the best trial. A max_len of 0 means the whole review ("full").'
    )
    pinned = analysis.pinned_text(run.space)
    return page.section(
        "params",
        "7. Hyperparameters",
        intro,
        page.paragraph(f"pinned: {pinned} (the same in every trial, so not plotted)") if pinned else "",
        page.warnings_list(list(warnings.values())),
        f'<div class="grid">{"".join(cells)}</div>' if cells else page.note("no searched hyperparameter"),
    )


def _importance(run: Run, add) -> str:
    values, note = analysis.importances(run)
    if values is None:
        return page.section("importance", "8. Hyperparameter importance", page.note(note))
    table = page.table(["hyperparameter", "importance"], [[k, f"{v:.3f}"] for k, v in values.items()], numeric={1})
    return page.section(
        "importance",
        "8. Hyperparameter importance",
        page.figure(add("importance.png", figures.importance_figure(values)), "hyperparameter importance"),
        table,
        page.note(note),
    )


def _timeline(run: Run, add) -> str:
    placed = analysis.lanes(run.trials, run.epochs)
    usage = analysis.utilization(placed)
    start = analysis.run_start(run)
    text = ""
    if usage["lanes"]:
        text = (
            f"{usage['lanes']} lanes (one per host · device and per trial running there at the same time), "
            f"busy {page.fmt_seconds(usage['busy_s'])} of {usage['lanes']} × {page.fmt_seconds(usage['wall_s'])}: "
            f"utilization {usage['utilization']:.0%} (busy time / (lanes × wall time))."
        )
    concurrency = run.info.resources.concurrency if run.info.resources else None
    if concurrency:
        text += f" The run allowed {concurrency} trials at once."
    per_place = placed.groupby("place").agg(trials=("trial_id", "count"), lanes=("lane", "nunique")) if len(placed) else None
    table = (
        page.table(
            ["host · device", "trials", "lanes"],
            [[place, int(r["trials"]), int(r["lanes"])] for place, r in per_place.iterrows()],
            numeric={1, 2},
        )
        if per_place is not None
        else ""
    )
    moved = (
        [
            f"trial {format_value('number', m['number'])} ({m['trial_id']}) moved from {m['from']} to {m['to']} "
            f"after {page.fmt_seconds(m['at'] - start)}, continuing from its last checkpoint"
            for m in analysis.moves(placed)
        ]
        if not math.isnan(start)
        else []
    )
    return page.section(
        "timeline",
        "9. Where trials ran",
        page.figure(
            add("timeline.png", figures.timeline_figure(placed, start, usage)),
            "timeline of trials per worker and device",
            "no trial has started yet",
        ),
        page.paragraph(text),
        page.warnings_list(moved),
        table,
    )


def _facts(run: Run) -> str:
    info, summary = run.info, run.summary or Summary()
    data = info.data
    budget = summary.budget.to_json(run.objective) if summary.budget else None
    pairs = [
        ("command", page.fmt_json(info.command_text())),
        ("started at", page.fmt_json(info.started_at or None)),
        ("run directory", str(run.run_dir)),
        ("data source", page.fmt_json(info.source)),
        ("data fingerprint", page.fmt_json(info.fingerprint)),
        ("split sizes", ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in data.sizes.items())),
        ("validation split", data.val_split or "review by review"),
        ("vocabulary size", page.fmt_json(data.vocabulary_size)),
        ("reviews with replaced bytes", page.fmt_json(data.reviews_with_replaced_bytes)),
        *[("what the data held", "; ".join(notes)) for notes in [data.data_notes()] if notes],
        ("classes", data.class_text()),
        ("tokens", page.fmt_json(data.tokens or None)),
        ("objective", page.fmt_json(dataclasses.asdict(info.objective) if info.objective else None)),
        ("pinned", analysis.pinned_text(run.space)),
        (
            "budget",
            page.fmt_json(budget or {k: info.search_config.get(k) for k in ("trials", "max_epochs", "time_budget_min")}),
        ),
        ("counts", page.fmt_json(summary.counts or None)),
        ("wall time", page.fmt_seconds(summary.wall_s)),
        ("resources", page.fmt_json(info.resources.to_json() if info.resources else None)),
        ("versions", ", ".join(f"{k} {v}" for k, v in info.versions.items())),
    ] + [(f"{name} config", page.fmt_json(value)) for name, value in info.configs.items()]
    space = (
        page.table(
            ["hyperparameter", "kind", "range or choices", "log", "role", "help"],
            [
                [
                    p.name,
                    p.kind,
                    ", ".join(format_value(p.name, c) for c in p.choices)
                    if p.choices
                    else f"[{format_value(p.name, p.low)}, {format_value(p.name, p.high)}]",
                    "log" if p.log else "",
                    p.role,
                    p.help,
                ]
                for p in analysis.searched(run.space)
            ],
        )
        if run.space
        else page.note("no search space in run.json")
    )
    return page.section("facts", "10. Run facts", page.facts(pairs), _class_balance(run), "<h3>Search space</h3>", space)


def _class_balance(run: Run) -> str:
    """Each split's examples per class, with each class's share of its split, and the majority-class floor."""
    counts = analysis.class_balance(run.info.data)
    if counts.empty:
        return ""
    totals = counts.sum()
    rows = [[name, *(_count_share(row[split], totals[split]) for split in counts.columns)] for name, row in counts.iterrows()]
    rows.append([f"all {len(counts)} classes", *(f"{totals[split]:,}" for split in counts.columns)])
    table = page.table(["class", *counts.columns], rows, numeric=set(range(1, len(counts.columns) + 1)))
    return (
        "<h3>Classes</h3>"
        + page.paragraph("Examples per class in each split (share of the split).")
        + table
        + page.paragraph(_floor_sentence(run))
    )


def _count_share(count: int, total: int) -> str:
    return f"{count:,} ({count / total:.1%})" if total else f"{count:,}"
