"""How far a test figure can be trusted: intervals for test scores, and for the difference between
two models scored on the same test examples, with a plain verdict.

Pure NumPy and SciPy over per-example test predictions (`runfiles.predictions`):

- one model's accuracy: the Wilson score interval (Wilson 1927, "Probable inference, the law of
  succession, and statistical inference", JASA 22), scipy's `BinomTestResult.proportion_ci`;
- anything else (macro-F1, a mean over seeds, a difference of two models): the percentile
  bootstrap over test examples (Efron & Tibshirani 1993, "An Introduction to the Bootstrap",
  ch. 13), paired where two models are compared, as Dror et al. 2018 ("The Hitchhiker's Guide
  to Testing Statistical Significance in Natural Language Processing", ACL) recommend for NLP
  metrics. Resampling n examples with replacement draws the counts of the distinct rows
  (true class, each model's prediction) from a multinomial with their observed shares, so the
  bootstrap runs on those counts, not on n indices per resample: the same distribution, exactly;
- two single models' accuracies: McNemar's exact test on the examples where they disagree
  (McNemar 1947; scipy's `binomtest` on the discordant pairs), a p-value beside the interval.

A difference's verdict is "ahead" when its interval lies above 0, "behind" when below, and
otherwise "not distinguishable at this test size".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

LEVEL = 0.95
"""The confidence level of every interval."""
RESAMPLES = 10_000
"""Bootstrap resamples (Dror et al. 2018 and Koehn 2004 use 1,000 to 10,000)."""
SEED = 0
"""The bootstrap's seed: the same predictions give the same interval."""
METRICS = ("accuracy", "macro_f1")
"""The test scores an interval is computed for."""
AHEAD, BEHIND, UNDECIDED = "ahead", "behind", "not distinguishable at this test size"
"""The verdicts on a difference."""
CV_UNDECIDED = "not distinguishable on these labelled examples"
"""UNDECIDED for a difference paired over cross-validation's out-of-fold predictions (no test split)."""
_CHUNK = 500
"""Resamples drawn at once (memory: _CHUNK x distinct rows counts)."""


@dataclass(frozen=True)
class Interval:
    """A test score (or a difference of two) with its confidence interval, as fractions."""

    value: float
    """The observed score on the test split (a difference: the first model's minus the second's)."""
    low: float
    """The interval's lower end."""
    high: float
    """The interval's upper end."""
    method: str
    """How it was computed: "Wilson score" or "paired bootstrap" or "bootstrap"."""
    p_value: float | None = None
    """For a difference of two single models' accuracies, McNemar's exact test's two-sided p-value."""

    @property
    def verdict(self) -> str:
        """For a difference: AHEAD, BEHIND or UNDECIDED, by where its interval lies against 0."""
        return verdict(self.low, self.high)


def verdict(low: float, high: float) -> str:
    """AHEAD when the interval [low, high] of a difference lies above 0, BEHIND when below,
    UNDECIDED when it holds 0."""
    if low > 0:
        return AHEAD
    if high < 0:
        return BEHIND
    return UNDECIDED


def wilson(correct: int, total: int, level: float = LEVEL) -> tuple[float, float]:
    """The Wilson score interval (low, high) of a proportion `correct` / `total` (Wilson 1927);
    ValueError for total < 1."""
    if total < 1:
        raise ValueError(f"a proportion needs at least one example, got {total}")
    found = binomtest(int(correct), int(total)).proportion_ci(confidence_level=level, method="wilson")
    return float(found.low), float(found.high)


def mcnemar(labels: np.ndarray, first: np.ndarray, second: np.ndarray) -> float:
    """McNemar's exact two-sided p-value for two models' predictions [n] of the same test
    examples' `labels` [n]: a binomial test of the examples only the first gets right among those
    exactly one of them does (1.0 when they never disagree on being right)."""
    first_only = int(np.sum((first == labels) & (second != labels)))
    second_only = int(np.sum((first != labels) & (second == labels)))
    if first_only + second_only == 0:
        return 1.0
    return float(binomtest(first_only, first_only + second_only, 0.5).pvalue)


def score(
    labels: np.ndarray, members: list[np.ndarray], metric: str = "accuracy", classes: int = 0, level: float = LEVEL
) -> Interval:
    """The test `metric` (METRICS) of a model, or the mean over `members` (its seeds' models'
    predictions [n] each), with its interval: Wilson's for one model's accuracy, else the percentile
    bootstrap over test examples. Macro-F1 averages over `classes` classes (at least those seen)."""
    if metric == "accuracy" and len(members) == 1:
        correct = int(np.sum(members[0] == labels))
        return Interval(correct / len(labels), *wilson(correct, len(labels), level), method="Wilson score")
    rows, shares, classes = _distinct(labels, members, classes)
    observed = float(_statistic(rows, shares[None, :], classes, range(len(members)), metric)[0])
    resampled = np.concatenate(
        [_statistic(rows, counts, classes, range(len(members)), metric) for counts in _resampled(shares, len(labels))]
    )
    low, high = _percentiles(resampled, level)
    return Interval(observed, low, high, method="bootstrap")


