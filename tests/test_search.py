"""The main job end to end on the small sample: real Ray Tune, Optuna and Keras training."""

import csv
import json
import zipfile

import keras
import numpy as np
import optuna
import pytest
import ray

from search import run as search_run
from search.space import SPACE, narrowed

TINY = ["--fix", "units=8", "--fix", "embedding_dim=8", "--fix", "max_len=64", "--fix", "vocab_size=2000"]


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, sample):
    out = tmp_path_factory.mktemp("search") / "run"
    code = search_run.main(["--data", sample, "--trials", "4", "--max-epochs", "2", "--cpus", "2", "--out", str(out), *TINY])
    assert code == 0
    return out


def test_run_writes_the_documented_layout(finished_run):
    names = {p.name for p in finished_run.iterdir()}
    assert {"run.json", "study.db", "tune", "trials.csv", "epochs.csv", "summary.json", "best_model"} <= names
    assert {p.name for p in (finished_run / "best_model").iterdir()} == {"model.keras", "saved_model", "card.json"}
    facts = json.loads((finished_run / "run.json").read_text())
    assert facts["objective"] == {"metric": "val_accuracy", "mode": "max"}
    assert facts["data"]["sizes"] == {"train": 192, "val": 48, "test": 240}
    assert [p["name"] for p in facts["space"]] == [p.name for p in SPACE]
    assert facts["command"].startswith("python -m search.run --data")


def test_trials_table_and_summary_agree(finished_run):
    trials = rows(finished_run / "trials.csv")
    summary = json.loads((finished_run / "summary.json").read_text())
    assert len(trials) == 4 and [t["number"] for t in trials] == ["1", "2", "3", "4"]
    assert [t["preset"] for t in trials[:2]] == ["tutorial-single", "tutorial-stacked"]
    assert {t["state"] for t in trials} <= {"completed", "stopped_early"}
    for t in trials:
        assert 0 <= float(t["val_accuracy"]) <= 1 and float(t["examples_per_s"]) > 0 and t["node_id"] and t["device"] == "CPU"
        assert 1 <= int(t["epochs"]) <= 2 and (t["state"] == "completed") == (t["epochs"] == "2")
    best = max(trials, key=lambda t: float(t["val_accuracy"]))
    assert summary["best"]["trial_id"] == best["trial_id"]
    assert summary["best"]["val_accuracy"] == pytest.approx(float(best["val_accuracy"]))
    assert 0 <= summary["best"]["test_accuracy"] <= 1 and summary["best"]["test_examples"] == 240
    assert summary["counts"]["total"] == 4 and summary["counts"]["completed"] + summary["counts"]["stopped_early"] == 4
    assert set(summary["tutorial"]) == {"tutorial-single", "tutorial-stacked"}
    epochs = rows(finished_run / "epochs.csv")
    assert sum(int(t["epochs"]) for t in trials) == len(epochs)
    assert all(0 <= float(e["val_accuracy"]) <= 1 and float(e["tokens_per_s"]) > 0 for e in epochs)


def test_study_is_persisted_for_optuna(finished_run):
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{finished_run / 'study.db'}")
    assert len(study.trials) == 4
    assert study.trials[0].params["depth"] == 1 and study.trials[1].params["depth"] == 2
    assert all(t.value is not None and 0 <= t.value <= 1 for t in study.trials)


