"""Small run directories for the report's tests, written as the README's run-directory contract says."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

T0 = 1_780_000_000.0
SCRIPT = "<script>alert('x')</script>"

SPACE = [
    {"name": "depth", "kind": "int", "low": 1, "high": 3, "choices": None, "log": False, "role": "model",
     "help": "BiLSTM layers: 1 = single, 2-3 = stacked"},
    {"name": "units", "kind": "int", "low": 16, "high": 128, "choices": None, "log": True, "role": "model",
     "help": "LSTM units of the first layer"},
    {"name": "learning_rate", "kind": "float", "low": 1e-4, "high": 1e-2, "choices": None, "log": True,
     "role": "train", "help": "Adam's step size"},
    {"name": "dropout", "kind": "float", "low": 0.0, "high": 0.6, "choices": None, "log": False, "role": "model",
     "help": "dropout after the dense layer"},
    {"name": "vocab_size", "kind": "int", "low": 1000, "high": 20000, "choices": None, "log": True, "role": "model",
     "help": "tokens kept"},
    {"name": "embedding_dim", "kind": "int", "low": 16, "high": 128, "choices": None, "log": True, "role": "model",
     "help": "embedding width"},
    {"name": "batch_size", "kind": "categorical", "low": None, "high": None, "choices": [32, 64, 128], "log": False,
     "role": "train", "help": "reviews per step"},
    {"name": "max_len", "kind": "categorical", "low": None, "high": None, "choices": [128, 256, 512, 0], "log": False,
     "role": "train", "help": "tokens kept per review, 0 = whole review"},
]
NAMES = [p["name"] for p in SPACE]
TRIAL_COLUMNS = (["trial_id", "number", "preset", "state", "reason"] + NAMES + [
    "epochs", "best_epoch", "val_accuracy", "val_loss", "train_accuracy", "examples_per_s", "tokens_per_s",
    "epoch_s", "setup_s", "started_at", "ended_at", "node_id", "hostname", "device", "gpu_ids", "cpus"])
EPOCH_COLUMNS = ["trial_id", "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "epoch_s", "eval_s",
                 "examples_per_s", "tokens_per_s", "padding_fraction", "time", "trial_time_s", "node_id", "hostname",
                 "device", "gpu_ids"]
PRESET_PARAMS = {
    "tutorial-single": dict(depth=1, units=64, learning_rate=1e-4, dropout=0.0, vocab_size=1000, embedding_dim=64,
                            batch_size=64, max_len=0),
    "tutorial-stacked": dict(depth=2, units=64, learning_rate=1e-4, dropout=0.5, vocab_size=1000, embedding_dim=64,
                             batch_size=64, max_len=0),
}


def make_run(root: Path, *, trials: int = 12, finished: bool = True, study: bool = True, max_epochs: int = 4,
             hostile: bool = False) -> Path:
    """A run directory under root with `trials` trials; in progress when not finished.

    Finished: trials completed, stopped early (ASHA) and one errored; summary.json and study.db.
    In progress: the last two trials running and pending, no summary.json, study.db only if asked.
    hostile: a `<script>` in an error message, a hostname, a categorical parameter and the command line.
    """
    run_dir = Path(root)
    run_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows, epochs = [], []
    slot_free = [T0 + 5.0, T0 + 5.0]
    for number in range(1, trials + 1):
        preset = list(PRESET_PARAMS)[number - 1] if number <= 2 else ""
        params = dict(PRESET_PARAMS[preset]) if preset else {
            "depth": int(rng.integers(1, 4)),
            "units": int(np.exp(rng.uniform(np.log(16), np.log(128)))),
            "learning_rate": float(np.exp(rng.uniform(np.log(1e-4), np.log(1e-2)))),
            "dropout": round(float(rng.uniform(0, 0.6)), 3),
            "vocab_size": int(np.exp(rng.uniform(np.log(1000), np.log(20000)))),
            "embedding_dim": int(np.exp(rng.uniform(np.log(16), np.log(128)))),
            "batch_size": int(rng.choice([32, 64, 128])),
            "max_len": int(rng.choice([128, 256, 512, 0])),
        }
        if number == 3:
            params.update(learning_rate=9.5e-3, units=64)  # the best trial, at the top of the lr range
        state, reason, n_epochs = "completed", "", max_epochs
        if number in (5, 8):
            state, reason, n_epochs = "stopped_early", "ASHA: below the median at epoch 1", 1
        if number == 6:
            state, reason, n_epochs = "errored", "ResourceExhaustedError: OOM when allocating tensor", 0
            if hostile:
                reason = f"ValueError: bad {SCRIPT} & more"
        if not finished and number == trials - 1:
            state, n_epochs = "running", 2
        if not finished and number == trials:
            state, n_epochs = "pending", 0
        quality = 0.62 + 0.06 * (np.log10(params["learning_rate"]) + 4) / 2 + 0.02 * (params["depth"] > 1)
        if number == 3:
            quality += 0.05
        throughput = 4000.0 / (params["depth"] * params["units"] / 32) * (1 + rng.uniform(-0.1, 0.1))
        slot = int(np.argmin(slot_free))
        start = slot_free[slot] if state != "pending" else math.nan
        curve = [quality - 0.08 / e + rng.normal(0, 0.004) for e in range(1, n_epochs + 1)]
        epoch_s = 1600 / throughput
        times = [start + 2.0 + e * (epoch_s + 0.5) for e in range(1, n_epochs + 1)]
        for e, (acc, t) in enumerate(zip(curve, times), start=1):
            epochs.append({"trial_id": f"t_{number:05d}", "epoch": e, "train_loss": 0.7 - 0.05 * e,
                           "train_accuracy": acc + 0.03, "val_loss": 0.69 - 0.04 * e, "val_accuracy": acc,
                           "epoch_s": epoch_s, "eval_s": 0.5, "examples_per_s": throughput,
                           "tokens_per_s": throughput * 230, "padding_fraction": 0.1, "time": t,
                           "trial_time_s": t - start, "node_id": "abcdef0123456789", "hostname": "node-a",
                           "device": "CPU", "gpu_ids": ""})
        ended = times[-1] if state in ("completed", "stopped_early") else (start + 3.0 if state == "errored" else math.nan)
        if state == "running":
            slot_free[slot] = math.inf
        elif state != "pending":
            slot_free[slot] = ended + 1.0
        best = int(np.argmax(curve)) if curve else None
        rows.append({
            "trial_id": f"t_{number:05d}", "number": number, "preset": preset, "state": state, "reason": reason,
            **params, "epochs": n_epochs, "best_epoch": best + 1 if best is not None else "",
            "val_accuracy": curve[best] if curve else "", "val_loss": 0.5 if curve else "",
            "train_accuracy": curve[-1] + 0.03 if curve else "",
            "examples_per_s": throughput if curve else "", "tokens_per_s": throughput * 230 if curve else "",
            "epoch_s": epoch_s if curve else "", "setup_s": 2.0, "started_at": start, "ended_at": ended,
            "node_id": "abcdef0123456789" if state != "pending" else "",
            "hostname": (f"node-{SCRIPT}" if hostile and number == 4 else "node-a") if state != "pending" else "",
            "device": "CPU" if state != "pending" else "", "gpu_ids": "", "cpus": 1,
        })
    if hostile:
        rows[5]["max_len"] = SCRIPT
    _write_csv(run_dir / "trials.csv", TRIAL_COLUMNS, rows)
    # A resume re-reports trial 3's epoch 2: the loader must keep this last row.
    resumed = dict(next(e for e in epochs if e["trial_id"] == "t_00003" and e["epoch"] == 2))
    resumed.update(val_accuracy=0.6551, time=resumed["time"] + 0.5)
    _write_csv(run_dir / "epochs.csv", EPOCH_COLUMNS, epochs + [resumed])
    command = f"python -m search.run --smoke --out {run_dir}" + (f" --note '{SCRIPT}'" if hostile else "")
    (run_dir / "run.json").write_text(json.dumps({
        "command": command, "argv": command.split()[2:], "started_at": "2026-05-28T20:26:40+00:00",
        "configs": {
            "data": {"source": "tests/data/aclImdb_sample.tar.gz", "val_fraction": 0.2, "max_vocab": 20000,
                     "limit": 2000, "test_limit": 2000, "seed": 0},
            "search": {"trials": trials, "max_epochs": max_epochs, "time_budget_min": None, "seed": 0, "gpus": 0,
                       "cpus": 2, "gpus_per_trial": 0, "cpus_per_trial": 1, "address": None, "smoke": True},
            "train": {"bucket": True, "jit_compile": False},
        },
        "data": {"source": "tests/data/aclImdb_sample.tar.gz", "fingerprint": "361a4aabcc28a4f7",
                 "sizes": {"train": 1600, "val": 400, "test": 2000}, "tokens": {"mean": 230, "p95": 600},
                 "vocabulary_size": 20000, "reviews_with_replaced_bytes": 0},
        "space": SPACE,
        "objective": {"metric": "val_accuracy", "mode": "max"},
        "resources": {"cpus": 2, "gpus": 0, "cpus_per_trial": 1, "gpus_per_trial": 0, "concurrency": 2,
                      "address": None},
        "versions": {"python": "3.11.7", "tensorflow": "2.21.0", "keras": "3.15.1", "ray": "2.60.0",
                     "optuna": "5.0.0", "pandas": "3.1.1", "matplotlib": "3.11.2", "numpy": "2.4.6"},
    }, indent=2))
    scored = [r for r in rows if r["state"] in ("completed", "stopped_early")]
    if finished:
        best = max(scored, key=lambda r: r["val_accuracy"])
        (run_dir / "summary.json").write_text(json.dumps({
            "best": {"trial_id": best["trial_id"], "params": {n: best[n] for n in NAMES},
                     "val_accuracy": best["val_accuracy"], "test_accuracy": best["val_accuracy"] - 0.01,
                     "test_examples": 2000, "best_epoch": best["best_epoch"],
                     "examples_per_s": best["examples_per_s"], "tokens_per_s": best["tokens_per_s"]},
            "counts": {"completed": sum(r["state"] == "completed" for r in rows),
                       "stopped_early": sum(r["state"] == "stopped_early" for r in rows),
                       "errored": sum(r["state"] == "errored" for r in rows), "total": len(rows)},
            "wall_s": max(r["ended_at"] for r in scored) - T0,
            "budget": {"trials": trials, "max_epochs": max_epochs, "time_budget_min": None},
            "finished": True,
        }, indent=2))
    if study:
        write_study(run_dir / "study.db", scored)
    return run_dir


def write_study(path: Path, rows: list[dict]) -> None:
    """A real Optuna study "search" in SQLite holding the scored trials."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = {
        "depth": optuna.distributions.IntDistribution(1, 3),
        "units": optuna.distributions.IntDistribution(16, 128, log=True),
        "learning_rate": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True),
        "dropout": optuna.distributions.FloatDistribution(0.0, 0.6),
        "vocab_size": optuna.distributions.IntDistribution(1000, 20000, log=True),
        "embedding_dim": optuna.distributions.IntDistribution(16, 128, log=True),
        "batch_size": optuna.distributions.CategoricalDistribution([32, 64, 128]),
        "max_len": optuna.distributions.CategoricalDistribution([128, 256, 512, 0]),
    }
    study = optuna.create_study(study_name="search", storage=f"sqlite:///{path}", direction="maximize")
    for row in rows:
        study.add_trial(optuna.trial.create_trial(
            params={n: row[n] for n in NAMES}, distributions=distributions, value=float(row["val_accuracy"])))


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
