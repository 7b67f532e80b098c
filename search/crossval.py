"""K-fold cross-validation of the top configurations over the labelled training data (train + validation).

    python -m search.certify RUN_DIR --cv 10

The labelled training examples are split into K stratified folds (scikit-learn's
StratifiedKFold, shuffled with the run's seed; DIR/cv_folds.csv records each example's fold).
Each top configuration, with each certification seed, is trained on K - 1 folds for the epochs
at which its trial peaked, on its trial's learning-rate schedule, and its last epoch's model
predicts the held-out fold: nothing is chosen on it. The out-of-fold predictions of every
labelled example give the CV estimate, the mean over seeds of out-of-fold accuracy, with its
95% interval (reports.claims: the bootstrap over examples; it leaves out the variance that the
folds' overlapping training sets add, for which no unbiased estimator exists: Bengio &
Grandvalet 2004). The vocabulary is the run's, built from its training split. Kim (2014) and
Wang & Manning (2012) report 10-fold CV on MR, CR, Subj and MPQA; with a table read as one file
and --test-fraction 0 the CV estimate is the run's result. The search itself is unchanged:
trials still rank on their validation split.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from reports import claims
from runfiles import predictions
from runfiles.documents import CrossValidated, CrossValidation
from runfiles.io import write_rows
from runfiles.layout import RunDir, quantity
from search.data import Prepared
from search.retrain import Job, run_jobs


def stratified_folds(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The fold (0 .. k-1) of each example [n] of `labels` [n]: k stratified folds, shuffled with
    `seed` (StratifiedKFold); ValueError when a class has fewer than k examples."""
    from sklearn.model_selection import StratifiedKFold

    folds = np.empty(len(labels), dtype=np.int64)
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for fold, (_, held) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        folds[held] = fold
    return folds


def write_folds(run_dir: RunDir, folds: np.ndarray) -> None:
    """DIR/cv_folds.csv: `index` (the example's place in train + validation, in that order) and its `fold`."""
    write_rows(run_dir.cv_folds_csv, ["index", "fold"], ({"index": i, "fold": int(f)} for i, f in enumerate(folds)))


def fold_data(prepared: Prepared, folds: np.ndarray, fold: int) -> Prepared:
    """The labelled examples outside `fold` to train on, and `fold` as both the split validated
    after each epoch and the split predicted at the end."""
    labelled = prepared.splits["train"].plus(prepared.splits["val"])
    held = labelled.subset(np.flatnonzero(folds == fold))
    splits = {"train": labelled.subset(np.flatnonzero(folds != fold)), "val": held, "test": held}
    return Prepared(splits, prepared.vocabulary, prepared.fingerprint, prepared.facts)


def cross_validate(run_dir: RunDir, prepared: Prepared, jobs: list[Job], k: int, seed: int, resources, say) -> CrossValidation:
    """Each job (a top configuration with one seed) trained on k - 1 folds and tested on the
    held-out one, fold by fold (see the module's docstring); the out-of-fold predictions go to
    DIR/predictions/cv-TRIAL-seed-S.csv, the folds to DIR/cv_folds.csv."""
    started = time.time()
    labels = np.concatenate([prepared.splits["train"].labels, prepared.splits["val"].labels]).astype(np.int64)
    folds = stratified_folds(labels, k, seed)
    write_folds(run_dir, folds)
    jobs = [dataclasses.replace(job, keep="last") for job in jobs]
    out_of_fold = [np.empty(len(labels), dtype=np.int64) for _ in jobs]
    scores: list[list[float]] = [[] for _ in jobs]
    examples = 0
    for fold in range(k):
        results = run_jobs(jobs, fold_data(prepared, folds, fold), resources.cpus_per_trial, resources.gpus_per_trial)
        for i, result in enumerate(results):
            out_of_fold[i][folds == fold] = result.test.predicted
            scores[i].append(result.test.accuracy)
            examples += result.examples
        say(f"cv        fold {fold + 1} of {k}: {quantity(len(jobs), 'training')}")
    for job, predicted in zip(jobs, out_of_fold, strict=True):
        predictions.write(
            predictions.path_of(run_dir, predictions.cross_validated(job.trial_id, job.train.seed)), labels, predicted
        )
    return CrossValidation(
        k=k,
        seed=seed,
        labelled=len(labels),
        configurations=_configurations(jobs, labels, out_of_fold, scores),
        examples=examples,
        wall_s=time.time() - started,
    )


def _configurations(
    jobs: list[Job], labels: np.ndarray, out_of_fold: list[np.ndarray], scores: list[list[float]]
) -> list[CrossValidated]:
    """One entry per configuration: its seeds' out-of-fold accuracy (mean, interval) and each fold's."""
    found = []
    for trial_id in dict.fromkeys(job.trial_id for job in jobs):
        mine = [i for i, job in enumerate(jobs) if job.trial_id == trial_id]
        estimate = claims.score(labels, [out_of_fold[i] for i in mine])
        found.append(
            CrossValidated(
                trial_id=trial_id,
                params=jobs[mine[0]].params,
                epochs=jobs[mine[0]].train.epochs,
                seeds=[jobs[i].train.seed for i in mine],
                accuracy=estimate.value,
                accuracy_low=estimate.low,
                accuracy_high=estimate.high,
                fold_accuracy=[scores[i][fold] for fold in range(len(scores[mine[0]])) for i in mine],
            )
        )
    return found