def test_exported_model_takes_raw_text(finished_run, capsys):
    from search import predict

    model = keras.saving.load_model(finished_run / "best_model" / "model.keras", safe_mode=True)
    logits = model.predict_on_batch(np.array(["a wonderful film", "dull and boring <br /> awful"], dtype=object))
    assert logits.shape == (2, 1) and np.isfinite(logits).all()
    network = next(layer for layer in model.layers if isinstance(layer, keras.Sequential))
    assert any(isinstance(layer, keras.layers.Bidirectional) for layer in network.layers)  # Keras's own LSTM
    checkpoint = next((finished_run / "tune").rglob("model.keras"))  # trials trained with the fused kernel
    assert "FusedBiLSTM" in json.dumps(json.loads(zipfile.ZipFile(checkpoint).read("config.json")))
    card = json.loads((finished_run / "best_model" / "card.json").read_text())
    summary = json.loads((finished_run / "summary.json").read_text())
    assert card["test_accuracy"] == summary["best"]["test_accuracy"] and card["data"]["fingerprint"]
    assert predict.main([str(finished_run), "a wonderful film", "awful"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all(line.split()[1] in ("positive", "negative") for line in lines)
    assert 0 <= float(lines[0].split()[0]) <= 1


def test_same_seed_proposes_the_same_first_configurations(tmp_path):
    def first_proposals(seed, folder):
        folder.mkdir()
        config = search_run.SearchConfig(trials=5, seed=seed)
        resources = search_run.Resources(1, 0, 1, 0, 1, None)
        searcher = search_run._tune_config(config, narrowed(SPACE, {}), resources, folder).search_alg
        return [searcher.suggest(f"t{i}") for i in range(5)]

    a, b, c = first_proposals(7, tmp_path / "a"), first_proposals(7, tmp_path / "b"), first_proposals(8, tmp_path / "c")
    assert a == b
    assert a[:2] == c[:2] and a[2:] != c[2:]  # the tutorial's two models first, then sampled ones


def test_simulated_gpus_give_each_running_trial_its_own(tmp_path, sample):
    out = tmp_path / "gpu"
    ray.init(num_cpus=4, num_gpus=4, include_dashboard=False, log_to_driver=False)
    try:
        code = search_run.main(["--data", sample, "--gpus", "4", "--trials", "5", "--max-epochs", "1", "--out", str(out), *TINY])
    finally:
        ray.shutdown()
    assert code == 0
    trials = rows(out / "trials.csv")
    assert len(trials) == 5 and all(t["gpu_ids"] for t in trials)
    spans = [(float(t["started_at"]), float(t["ended_at"]), t["gpu_ids"]) for t in trials]
    for start, _, _ in spans:
        running = [gpu for s, e, gpu in spans if s <= start < e]
        assert len(running) <= 4 and len(set(running)) == len(running)
    assert {gpu for _, _, gpu in spans} <= {"0", "1", "2", "3"}
    assert json.loads((out / "run.json").read_text())["resources"]["concurrency"] == 4


@pytest.mark.parametrize(
    "args, message",
    [
        (["--gpus", "4"], "--gpus 4: this machine has 0 GPUs"),
        (["--data", "/nowhere/imdb.tar.gz"], "no such file"),
        (["--trials", "0"], "--trials 0 is invalid"),
        (["--fix", "dropout=1.5"], "dropout=1.5"),
        (["--fix", "colour=blue"], "--fix colour=blue"),
        (["--resume"], "no interrupted run"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, sample, capsys, args, message):
    out = tmp_path / "run"
    code = search_run.main(["--data", sample, "--out", str(out), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_an_earlier_run_is_never_overwritten(tmp_path, sample, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    assert search_run.main(["--data", sample, "--out", str(out)]) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert (out / "summary.json").read_text() == "{}"


def test_an_interrupted_run_resumes_and_keeps_its_first_part(tmp_path, sample):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    args = ["--data", sample, "--trials", "3", "--max-epochs", "3", "--cpus", "2", "--out", str(out), *TINY]
    driver = subprocess.Popen([sys.executable, "-m", "search.run", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and not (out / "epochs.csv").exists():
        time.sleep(1)
    driver.send_signal(signal.SIGINT)
    assert driver.wait(timeout=120) == 130
    first_part = rows(out / "epochs.csv")
    assert first_part and not (out / "summary.json").exists()

    assert search_run.main([*args, "--resume"]) == 0
    trials = rows(out / "trials.csv")
    assert len(trials) == 3 and all(t["state"] in ("completed", "stopped_early") for t in trials)
    epochs = rows(out / "epochs.csv")
    assert epochs[: len(first_part)] == first_part
    assert json.loads((out / "summary.json").read_text())["counts"]["total"] == 3
    assert len(json.loads((out / "run.json").read_text())["resumed"]) == 1


def test_time_budget_ends_the_search_and_still_exports(tmp_path, sample):
    out = tmp_path / "run"
    args = ["--data", sample, "--trials", "30", "--max-epochs", "3", "--time-budget", "0.5", "--out", str(out), *TINY]
    assert search_run.main(args) == 0
    trials = rows(out / "trials.csv")
    assert len(trials) < 30 and all(t["state"] in ("completed", "stopped_early") for t in trials)
    assert any(t["reason"].startswith("time budget ran out") for t in trials)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["total"] == len(trials) and (out / "best_model" / "model.keras").exists()


def test_predict_without_a_model_is_one_line_and_exit_2(tmp_path, capsys):
    from search import predict

    assert predict.main([str(tmp_path), "some review"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no exported model" in err


def test_resuming_a_run_with_older_epoch_columns_keeps_rows_aligned(tmp_path):
    from search.rundir import EPOCH_COLUMNS, TrialLog

    old_columns = [c for c in EPOCH_COLUMNS if c != "lstm"]
    (tmp_path / "epochs.csv").write_text(",".join(old_columns) + "\n" + ",".join(str(i) for i in range(len(old_columns))) + "\n")
    TrialLog(tmp_path, SPACE, 3, 1, 3, None).setup()
    (row,) = rows(tmp_path / "epochs.csv")
    assert list(row) == EPOCH_COLUMNS and row["lstm"] == ""
    assert [row[c] for c in old_columns] == [str(i) for i in range(len(old_columns))]
