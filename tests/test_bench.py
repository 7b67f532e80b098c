"""The benchmark runs end to end on a tiny input (no timing assertions: it is a benchmark)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from test_terminal import NOISE

from runfiles.cli import UsageError
from runfiles.io import read_json
from runfiles.layout import RunDir
from search import bench, serving

BALLAST_MIB = 2560
"""Memory a test's process fills and frees before it starts measuring processes, as a search's driver
has at its end: their peak must not include it."""


def raise_peak() -> float:
    """This process's peak resident memory (MiB) after filling BALLAST_MIB more and freeing it."""
    ballast = np.ones(BALLAST_MIB * 2**20, dtype=np.uint8)  # every page written: resident
    del ballast
    return serving.peak_resident_mib()


@pytest.fixture
def raised_peak() -> float:
    return raise_peak()


def test_bench_writes_both_pipelines_and_their_ratio(sample, tmp_path, capsys, raised_peak):
    out = tmp_path / "bench.json"
    code = bench.main(
        [
            "--data",
            sample,
            "--preset",
            "tutorial-single",
            "--examples",
            "60",
            "--repeats",
            "1",
            "--threads",
            "1",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())["tutorial-single"]
    for name in ("tutorial", "harness"):
        figures = result[name]
        assert figures["examples_per_s"] > 0 and figures["tokens_per_s"] > figures["examples_per_s"]
        assert 0 <= figures["val_accuracy"] <= 1 and figures["cpus_used"] > 0
        assert 100 < figures["peak_memory_mib"] < raised_peak - 1024  # the worker's own, not this process's
    assert result["ratio"] == result["harness"]["examples_per_s"] / result["tutorial"]["examples_per_s"]
    assert result["epochs"] == {"warmup": 1, "measured": 1, "train_examples": 48}
    assert 0 < result["limits"]["fraction_of_peak"] < 1 and result["harness"]["setup_s"] > 0
    assert result["harness"]["lstm"] == "fused"
    printed = capsys.readouterr().out
    assert "ratio" in printed and "examples/s" in printed


def small_corpus(root, words: int = 28):
    """An aclImdb folder of 40 reviews per split drawn from `words` distinct words."""
    import random

    rng = random.Random(0)
    vocabulary = [f"word{i}" for i in range(words)]
    for split in ("train", "test"):
        for label in ("pos", "neg"):
            (root / split / label).mkdir(parents=True)
            for i in range(20):
                text = " ".join(rng.choice(vocabulary) for _ in range(12)) + (" good" if label == "pos" else " bad")
                (root / split / label / f"{i}_{8 if label == 'pos' else 2}.txt").write_text(text)
    return root


def test_bench_runs_on_a_corpus_smaller_than_the_tutorials_vocabulary(tmp_path, capsys):
    corpus = small_corpus(tmp_path / "aclImdb")
    args = ["--data", str(corpus), "--preset", "tutorial-single", "--examples", "40", "--repeats", "1", "--threads", "1"]
    assert bench.main([*args, "--json", str(tmp_path / "bench.json")]) == 0
    result = json.loads((tmp_path / "bench.json").read_text())["tutorial-single"]
    assert result["harness"]["examples_per_s"] > 0 and result["tutorial"]["examples_per_s"] > 0


def test_flops_per_token_follow_the_lstm_shapes():
    # single: one BiLSTM(64) on 64-wide embeddings; stacked adds a BiLSTM(32) on its 128-wide output
    single = 3 * 2 * 2 * 4 * 64 * (64 + 64)
    assert bench.lstm_flops_per_token("tutorial-single") == single
    assert bench.lstm_flops_per_token("tutorial-stacked") == single + 3 * 2 * 2 * 4 * 32 * (128 + 32)


def test_overhead_of_a_search_from_its_timelines(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"resources": {"cpus": 2}}))
    (tmp_path / "trials.csv").write_text("trial_id,cpus,started_at,ended_at\na,1,0,100\nb,1,10,100\n")
    (tmp_path / "epochs.csv").write_text("trial_id,epoch_s,eval_s\na,45,5\na,45,5\nb,80,5\n")
    overhead = bench.tune_overhead(tmp_path)
    assert overhead["training_share"] == 170 / 200 and overhead["training_and_evaluation_share"] == 185 / 200


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert bench.main(["--data", str(tmp_path / "none.tar.gz")]) == 2
    assert bench.main(["--overhead", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("error: ") for line in lines)


def test_serving_peak_memory_is_the_measuring_process_own(tmp_path):
    # A search's driver ends with a high peak and then starts the measuring processes: a model's
    # peak must be its own, the same as from a parent that never held that memory.
    spec = {"preset": "tutorial-single", "vocabulary": ["", "[UNK]", "good", "bad", "film"], "num_classes": 2}
    config = serving.ServingConfig(threads=1, requests=20, texts=256)
    texts = serving.texts_measured(["a good film", "a bad film, long and dull"], config)
    before = serving.in_fresh_process(spec, texts, config).peak_memory_mib
    parent = raise_peak()
    after = serving.in_fresh_process(spec, texts, config).peak_memory_mib
    assert 100 < after < parent - 1024
    assert after == pytest.approx(before, rel=0.1)


def test_a_test_split_smaller_than_a_batch_is_repeated_to_fill_one_and_said(run_copy, tmp_path):
    # search.bench --export on the sample's run (240 test texts): only its own lines, TensorFlow's
    # in driver.log as search.run keeps them; batch 256 timed on 256 texts, and that is said.
    log = tmp_path / "terminal.txt"
    with log.open("w") as sink:  # standard output and error both to one file, as `> log 2>&1` does
        done = subprocess.run(
            [sys.executable, "-m", "search.bench", "--export", str(run_copy), "--json", str(tmp_path / "bench.json")],
            stdout=sink,
            stderr=subprocess.STDOUT,
            timeout=900,
            env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},  # TensorFlow as a user has it
        )
    text, files = log.read_text(), RunDir(run_copy)
    assert done.returncode == 0, text[-3000:]
    lines = text.splitlines()
    assert not [line for line in lines if NOISE.search(line)], text
    assert "oneDNN" in files.driver_log.read_text()  # what TensorFlow printed is kept, not shown
    result = read_json(files.best_model / "benchmark.json")
    assert read_json(tmp_path / "bench.json") == result  # --json writes what benchmark.json holds
    assert (result["requests"], result["texts"], result["test_texts"], result["repeated"]) == (256, 256, 240, True)
    assert f", 256 texts per batch size, the test split's 240 texts repeated ({os.cpu_count()} CPUs)" in lines[0]
    assert len(lines) == 1 + 3 + 1 and lines[-1].startswith("report ")  # the header, a line per model, the report
    assert "the test split&#x27;s 240 texts, repeated" in (files.report / "index.html").read_text()


def test_serving_texts_repeat_a_small_test_split_to_a_whole_batch():
    config = serving.ServingConfig(requests=300, texts=2048)
    small = [f"text {i}" for i in range(40)]
    texts = serving.texts_measured(small, config)
    assert len(texts) == 256 and texts[:40] == texts[40:80] and sorted(texts[:40]) == sorted(small)
    large = [f"text {i}" for i in range(5000)]
    texts = serving.texts_measured(large, config)
    assert len(texts) == len(set(texts)) == 2048 and texts == serving.texts_measured(large, config)  # seeded
    with pytest.raises(UsageError, match="--texts 100 is invalid: expected at least the largest batch, 256"):
        serving.ServingConfig(texts=100)
