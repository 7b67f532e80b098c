"""Claims that hold up: reports.claims's intervals and verdicts against known cases (closed forms,
scikit-learn, a hand count), reports.versus's choice of what is compared, and search.crossval's folds."""

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score

from reports import claims


def test_wilson_matches_its_closed_form():
    correct, total, z = 853, 1000, 1.959963984540054
    share = correct / total
    centre = (share + z * z / (2 * total)) / (1 + z * z / total)
    half = z / (1 + z * z / total) * math.sqrt(share * (1 - share) / total + z * z / (4 * total * total))
    assert claims.wilson(correct, total) == pytest.approx((centre - half, centre + half), abs=1e-9)
    found = claims.score(np.ones(1000, int), [np.r_[np.ones(853, int), np.zeros(147, int)]])
    assert (found.value, found.low, found.high) == pytest.approx((share, centre - half, centre + half), abs=1e-9)


def test_mcnemar_is_a_binomial_test_of_the_discordant_pairs_counted_by_hand():
    labels = np.zeros(100, int)
    first = np.r_[np.zeros(70, int), np.ones(30, int)]  # right on 0..69
    second = np.r_[np.ones(10, int), np.zeros(80, int), np.ones(10, int)]  # right on 10..89
    # only the first is right on 0..9 (10); only the second on 70..89 (20): p = 2 P(X <= 10), X ~ B(30, 1/2)
    by_hand = 2 * sum(math.comb(30, k) for k in range(11)) / 2**30
    assert claims.mcnemar(labels, first, second) == pytest.approx(by_hand)
    assert claims.mcnemar(labels, first, first) == 1.0


def _pair(n: int, first_right: float, second_right: float, seed: int = 1):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    first = np.where(rng.random(n) < first_right, labels, 1 - labels)
    second = np.where(rng.random(n) < second_right, labels, 1 - labels)
    return labels, first, second


def test_the_paired_bootstrap_centres_on_the_difference_with_the_normal_width():
    labels, first, second = _pair(4000, 0.85, 0.83)
    found = claims.difference(labels, [first], [second])
    d = (first == labels).astype(float) - (second == labels)
    assert found.value == pytest.approx(d.mean())
    assert (found.low + found.high) / 2 == pytest.approx(d.mean(), abs=0.002)
    normal_half = 1.96 * d.std(ddof=1) / math.sqrt(len(d))
    assert (found.high - found.low) / 2 == pytest.approx(normal_half, rel=0.05)
    assert found.p_value == claims.mcnemar(labels, first, second)
    assert claims.difference(labels, [first], [second]) == found  # seeded


def test_macro_f1_and_means_over_seeds_are_scikit_learns():
    labels, first, second = _pair(600, 0.8, 0.7)
    third = np.where(np.arange(600) % 3 == 0, 1 - first, first)
    found = claims.difference(labels, [first, third], [second], metric="macro_f1", resamples=200)
    f1 = [f1_score(labels, p, average="macro") for p in (first, third, second)]
    assert found.value == pytest.approx((f1[0] + f1[1]) / 2 - f1[2])
    assert found.p_value is None
    assert found.low < found.value < found.high
    mean = claims.score(labels, [first, third], classes=3, metric="macro_f1")
    assert mean.value == pytest.approx(np.mean([f1_score(labels, p, labels=[0, 1, 2], average="macro") for p in (first, third)]))


@pytest.mark.parametrize(
    ("first_right", "second_right", "expected"),
    [(0.90, 0.80, claims.AHEAD), (0.80, 0.90, claims.BEHIND), (0.85, 0.85, claims.UNDECIDED)],
)
def test_each_verdict(first_right, second_right, expected):
    labels, first, second = _pair(1500, first_right, second_right)
    assert claims.difference(labels, [first], [second], resamples=2000).verdict == expected


