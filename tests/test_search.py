"""The main job end to end on the small sample: real Ray Tune, Optuna and Keras training."""

import shutil

import keras
import numpy as np
import optuna
import pytest
import ray

from reports.__main__ import main as reports_main
from runfiles.io import read_json, read_rows, write_json
from runfiles.layout import EPOCH_COLUMNS, NUMBER, PREDICTIONS_FILE, STUDY_NAME, RunDir, State, best_row, names
from search import run as search_run
from search.config import Resources, SearchConfig
from search.space import SPACE, WITH_VECTORS, preset_point

from conftest import TINY

WITHOUT_VECTORS = tuple(p for p in SPACE if p.name not in WITH_VECTORS)
"""The space of a run without --embeddings."""


def test_run_writes_the_documented_layout(real_run):
    files = RunDir(real_run)
    names_here = {p.name for p in real_run.iterdir()}
    assert {"run.json", "study.db", "tune", "trials.csv", "epochs.csv", "summary.json", "best_model", "report"} <= names_here
    assert {p.name for p in files.best_model.iterdir()} == {"model.keras", "saved_model", "card.json", PREDICTIONS_FILE}
    assert (files.report / "index.html").is_file() and list(files.report.glob("*.png"))
    facts = read_json(files.run_json)
    assert facts["objective"] == {"metric": "val_accuracy", "mode": "max"} and facts["study"] == STUDY_NAME
    assert facts["data"]["sizes"] == {"train": 192, "val": 48, "test": 240}
    assert [p["name"] for p in facts["space"]] == [p.name for p in WITHOUT_VECTORS]
    assert facts["command"].startswith("python -m search.run --data")
    assert facts["lstm"]["trials"] == "auto" and facts["lstm"]["kernel"].endswith(".so")
    assert set(facts["presets"]) == {"tutorial-single", "tutorial-stacked"}
    assert facts["data"]["val_split"] == "by blocks of 250 review ids"
    assert len(facts["sessions"]) == 1 and facts["sessions"][0]["search_s"] > 0
    buckets = next(p["choices"] for p in facts["space"] if p["name"] == "ngram_buckets")  # the sample's few bigrams
    assert buckets[0] == 0 and len(buckets) == 2 and buckets[1] < 2**20 and facts["start_point"]["ngram_buckets"] == buckets[1]
    memory = facts["memory"]  # the sample's reviews fit whole in the widest configuration: memory cuts none
    assert facts["configs"]["train"]["memory_mb"] == memory["training_mb"] > 0 and memory["widest"]["max_len"] == 128
    assert memory["widest_tokens"] == 0 and memory["reviews_longer"] == {"train": 0, "val": 0}
    assert read_json(files.best_model / "card.json")["review_tokens"] == 128


