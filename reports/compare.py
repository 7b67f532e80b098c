"""Compare search runs on one page: their data, budgets and best models, progress against
examples and wall time, accuracy-throughput fronts, and how their best configurations differ.

    python -m reports compare RUN_A RUN_B [...] --out DIR

assemble_comparison() is pure (loaded Runs in, the page and its figures out);
reports.build_comparison() is the only function that writes, and it replaces DIR atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from reports import analysis, claims, figures, page, versus
from reports.analysis import format_value, state_label
from reports.claims import Interval
from reports.load import Run
from runfiles import predictions
from runfiles.layout import NO_TEST_SPLIT, quantity

NO_VALUE = "—"


def run_names(paths: list[Path]) -> list[str]:
    """Short names that tell the runs apart: the folder's name, or as many trailing path parts as it takes."""
    parts = [Path(p).resolve().parts for p in paths]
    for depth in range(1, max(map(len, parts)) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return ["/".join(p) for p in parts]


def assemble_comparison(runs: list[Run]) -> tuple[str, dict]:
    """The comparison page's HTML and its figures by file name (matplotlib Figures, not yet written)."""
    names = run_names([run.run_dir for run in runs])
    pictures = figures.Pictures()
    add = pictures.add

    metric = _shared_metric(runs)
    sections = [
        _runs_table(runs, names),
        _on_test(runs, names),
        _progress(runs, names, metric, add),
        _fronts(runs, names, metric, add),
        _configurations(runs, names),
    ]  # numbered in this order
    title = "BiLSTM search comparison: " + " vs ".join(names)
    parts = [page.warnings_list(_warnings(runs, names)), page.numbered(sections)]
    body = f"<h1>{page.esc(title)}</h1>\n" + "\n".join(part for part in parts if part)
    return page.document(title, body), pictures


def _shared_metric(runs: list[Run]) -> str:
    metrics = {run.metric for run in runs}
    return metrics.pop() if len(metrics) == 1 else "objective"


def _warnings(runs: list[Run], names: list[str]) -> list[str]:
    """What makes the runs less comparable than they look: other data, another objective, a run not finished."""
    warnings = []
    fingerprints = {name: run.info.fingerprint for name, run in zip(names, runs, strict=True)}
    if len(set(fingerprints.values())) > 1:
        listed = ", ".join(f"{name}: {value or 'unknown'}" for name, value in fingerprints.items())
        warnings.append(
            f"the runs used different data (fingerprints {listed}): their accuracies are not measured on the same reviews"
        )
    objectives = {name: f"{run.metric} ({run.objective.mode})" for name, run in zip(names, runs, strict=True)}
    if len(set(objectives.values())) > 1:
        warnings.append(
            "the runs rank trials by different objectives: " + ", ".join(f"{name}: {value}" for name, value in objectives.items())
        )
    for name, run in zip(names, runs, strict=True):
        if not run.finished:
            warnings.append(
                f"{name} has no final summary.json (in progress or interrupted): its figures show what it has reported so far"
            )
        warnings += [f"{name}: {note}" for note in run.notes]
    return warnings


# ---------------------------------------------------------------- the runs


def _runs_table(runs: list[Run], names: list[str]) -> page.Section:
    headers = [
        "run",
        "data",
        "budget",
        "trials",
        "best validation accuracy",
        "shipped model's test accuracy (without a test split: the result)",
        "best configuration",
        "wall time",
        "examples processed",
    ]
    rows = []
    for name, run in zip(names, runs, strict=True):
        best = analysis.best_trial(run)
        rows.append(
            [
                f"<strong>{page.esc(name)}</strong><br><code>{page.esc(run.run_dir)}</code>",
                "<br>".join(page.esc(line) for line in _data_lines(run)),
                page.esc(_budget_text(run)),
                page.esc(_counts_text(run)),
                page.esc(_best_value_text(best)),
                page.esc(_tested_text(run, best)),
                page.esc(_best_config_text(run, best)),
                page.esc(page.fmt_seconds(run.summary.wall_s if run.summary else None) or "not finished"),
                page.esc(page.fmt_number(examples_processed(run))),
            ]
        )
    return page.section(
        "runs",
        "The runs",
        page.table(headers, rows, numeric={4, 5, 7, 8}, raw=set(range(len(headers))), column_classes={0: "run"}),
        page.note(
            "Best: a finished run's best trial (summary.json), else the best completed trial so far. "
            "Test accuracy: the model the run shipped, tested once at its end (the best trial's own, or "
            "certification's refit). Wall time is summary.json's; examples processed are training examples "
            "summed over every trial."
        ),
    )


def _data_lines(run: Run) -> list[str]:
    sizes = run.info.data.sizes
    return [
        str(run.info.source or "unknown source"),
        f"fingerprint {run.info.fingerprint or 'unknown'}",
        ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in sizes.items()),
    ]


