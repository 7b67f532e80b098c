"""The training benchmark runs end to end on a tiny input (no timing assertions: it is a benchmark)."""

import json

import pytest
from test_serving import raise_peak

from tools import bench


@pytest.fixture
def raised_peak() -> float:
    return raise_peak()


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


def test_bench_writes_both_pipelines_and_their_ratio_on_a_corpus_smaller_than_the_tutorials_vocabulary(
    tmp_path, capsys, raised_peak
):
    # 30 words: both pipelines' embeddings take the corpus's size, not the tutorial's 1,000
    corpus = small_corpus(tmp_path / "aclImdb")
    out = tmp_path / "bench.json"
    args = ["--data", str(corpus), "--preset", "tutorial-single", "--examples", "40", "--repeats", "1", "--threads", "1"]
    assert bench.main([*args, "--json", str(out)]) == 0
    result = json.loads(out.read_text())["tutorial-single"]
    for name in ("tutorial", "harness"):
        figures = result[name]
        assert figures["examples_per_s"] > 0 and figures["tokens_per_s"] > figures["examples_per_s"]
        assert 0 <= figures["val_accuracy"] <= 1 and figures["cpus_used"] > 0
        assert 100 < figures["peak_memory_mib"] < raised_peak - 1024  # the worker's own, not this process's
    assert result["ratio"] == result["harness"]["examples_per_s"] / result["tutorial"]["examples_per_s"]
    assert result["epochs"] == {"warmup": 1, "measured": 1, "train_examples": 32}
    assert 0 < result["limits"]["fraction_of_peak"] < 1 and result["harness"]["setup_s"] > 0
    assert result["harness"]["lstm"] == "fused"
    printed = capsys.readouterr().out
    assert "ratio" in printed and "examples/s" in printed


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