def test_trials_table_study_and_summary_agree(real_run):
    files = RunDir(real_run)
    trials = read_rows(files.trials_csv)
    summary = read_json(files.summary_json)
    facts = read_json(files.run_json)
    assert [t["number"] for t in trials] == ["0", "1", "2", "3", "4", "5"]
    assert [t["trial_id"] for t in trials] == [f"trial_000{i}" for i in range(6)]
    for t, preset in zip(trials, ("tutorial-single", "tutorial-stacked")):  # queued first, pinned by TINY
        assert {k: t[k] for k in facts["presets"][preset]} == {k: str(v) for k, v in facts["presets"][preset].items()}
        assert t["preset"] == ""  # the pinned values make them other models than the tutorial's
    start = facts["start_point"]  # queued third, moved into the pinned space
    assert start["units"] == 16 and start["pooling"] == "max" and start["schedule"] == "linear"
    assert {k: trials[2][k] for k in start} == {k: str(v) for k, v in start.items()}
    assert {t["state"] for t in trials} <= {State.COMPLETED, State.STOPPED_EARLY}
    for t in trials:
        assert 0 <= float(t["val_accuracy"]) <= 1 and float(t["examples_per_s"]) > 0 and t["node_id"] and t["device"] == "CPU"
        assert t["lstm"] == "fused" and int(t["examples"]) == 192 * int(t["epochs"])
        assert (t["review_tokens"], t["reviews_cut"]) == ("128", "0")  # max_len, pinned by TINY, fits its memory
        assert (t["state"] == State.COMPLETED) == (t["epochs"] == "3")
        if t["state"] == State.STOPPED_EARLY:
            assert t["reason"].startswith(f"ASHA stopped it after epoch {t['epochs']}: val_accuracy")
    best = best_row(trials)
    assert best["state"] in (State.COMPLETED, State.STOPPED_EARLY) and summary["best"]["trial_id"] == best["trial_id"]
    assert summary["best"]["val_accuracy"] == pytest.approx(float(best["val_accuracy"]))
    assert 0 <= summary["best"]["test_accuracy"] <= 1 and summary["best"]["test_examples"] == 240
    assert summary["counts"]["total"] == 6 and summary["counts"]["completed"] + summary["counts"]["stopped_early"] == 6
    assert summary["budget"]["examples_used"] == sum(int(t["examples"]) for t in trials)
    assert facts["sessions"][-1]["examples_used"] == summary["budget"]["examples_used"]
    epochs = read_rows(files.epochs_csv)
    assert list(epochs[0]) == names(EPOCH_COLUMNS)
    assert sum(int(t["epochs"]) for t in trials) == len(epochs)
    assert all(0 <= float(e["val_accuracy"]) <= 1 and float(e["tokens_per_s"]) > 0 for e in epochs)


def test_the_study_ranks_as_the_report_does(real_run):
    files = RunDir(real_run)
    study = optuna.load_study(study_name=STUDY_NAME, storage=files.study_url)
    trials = {int(t["number"]): t for t in read_rows(files.trials_csv)}
    assert len(study.trials) == 6 and study.trials[0].params == preset_point("tutorial-single", WITHOUT_VECTORS) | {
        k: v for k, v in zip(("units", "embedding_dim", "max_len", "vocab_size"), (16, 16, 128, 2000))
    }
    expected = {State.COMPLETED: optuna.trial.TrialState.COMPLETE, State.STOPPED_EARLY: optuna.trial.TrialState.PRUNED}
    for frozen in study.trials:
        row = trials[frozen.number]
        assert frozen.state == expected[row["state"]]
        assert max(frozen.intermediate_values.values()) == pytest.approx(float(row["val_accuracy"]))
        if frozen.state == optuna.trial.TrialState.COMPLETE:
            assert frozen.value == pytest.approx(float(row["val_accuracy"]))  # the best epoch's, not the last's
        else:
            assert frozen.user_attrs["reason"] == row["reason"]
    # Optuna's best_trial is the best COMPLETE one; the export may be a trial stopped early (PRUNED) above it.
    summary = read_json(files.summary_json)
    completed = [r for r in trials.values() if r["state"] == State.COMPLETED]
    assert study.best_trial.number == int(best_row(completed)["number"])
    assert summary["best"]["number"] == int(best_row(trials.values())["number"])


def test_ray_tunes_own_analysis_reads_the_run_and_picks_its_best(real_run):
    """A Ray Tune user's tools on the run's experiment: each trial's results (result.json) and the
    statistics Tune picks a best trial from, kept for the objectives when a trial ends."""
    from ray.tune import ExperimentAnalysis

    files = RunDir(real_run)
    rows = {int(r["number"]): r for r in read_rows(files.trials_csv)}
    analysis = ExperimentAnalysis(str(files.tune.resolve()))
    assert sorted(t.config[NUMBER] for t in analysis.trials) == sorted(rows)
    for trial in analysis.trials:
        assert len(analysis.trial_dataframes[trial.trial_id]) == int(rows[trial.config[NUMBER]]["epochs"])
    best = analysis.get_best_trial("val_accuracy", "max", scope="all")
    assert best is not None and best.metric_analysis["val_accuracy"]["max"] == pytest.approx(
        max(float(r["val_accuracy"]) for r in rows.values())
    )
    assert analysis.get_best_trial("val_loss", "min", scope="last") is not None


