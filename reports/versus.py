"""What the test split says of the model that ships: its test score and its certified mean, each with
its interval, and its difference from each other model tested on the same test examples (the
tutorial's models trained its way, the linear baseline), with a verdict (`reports.claims`).

Only test figures are compared here, each from the per-example predictions the run directory
keeps (`runfiles.predictions`); validation figures inform the search and stay in its tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reports import claims
from reports.claims import Interval
from runfiles import predictions
from runfiles.documents import Baseline, CertifiedConfig, Summary
from runfiles.layout import quantity

Found = dict[str, tuple[list[int], list[int]]]
"""Predictions by model name, as `runfiles.predictions.read_all` reads them: {name: (labels, predicted)}."""


@dataclass(frozen=True)
class Versus:
    """The model that ships against one other model on the same test examples."""

    name: str
    """The other model's predictions' name (a tutorial preset, or `runfiles.predictions.LINEAR`)."""
    score: Interval
    """Its own test score, with its interval."""
    shipped: Interval | None
    """The shipped model's score minus its, with the paired interval and verdict."""
    certified: Interval | None
    """The certified mean over seeds minus its score, with the paired interval and verdict; None without certification."""


@dataclass(frozen=True)
class Claims:
    """Every claim the run can make from its test predictions, for one metric."""

    metric: str
    """"accuracy" or "macro_f1" (`reports.claims.METRICS`)."""
    examples: int
    """Test examples every figure is computed on."""
    shipped: Interval
    """The exported model's test score, with its interval."""
    certified: Interval | None
    """The mean test score over the certified seeds (the refits', where there are), with its interval."""
    certified_seeds: list[str]
    """The predictions' names whose mean `certified` is."""
    others: list[Versus]
    """The other models tested on the same examples, in the order baseline.json lists them, the linear one last."""


def claims_of(
    found: Found, summary: Summary | None, baseline: Baseline | None, metric: str = "accuracy", classes: int = 0
) -> Claims | None:
    """The claims of `metric` (over `classes` classes) from the predictions `found`; None without
    the exported model's. Models whose predictions cover other test examples (another split) are left out."""
    if predictions.EXPORTED not in found:
        return None
    labels = np.asarray(found[predictions.EXPORTED][0])
    same = {name: np.asarray(p) for name, (y, p) in found.items() if len(y) == len(labels) and np.array_equal(y, labels)}
    shipped = [same[predictions.EXPORTED]]
    seeds = [name for name in certified_names(summary) if name in same]
    if seeds and len(seeds) < len(certified_names(summary)):
        seeds = []  # a mean over only some seeds would be another figure than the certified one
    certified = [same[name] for name in seeds]
    others = [name for name in (*(baseline.models if baseline else {}), predictions.LINEAR) if name in same]
    return Claims(
        metric=metric,
        examples=len(labels),
        shipped=claims.score(labels, shipped, metric, classes),
        certified=claims.score(labels, certified, metric, classes) if certified else None,
        certified_seeds=seeds,
        others=[
            Versus(
                name=name,
                score=claims.score(labels, [same[name]], metric, classes),
                shipped=claims.difference(labels, shipped, [same[name]], metric, classes),
                certified=claims.difference(labels, certified, [same[name]], metric, classes) if certified else None,
            )
            for name in others
        ],
    )


@dataclass(frozen=True)
class Part:
    """One row of the ablation: the exported configuration, or one of its parts alone, over certification's seeds."""

    name: str
    """What it is, as the page names it."""
    certified: CertifiedConfig
    """Its certification over seeds (summary.json)."""
    score: Interval | None
    """Its mean test accuracy over the seeds, with its interval; None without every seed's predictions."""
    versus_whole: Interval | None
    """Its mean test accuracy minus the whole configuration's, paired over test examples; None for the whole."""


WHOLE = "the BiLSTM with the linear part (certified)"
"""The exported configuration, both parts, as the ablation's table names it."""
PARTS = {"network": "the BiLSTM network alone", "linear": "the linear part alone"}
"""The ablation's parts (search.certify.ABLATION_PARTS) as the page names them."""


