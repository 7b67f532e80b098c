"""The linear baseline: TF-IDF word unigrams and bigrams with logistic regression (scikit-learn).

The strong, fast baseline of text classification: on IMDB, Wang and Manning ("Baselines and
Bigrams", ACL 2012) report 89-91% test accuracy for bag-of-bigrams linear models, above the
tutorial's BiLSTMs. Here it is fitted on the run's own splits, as raw text
(`search.data.raw_splits`): `TfidfVectorizer(ngram_range=(1, 2))` and `LogisticRegression`
with scikit-learn's defaults otherwise; C is chosen from C_GRID on the validation split by the
run's objective (GridSearchCV with the validation split as its one fold), the chosen C refitted
on train + validation (GridSearchCV's refit=True), and the test split evaluated once.
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, log_loss
from sklearn.pipeline import Pipeline, make_pipeline

from runfiles.documents import LinearBaseline
from runfiles.layout import OBJECTIVE, Objective

C_GRID = (0.1, 1.0, 10.0, 100.0)
"""The inverse regularization strengths tried, a decade apart (LogisticRegressionCV's default
grid is ten of them from 1e-4 to 1e4; on L2-normalized TF-IDF rows the best lie in this range)."""
MAX_ITER = 1000
"""lbfgs's iteration cap (scikit-learn's default, 100, stops short of convergence on bigram features)."""

Texts = tuple[list[str], np.ndarray]
"""(texts, labels as class indices) of one split."""


def pipeline(c: float, seed: int = 0) -> Pipeline:
    """The unfitted model: TF-IDF word uni+bigrams, then logistic regression of strength 1/c."""
    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2)), LogisticRegression(C=c, max_iter=MAX_ITER, random_state=seed))


def score(metric: str, labels: np.ndarray, probabilities: np.ndarray, num_classes: int) -> float:
    """The value of a validation metric (`runfiles.layout.OBJECTIVES`) of predicted probabilities
    [n, num_classes] for int labels [n]: accuracy, macro-F1 (zero_division=0, over every class) or
    the mean cross-entropy (scikit-learn's log_loss)."""
    classes = list(range(num_classes))
    if metric == "val_loss":
        return float(log_loss(labels, probabilities, labels=classes))
    predicted = probabilities.argmax(axis=1)
    if metric == "val_macro_f1":
        return float(f1_score(labels, predicted, labels=classes, average="macro", zero_division=0))
    return float(accuracy_score(labels, predicted))


def fit_linear(
    splits: dict[str, Texts], num_classes: int, objective: Objective = OBJECTIVE, seed: int = 0
) -> tuple[LinearBaseline, np.ndarray]:
    """Choose C on validation, refit on train + validation, evaluate on test once (the module's
    docstring); with an empty test split, no test figure and no predictions. `splits`: {"train",
    "val", "test": (texts, int labels)}, every class in train.

    Returns what baseline.json's "linear" holds (the value of each C, the chosen C, the test
    accuracy, macro-F1 and confusion matrix, the fit's wall seconds (the C search and the refit)
    and the test reviews classified per second, vectorizing included), and the predicted class
    of each test review [n].
    """
    (train, train_y), (val, val_y), (test, test_y) = splits["train"], splits["val"], splits["test"]
    started = time.perf_counter()
    values = {}
    for c in C_GRID:
        model = pipeline(c, seed).fit(train, train_y)
        values[c] = score(objective.metric, val_y, _probabilities(model, val, num_classes), num_classes)
    chosen = max(C_GRID, key=lambda c: objective.oriented(values[c]))
    model = pipeline(chosen, seed).fit(list(train) + list(val), np.concatenate([train_y, val_y]))
    fit_s = time.perf_counter() - started
    found = LinearBaseline(
        c=chosen, values={f"{c:g}": v for c, v in values.items()}, value=values[chosen], test_examples=len(test)
    )
    found.features, found.fit_s = len(model[0].vocabulary_), fit_s
    if not len(test):  # no test split (--test-fraction 0): `cross_validate` gives its result
        return found, np.zeros(0, dtype=np.int64)
    started = time.perf_counter()
    predicted = _probabilities(model, test, num_classes).argmax(axis=1)
    predict_s = time.perf_counter() - started
    classes = list(range(num_classes))
    found.test_accuracy = float(accuracy_score(test_y, predicted))
    found.test_macro_f1 = float(f1_score(test_y, predicted, labels=classes, average="macro", zero_division=0))
    found.test_confusion = confusion_matrix(test_y, predicted, labels=classes).tolist()
    found.predict_per_s = len(test) / predict_s if predict_s > 0 else None
    return found, predicted


def cross_validate(splits: dict[str, Texts], folds: np.ndarray, c: float, seed: int = 0) -> np.ndarray:
    """The predicted class [n] of each labelled example (train then validation, n in all) by the
    model of strength 1/`c` fitted on the other folds: scikit-learn's cross_val_predict over the
    recorded `folds` [n] (PredefinedSplit), the folds a run without a test split certifies on."""
    from sklearn.model_selection import PredefinedSplit, cross_val_predict

    texts = list(splits["train"][0]) + list(splits["val"][0])
    labels = np.concatenate([splits["train"][1], splits["val"][1]])
    return cross_val_predict(pipeline(c, seed), texts, labels, cv=PredefinedSplit(folds))


def _probabilities(model: Pipeline, texts: list[str], num_classes: int) -> np.ndarray:
    """[n, num_classes] probabilities; a class the fit never saw (absent from its training split) gets 0."""
    out = np.zeros((len(texts), num_classes))
    out[:, model.classes_] = model.predict_proba(texts)
    return out
