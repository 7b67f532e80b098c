"""--max-latency-ms: each trial's inference latency, a search constrained by it, the report's view.

python -m pytest -q tests/test_latency.py
"""

import numpy as np
import optuna

from runfiles.io import read_json, read_rows
from runfiles.layout import STUDY_NAME, RunDir, State
from search import run as search_run

from conftest import SAMPLE

# units and depth searched (TINY would pin units): the families differ in latency.
FIXES = ["--fix", "embedding_dim=16", "--fix", "max_len=128", "--fix", "vocab_size=2000", "--no-benchmark"]
ARGS = ["--data", str(SAMPLE), "--trials", "6", "--max-epochs", "1", "--startup-trials", "10", "--cpus", "2", *FIXES]


def test_a_latency_limit_makes_slower_trials_infeasible_and_never_exported(tmp_path, capsys):
    # A limit no network meets: one line at the end, exit 1, nothing exported; every latency recorded.
    impossible = tmp_path / "impossible"
    assert search_run.main([*ARGS, "--max-latency-ms", "0.000001", "--out", str(impossible)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: no trial met --max-latency-ms 1e-06 (the fastest took ")
    assert not RunDir(impossible).best_model.exists()
    rows = read_rows(RunDir(impossible).trials_csv)
    latencies = {r["trial_id"]: float(r["latency_ms"]) for r in rows}
    assert all(v > 0 for v in latencies.values()) and all(r["feasible"] == "no" for r in rows)
    epochs = read_rows(RunDir(impossible).epochs_csv)
    assert all(float(e["latency_ms"]) > 0 for e in epochs)

    # The same first configurations (same seed, all sampled at random) under a limit between the
    # fastest and the slowest: the slower ones are infeasible, for the table, the study and the export.
    # (Latencies are re-measured; on a busy machine they shift, so each row is judged by its own.)
    limit = float(f"{np.sqrt(min(latencies.values()) * max(latencies.values())):.4f}")
    out = tmp_path / "run"
    code = search_run.main([*ARGS, "--max-latency-ms", str(limit), "--out", str(out)])
    files = RunDir(out)
    rows = read_rows(files.trials_csv)
    for row in rows:
        assert row["feasible"] == ("yes" if float(row["latency_ms"]) <= limit else "no")
    feasible = [r for r in rows if r["feasible"] == "yes"]
    assert code == (0 if feasible else 1) and files.best_model.exists() == bool(feasible)
    study = optuna.load_study(study_name=STUDY_NAME, storage=files.study_url)
    for trial in study.trials:
        row = next(r for r in rows if int(r["number"]) == trial.number)
        assert trial.user_attrs["latency_ms"] == float(row["latency_ms"])
        if State(row["state"]) == State.COMPLETED:  # Optuna's constraints as its sampler stored them
            assert (trial.system_attrs["constraints"][0] <= 0) == (row["feasible"] == "yes")
    if feasible:
        exported = read_json(files.summary_json)["best"]["trial_id"]
        assert exported in {r["trial_id"] for r in feasible}
        report = (files.report / "index.html").read_text()
        assert '<img src="latency.png"' in report
        assert len(feasible) == len(rows) or ("infeasible" in report and "(over the limit)" in report)

    # Bad input: a limit that is not positive.
    assert search_run.main([*ARGS, "--max-latency-ms", "0", "--out", str(tmp_path / "bad")]) == 2
    assert "--max-latency-ms 0.0 is invalid: expected milliseconds > 0" in capsys.readouterr().err