def _tested_text(run: Run, best: dict | None) -> str:
    """The shipped model's test accuracy (summary.json's exported: the best trial's own model, or
    certification's refit), else the best trial's; a run without a test split's result, its
    cross-validated estimate."""
    if run.summary is not None and run.summary.result:
        return f"{run.summary.result} ({NO_TEST_SPLIT})"
    exported = run.summary.exported if run.summary is not None else None
    if exported is not None and exported.test_accuracy is not None:
        refit = f" (certified, refit seed {exported.seed})" if exported.refit else ""
        return page.fmt_accuracy(exported.test_accuracy) + refit
    return page.fmt_accuracy(best["test_accuracy"]) if best else ""


def _epochs(count) -> str:
    """A budget's epochs: "1 epoch", "3 epochs", "? epochs" where it is not recorded."""
    return quantity(count, "epoch") if isinstance(count, int) else "? epochs"


def _budget_text(run: Run) -> str:
    used = run.summary.budget if run.summary and run.summary.budget else None
    budget = {**run.info.search_config, **(used.to_json(run.objective) if used else {})}
    minutes, examples = budget.get("time_budget_min"), budget.get("budget_examples")
    return ", ".join(
        [
            f"{budget.get('trials', '?')} trials",
            f"at most {_epochs(budget.get('max_epochs'))} each",
            f"time budget {minutes:g} min" if isinstance(minutes, (int, float)) else "no time budget",
            f"examples budget {examples:,}" if isinstance(examples, int) else "no examples budget",
        ]
    )


def _counts_text(run: Run) -> str:
    counts = run.trials["state"].value_counts().to_dict()
    return f"{len(run.trials)}: " + ", ".join(f"{n} {state_label(s)}" for s, n in sorted(counts.items()))


def _best_value_text(best: dict | None) -> str:
    if best is None:
        return "no trial with a value yet"
    return page.fmt_accuracy(best["value"]) + ("" if best["final"] else " (so far)")


def _best_config_text(run: Run, best: dict | None) -> str:
    if best is None:
        return ""
    config = ", ".join(f"{k}={format_value(k, v)}" for k, v in best["params"].items())
    return f"{best['trial_id']}: {config}"


def examples_processed(run: Run) -> float:
    """Training examples processed by the whole run: summary.json's count, else the trials' sum so far."""
    used = run.summary.budget.examples_used if run.summary and run.summary.budget else None
    if isinstance(used, (int, float)):
        return float(used)
    return float(run.trials["examples"].fillna(0).sum())


# ---------------------------------------------------------------- on the test split


def test_differences(first: Run, other: Run) -> tuple[list[Interval], str]:
    """The first run's shipped model minus the other's on their shared test split, then the
    certified means' difference where both certified (paired bootstrap, verdicts: reports.claims);
    or ([], why they cannot be compared)."""
    untested = next((run for run in (first, other) if run.untested), None)
    if untested is not None:
        return [], f"{untested.run_dir} has {NO_TEST_SPLIT}: its result is cross-validated (in the table above)"
    if not first.info.fingerprint or first.info.fingerprint != other.info.fingerprint:
        return [], "they were not tested on the same data (their data fingerprints differ)"
    missing = [run for run in (first, other) if predictions.EXPORTED not in run.predictions]
    if missing:
        return [], f"{missing[0].run_dir} keeps no test predictions of its export (it was exported before they were kept)"
    labels, shipped = first.predictions[predictions.EXPORTED]
    other_labels, other_shipped = other.predictions[predictions.EXPORTED]
    if list(labels) != list(other_labels):
        return [], "their test predictions are not of the same test examples"
    labels = np.asarray(labels)
    classes = len(analysis.class_names(first))
    found = [claims.difference(labels, [np.asarray(shipped)], [np.asarray(other_shipped)], classes=classes)]
    seeds = [_certified_seeds(run) for run in (first, other)]
    if all(seeds):
        found.append(claims.difference(labels, seeds[0], seeds[1], classes=classes))
    return found, ""


def _certified_seeds(run: Run) -> list[np.ndarray]:
    """The test predictions of the seeds whose mean is the run's certified figure; [] unless it keeps every one."""
    names = versus.certified_names(run.summary)
    return [np.asarray(run.predictions[n][1]) for n in names] if names and all(n in run.predictions for n in names) else []


