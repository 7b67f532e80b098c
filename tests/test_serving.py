"""What a run ships, measured for serving: each model's own process and memory, the texts measured,
and the command that measures a finished run again (no timing assertions)."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from test_terminal import NOISE

from runfiles.cli import UsageError
from runfiles.documents import Benchmark, Card
from runfiles.io import read_json
from runfiles.layout import RunDir
from search import serving

BALLAST_MIB = 2560
"""Memory a test's process fills and frees before it starts measuring processes, as a search's driver
has at its end: their peak must not include it."""


def raise_peak() -> float:
    """This process's peak resident memory (MiB) after filling BALLAST_MIB more and freeing it."""
    ballast = np.ones(BALLAST_MIB * 2**20, dtype=np.uint8)  # every page written: resident
    del ballast
    return serving.peak_resident_mib()


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
    # python -m search.serving on the sample's run (240 test texts): only its own lines, TensorFlow's
    # in driver.log as search.run keeps them; batch 256 timed on 256 texts, and that is said.
    log = tmp_path / "terminal.txt"
    with log.open("w") as sink:  # standard output and error both to one file, as `> log 2>&1` does
        done = subprocess.run(
            [sys.executable, "-m", "search.serving", str(run_copy)],
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
    assert (result["requests"], result["texts"], result["test_texts"], result["repeated"]) == (256, 256, 240, True)
    assert f", 256 texts per batch size, the test split's 240 texts repeated ({os.cpu_count()} CPUs)" in lines[0]
    assert len(lines) == 1 + 3 + 1 and lines[-1].startswith("report ")  # the header, a line per model, the report
    report = (files.report / "index.html").read_text()
    assert "the test split&#x27;s 240 texts, repeated" in report
    assert set(result["models"]) == {"exported", "tutorial-single", "tutorial-stacked"} and result["threads"] >= 1
    for m in result["models"].values():
        latency = m["latency_ms"]
        assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] and m["load_s"] > 0
        assert set(m["throughput_per_s"]) == {"32", "256"} and all(v > 0 for v in m["throughput_per_s"].values())
        assert m["size_bytes"] > 0 and m["params"] > 0 and m["peak_memory_mib"] > 100
    exported = result["models"]["exported"]
    assert exported["size_bytes"] == (files.best_model / "model.keras").stat().st_size
    assert result["models"]["tutorial-stacked"]["params"] > result["models"]["tutorial-single"]["params"]
    card = read_json(files.best_model / "card.json")
    assert card["benchmark"] == exported | {"threads": result["threads"]}
    typed = Card.read(files.best_model), Benchmark.read(files)  # every key declared, written back unchanged
    assert [t.to_json() for t in typed] == [card, result] and all(not t.extra for t in (*typed, typed[0].data))
    assert "<h3>Serving</h3>" in report and f">{exported['latency_ms']['p50']:.1f}</td>" in report
    assert "tutorial-stacked (untrained: same cost)" in report


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


def test_measuring_again_refuses_a_folder_without_a_run_or_an_export_in_one_line(run_copy, tmp_path, capsys):
    shutil.rmtree(RunDir(run_copy).best_model)
    assert serving.main([str(tmp_path / "none")]) == 2
    assert serving.main([str(run_copy), "--threads", "0"]) == 2
    assert serving.main([str(run_copy)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("error: ") for line in lines), lines
    assert "none: not a run directory (no run.json)" in lines[0]
    assert "--threads 0 is invalid" in lines[1] and "no exported model" in lines[2]
