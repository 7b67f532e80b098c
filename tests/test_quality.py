"""Search quality for a fixed compute: the examples budget, certification over seeds, the tutorial's baseline.

python -m pytest -q tests/test_quality.py
"""

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
import pytest

from reports.analysis import LINEAR_MODEL
from runfiles.documents import Card
from runfiles.io import read_json, read_rows, write_rows
from runfiles.layout import OBJECTIVE, PREDICTIONS_FILE, STUDY_NAME, RunDir, State, rank_key
from search import baseline
from search import run as search_run
from search.linear import C_GRID

from conftest import SAMPLE, TINY, refuse_ray

TRAIN, VAL = 192, 48
"""Training and validation reviews of the sample: TRAIN is the examples of one epoch."""
BUDGET = 16 * TRAIN
"""Less than one full run of the tutorial's two models the tutorial's way (2 x 10 epochs)."""
TOP, SEEDS = 2, 2
"""certified_run's certification: the fewest configurations and seeds that still rank and average."""


@pytest.fixture(scope="module")
def certified_run(tmp_path_factory):
    """A search capped at 16 epochs' worth of examples, its fidelity planned from that budget,
    certified over seeds, with the tutorial's baseline."""
    out = tmp_path_factory.mktemp("quality") / "run"
    args = [
        "--data",
        str(SAMPLE),
        "--cpus",
        "2",
        "--budget-examples",
        str(BUDGET),
        "--certify",
        "--certify-top",
        str(TOP),
        "--certify-seeds",
        str(SEEDS),
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


def test_the_budget_buys_a_search_not_the_presets_full_runs(certified_run):
    # 16 epochs of examples, fewer than the presets' 2 x 10: planned as rungs at 1 and 3 epochs
    # (9 configurations of 1 epoch, 9 x (1 + 2/3) = 15 epochs), and every trial, the queued ones
    # included, is cut by the same rule: more configurations than 3-epoch runs could pay for, some
    # stopped by ASHA. (How many reach 3 epochs depends on how good the first ones are: the first
    # trials to reach a rung pass it until three have.)
    files = RunDir(certified_run)
    facts, rows = read_json(files.run_json), read_rows(files.trials_csv)
    assert facts["fidelity"]["max_epochs"] == 3 and facts["fidelity"]["rungs"] == [1, 3]
    assert facts["configs"]["search"]["max_epochs"] == 3 and facts["configs"]["search"]["trials"] == 20
    assert len(rows) > 2 + 1  # more configurations than the two presets and the start point
    assert all(int(r["epochs"]) <= 3 for r in rows)
    assert len(rows) > BUDGET / (3 * TRAIN)
    assert any(r["reason"].startswith("ASHA stopped it after epoch 1") for r in rows)


def test_certification_retrains_the_top_configurations_and_exports_the_best_on_average(certified_run):
    files = RunDir(certified_run)
    rows = read_rows(files.trials_csv)
    top = [r for r in sorted(rows, key=rank_key) if rank_key(r)[0] == 0][:TOP]  # however they ended
    seeds = read_rows(files.certify_csv)
    assert [(s["trial_id"], s["seed"]) for s in seeds] == [(r["trial_id"], str(k)) for r in top for k in range(1, SEEDS + 1)]
    peaks = {r["trial_id"]: r["best_epoch"] for r in top}
    assert all(s["epochs"] == peaks[s["trial_id"]] for s in seeds)  # retrained for the epochs it peaked at
    for seed in seeds:
        assert 1 <= int(seed["best_epoch"]) <= int(seed["epochs"]) and 0 <= float(seed["test_accuracy"]) <= 1
        assert 0 <= float(seed["test_macro_f1"]) <= 1
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
    assert [s["seed"] for s in refit["seeds"]] == list(range(1, SEEDS + 1))
    assert all(s["epochs"] == int(mine[0]["epochs"]) for s in refit["seeds"])
    assert all(s["examples"] == (TRAIN + VAL) * s["epochs"] for s in refit["seeds"])
    assert refit["test_macro_f1_mean"] == pytest.approx(np.mean([s["test_macro_f1"] for s in refit["seeds"]]))
    assert card["test_accuracy"] == pytest.approx(next(s["test_accuracy"] for s in refit["seeds"] if s["seed"] == card["seed"]))
    assert card["certified"]["refit_test_accuracy_mean"] == pytest.approx(refit["test_accuracy_mean"])
    assert summary["exported"]["seed"] == int(shipped["seed"]) and summary["exported"]["refit"]
    ablation = certification["ablation"]  # the exported configuration's parts alone (the sample's start point has both)
    assert certification["examples"] == sum(int(s["examples"]) for s in seeds) + refit["examples"] + ablation["examples"]


@dataclass(frozen=True)
class Recertified:
    """certified_run copied and certified again (the `recertified` fixture), with what it held before."""

    run: Path
    """The copy, certified again."""
    cut: dict
    """The trials.csv row of the trial the budget or ASHA stopped, made the best."""
    before: set[str]
    """The predictions the copy held before (certified_run's)."""
    replaced: list[str]
    """The trial ids certified_run's certification certified."""


@pytest.fixture(scope="module")
def recertified(certified_run, tmp_path_factory) -> Recertified:
    """A copy of certified_run whose trial the budget or ASHA cut is made the best, certified again
    by python -m search.certify in one session: the best configuration alone with 2 seeds, 3-fold
    cross-validation over train + validation, the refits' mean-logit ensemble exported, no ablation.
    The tests below read its parts (certification of a cut trial, cross-validation, the ensemble)."""
    from runfiles.documents import Summary
    from search import certify

    run = shutil.copytree(certified_run, tmp_path_factory.mktemp("recertified") / "run")
    files = RunDir(run)
    rows = read_rows(files.trials_csv)
    cut = next(r for r in rows if r["state"] == State.STOPPED_EARLY)
    best = max(float(r[OBJECTIVE.metric]) for r in rows if r[OBJECTIVE.metric])
    cut.update({OBJECTIVE.metric: str((1 + best) / 2), "best_epoch": cut["epochs"]})
    write_rows(files.trials_csv, list(rows[0]), rows)
    before = {p.stem for p in files.predictions.glob("*.csv")}
    replaced = [c.trial_id for c in Summary.read(files).certification.configurations]

    args = ["--top", "1", "--seeds", str(SEEDS), "--cv", "3", "--ensemble", "--no-ablation"]
    assert certify.main([str(run), *args]) == 0
    return Recertified(run, cut, before, replaced)


def test_a_budget_cut_trial_with_the_best_value_is_certified(recertified):
    # A trial the budget or ASHA stopped keeps its best epoch's value: made the best here, it is the
    # one certified, retrained for the epochs at which it peaked.
    files, cut = RunDir(recertified.run), recertified.cut
    seeds = read_rows(files.certify_csv)
    assert [(s["trial_id"], s["epochs"]) for s in seeds] == [(cut["trial_id"], cut["epochs"])] * SEEDS
    certification = read_json(files.summary_json)["certification"]
    assert certification["exported"] == cut["trial_id"] and "ablation" not in certification


def test_cross_validation_over_train_and_validation_is_recorded_and_reproducible(recertified, capsys):
    from runfiles import predictions
    from runfiles.documents import Baseline, RunFacts, Summary
    from search import certify
    from search.crossval import stratified_folds

    run, files, before = recertified.run, RunDir(recertified.run), recertified.before
    assert certify.main([str(run), "--cv", "1"]) == 2 and "--cv 1 is invalid" in capsys.readouterr().err
    assert certify.main([str(run), "--cv", "500"]) == 2 and "give at most --cv" in capsys.readouterr().err

    certification = Summary.read(files).certification
    cv = certification.cross_validation
    assert cv.k == 3 and cv.labelled == TRAIN + VAL and cv.seed == RunFacts.read(files).search_config["seed"]
    assert [c.trial_id for c in cv.configurations] == [c.trial_id for c in certification.configurations]
    folds = np.array([int(r["fold"]) for r in read_rows(files.cv_folds_csv)])
    sizes = np.bincount(folds)
    for c in cv.configurations:
        assert c.seeds == list(range(1, SEEDS + 1))
        by_fold = np.reshape(c.fold_accuracy, (cv.k, SEEDS))  # each fold's accuracy with each seed
        accuracies = []
        for column, seed in enumerate(c.seeds):
            labels, predicted = map(
                np.asarray, predictions.read(predictions.path_of(files, predictions.cross_validated(c.trial_id, seed)))
            )
            assert np.array_equal(stratified_folds(labels, 3, cv.seed), folds)  # recorded, and given again by the seed
            accuracies.append(np.mean(labels == predicted))
            assert accuracies[-1] == pytest.approx(np.dot(by_fold[:, column], sizes) / sizes.sum())  # each fold predicted once
        assert c.accuracy == pytest.approx(np.mean(accuracies)) and c.accuracy_low < c.accuracy < c.accuracy_high
    # certified again: the predictions of the models it no longer records (the configurations no
    # longer certified, the ablation) are gone, so that a report rebuilt from the directory shows no stale figure
    kept = {p.stem for p in files.predictions.glob("*.csv")}
    assert kept == predictions.recorded(Summary.read(files), Baseline.read(files)) and kept & before
    dropped = {predictions.certified(t, 1) for t in recertified.replaced if t != recertified.cut["trial_id"]}
    assert dropped and {"network-alone-seed-1", "linear-alone-seed-2", *dropped} <= before - kept
    assert {"linear", "tutorial-single"} <= kept
    trained = sum(s.examples for c in certification.configurations for s in c.seeds)
    assert certification.examples == trained + cv.examples + certification.refit.examples
    report = (files.report / "index.html").read_text()
    assert "<h3>Cross-validation</h3>" in report and f"{cv.configurations[0].accuracy:.2%} [" in report


def test_an_ensemble_of_the_refits_is_one_model_keras_tested_as_exported(recertified, capsys):
    import keras

    import models.text  # noqa: F401 - registers what model.keras refers to
    from runfiles.documents import RunFacts
    from search import certify
    from search.data import DataConfig, raw_splits
    from search.export import probabilities

    run, files = recertified.run, RunDir(recertified.run)
    assert certify.main([str(run), "--ensemble", "--no-refit"]) == 2 and "drop --no-refit" in capsys.readouterr().err

    certification = read_json(files.summary_json)["certification"]
    ensemble, card = certification["ensemble"], read_json(files.best_model / "card.json")
    assert ensemble["seeds"] == [1, 2] and card["ensemble"] == ensemble and card["seed"] is None
    assert card["test_accuracy"] == ensemble["test_accuracy"]
    model = keras.saving.load_model(files.best_model / "model.keras", safe_mode=True)
    assert {"seed_1", "seed_2", "mean_logits"} <= {layer.name for layer in model.get_layer("ensemble").layers}
    texts, labels = raw_splits(DataConfig.recorded(RunFacts.read(files).data_config))["test"]
    predicted = probabilities(model, list(texts)).argmax(axis=1)
    assert np.mean(predicted == labels) == pytest.approx(ensemble["test_accuracy"], abs=1e-6)  # the file is what was tested
    report = (files.report / "index.html").read_text()
    assert "exported: mean-logit ensemble of the 2 refits" in report and "one model each" in report


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
    total = read_json(files.summary_json)["budget"]["examples_used"] + read_json(files.summary_json)["certification"]["examples"]
    tutorial = 2 * 10 * (TRAIN + VAL)
    assert (
        f"In all, the certified result took {total:,} training examples (search, certification and refit): "
        f"{total / tutorial:.2f}× the tutorial&#x27;s {tutorial:,} (its 2 models × 10 epochs × {TRAIN + VAL:,} training reviews)."
    ) in report
    assert f"exported: refit on train + validation ({SEEDS} seeds)" in report
    assert "the refit of the seed that validated best in certification is the model shipped" in report


def test_the_linear_baseline_chooses_c_on_validation_and_tests_once_on_the_same_split(
    certified_run, monkeypatch, tmp_path, capsys
):
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

    # --linear-only fits it again, the same (scikit-learn is deterministic), in this process alone
    # (Ray is not started), and keeps the tutorial's models.
    refuse_ray(monkeypatch)
    assert baseline.main([str(certified_run), "--linear-only"]) == 0
    again = read_json(files.baseline_json)
    assert again["models"] == result["models"] and again["linear"]["test_confusion"] == linear["test_confusion"]
    assert "has not finished" not in capsys.readouterr().out

    # On a search still in progress (no summary.json yet) it trains all the same, and says so.
    unfinished = tmp_path / "unfinished"
    shutil.copytree(certified_run, unfinished, ignore=shutil.ignore_patterns("tune", "summary.json"))
    assert baseline.main([str(unfinished), "--linear-only"]) == 0
    assert f"warning: the search in {unfinished} has not finished; the baselines train on its split all the same" in (
        capsys.readouterr().out
    )


def test_every_model_tested_keeps_its_predictions_and_the_claims_rebuild_alike(certified_run, tmp_path):
    # Each predictions file holds what its model scored on the run's test split; the headline and the
    # terminal compare test figures only, with the intervals that the files give again.
    import io

    from reports import claims, versus
    from reports.__main__ import main as reports_main
    from runfiles import predictions
    from runfiles.documents import Baseline, Summary
    from search.console import Progress, say_test_claims

    files = RunDir(certified_run)
    found = predictions.read_all(files)
    summary, recorded = Summary.read(files), Baseline.read(files)

    def accuracy(name: str) -> float:
        labels, predicted = found[name]
        return float(np.mean(np.asarray(labels) == np.asarray(predicted)))

    assert len(found[predictions.EXPORTED][0]) == 240
    assert accuracy(predictions.EXPORTED) == Card.read(files.best_model).test_accuracy
    for config in summary.certification.configurations:
        kept = [accuracy(predictions.certified(config.trial_id, s.seed)) for s in config.seeds]
        assert kept == [s.test_accuracy for s in config.seeds]
    assert [accuracy(predictions.refit(s.seed)) for s in summary.certification.refit.seeds] == [
        s.test_accuracy for s in summary.certification.refit.seeds
    ]
    assert {name: accuracy(name) for name in recorded.models} == {name: m.test_accuracy for name, m in recorded.models.items()}
    assert accuracy(predictions.LINEAR) == pytest.approx(recorded.linear.test_accuracy)

    told = versus.claims_of(found, summary, recorded, classes=2)
    assert [v.name for v in told.others] == [*recorded.models, predictions.LINEAR] and len(told.certified_seeds) == SEEDS
    assert told.certified.value == pytest.approx(summary.certification.refit.test_accuracy_mean)
    report = (files.report / "index.html").read_text()
    shown = report.split("<h3>On the test split</h3>")[1].split("<h3>")[0]
    assert claims.percent(told.shipped) in shown and claims.percent(told.certified) in shown
    assert all(claims.points(v.shipped) in shown and claims.points(v.certified) in shown for v in told.others)
    assert "points of validation accuracy" not in report
    assert reports_main([str(certified_run), "--out", str(tmp_path / "again")]) == 0
    again = (tmp_path / "again" / "index.html").read_text()
    assert again.split("<h3>On the test split</h3>")[1].split("<h3>")[0] == shown  # rebuilt from the directory alone

    printed = io.StringIO()
    say_test_claims(files, OBJECTIVE, Progress(printed))
    lines = printed.getvalue().splitlines()
    assert lines[0].startswith(f"shipped     test accuracy {claims.percent(told.shipped)} on 240 test examples")
    linear = told.others[-1]
    assert lines[-1].startswith(f"vs          linear: {claims.percent(linear.score)}; shipped {claims.points(linear.shipped)}")

    # The exported configuration has the linear part (the sample's start point): each part alone, over the same seeds.
    chosen, ablation = summary.certification.chosen, summary.certification.ablation
    assert chosen.params["ngram_buckets"] > 0
    for part in (ablation.network, ablation.linear):
        assert [(s.seed, s.epochs) for s in part.seeds] == [(s.seed, s.epochs) for s in chosen.seeds]
    for name, part in (("network", ablation.network), ("linear", ablation.linear)):
        assert [accuracy(predictions.ablation(name, s.seed)) for s in part.seeds] == [s.test_accuracy for s in part.seeds]
    assert ablation.network.params["ngram_buckets"] == 0 and ablation.linear.params["deep"] is False
    parts = versus.ablation_parts(found, summary, classes=2)
    assert [p.name for p in parts] == [versus.WHOLE, *versus.PARTS.values()] and parts[0].versus_whole is None
    shown = report.split("<h3>What each part contributes</h3>")[1].split("<h3>")[0]
    assert f"{ablation.examples:,} training examples" in shown
    assert all(p.name in shown and claims.percent(p.score) in shown for p in parts)
    assert all(claims.points(p.versus_whole) in shown for p in parts[1:])

    # Between runs: a difference with its interval where both tested on the same split, else why not.
    other = shutil.copytree(certified_run, tmp_path / "other")
    assert reports_main(["compare", str(certified_run), str(other), "--out", str(tmp_path / "compared")]) == 0
    compared = (tmp_path / "compared" / "index.html").read_text().split('<section id="on-test">')[1].split("</section>")[0]
    assert f"0.0 points [0.0, 0.0], {claims.UNDECIDED} (McNemar p = 1)" in compared
    (RunDir(other).best_model / PREDICTIONS_FILE).unlink()
    assert reports_main(["compare", str(certified_run), str(other), "--out", str(tmp_path / "compared")]) == 0
    compared = (tmp_path / "compared" / "index.html").read_text().split('<section id="on-test">')[1].split("</section>")[0]
    assert "not compared: " in compared and "keeps no test predictions of its export" in compared


def test_certify_and_baseline_refuse_what_is_not_a_finished_run(tmp_path, capsys):
    from search import certify

    assert certify.main([str(tmp_path)]) == 2 and baseline.main([str(tmp_path)]) == 2
    assert certify.main([str(tmp_path), "--seeds", "0"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("error: ") for line in lines)
    assert certify.main([""]) == 2 and baseline.main([""]) == 2  # an empty path is not the working folder
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: python -m search.{name}: argument RUN_DIR: an empty path; give a folder or file; see --help"
        for name in ("certify", "baseline")
    ]
