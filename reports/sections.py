"""The run page's sections after the headline, in the order the page shows them, and what every
section builder reads (`Report`).

Each builder takes the `Report` and returns a `page.Section`: an anchor, a title without a number
and its parts; the page (`reports.assemble`) numbers the sections by their order. The headline,
the first section, is `reports.headline`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from reports import analysis, figures, page
from reports.analysis import format_value, metric_name, state_label
from reports.load import Run
from runfiles.documents import Summary
from runfiles.layout import NO_TEST_SPLIT, as_float

TOP_CURVES = 10
PROGRESS_NOTE = (
    "Any trial that ended with a value can be the best, completed or stopped early (the harness's "
    "ranking, as for the exported model): a trial still running, diverged or errored shows as a "
    "hollow point and never moves the best-so-far line."
)


@dataclass(frozen=True)
class Report:
    """What each section of the run's page is built from: the run, the headline's rows, and where
    its figures go."""

    run: Run
    """The run directory, read (`reports.load`)."""
    rows: list[dict]
    """The headline's rows (`analysis.headline`): the best model first where there is one, then the tutorial's."""
    add: Callable[[str, Figure | None], str | None]
    """Where a figure goes (`figures.Pictures.add`): its file name on the page, None without a figure."""

    @property
    def best_id(self) -> str:
        """The best trial's id (the one exported), or "" before there is one."""
        rows = self.rows
        return rows[0]["trial_id"] if rows and rows[0]["model"].startswith("best") else ""


# ---------------------------------------------------------------- above the sections


def status(report: Report) -> str:
    """The banner above the sections: a finished run and how its trials ended, or a run in progress."""
    run = report.run
    counts = run.trials["state"].value_counts().to_dict()
    listed = ", ".join(f"{n} {state_label(s)}" for s, n in sorted(counts.items()))
    if run.finished:
        wall = page.fmt_seconds(run.summary.wall_s if run.summary else None)
        text = f"Finished run: {len(run.trials)} trials ({listed})" + (f", wall time {wall}" if wall else "") + "."
        if run.summary is not None and run.summary.best is None:
            text += " No trial reported a value to rank, so no model was exported (see each trial's reason below)."
        if run.summary is not None and run.summary.result:
            shipped = run.summary.exported.trial_id if run.summary.exported else ""
            text += f" Result: {run.summary.result} ({shipped}; {NO_TEST_SPLIT})."
        return f'<div class="banner done">{page.esc(text)}</div>'
    text = (
        f"Run in progress or interrupted (no final summary.json): {len(run.trials)} trials so far"
        + (f" ({listed})" if listed else "")
        + ". Figures show what has been reported until now."
    )
    return f'<div class="banner progress">{page.esc(text)}</div>'


def warnings(report: Report) -> list[str]:
    """The warnings above the sections: the files that could not be read, and the one when the exported
    model's test accuracy does not beat always answering the test split's largest class
    (`DataFacts.floor_note`, as the driver prints it)."""
    run = report.run
    exported = run.summary.exported if run.summary else None
    accuracy = as_float(exported.test_accuracy) if exported else math.nan
    note = "" if math.isnan(accuracy) else run.info.data.floor_note(accuracy, run.objective)
    return run.notes + ([note] if note else [])


# ---------------------------------------------------------------- what several sections say


def config_text(params: dict, space: list | None = None) -> str:
    """name=value, ...; with a space, only its searched hyperparameters (the pinned ones are listed once)."""
    fixed = analysis.pinned(space or [])
    return ", ".join(f"{k}={format_value(k, v)}" for k, v in params.items() if k not in fixed)


def floor_sentence(run: Run) -> str:
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


# ---------------------------------------------------------------- the sections


def leaderboard(report: Report) -> page.Section:
    """Every trial, ranked as the harness ranks them: state, reason, values, epochs, objective, speed, where."""
    run, best_id = report.run, report.best_id
    trials = analysis.ranked(run.trials, run.objective)
    names = [p.name for p in analysis.searched(run.space) if p.name in trials]
    metrics = _leaderboard_metrics(run)
    limit = run.info.search_config.get("max_latency_ms")
    latency = ["latency ms"] if limit else []  # with a limit only: one column fewer to scroll to
    place = _one_place(run)
    where = [] if place else ["where"]  # one place is said once, under the table
    origin = ["origin"] if (trials["origin"] != "").any() else []  # a warm start's queued configurations
    headers = (
        ["rank", "trial", "preset", *origin, "state", "reason"]
        + names
        + ["epochs (best)", *(metric_name(m) for m in metrics), "examples/s", *latency, *where]
    )
    rows, classes = [], []
    for rank, (_, t) in enumerate(trials.iterrows(), start=1):
        rows.append(
            [rank, t["trial_id"], t["preset"], *([_origin_cell(t["origin"])] if origin else []), state_label(t["state"])]
            + [t["reason"], *(format_value(n, t[n]) for n in names), _epochs_cell(t)]
            + [*(analysis.fmt_metric(m, t[m]) for m in metrics), page.fmt_number(t["examples_per_s"])]
            + ([_latency_cell(t, limit)] if limit else [])
            + ([_where(t)] if where else [])
        )
        infeasible = limit and t.get("feasible") == "no"
        classes.append(t["state"] + (" best" if t["trial_id"] == best_id else "") + (" infeasible" if infeasible else ""))
    first = 5 + len(origin) + len(names)
    table = page.table(
        headers,
        rows,
        numeric={0, *range(5 + len(origin), first + 2 + len(metrics) + len(latency))},
        row_classes=classes,
        column_classes={
            headers.index("trial"): "sticky",  # the trial's name stays in view while a wide board scrolls sideways
            headers.index("reason"): "reason",
            **({headers.index("where"): "where"} if where else {}),
        },
    )
    return page.section(
        "leaderboard",
        f"Leaderboard ({len(rows)} trials, by {run.metric})",
        table if rows else page.note("no trials yet"),
        page.note(f"Every trial ran on {place}." if rows and place else ""),
        page.note(_warm_note(run.info.warm_start)),
    )