def ablation_parts(found: Found, summary: Summary | None, classes: int = 0) -> list[Part]:
    """The exported configuration with both parts, then its network alone and its linear part alone,
    each over certification's seeds (summary.json's certification.ablation); [] without an ablation."""
    certification = summary.certification if summary else None
    ablation = certification.ablation if certification else None
    whole = certification.chosen if certification else None
    if ablation is None or whole is None or ablation.network is None or ablation.linear is None:
        return []
    rows = {WHOLE: (whole, [predictions.certified(whole.trial_id, s.seed) for s in whole.seeds])}
    for part, certified in (("network", ablation.network), ("linear", ablation.linear)):
        rows[PARTS[part]] = (certified, [predictions.ablation(part, s.seed) for s in certified.seeds])
    labels = np.asarray(found[predictions.EXPORTED][0]) if predictions.EXPORTED in found else np.empty(0)
    seeds = {name: _members(found, names, labels) for name, (_, names) in rows.items()}
    return [
        Part(
            name,
            certified,
            claims.score(labels, seeds[name], classes=classes) if seeds[name] else None,
            claims.difference(labels, seeds[name], seeds[WHOLE], classes=classes)
            if name != WHOLE and seeds[name] and seeds[WHOLE]
            else None,
        )
        for name, (certified, _) in rows.items()
    ]


def _members(found: Found, names: list[str], labels: np.ndarray) -> list[np.ndarray]:
    """The predictions [n] of every model `names`, when each was kept for the test examples of `labels`; else []."""
    same = [name in found and np.array_equal(found[name][0], labels) for name in names]
    return [np.asarray(found[name][1]) for name in names] if names and all(same) else []


def certified_names(summary: Summary | None) -> list[str]:
    """The predictions' names of the certified seeds whose mean is the headline: the refits', or
    without a refit the exported configuration's certification seeds; [] without certification."""
    certification = summary.certification if summary else None
    if certification is None:
        return []
    if certification.refit is not None:
        return [predictions.refit(s.seed) for s in certification.refit.seeds]
    chosen = certification.chosen
    return [predictions.certified(chosen.trial_id, s.seed) for s in chosen.seeds] if chosen else []


def terminal_lines(
    found: Found, summary: Summary | None, baseline: Baseline | None, metric: str = "accuracy", classes: int = 0
) -> list[str]:
    """The run's last lines: the shipped model's test score and the certified mean with their
    intervals, then each comparison's difference, interval and verdict; [] without test predictions."""
    told = claims_of(found, summary, baseline, metric, classes)
    if told is None:
        return []
    what = "test accuracy" if metric == "accuracy" else "test macro-F1"
    lines = [f"shipped     {what} {claims.percent(told.shipped)} on {told.examples:,} test examples (95% interval)"]
    if told.certified is not None:
        seeds = quantity(len(told.certified_seeds), "seed")
        lines.append(f"certified   mean {what} over its {seeds} {claims.percent(told.certified)}")
    for other in told.others:
        line = f"vs          {other.name}: {claims.percent(other.score)}; shipped {claims.points(other.shipped)}"
        if other.certified is not None:
            line += f"; certified mean {claims.points(other.certified)}"
        lines.append(line)
    return lines


def cross_validated_versus_linear(found: Found, summary: Summary | None) -> tuple[Interval, Interval] | None:
    """On a run without a test split: the linear baseline's out-of-fold accuracy on the run's recorded
    folds, and the exported configuration's (the mean over its seeds) minus it, paired over the
    labelled examples (`reports.claims.difference`); None without both's out-of-fold predictions."""
    chosen = summary.certification.cross_validated if summary and summary.certification else None
    if chosen is None or predictions.CV_LINEAR not in found:
        return None
    names = [predictions.cross_validated(chosen.trial_id, seed) for seed in chosen.seeds]
    labels, linear = (np.asarray(v) for v in found[predictions.CV_LINEAR])
    if not all(name in found and np.array_equal(found[name][0], labels) for name in names):
        return None
    mine = [np.asarray(found[name][1]) for name in names]
    return claims.score(labels, [linear]), claims.difference(labels, mine, [linear])


def cross_validated_lines(found: Found, summary: Summary | None) -> list[str]:
    """The last lines of a run without a test split: its result, the cross-validated estimate, and
    its difference from the linear baseline on the same folds; [] for a run with a test split."""
    if summary is None or not summary.result:
        return []
    lines = [f"result      {summary.result} ({summary.exported.trial_id if summary.exported else ''}; no test split)"]
    versus = cross_validated_versus_linear(found, summary)
    if versus is not None:
        linear, difference = versus
        paired = claims.points(difference, claims.CV_UNDECIDED)
        lines.append(f"vs          linear: {claims.percent(linear)} cross-validated on the same folds; {paired}")
    return lines