def test_exported_model_takes_raw_text(real_run, capsys):
    from search import predict

    files = RunDir(real_run)
    model = keras.saving.load_model(files.best_model / "model.keras", safe_mode=True)
    logits = model.predict_on_batch(np.array(["a wonderful film", "dull and boring <br /> awful"], dtype=object))
    assert logits.shape == (2, 1) and np.isfinite(logits).all()
    network = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    assert any(isinstance(layer, keras.layers.Bidirectional) for layer in network.layers)  # Keras's own LSTM
    checkpoint = next(files.tune.rglob("model.json"))  # trials trained with the fused kernel...
    assert "Fused" not in checkpoint.read_text() and "Bidirectional" not in checkpoint.read_text()  # ...which it does not record
    card = read_json(files.best_model / "card.json")
    summary = read_json(files.summary_json)
    assert card["test_accuracy"] == summary["best"]["test_accuracy"] and card["data"]["fingerprint"]
    assert predict.main([str(real_run), "a wonderful film", "awful"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all(line.split()[1] in ("neg", "pos") for line in lines)
    assert 0 <= float(lines[0].split()[0]) <= 1


def test_same_seed_proposes_the_same_first_configurations(tmp_path, sample):
    from search.scheduler import Ledger
    from search.searcher import StudySearch
    from search.space import optuna_space

    def first_proposals(seed, folder):
        folder.mkdir()
        searcher = StudySearch(
            optuna_space(SPACE),
            RunDir(folder),
            Ledger(100),
            optuna.samplers.TPESampler(seed=seed),
            [preset_point(p, SPACE) for p in ("tutorial-single", "tutorial-stacked")],
            [],
            5,
        )
        return [searcher.suggest(f"t{i}") for i in range(5)]

    a, b, c = first_proposals(7, tmp_path / "a"), first_proposals(7, tmp_path / "b"), first_proposals(8, tmp_path / "c")
    assert a == b
    assert a[:2] == c[:2] and a[2:] != c[2:]  # the tutorial's two models first, then sampled ones
    assert [p["trial_number"] for p in a] == [0, 1, 2, 3, 4]


def test_one_rule_says_how_a_trial_ended_for_the_table_and_the_study():
    from search.searcher import STUDY_STATES, trial_ending
    from search.train import DIVERGED

    epoch = {"epoch": 2, "val_accuracy": 0.8}
    assert trial_ending(epoch, None, scored=True) == (State.COMPLETED, "")
    assert trial_ending(epoch, "examples budget spent after epoch 2", scored=True) == (
        State.STOPPED_EARLY,
        "examples budget spent after epoch 2",
    )
    diverged = {"epoch": 1, DIVERGED: "training loss is nan"}
    assert trial_ending(diverged, "ASHA ...", scored=False) == (State.DIVERGED, "diverged at epoch 1: training loss is nan")
    assert trial_ending(diverged, None, scored=False, error="boom") == (State.ERRORED, "boom")
    assert trial_ending({}, None, scored=False) == (State.ERRORED, "it ended before finishing an epoch")
    assert {state: STUDY_STATES[state].name for state in State if state.ended} == {
        State.COMPLETED: "COMPLETE",
        State.STOPPED_EARLY: "PRUNED",
        State.DIVERGED: "FAIL",
        State.ERRORED: "FAIL",
    }


def test_simulated_gpus_give_each_running_trial_its_own_and_storage_holds_the_whole_run(tmp_path, sample):
    # One search for both: GPUs Ray believes in (one per running trial), and --storage (the whole run
    # there, the checkpoints too), whose copy without the checkpoints rebuilds the report.
    storage, out = tmp_path / "storage", tmp_path / "local" / "gpu"
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False)
    try:
        args = ["--data", sample, "--gpus", "2", "--trials", "3", "--max-epochs", "1", "--storage", storage.as_uri()]
        code = search_run.main([*args, "--out", str(out), *TINY])
    finally:
        ray.shutdown()
    assert code == 0
    trials = read_rows(out / "trials.csv")
    assert len(trials) == 3 and all(t["gpu_ids"] for t in trials)
    spans = [(float(t["started_at"]), float(t["ended_at"]), t["gpu_ids"]) for t in trials]
    for start, _, _ in spans:
        running = [gpu for s, e, gpu in spans if s <= start < e]
        assert len(running) <= 2 and len(set(running)) == len(running)
    assert {gpu for _, _, gpu in spans} <= {"0", "1"}
    facts = read_json(out / "run.json")
    assert facts["resources"]["concurrency"] == 2 and facts["lstm"] == {"requested": "auto", "trials": "auto"}

    stored = storage / "gpu"
    assert {"run.json", "study.db", "trials.csv", "epochs.csv", "summary.json", "best_model", "report", "tune"} <= {
        p.name for p in stored.iterdir()
    }
    assert all(t["best_checkpoint"].startswith(str(stored / "tune")) for t in trials)  # checkpoints live in the storage
    assert not (out / "tune").exists() or not list((out / "tune").glob("trial_*"))
    laptop = tmp_path / "laptop" / "run"
    shutil.copytree(stored, laptop, ignore=shutil.ignore_patterns("tune"))  # copied back without the checkpoints
    shutil.rmtree(tmp_path / "local")
    assert reports_main([str(laptop)]) == 0
    assert (laptop / "report" / "index.html").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--gpus", "4"], "--gpus 4: this machine has 0 GPUs"),
        (["--data", "/nowhere/imdb.tar.gz"], "no such file"),
        (["--data", ""], "--data '': names no data; give a file, a folder or tfds:NAME"),
        (["--storage", ""], "--storage '': names no place; give a folder all nodes share or a URI"),
        (["--warm-start", ""], "argument --warm-start: an empty path; give a folder or file"),
        (["--trials", "0"], "--trials 0 is invalid"),
        (["--trials", "many"], "argument --trials: invalid int value: 'many'"),
        (["--fix", "dropout=1.5"], "--fix dropout=1.5: dropout must lie in [0, 0.6]"),
        (["--fix", "depth=7"], "--fix depth=7: depth must lie in [1, 3]"),
        (["--fix", "colour=blue"], "--fix colour=blue"),
        (["--cpus", "64"], "--cpus 64: this machine has"),
        (["--lstm", "cudnn"], "argument --lstm: invalid choice: 'cudnn'"),
        (["--resume"], "no run there"),
        (["--resource-wait", "-1"], "--resource-wait -1.0 is invalid: expected minutes >= 0"),
        (["--resource-wait", "nan"], "--resource-wait nan is invalid"),
        (["--time-budget", "nan"], "--time-budget nan is invalid: expected a finite number of minutes > 0"),
        (["--time-budget", "inf"], "--time-budget inf is invalid"),
        (["--gpus", "nan"], "--gpus nan is invalid"),
        (["--fix", "depth=2", "--fix", "depth=3"], "depth is already pinned to 2"),
        (["--max-latency-ms", "inf"], "--max-latency-ms inf is invalid: expected milliseconds > 0"),
        (["--max-latency-ms", "-3"], "--max-latency-ms -3.0 is invalid"),
        (["--mlflow", "127.0.0.1:5000"], "--mlflow 127.0.0.1:5000: not a tracking URI"),
        (["--ensemble"], "--ensemble exports an ensemble of the certified refits: add --certify"),
        (["--ensemble", "--certify", "--max-latency-ms", "5"], "--ensemble multiplies the latency"),
        (["--no-ablation"], "--no-ablation skips a part of certification: add --certify"),
        (["--certify-top", "2"], "--certify-top 2 shapes certification: add --certify"),
        (["--certify", "--certify-top", "0"], "--certify-top 0 is invalid: expected an integer >= 1"),
        (["--certify", "--certify-seeds", "0"], "--certify-seeds 0 is invalid: expected an integer >= 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, sample, capsys, args, message):
    out = tmp_path / "run"
    code = search_run.main(["--data", sample, "--out", str(out), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1 and err.startswith("error: ")
    assert not out.exists()


def test_an_earlier_run_is_never_overwritten(tmp_path, sample, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text("{}")
    assert search_run.main(["--data", sample, "--out", str(out)]) == 2
    assert "holds an earlier run; pass --resume" in capsys.readouterr().err
    (out / "run.json").rename(out / "notes.txt")
    assert search_run.main(["--data", sample, "--out", str(out)]) == 2
    assert "holds other files (notes.txt); choose an empty or new folder" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "{}"


def test_a_file_where_a_folder_is_needed_is_one_line_and_writes_nothing(tmp_path, sample, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for args in (["--out", str(a_file / "run")], ["--out", str(tmp_path / "run"), "--storage", str(a_file)]):
        assert search_run.main(["--data", sample, *args]) == 2
        err = capsys.readouterr().err
        assert f"{a_file} is a file; choose a folder" in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_predict_without_a_model_is_one_line_and_exit_2(tmp_path, capsys):
    from search import predict

    assert predict.main([str(tmp_path), "some review"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no exported model" in err


def test_resuming_a_run_with_older_epoch_columns_keeps_rows_aligned(tmp_path):
    from search.tracking import TrialTable

    current = names(EPOCH_COLUMNS)
    old_columns = [c for c in current if c not in ("lstm", "examples")]
    (tmp_path / "epochs.csv").write_text(",".join(old_columns) + "\n" + ",".join(str(i) for i in range(len(old_columns))) + "\n")
    TrialTable(RunDir(tmp_path), SPACE, None, None, 1, None)
    (row,) = read_rows(tmp_path / "epochs.csv")
    assert list(row) == current and row["lstm"] == "" and row["examples"] == ""
    assert [row[c] for c in old_columns] == [str(i) for i in range(len(old_columns))]


def test_search_config_and_resources_plan():
    config = SearchConfig(trials=5, gpus=2, gpus_per_trial=0.5)
    from search.config import plan_resources

    on_gpus = plan_resources(config, {"CPU": 8, "GPU": 2, "memory": 2**34})
    assert on_gpus == Resources(8, 2, 2, 0.5, 4, None, 0) and on_gpus.trial_memory_mb == 0  # a GPU's memory: not estimated
    on_cpus = plan_resources(SearchConfig(cpus_per_trial=2), {"CPU": 8, "memory": 2**34})
    assert (on_cpus.concurrency, on_cpus.trial_memory_mb) == (4, 2**34 // 4 // 2**20)  # Ray's memory by the CPUs a trial gets


def test_a_continued_run_takes_more_and_refuses_less():
    from runfiles.cli import UsageError
    from search.config import continued

    recorded = {"trials": 20, "budget_examples": 1000}
    assert continued(recorded, {"budget_examples": 2500}) == {"budget_examples": 2500, "trials": 50}  # the budget ends it
    assert continued(recorded, {"budget_examples": 2500, "trials": 21}) == {"budget_examples": 2500, "trials": 21}
    with pytest.raises(UsageError, match=r"^--resume: --budget-examples 999 is smaller than the run's 1000; "):
        continued(recorded, {"budget_examples": 999})
    assert continued({"trials": 20, "budget_examples": None}, {"budget_examples": 5}) == {"budget_examples": 5}
    timed = {"trials": 20, "time_budget_min": 2.0}  # a time budget too: more continues, less is refused, as for the others
    assert continued(timed, {"time_budget_min": 3.0}) == {"time_budget_min": 3.0}
    with pytest.raises(UsageError, match=r"^--resume: --time-budget 1.0 is smaller than the run's 2.0; "):
        continued(timed, {"time_budget_min": 1.0})
    assert continued({"trials": 20, "time_budget_min": None}, {"time_budget_min": 1.0}) == {"time_budget_min": 1.0}


def test_the_fidelity_plan_follows_the_budget_in_epochs():
    from search.config import plan_fidelity, planned

    # The tutorial's compute (2 models x 10 epochs = 20 epochs of the data): rungs at 1 and 3 epochs,
    # 20 / (1 + 2/3) = 12 configurations; a rung at 9 once 27 configurations x (1 + 4/3) = 63 epochs fit.
    assert [(p.max_epochs, p.rungs, p.configurations) for p in (plan_fidelity(20_000, 1000), plan_fidelity(500_000, 25_000))] == [
        (3, [1, 3], 12),
        (3, [1, 3], 12),
    ]
    assert plan_fidelity(63_000, 1000).rungs == [1, 3, 9] and plan_fidelity(62_000, 1000).rungs == [1, 3]
    assert plan_fidelity(500, 1000).max_epochs == 1 and plan_fidelity(500, 1000).configurations == 1
    search, plan = planned(SearchConfig(budget_examples=20_000), 1000)
    assert (search.max_epochs, search.trials) == (3, 24) and plan.budget_epochs == 20
    # Given by hand, or without an examples budget: no plan, the given or the tutorial's values.
    assert planned(SearchConfig(budget_examples=20_000, max_epochs=2, trials=7), 1000) == (
        SearchConfig(budget_examples=20_000, max_epochs=2, trials=7),
        None,
    )
    assert planned(SearchConfig(), 1000)[0].max_epochs == 10 and planned(SearchConfig(), 1000)[0].trials == 20
    # --smoke's epochs and trials give way to a budget's plan.
    from search.config import configs_from_args, parse_args

    smoke = configs_from_args(parse_args(["--smoke", "--budget-examples", "12000"]))[0]
    assert smoke.max_epochs is None and smoke.trials is None and smoke.budget_examples == 12000


def test_asha_rechecks_passed_rungs_so_the_first_trials_get_no_free_run():
    from types import SimpleNamespace

    from search.scheduler import Ledger, StoppingScheduler

    ledger = Ledger(examples_per_epoch=100)
    scheduler = StoppingScheduler(ledger, max_epochs=9, grace_period=1)
    trials = {name: SimpleNamespace(trial_id=name, config={NUMBER: number}) for number, name in enumerate("abc")}
    for trial in trials.values():
        scheduler.on_trial_add(None, trial)

    def report(name: str, epoch: int, value: float) -> str:
        return scheduler.on_trial_result(None, trials[name], {"epoch": epoch, "val_accuracy": value, "examples": 100})

    # Each arrives at rung 1 above those before it, so ASHA (judging on arrival) lets all three go on.
    assert [report(name, 1, value) for name, value in zip("abc", (0.6, 0.7, 0.8), strict=True)] == ["CONTINUE"] * 3
    # Once three reached it, only the best third of rung 1 goes on: a and b stop at their next epoch.
    assert [report(name, 2, 0.9) for name in "abc"] == ["STOP", "STOP", "CONTINUE"]
    assert ledger.reasons["a"] == (
        "ASHA stopped it after epoch 2: its val_accuracy at epoch 1 fell below the best 1/3 "
        "of the 3 trials that reached that rung"
    )
    assert "c" not in ledger.reasons


def test_a_trial_a_resumed_driver_continues_keeps_its_place_in_the_rungs(tmp_path):
    from types import SimpleNamespace

    from search import internals
    from search.scheduler import Ledger, StoppingScheduler

    def report(scheduler, trial, epoch: int, value: float) -> str:
        return scheduler.on_trial_result(None, trial, {"epoch": epoch, "val_accuracy": value, "examples": 100})

    scheduler = StoppingScheduler(Ledger(examples_per_epoch=100), max_epochs=9, grace_period=1)  # rungs at 1, 3, 9
    first, second = (SimpleNamespace(trial_id=name, config={NUMBER: n}) for n, name in enumerate("ab"))
    for trial in (first, second):
        scheduler.on_trial_add(None, trial)
    assert [report(scheduler, first, 1, 0.6), report(scheduler, second, 1, 0.8)] == ["CONTINUE", "CONTINUE"]
    scheduler.save(str(tmp_path / "scheduler.pkl"))  # the driver stops; a resumed one continues study trial 0 under a new Tune id
    resumed = StoppingScheduler(Ledger(examples_per_epoch=100), max_epochs=9, grace_period=1)
    resumed.restore(str(tmp_path / "scheduler.pkl"))
    again = SimpleNamespace(trial_id="a2", config={NUMBER: 0})
    resumed.on_trial_add(None, again)
    # Epoch 2 is no rung: it goes on (judged afresh under its new id, 0.65 fell below rung 1's cut-off of 0.73)
    assert report(resumed, again, 2, 0.65) == "CONTINUE" and "a2" not in resumed.ledger.reasons
    rung_1 = internals.rungs(internals.bracket_of(resumed, "trial_0000"))[-1][1]
    assert rung_1 == {"trial_0000": 0.6, "trial_0001": 0.8}  # its configuration counted once


def test_a_resumed_run_keeps_its_certification_and_refuses_another(sample):
    from runfiles.cli import UsageError
    from runfiles.documents import RunFacts
    from search.config import CertifyConfig, configs_from_args, parse_args, recorded_configs
    from search.run import resumed_benchmark, resumed_certify

    search, data = configs_from_args(parse_args(["--data", sample]))
    certified = RunFacts(configs=recorded_configs(search, data, {}, CertifyConfig(seeds=1, cv=3), benchmark=False))
    assert resumed_certify(parse_args(["--resume"]), certified) == CertifyConfig(seeds=1, cv=3)
    assert resumed_certify(parse_args(["--resume", "--certify", "--cv", "3"]), certified) == CertifyConfig(seeds=1, cv=3)
    with pytest.raises(UsageError, match=r"^--resume: --cv 5 \(the run's: 3\), --ensemble \(the run started without it\) cannot"):
        resumed_certify(parse_args(["--resume", "--certify", "--cv", "5", "--ensemble"]), certified)
    # a run without certification takes it on resume; one recorded before certification was recorded, the flags given
    uncertified = RunFacts(configs=recorded_configs(search, data, {}))
    assert resumed_certify(parse_args(["--resume", "--certify"]), uncertified) == CertifyConfig()
    older = RunFacts(configs={"search": {}, "data": {}, "train": {}})
    assert resumed_certify(parse_args(["--resume"]), older) is None
    assert not resumed_benchmark(parse_args(["--resume"]), certified) and resumed_benchmark(parse_args(["--resume"]), older)
    assert not resumed_benchmark(parse_args(["--resume", "--no-benchmark"]), uncertified)


def test_the_baseline_of_a_run_without_a_test_split_or_folds_is_refused_in_one_line(run_copy, capsys):
    from search import baseline

    files = RunDir(run_copy)
    facts = read_json(files.run_json)
    write_json(files.run_json, {**facts, "data": {**facts["data"], "sizes": {**facts["data"]["sizes"], "test": 0}}})
    before = sorted(p.name for p in run_copy.iterdir())
    assert baseline.main([str(run_copy)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no folds to cross-validate on (cv_folds.csv); certify it first" in err
    assert sorted(p.name for p in run_copy.iterdir()) == before


def test_a_run_json_with_config_keys_this_version_does_not_know_is_refused_in_one_line(run_copy, capsys):
    # An edited run.json, or one recorded by another version: one line naming the key, exit 2, the run untouched.
    files = RunDir(run_copy)
    facts = read_json(files.run_json)
    for section in ("certify", "data", "search"):
        edited = {**facts, "configs": {**facts["configs"]}}
        edited["configs"][section] = {**(facts["configs"].get(section) or {}), "from_elsewhere": 1}
        write_json(files.run_json, edited)
        before = files.trials_csv.read_bytes()
        assert search_run.main(["--resume", "--out", str(run_copy)]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and f"run.json's configs.{section} holds from_elsewhere, which this version does not know" in err
        assert files.trials_csv.read_bytes() == before


def test_a_damaged_run_json_or_study_db_is_refused_naming_the_file(run_copy, capsys):
    # one line naming the file, exit 2, nothing written (a resume once gained a session in run.json, then a traceback)
    from search import baseline

    files = RunDir(run_copy)
    study, facts = files.study_db.read_bytes(), files.run_json.read_bytes()

    def contents():
        return {p.name: p.read_bytes() for p in run_copy.iterdir() if p.is_file()}

    files.study_db.write_bytes(study[: len(study) // 2])
    before = contents()
    assert search_run.main(["--resume", "--out", str(run_copy)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --resume --out {run_copy}: {files.study_db} is not a SQLite database (database disk image is malformed); "
        "put back a copy of it, or start a new run with another --out"
    )
    assert contents() == before

    files.study_db.write_bytes(study)
    files.run_json.write_bytes(facts[:40])
    before = contents()
    resume, linear = ["--resume", "--out", str(run_copy)], [str(run_copy), "--linear-only"]
    for command, args in ((search_run.main, resume), (baseline.main, linear)):
        code, err = command(args), capsys.readouterr().err.strip()
        assert code == 2 and "\n" not in err and err.startswith(f"error: {files.run_json} is not JSON ("), err
    assert contents() == before


def test_a_sigterm_stops_a_follow_up_command_as_ctrl_c(run_copy, capsys, monkeypatch):
    # search.baseline (and search.certify, through the same follow_up) once ended in a traceback
    import os
    import signal
    import time

    from search import baseline

    def stopped(*_):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)

    monkeypatch.setattr(baseline, "run_baselines", stopped)
    files = RunDir(run_copy)
    before, handlers = files.summary_json.read_bytes(), (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    assert baseline.main([str(run_copy), "--linear-only"]) == 130
    said = capsys.readouterr()
    assert said.err.strip() == f"interrupted; run it again with: python -m search.baseline {run_copy} --linear-only"
    assert not files.holder.exists() and not files.baseline_json.exists() and files.summary_json.read_bytes() == before
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers


def test_a_budget_the_run_has_spent_is_refused_on_resume(tmp_path, capsys):
    from runfiles.cli import UsageError
    from search.config import parse_args
    from search.run import check_budget_left

    run_dir = RunDir(tmp_path)
    run_dir.epochs_csv.write_text("trial_id,examples\na,240\na,240\n")
    with pytest.raises(UsageError, match=r"^--resume: --budget-examples 480 is spent already \(the run has trained on 480 exa"):
        check_budget_left(parse_args(["--resume", "--budget-examples", "480"]), run_dir)
    check_budget_left(parse_args(["--resume", "--budget-examples", "481"]), run_dir)
    check_budget_left(parse_args(["--resume", "--trials", "9"]), run_dir)


def test_a_resume_that_exports_nothing_new_measures_the_serving_no_more(tmp_path):
    from types import SimpleNamespace

    from runfiles.layout import BENCHMARK_FILE
    from search.run import measures_serving

    run_dir = RunDir(tmp_path)
    session = SimpleNamespace(run_dir=run_dir, benchmark=True, exported_before=True)
    assert measures_serving(session)  # the earlier export was never measured
    run_dir.best_model.mkdir()
    (run_dir.best_model / BENCHMARK_FILE).write_text("{}")
    assert not measures_serving(session)
    assert measures_serving(SimpleNamespace(run_dir=run_dir, benchmark=True, exported_before=False))  # a new export
    assert not measures_serving(SimpleNamespace(run_dir=run_dir, benchmark=False, exported_before=False))
