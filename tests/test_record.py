"""The run directory is the user's record: the data pinned to the run, one driver at a time,
faults of the machine in one line (real searches on the sample; a small tmpfs for the disk)."""

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

from runfiles.io import read_json, read_rows
from runfiles.layout import RunDir
from runfiles.lock import holding
from search import run as search_run
from search.searcher import open_study, started_trials

from conftest import SAMPLE, TINY, snapshot

SHORT = ["--trials", "1", "--max-epochs", "1", "--cpus", "1", *TINY]


def _extract(root: Path, swap_labels: bool = False) -> Path:
    """The sample as an aclImdb folder under root (with pos/ and neg/ swapped if asked)."""
    with tarfile.open(SAMPLE) as archive:
        archive.extractall(root, filter="data")
    if swap_labels:
        for split in ("train", "test"):
            base = root / "aclImdb" / split
            (base / "pos").rename(base / "tmp")
            (base / "neg").rename(base / "pos")
            (base / "tmp").rename(base / "neg")
    return root / "aclImdb"


def test_a_resume_reads_the_runs_own_data_from_anywhere_refuses_what_cannot_change_and_takes_more_trials(
    tmp_path, monkeypatch, capsys
):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    _extract(project / "data")
    _extract(elsewhere / "data", swap_labels=True)  # the same reviews, the labels swapped
    monkeypatch.chdir(project)
    assert search_run.main(["--data", "data/aclImdb", "--out", "run", *SHORT]) == 0
    recorded = read_json(project / "run" / "run.json")["configs"]["data"]["source"]
    assert recorded == str(project / "data" / "aclImdb")  # absolute, so a resume finds it from anywhere
    monkeypatch.chdir(elsewhere)
    before = snapshot(project / "run")
    capsys.readouterr()
    assert search_run.main(["--resume", "--out", "../project/run", "--trials", "2", "--data", "data/aclImdb"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"--data {elsewhere / 'data' / 'aclImdb'} is not the data this run trained on" in err
    resume = ["--resume", "--out", "../project/run", "--trials", "2"]
    assert search_run.main([*resume, "--fix", "depth=3", "--seed", "4", "--val-block", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: --resume: --seed 4 (the run's: 0), --fix depth=3 (the run's: units=16,embedding_dim=16,max_len=128,"
        "vocab_size=2000), --val-block 1 (the run's: 250) cannot change on resume; drop them, or start a new run with "
        "another --out"
    )
    assert search_run.main([*resume, "--tpe-trials", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --resume: --tpe-trials 5 (the run's: 1000) cannot change on resume") and err.endswith(
        "; drop it, or start a new run with another --out"
    )
    assert snapshot(project / "run") == before  # nothing written, run.json never with options that were not used
    assert search_run.main(resume[:-2]) == 0  # the recorded path (no more trials: it trains nothing)
    assert len(read_json(project / "run" / "run.json")["sessions"]) == 2
    shutil.copytree(project / "data", elsewhere / "copy")  # a copy keeps names, sizes and times: the same data
    assert search_run.main([*resume, "--data", "copy/aclImdb/"]) == 0
    assert [r["number"] for r in read_rows(project / "run" / "trials.csv")] == ["0", "1"]
    study = open_study(RunDir(project / "run"))  # the start point stays queued in it, not started
    assert read_json(project / "run" / "summary.json")["counts"]["total"] == started_trials(study) == 2
    facts = read_json(project / "run" / "run.json")
    assert facts["configs"]["data"]["source"] == str(elsewhere / "copy" / "aclImdb")
    assert facts["configs"]["search"]["trials"] == 2
    before = snapshot(project / "run")
    capsys.readouterr()
    assert search_run.main([*resume[:-1], "1"]) == 2  # fewer trials than the run has now: a run only continues
    assert capsys.readouterr().err.strip() == (
        "error: --resume: --trials 1 is smaller than the run's 2; a run continues only with more (give at least 2), "
        "or start a new run with another --out"
    )
    assert snapshot(project / "run") == before


def test_a_second_driver_on_one_run_directory_is_refused_in_one_line(tmp_path, sample, capsys, run_copy):
    out = RunDir(tmp_path / "new")
    with holding(out, "python -m search.run --out new"):
        assert search_run.main(["--data", sample, "--out", str(out.root), *SHORT]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and f"pid {os.getpid()} on " in err and "python -m search.run --out new" in err
    assert sorted(p.name for p in out.root.iterdir()) == [".driver.lock"]  # the first holds it; nothing of the second

    from reports.__main__ import main as reports_main

    with holding(RunDir(run_copy), "python -m search.certify RUN"):
        assert reports_main([str(run_copy)]) == 2
        assert "write its report elsewhere with: python -m reports" in capsys.readouterr().err
        assert reports_main([str(run_copy), "--out", str(tmp_path / "elsewhere")]) == 0
    assert (tmp_path / "elsewhere" / "index.html").is_file()
    assert reports_main([str(run_copy)]) == 0  # free again


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a tmpfs of the size asked (root only; the test is skipped where mounting is not allowed)."""
    mounted = []

    def mount(name: str, options: str) -> Path:
        point = tmp_path / name
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def test_a_read_only_out_or_storage_is_one_line_before_ray_starts(tmpfs, sample, capsys):
    read_only = tmpfs("ro", "size=1m,ro")
    for args in (["--out", str(read_only / "run")], ["--out", str(read_only.parent / "run"), "--storage", str(read_only)]):
        assert search_run.main(["--data", sample, *args, *SHORT]) == 2
        err = capsys.readouterr().err
        assert f"{read_only} cannot be written (read-only)" in err and err.count("\n") == 1, err
    assert not (read_only.parent / "run").exists()


@pytest.fixture
def system_temp(monkeypatch):
    """A fresh folder as the system's temporary folder, for Python's tempfile and for Ray (TMPDIR);
    short, in /tmp: Ray's socket paths live under it."""
    folder = Path(tempfile.mkdtemp(prefix="t", dir="/tmp"))
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_full_disk_is_one_line_and_the_run_finishes_on_resume(tmpfs, system_temp, capfd):
    disk = tmpfs("disk", "size=1500k")
    args = ["--data", str(SAMPLE), "--out", str(disk / "run"), "--trials", "3", "--max-epochs", "2", "--cpus", "1", *TINY]
    capfd.readouterr()
    assert search_run.main(args) == 1
    err = capfd.readouterr().err.strip()  # Python's and the C++ libraries' (file descriptor 2) alike
    assert err.count("\n") == 0, err[-3000:]
    assert err.startswith("error: no space left writing ") and "free space or make it writable, then continue with: " in err
    assert not list(system_temp.glob("bilstm-*"))  # no driver log left behind (Ray keeps its own session folder)
    subprocess.run(["mount", "-o", "remount,size=200m", str(disk)], check=True)
    again = [*args, "--resume"] if (disk / "run" / "run.json").is_file() else args
    assert search_run.main(again) == 0, capfd.readouterr().err[-3000:]
    summary = read_json(disk / "run" / "summary.json")
    assert summary["counts"]["completed"] + summary["counts"]["stopped_early"] == 3 and summary["counts"]["errored"] == 0


def test_a_run_refused_for_its_data_leaves_out_as_it_was(tmp_path, capsys):
    data = _extract(tmp_path / "data")
    for review in sorted((data / "train" / "pos").iterdir())[:20]:  # 20 of 240 test reviews copy training ones
        shutil.copy(review, data / "test" / "pos" / f"copy_{review.name}")
    out = tmp_path / "run"
    assert search_run.main(["--data", str(data), "--out", str(out), *SHORT]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "20 of 260 test reviews (7.7%) are copies of training reviews" in err
    assert not out.exists()  # nothing written: the same --out takes the next try


def test_the_report_says_what_the_data_held(run_copy):
    import reports
    from runfiles.documents import Duplicates, RunFacts

    facts = RunFacts.read(RunDir(run_copy))
    facts.data.duplicates, facts.data.folders_skipped = Duplicates(test_in_training=3), {"train/unsup": 5}
    facts.write(RunDir(run_copy))
    page = reports.build(run_copy).read_text()
    assert "files skipped in folders that are not a class (train/unsup): 5" in page
    assert "test reviews that copy a training review: 3" in page
    assert "3 of the 240 test reviews copy a training review (after the standardization)" in page
