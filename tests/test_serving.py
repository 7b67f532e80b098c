"""What a run ships, measured for serving: each model's own process and memory, the texts measured,
and the command that measures a finished run again (no timing assertions). The end-to-end checks
run on tests/test_terminal.py's smoke run, which ends with the benchmark and is then measured again:
`written_for_the_sample`, `measured_again`."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from runfiles.cli import UsageError
from runfiles.documents import Benchmark, Card
from runfiles.io import read_json
from runfiles.layout import RunDir
from search import serving

from conftest import NOISE

BALLAST_MIB = 2560
"""Memory a test's process fills and frees before it starts measuring processes, as a search's driver
has at its end: their peak must not include it."""


def raise_peak() -> float:
    """This process's peak resident memory (MiB) after filling BALLAST_MIB more and freeing it."""
    ballast = np.ones(BALLAST_MIB * 2**20, dtype=np.uint8)  # every page written: resident
    del ballast
    return serving.peak_resident_mib()


def written_for_the_sample(run_dir: Path, lines: list[str]) -> dict:
    """Check what the serving benchmark of a run on the sample (240 test texts) wrote and said, at the
    end of a search (tests/test_terminal.py's smoke run) or by `python -m search.serving`: batch 256
    timed on 256 texts, the test split repeated, and that said on the terminal (`lines`) and in the
    report; benchmark.json, card.json and the report's Serving table agree. Returns benchmark.json."""
    files = RunDir(run_dir)
    result = read_json(files.best_model / "benchmark.json")
    assert (result["requests"], result["texts"], result["test_texts"], result["repeated"]) == (256, 256, 240, True)
    at = next(i for i, line in enumerate(lines) if line.startswith("serving "))
    assert f", 256 texts per batch size, the test split's 240 texts repeated ({os.cpu_count()} CPUs)" in lines[at]
    assert [line.split()[0] for line in lines[at + 1 : at + 4]] == list(result["models"])  # a line per model
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
    return result


def measured_again(run_dir: Path, first: dict, capfd, monkeypatch) -> None:
    """Check `python -m search.serving RUN_DIR`'s work on a run on the sample measured once already
    (`first`: its benchmark.json, from the end of its search), run in this process after it filled
    and freed BALLAST_MIB, as a search's driver has at its end: each model's peak memory is its own,
    the exported model's the same as the first time; only the command's lines are shown, and
    TensorFlow's, as a user has it, go to driver.log as search.run keeps them; what it writes passes
    `written_for_the_sample`. (`capfd`, `monkeypatch`: the calling test's fixtures. The command in a
    process of its own: test_measuring_again_refuses_..., its last case.)"""
    files = RunDir(run_dir)
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    kept, _ = len(files.driver_log.read_text()), capfd.readouterr()
    parent = raise_peak()
    assert serving.main([str(run_dir)]) == 0
    out, err = capfd.readouterr()
    lines = (out + err).splitlines()
    assert not [line for line in lines if NOISE.search(line)], out + err
    assert "oneDNN" in files.driver_log.read_text()[kept:]  # what TensorFlow printed is kept, not shown
    assert len(lines) == 1 + 3 + 1 and lines[0].startswith("serving ") and lines[-1].startswith("report ")
    result = written_for_the_sample(run_dir, lines)
    assert all(100 < m["peak_memory_mib"] < parent - 1024 for m in result["models"].values())
    before = first["models"]["exported"]["peak_memory_mib"]
    assert result["models"]["exported"]["peak_memory_mib"] == pytest.approx(before, rel=0.1)


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
    done = subprocess.run(  # the command in a process of its own, up to where it measures: its one line alone
        [sys.executable, "-m", "search.serving", str(run_copy)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # both to one stream, as `> log 2>&1` does
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},  # TensorFlow as a user has it
    )
    assert done.returncode == 2
    lines = capsys.readouterr().err.strip().splitlines() + done.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("error: ") for line in lines), lines
    assert "none: not a run directory (no run.json)" in lines[0]
    assert "--threads 0 is invalid" in lines[1] and "no exported model" in lines[2]