def _epochs_cell(trial) -> str:
    """A trial's epochs, and its best epoch in brackets where it has one."""
    best = format_value("best_epoch", trial["best_epoch"])
    return format_value("epochs", trial["epochs"]) + (f" ({best})" if best else "")


def _warm_note(sources) -> str:
    """What a warm start's earlier runs handed on (run.json's warm_start); empty for a cold start."""
    if not sources:
        return ""
    parts = [
        f"{s.kept} trials of {s.run} added to the study, not trained here and not on this board"
        if s.taken == "trials"
        else f"{s.kept} configurations of {s.run} queued first ({s.why}; the origin column)"
        for s in sources
    ]
    return "Warm start: " + "; ".join(parts) + "."


def _origin_cell(origin: str) -> str:
    """Where a warm start's configuration came from, short: the earlier run's folder name and trial id."""
    return "/".join(Path(origin).parts[-2:]) if origin else ""


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
    """Where every trial ran, where that is one place: host (node), device, GPU ids, as the timeline
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


def families(report: Report) -> page.Section:
    """The objective and throughput of single and stacked models."""
    run = report.run
    return page.section(
        "families",
        "Single vs stacked",
        page.paragraph("Depth 1 is a single BiLSTM layer, depth 2 and more a stacked one."),
        page.figure(
            report.add("families.png", figures.family_figure(run.trials, run.metric)), "objective and throughput by model family"
        ),
    )


def curves(report: Report) -> page.Section:
    """The objective per epoch of the top trials."""
    run, add = report.run, report.add
    top = analysis.top_trials(run.trials, run.objective, TOP_CURVES)
    picture = figures.curves_figure(run.trials, run.epochs, run.metric, top)
    return page.section(
        "curves",
        "Learning curves of the top trials",
        page.figure(
            add("curves.png", picture),
            f"{metric_name(run.metric)} per epoch of the top trials",
            "no epochs reported yet (epochs.csv is empty or absent)",
        ),
        page.note(f"Faded, dashed lines: trials {figures.FADED_TEXT}.") if picture else "",
    )


def pareto(report: Report) -> page.Section:
    """The objective against throughput and against inference latency, with their Pareto fronts."""
    run, add, best_id = report.run, report.add, report.best_id
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
                    config_text(analysis.params_of(t, run.space), run.space),
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
        f"{figures.versus_title(run.metric)} vs throughput",
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


def progress(report: Report) -> page.Section:
    """The best so far by trial number and by wall time."""
    run = report.run
    by_number, by_time = analysis.progress(run)
    return page.section(
        "progress",
        "Search progress",
        page.figure(
            report.add("progress.png", figures.progress_figure(by_number, by_time, run.metric)),
            f"best {metric_name(run.metric)} so far by trial number and by wall time",
        ),
        page.note(PROGRESS_NOTE),
    )


def params(report: Report) -> page.Section:
    """The objective against each searched hyperparameter, with the warnings of a best value at a range's edge."""
    run, add, best_id = report.run, report.add, report.best_id
    if not run.space:
        return page.section("params", "Hyperparameters", page.note("run.json declares no search space"))
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
        "Hyperparameters",
        intro,
        page.paragraph(f"pinned: {pinned} (the same in every trial, so not plotted)") if pinned else "",
        page.warnings_list(list(warnings.values())),
        f'<div class="grid">{"".join(cells)}</div>' if cells else page.note("no searched hyperparameter"),
    )


def importance(report: Report) -> page.Section:
    """How much each hyperparameter explains the objective (the study's PED-ANOVA), or why it cannot be said."""
    values, note = analysis.importances(report.run)
    if values is None:
        return page.section("importance", "Hyperparameter importance", page.note(note))
    table = page.table(["hyperparameter", "importance"], [[k, f"{v:.3f}"] for k, v in values.items()], numeric={1})
    return page.section(
        "importance",
        "Hyperparameter importance",
        page.figure(report.add("importance.png", figures.importance_figure(values)), "hyperparameter importance"),
        table,
        page.note(note),
    )


def timeline(report: Report) -> page.Section:
    """Where and when each trial ran, lane by lane, and how busy the lanes were."""
    run = report.run
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
        "Where trials ran",
        page.figure(
            report.add("timeline.png", figures.timeline_figure(placed, start, usage)),
            "timeline of trials per worker and device",
            "no trial has started yet",
        ),
        page.paragraph(text),
        page.warnings_list(moved),
        table,
    )


def facts(report: Report) -> page.Section:
    """What the run was: command, data, budget, counts, resources, versions, configs and the search space."""
    run = report.run
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
        *([("word vectors", data.embeddings.text())] if data.embeddings else []),
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
    space = _space_table(run) if run.space else page.note("no search space in run.json")
    return page.section("facts", "Run facts", page.facts(pairs), _class_balance(run), "<h3>Search space</h3>", space)


def _space_table(run: Run) -> str:
    """The searched hyperparameters: kind, range or choices, log scale, role and what each does."""
    return page.table(
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
        + page.paragraph(floor_sentence(run))
    )


def _count_share(count: int, total: int) -> str:
    return f"{count:,} ({count / total:.1%})" if total else f"{count:,}"
