"""Search quality for a fixed compute: the examples budget, certification over seeds, the tutorial's baseline.

python -m pytest -q tests/test_quality.py
"""

import numpy as np
import optuna
import pytest

from reports.analysis import LINEAR_MODEL
from runfiles.io import read_json, read_rows
from runfiles.layout import OBJECTIVE, STUDY_NAME, RunDir, State, rank_key
from search import baseline
from search import run as search_run
from search.linear import C_GRID

from conftest import SAMPLE, TINY

TRAIN, VAL = 192, 48
"""Training and validation reviews of the sample: TRAIN is the examples of one epoch."""
BUDGET = 7 * TRAIN


@pytest.fixture(scope="module")
def certified_run(tmp_path_factory):
    """A search capped at 7 epochs' worth of examples, certified over seeds, with the tutorial's baseline."""
    out = tmp_path_factory.mktemp("quality") / "run"
    args = [
        "--data",
        str(SAMPLE),
        "--trials",
        "20",
        "--max-epochs",
        "2",
        "--cpus",
        "2",
        "--budget-examples",
        str(BUDGET),
        "--certify",
        "--out",
        str(out),
        *TINY,
    ]
    assert search_run.main(args) == 0
    assert baseline.main([str(out), "--epochs", "2"]) == 0
    return out


def test_the_examples_budget_is_never_overspent(certified_run):
    files = RunDir(certified_run)
    epochs, rows = read_rows(files.epochs_csv), read_rows(files.trials_csv)
    used = sum(int(e["examples"]) for e in epochs)
    summary = read_json(files.summary_json)
    assert summary["budget"]["examples_used"] == used and summary["budget"]["budget_examples"] == BUDGET
    assert BUDGET - 2 * TRAIN < used <= BUDGET  # no epoch started that the budget could not pay for
    assert len(rows) < 20  # the search stopped creating trials when the budget could not give one an epoch
    assert all(State(r["state"]).ended for r in rows)
    for row in rows:
        if row["reason"].startswith("examples budget spent"):
            assert row["state"] == State.STOPPED_EARLY and row["reason"] == f"examples budget spent after epoch {row['epochs']}"
    study = optuna.load_study(study_name=STUDY_NAME, storage=files.study_url)
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]


def test_certification_retrains_the_top_configurations_and_exports_the_best_on_average(certified_run):
    files = RunDir(certified_run)
    completed = [r for r in sorted(read_rows(files.trials_csv), key=rank_key) if r["state"] == State.COMPLETED][:3]
    seeds = read_rows(files.certify_csv)
    assert [(s["trial_id"], s["seed"]) for s in seeds] == [(r["trial_id"], str(k)) for r in completed for k in (1, 2, 3)]
    for seed in seeds:
        assert 1 <= int(seed["best_epoch"]) <= int(seed["epochs"]) and 0 <= float(seed["test_accuracy"]) <= 1
        assert int(seed["examples"]) == TRAIN * int(seed["epochs"])
    summary = read_json(files.summary_json)
    certification = summary["certification"]
    means = {c["trial_id"]: c[f"{OBJECTIVE.metric}_mean"] for c in certification["configurations"]}
    assert certification["exported"] == max(means, key=means.get)
    card = read_json(files.best_model / "card.json")
    mine = [s for s in seeds if s["trial_id"] == certification["exported"]]
    shipped = max(mine, key=lambda s: float(s[OBJECTIVE.metric]))
    assert card["trial_id"] == certification["exported"] and card["seed"] == int(shipped["seed"]) and card["refit"]
    refit = certification["refit"]  # the chosen configuration fitted again on train + validation, same seeds
    assert [s["seed"] for s in refit["seeds"]] == [1, 2, 3] and all(s["epochs"] == int(mine[0]["epochs"]) for s in refit["seeds"])
    assert all(s["examples"] == (TRAIN + VAL) * s["epochs"] for s in refit["seeds"])
    assert card["test_accuracy"] == pytest.approx(next(s["test_accuracy"] for s in refit["seeds"] if s["seed"] == card["seed"]))
    assert card["certified"]["refit_test_accuracy_mean"] == pytest.approx(refit["test_accuracy_mean"])
    assert summary["exported"]["seed"] == int(shipped["seed"]) and summary["exported"]["refit"]
    assert certification["examples"] == sum(int(s["examples"]) for s in seeds) + refit["examples"]


def test_the_baseline_trains_the_tutorials_models_on_the_same_split(certified_run):
    files = RunDir(certified_run)
    result = read_json(files.baseline_json)
    assert set(result["models"]) == {"tutorial-single", "tutorial-stacked"} and result["epochs"] == 2
    for model in result["models"].values():
        assert model["train"] == {
            "epochs": 2,
            "learning_rate": 1e-4,
            "batch_size": 64,
            "max_len": 0,
            "bucket": False,
            "seed": 0,
            "threads": 1,
            "lstm": "auto",
        }
        assert model["params"]["vocab_size"] == 1000 and len(model["epochs"]) == 2
        assert model["examples"] == 2 * TRAIN and 0 <= model["test_accuracy"] <= 1
    assert result["examples"] == 4 * TRAIN
    assert result["data_fingerprint"] == read_json(files.run_json)["data"]["fingerprint"]  # the run's own split
    report = (files.report / "index.html").read_text()
    assert "tutorial-single, the tutorial&#x27;s training (2 epochs)" in report
    assert f"of a budget of {BUDGET:,}" in report and "<progress" in report and "Certified over seeds" in report
    assert "exported: refit on train + validation (3 seeds)" in report
    assert "the refit of the seed that validated best in certification is the model shipped" in report


def test_the_linear_baseline_chooses_c_on_validation_and_tests_once_on_the_same_split(certified_run):
    files = RunDir(certified_run)
    result = read_json(files.baseline_json)
    linear = result["linear"]
    assert set(linear["values"]) == {f"{c:g}" for c in C_GRID} and linear["C"] in C_GRID
    assert linear["val_accuracy"] == linear["values"][f"{linear['C']:g}"] == max(linear["values"].values())
    confusion = np.array(linear["test_confusion"])
    test_counts = read_json(files.run_json)["data"]["class_counts"]["test"]
    assert confusion.sum(axis=1).tolist() == list(test_counts.values())  # the run's own test split
    assert linear["test_accuracy"] == pytest.approx(np.trace(confusion) / confusion.sum()) and linear["test_examples"] == 240
    assert linear["test_accuracy"] > 0.6 and linear["fit_s"] > 0 and linear["predict_per_s"] > 0 and linear["features"] > 1000
    report = (files.report / "index.html").read_text()
    assert f"{LINEAR_MODEL}</td>" in report and f"chose C={linear['C']:g} from 0.1, 1, 10, 100" in report

    # --linear-only fits it again, the same (scikit-learn is deterministic), and keeps the tutorial's models.
    assert baseline.main([str(certified_run), "--linear-only"]) == 0
    again = read_json(files.baseline_json)
    assert again["models"] == result["models"] and again["linear"]["test_confusion"] == linear["test_confusion"]


def test_certify_and_baseline_refuse_what_is_not_a_finished_run(tmp_path, capsys):
    from search import certify

    assert certify.main([str(tmp_path)]) == 2 and baseline.main([str(tmp_path)]) == 2
    assert certify.main([str(tmp_path), "--seeds", "0"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("error: ") for line in lines)