def _on_test(runs: list[Run], names: list[str]) -> page.Section:
    rows = []
    for name, run in zip(names[1:], runs[1:], strict=True):
        found, why = test_differences(runs[0], run)
        if not found:
            rows.append([f"{names[0]} − {name}", f"not compared: {why}", ""])
            continue
        rows.append([f"{names[0]} − {name}", claims.points(found[0]), claims.points(found[1]) if len(found) > 1 else ""])
    headers = ["runs", "shipped models' test accuracy, points [95% interval], verdict", "certified means' difference"]
    return page.section(
        "on-test",
        "The shipped models on the test split",
        page.table(headers, rows),
        page.note(
            "Differences of test accuracy between the first run and each other, computed from both runs' predictions "
            f"of the same test examples: the paired bootstrap over them ({claims.RESAMPLES:,} resamples; Dror et al. 2018), "
            "McNemar's exact test between the two shipped models. A difference is "
            f"{claims.AHEAD} or {claims.BEHIND} when its interval excludes 0, else {claims.UNDECIDED}."
        ),
    )


# ---------------------------------------------------------------- progress and fronts


def curves(runs: list[Run], names: list[str]) -> dict[str, pd.DataFrame]:
    """Per run, its trials in order of completion: the examples processed until then, the minutes since
    the run started, each value and the best so far (only trials that count as best move it)."""
    return {name: analysis.progress(run)[1] for name, run in zip(names, runs, strict=True)}


def _progress(runs: list[Run], names: list[str], metric: str, add) -> page.Section:
    picture = figures.comparison_progress_figure(curves(runs, names), metric)
    return page.section(
        "progress",
        "Best so far against examples processed and wall time",
        page.figure(
            add("progress.png", picture),
            "best validation accuracy so far of every run against training examples processed and against wall time",
            "no run has a trial with a value yet",
        ),
        page.note(
            "Each run's trials in the order they ended; examples processed are summed over "
            "the trials that ended until then. Any trial that ended with a value can be the best, "
            "stopped early or not (the harness's ranking); hollow points, still running, diverged "
            "or errored, never move a run's line."
        ),
    )


def _fronts(runs: list[Run], names: list[str], metric: str, add) -> page.Section:
    points = {
        name: pd.DataFrame({"examples_per_s": run.trials["examples_per_s"], "value": run.trials.get(run.metric, float("nan"))})
        for name, run in zip(names, runs, strict=True)
    }
    return page.section(
        "pareto",
        "Accuracy vs throughput",
        page.figure(
            add("pareto.png", figures.comparison_pareto_figure(points, metric)),
            "validation accuracy against training throughput of every run, with each run's Pareto front",
            "no run has a trial with a value and a throughput yet",
        ),
        page.note("A run's front joins its trials that no other trial of the same run beats on both accuracy and examples/s."),
    )


# ---------------------------------------------------------------- configurations


def configuration_rows(runs: list[Run]) -> tuple[list[str], list[str], dict[str, list[str]]]:
    """The best trials' hyperparameters: (names that differ, names that match, name → a cell per run).

    A cell is the value as people read it, "(pinned)" after a value the run held fixed, and a
    dash where the run has no such hyperparameter; values are compared without the mark.
    """
    bests = [analysis.best_trial(run) for run in runs]
    order: list[str] = []
    for run, best in zip(runs, bests, strict=True):
        for name in [p.name for p in run.space] + list((best or {}).get("params") or {}):
            if name not in order:
                order.append(name)
    differ, match, cells = [], [], {}
    for name in order:
        values = [format_value(name, best["params"][name]) if best and name in best["params"] else NO_VALUE for best in bests]
        pinned = [name in analysis.pinned(run.space) for run in runs]
        cells[name] = [v + (" (pinned)" if p and v != NO_VALUE else "") for v, p in zip(values, pinned, strict=True)]
        (match if len(set(values)) == 1 else differ).append(name)
    return differ, match, cells


def _configurations(runs: list[Run], names: list[str]) -> page.Section:
    differ, match, cells = configuration_rows(runs)
    bests = [analysis.best_trial(run) for run in runs]
    headers = ["hyperparameter"] + [
        f"{name} ({best['trial_id']})" if best else name for name, best in zip(names, bests, strict=True)
    ]
    parts = [page.paragraph("The hyperparameters of each run's best trial.")]
    parts += [
        "<h3>Different</h3>",
        page.table(headers, [[n, *cells[n]] for n in differ]) if differ else page.note("none: the best trials agree"),
    ]
    parts += [
        "<h3>The same in every run</h3>",
        page.table(headers, [[n, *cells[n]] for n in match]) if match else page.note("none"),
    ]
    return page.section("configs", "Best configurations compared", *parts)