def difference(
    labels: np.ndarray,
    first: list[np.ndarray],
    second: list[np.ndarray],
    metric: str = "accuracy",
    classes: int = 0,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> Interval:
    """The first model's test `metric` minus the second's (each the mean over its members' [n]
    predictions: a model's seeds, or one model), with the paired bootstrap's percentile interval
    over test examples (`resamples`, seeded) and, for two single models' accuracies, McNemar's p.
    Macro-F1 averages over `classes` classes (at least those seen)."""
    members = [*first, *second]
    rows, shares, classes = _distinct(labels, members, classes)
    ones, twos = range(len(first)), range(len(first), len(members))

    def delta(counts: np.ndarray) -> np.ndarray:
        return _statistic(rows, counts, classes, ones, metric) - _statistic(rows, counts, classes, twos, metric)

    observed = float(delta(shares[None, :])[0])
    resampled = np.concatenate([delta(counts) for counts in _resampled(shares, len(labels), resamples, seed)])
    low, high = _percentiles(resampled, level)
    single = metric == "accuracy" and len(first) == len(second) == 1
    p_value = mcnemar(labels, first[0], second[0]) if single else None
    return Interval(observed, low, high, method="paired bootstrap", p_value=p_value)


def _distinct(labels: np.ndarray, members: list[np.ndarray], classes: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(the distinct rows [k, 1 + members] of (true class, each member's prediction), each row's
    share of the test examples [k], the number of classes: `classes`, or more where seen)."""
    table = np.column_stack([np.asarray(labels, dtype=np.int64), *(np.asarray(m, dtype=np.int64) for m in members)])
    rows, counts = np.unique(table, axis=0, return_counts=True)
    return rows, counts / len(table), max(int(classes), int(table.max()) + 1)


def _resampled(shares: np.ndarray, n: int, resamples: int = RESAMPLES, seed: int = SEED):
    """Chunks [r, k] of bootstrap resamples' row counts: n draws with replacement of the test
    examples, as multinomial counts of the distinct rows."""
    rng = np.random.default_rng(seed)
    for start in range(0, resamples, _CHUNK):
        yield rng.multinomial(n, shares, size=min(_CHUNK, resamples - start)).astype(np.float64)


def _statistic(rows: np.ndarray, counts: np.ndarray, classes: int, members: range, metric: str) -> np.ndarray:
    """The mean over `members` of `metric`, for each resample's row counts [r, k]: [r]."""
    return np.mean([_metric(_confusions(rows, counts, classes, m), metric) for m in members], axis=0)


def _confusions(rows: np.ndarray, counts: np.ndarray, classes: int, member: int) -> np.ndarray:
    """Confusion matrices [r, true class, predicted class] of one member from row counts [r, k]."""
    cell = rows[:, 0] * classes + rows[:, 1 + member]
    onehot = np.zeros((len(rows), classes * classes))
    onehot[np.arange(len(rows)), cell] = 1.0
    return (counts @ onehot).reshape(-1, classes, classes)


def _metric(confusion: np.ndarray, metric: str) -> np.ndarray:
    """Accuracy, or macro-F1 as scikit-learn's f1_score(average="macro", zero_division=0) over
    every class, of confusion matrices [r, c, c]: [r]."""
    true_positives = np.diagonal(confusion, axis1=1, axis2=2)
    if metric == "accuracy":
        return true_positives.sum(axis=1) / confusion.sum(axis=(1, 2))
    if metric != "macro_f1":
        raise ValueError(f"no interval for metric {metric!r}: expected one of {', '.join(METRICS)}")
    denominator = confusion.sum(axis=1) + confusion.sum(axis=2)  # 2 tp + fn + fp
    f1 = np.divide(2 * true_positives, denominator, out=np.zeros_like(true_positives), where=denominator > 0)
    return f1.mean(axis=1)


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def signed(difference: float) -> str:
    """A difference (a fraction) in points to one decimal with its sign, "+1.2" or "-0.3"; "0.0"
    where it rounds to zero, from either side (never "-0.0" or "+0.0")."""
    text = f"{difference * 100:+.1f}"
    return "0.0" if float(text) == 0 else text


def points(interval: Interval, undecided: str = UNDECIDED) -> str:
    """A difference as the page and the terminal show it: "+1.2 points [−0.3, +2.7], ahead";
    `undecided` says an interval holding 0 (UNDECIDED, of a test split; CV_UNDECIDED, of folds)."""
    if math.isnan(interval.value):
        return ""
    verdict = undecided if interval.verdict == UNDECIDED else interval.verdict
    return f"{signed(interval.value)} points [{signed(interval.low)}, {signed(interval.high)}], {verdict}" + (
        "" if interval.p_value is None else f" (McNemar p = {interval.p_value:.2g})"
    )


def percent(interval: Interval) -> str:
    """A score as the page and the terminal show it: "84.12% [83.40%, 84.83%]"."""
    return f"{interval.value:.2%} [{interval.low:.2%}, {interval.high:.2%}]"
