"""Other datasets end to end on tiny data: real Ray Tune, Optuna and Keras training, export,
predict and the report, for a folder per class with four classes ranked by macro-F1, and for a
table in one file."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from runfiles.io import read_json, read_rows
from runfiles.layout import RunDir
from search import predict

from conftest import SAMPLE, refuse_ray, search_once

RATINGS = ["1-2", "3-4", "7-8", "9-10"]


@pytest.fixture(scope="module")
def ratings_run(tmp_path_factory) -> RunDir:
    """The 4-class rating task written from the sample, searched with macro-F1 as the objective."""
    root = tmp_path_factory.mktemp("ratings")
    command = [sys.executable, "-m", "tools.regimes", "ratings4", "--archive", str(SAMPLE), "--out", str(root / "ratings4")]
    subprocess.run(command, check=True, capture_output=True)
    args = ("--trials", "2", "--max-epochs", "2", "--objective", "val_macro_f1")
    return RunDir(search_once(root, *args, data=root / "ratings4"))


def test_four_classes_are_searched_by_macro_f1_and_named_everywhere(ratings_run, capsys):
    facts, summary = read_json(ratings_run.run_json), read_json(ratings_run.summary_json)
    assert facts["objective"] == {"metric": "val_macro_f1", "mode": "max"}
    assert facts["data"]["classes"] == RATINGS and set(facts["data"]["class_counts"]) == {"train", "val", "test"}
    trials = read_rows(ratings_run.trials_csv)
    assert all(0 <= float(t["val_macro_f1"]) <= 1 for t in trials)
    best = max(trials, key=lambda t: float(t["val_macro_f1"]))
    assert summary["best"]["trial_id"] == best["trial_id"] and summary["best"]["val_macro_f1"] == pytest.approx(
        float(best["val_macro_f1"])
    )
    card = read_json(ratings_run.best_model / "card.json")
    assert card["classes"] == RATINGS and card["model"]["num_classes"] == 4
    confusion = np.array(card["test_confusion"])
    assert confusion.shape == (4, 4) and confusion.sum() == card["test_examples"]
    assert card["test_accuracy"] == pytest.approx(np.trace(confusion) / confusion.sum())
    assert [confusion[i].sum() for i in range(4)] == [facts["data"]["class_counts"]["test"][c] for c in RATINGS]
    model = keras.saving.load_model(ratings_run.best_model / "model.keras", safe_mode=True)
    assert model.predict_on_batch(np.array(["a fine film", ""], dtype=object)).shape == (2, 4)
    assert predict.main([str(ratings_run.root), "--json", "a fine film", "dreadful"]) == 0
    answers = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for answer in answers:
        assert list(answer["probabilities"]) == RATINGS and sum(answer["probabilities"].values()) == pytest.approx(1, abs=1e-5)
        assert answer["label"] in RATINGS and answer["probability"] == max(answer["probabilities"].values())
    page = (ratings_run.report / "index.html").read_text()
    assert all(name in page for name in RATINGS) and "val_macro_f1" in page


@pytest.fixture(scope="module")
def table_run(tmp_path_factory) -> RunDir:
    """The sample's reviews as one CSV file with other column names and --test-fraction 0: no test
    split, certified (its one configuration, one seed) by 3-fold cross-validation, the linear
    baseline cross-validated on its folds."""
    import pandas as pd

    from search import baseline
    from search.data import read_reviews

    root = tmp_path_factory.mktemp("table")
    reviews, _ = read_reviews(str(SAMPLE))
    rows = [(text, label) for split in ("train", "test") for text, label in zip(reviews[split].texts, reviews[split].labels)]
    pd.DataFrame(rows, columns=["review", "sentiment"]).to_csv(root / "reviews.csv", index=False)
    args = ("--trials", "1", "--max-epochs", "1", "--text-column", "review", "--label-column", "sentiment")
    certify = ("--certify", "--certify-seeds", "1", "--cv", "3")
    run = RunDir(search_once(root, *args, "--test-fraction", "0", *certify, data=root / "reviews.csv"))
    with pytest.MonkeyPatch.context() as patch:  # without a test split, only the linear baseline: no Ray
        refuse_ray(patch)
        assert baseline.main([str(run.root)]) == 0
    return run


def test_a_csv_file_without_a_test_split_is_searched_exported_and_reported(table_run, capsys):
    facts = read_json(table_run.run_json)
    assert facts["data"]["classes"] == ["neg", "pos"] and facts["data"]["sizes"]["test"] == 0
    assert facts["data"]["sizes"]["train"] + facts["data"]["sizes"]["val"] == 480  # every row trains or validates
    card = read_json(table_run.best_model / "card.json")
    assert card["classes"] == ["neg", "pos"] and card["model"]["num_classes"] == 2
    assert predict.main([str(table_run.root), "a wonderful film"]) == 0
    probability, label = capsys.readouterr().out.split()[:2]
    assert label in ("neg", "pos") and 0.5 <= float(probability) <= 1
    assert (table_run.report / "index.html").is_file()


def test_without_a_test_split_the_cross_validated_estimate_is_the_result(table_run):
    summary = read_json(table_run.summary_json)
    cv = summary["certification"]["cross_validation"]
    found = cv["configurations"][0]
    assert cv["k"] == 3 and found["trial_id"] == summary["exported"]["trial_id"]
    stated = f"3-fold cross-validated accuracy {found['accuracy']:.1%} [{found['accuracy_low'] * 100:.1f}, "
    assert summary["result"].startswith(stated)
    # the export states the estimate, and nothing was tested: no test figure, no test predictions
    certified = read_json(table_run.best_model / "card.json")["certified"]
    assert (certified["cv_folds"], certified["cv_accuracy"]) == (3, found["accuracy"])
    assert summary["exported"]["test_accuracy"] is None and summary["exported"]["test_examples"] == 0
    assert all(c["test_accuracy_mean"] is None for c in summary["certification"]["configurations"])
    assert summary["certification"]["refit"]["test_accuracy_mean"] is None
    assert not (table_run.best_model / "test_predictions.csv").exists()
    kept = sorted(p.stem for p in table_run.predictions.glob("*.csv"))
    assert kept and all(name.startswith("cv-") for name in kept) and "cv-linear" in kept
    linear = read_json(table_run.baseline_json)
    assert linear["models"] == {} and linear["linear"]["cv_folds"] == 3 and linear["linear"]["test_accuracy"] is None


def test_the_report_and_the_last_lines_state_the_cross_validated_result(table_run, capsys):
    from runfiles.layout import OBJECTIVE
    from search.console import Progress, say_test_claims

    result = read_json(table_run.summary_json)["result"]
    page = (table_run.report / "index.html").read_text()
    assert f"Result: {result}" in page and "no test split (--test-fraction 0)" in page
    assert "nan" not in page.lower().replace("nanos", "") and "None" not in page
    assert "test accuracy</th>" not in page and "test (mean ± std)" not in page  # no column of empty test figures
    assert "The linear baseline, cross-validated on the same folds" in page
    say_test_claims(table_run, OBJECTIVE, Progress())
    last = capsys.readouterr().out.strip().splitlines()
    assert last[-2].startswith(f"result      {result}") and last[-1].startswith("vs          linear: ")
    assert "points [" in last[-1] and "shipped" not in "".join(last)


def test_a_bare_resume_keeps_the_certification_and_its_result(table_run, capsys):
    """Last of the table's tests: it adds a session to the run. The run's --certify --cv 3 is recorded
    and kept (--test-fraction 0 needs it), another --cv is refused, and with nothing to do the
    result stands in summary.json, the last lines and the report."""
    from search import run as search_run

    result = read_json(table_run.summary_json)["result"]
    assert read_json(table_run.run_json)["configs"]["certify"]["cv"] == 3
    assert search_run.main(["--resume", "--out", str(table_run.root), "--certify", "--cv", "5"]) == 2
    assert "--cv 5 (the run's: 3) cannot change on resume" in capsys.readouterr().err
    assert search_run.main(["--resume", "--out", str(table_run.root)]) == 0
    assert read_json(table_run.summary_json)["result"] == result
    assert f"result      {result}" in capsys.readouterr().out
    assert f"Result: {result}" in (table_run.report / "index.html").read_text()


def test_an_unknown_objective_is_refused_in_one_line_before_anything_is_written(tmp_path, capsys):
    from search import run as search_run

    assert search_run.main(["--data", str(SAMPLE), "--objective", "val_f1", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "val_accuracy, val_macro_f1, val_loss" in err and "val_f1" in err
    assert not (tmp_path / "run").exists()