def test_the_claims_of_a_run_compare_only_models_tested_on_the_same_examples():
    from reports import versus
    from runfiles import predictions
    from runfiles.documents import Baseline, BaselineModel, Certification, CertifiedConfig, CertifyRow, Summary

    labels, shipped, linear = _pair(300, 0.9, 0.8)
    seeds = [np.where(np.arange(300) % k == 0, 1 - shipped, shipped) for k in (5, 7)]
    chosen = CertifiedConfig(trial_id="trial_0002", seeds=[CertifyRow(seed=1), CertifyRow(seed=2)])
    summary = Summary(certification=Certification(configurations=[chosen], exported="trial_0002"))
    found = {predictions.EXPORTED: (labels, shipped), predictions.LINEAR: (labels, linear)}
    found |= {predictions.certified("trial_0002", s): (labels, p) for s, p in zip((1, 2), seeds, strict=True)}
    found["tutorial-single"] = (labels[::-1], shipped)  # another split's: left out
    baseline = Baseline(models={"tutorial-single": BaselineModel()})

    told = versus.claims_of(found, summary, baseline, "macro_f1", classes=2)
    assert [v.name for v in told.others] == [predictions.LINEAR] and told.metric == "macro_f1"
    assert told.certified_seeds == [predictions.certified("trial_0002", s) for s in (1, 2)]
    f1 = [f1_score(labels, p, average="macro") for p in (shipped, *seeds, linear)]
    assert told.shipped.value == pytest.approx(f1[0]) and told.certified.value == pytest.approx((f1[1] + f1[2]) / 2)
    assert told.others[0].shipped.value == pytest.approx(f1[0] - f1[3]) and told.others[0].shipped.verdict == claims.AHEAD
    del found[predictions.certified("trial_0002", 2)]  # a mean over some seeds is not the certified figure
    assert versus.claims_of(found, summary, baseline).certified is None
    assert versus.claims_of({}, summary, baseline) is None


def test_cv_folds_are_stratified_disjoint_covering_and_reproducible():
    from search.crossval import stratified_folds

    labels = np.repeat([0, 1, 2], [50, 30, 20])[np.random.default_rng(3).permutation(100)]
    folds = stratified_folds(labels, 10, seed=7)
    assert sorted(set(folds)) == list(range(10)) and len(folds) == len(labels)  # every example in exactly one fold
    for fold in range(10):
        assert np.bincount(labels[folds == fold], minlength=3).tolist() == [5, 3, 2]  # each class's share in each fold
    assert np.array_equal(stratified_folds(labels, 10, seed=7), folds)  # the seed gives them again
    assert not np.array_equal(stratified_folds(labels, 10, seed=8), folds)


def test_a_difference_that_rounds_to_zero_reads_0_0_points_never_signed():
    interval = claims.Interval(-0.0004, -0.0123, 0.00049, method="paired bootstrap")
    assert claims.points(interval) == f"0.0 points [-1.2, 0.0], {claims.UNDECIDED}"
    assert claims.points(claims.Interval(0.012, 0.0, 0.025, method="paired bootstrap")).startswith("+1.2 points [0.0, +2.5]")
    # paired over cross-validation's out-of-fold predictions there is no test split to name
    assert claims.points(interval, claims.CV_UNDECIDED) == f"0.0 points [-1.2, 0.0], {claims.CV_UNDECIDED}"
    assert claims.CV_UNDECIDED == "not distinguishable on these labelled examples"
    assert claims.points(claims.Interval(0.02, 0.01, 0.03, method="paired bootstrap"), claims.CV_UNDECIDED).endswith(claims.AHEAD)


def test_counts_are_said_with_their_noun_singular_or_plural():
    from runfiles.layout import quantity

    assert (quantity(1, "seed"), quantity(3, "seed"), quantity(0, "epoch"), quantity(1000, "epoch")) == (
        "1 seed",
        "3 seeds",
        "0 epochs",
        "1,000 epochs",
    )


def test_the_linear_baselines_out_of_fold_predictions_count_only_on_the_folds_they_were_made_on():
    from runfiles import predictions
    from runfiles.documents import Baseline, Certification, CrossValidated, CrossValidation, LinearBaseline, Summary

    folds = CrossValidation(k=3, configurations=[CrossValidated(trial_id="trial_0001", seeds=[1, 2])])
    summary = Summary(certification=Certification(exported="trial_0001", cross_validation=folds))
    linear = Baseline(linear=LinearBaseline(c=1.0, cv_folds=3))
    assert predictions.recorded(summary, linear) == {"cv-trial_0001-seed-1", "cv-trial_0001-seed-2", predictions.CV_LINEAR}
    folds.k = 5  # certified again with --cv 5: other folds than the linear baseline's
    assert predictions.recorded(summary, linear) == {"cv-trial_0001-seed-1", "cv-trial_0001-seed-2"}
    assert predictions.recorded(None, None) == set()
