"""The run directory's contract: every name, column and state it holds, declared once.

Standard library only (and `models.config`, which is too), so the driver (`search/`), the
report (`reports/`) and the tests share it without importing TensorFlow, Ray or pandas. docs/run-directory.md
documents the same layout; `runfiles.io` reads and writes its files.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from models.config import PRESETS

STUDY_NAME = "search"
"""The Optuna study's name inside study.db."""
MODEL_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"
CARD_FILE = "card.json"
BENCHMARK_FILE = "benchmark.json"
PREDICTIONS_FILE = "test_predictions.csv"
"""The exported model's prediction for each test example (runfiles.predictions), beside its card."""
"""The serving benchmark of the exported model (search.serving), beside its card."""
TUTORIAL_PRESETS = tuple(PRESETS)
"""The two hand-picked models of TensorFlow's "Text classification with an RNN" (models.config.PRESETS)."""


@dataclass(frozen=True)
class RunDir:
    """The files of one run directory (`python -m search.run --out DIR`)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    run_json = property(lambda self: self.root / "run.json")
    """Command line, configs, search space, objective, presets, resources, data facts, versions."""
    study_db = property(lambda self: self.root / "study.db")
    """The Optuna study (SQLite), written only by the driver."""
    tune = property(lambda self: self.root / "tune")
    """Ray Tune's experiment folder: trials, checkpoints, TensorBoard event files."""
    trials_csv = property(lambda self: self.root / "trials.csv")
    """One row per trial (`runfiles.trials`), rewritten every few seconds while a search runs."""
    trial_ends = property(lambda self: self.root / "trial_ends.jsonl")
    """The rows of the trials that ended since trials.csv's last rewrite, one JSON object a line,
    appended at each trial's end and removed by the next rewrite (`runfiles.trials`)."""
    epochs_csv = property(lambda self: self.root / "epochs.csv")
    summary_json = property(lambda self: self.root / "summary.json")
    baseline_json = property(lambda self: self.root / "baseline.json")
    """The tutorial's two models trained as the tutorial trains them (python -m search.baseline)."""
    certify_csv = property(lambda self: self.root / "certify.csv")
    """Each certification seed's validation and test accuracy (--certify)."""
    cv_folds_csv = property(lambda self: self.root / "cv_folds.csv")
    """With --cv K: the fold of each labelled training example (search.crossval)."""
    predictions = property(lambda self: self.root / "predictions")
    """The prediction for each test example of every other model evaluated on the test split
    (runfiles.predictions: certification's seeds, refits, the baselines), one CSV per model."""
    driver_log = property(lambda self: self.root / "driver.log")
    """What the libraries printed on their own, every session's (unless --verbose)."""
    session_log = property(lambda self: self.root / ".driver-session.log")
    """This session's library log, appended to driver.log when the session ends."""
    lock = property(lambda self: self.root / ".driver.lock")
    """The lock a command holds while it writes into the run (runfiles.lock)."""
    holder = property(lambda self: self.root / ".driver.json")
    """Who holds the lock: host, pid, since when, command."""
    best_model = property(lambda self: self.root / "best_model")
    report = property(lambda self: self.root / "report")

    @property
    def study_url(self) -> str:
        """The study's SQLAlchemy URL, as Optuna and optuna-dashboard take it."""
        return f"sqlite:///{self.study_db.resolve()}"

    @property
    def resume_command(self) -> str:
        """The shell command that continues this run, from any working directory (its absolute
        path, quoted for the shell)."""
        return f"python -m search.run --resume --out {shlex.quote(str(self.root.absolute()))}"

    def bookkeeping(self, path: Path) -> bool:
        """Whether `path` is one of the files a command keeps while it holds the lock, not a result."""
        return path.name in (self.lock.name, self.holder.name, self.session_log.name)


@dataclass(frozen=True)
class Objective:
    """The metric trials are ranked by; the scheduler, searcher, report and export share it."""

    metric: str = "val_accuracy"
    mode: Literal["max", "min"] = "max"

    @property
    def tune_kwargs(self) -> dict[str, str]:
        """The objective as Ray Tune's searchers and schedulers take it: metric= and mode=."""
        return {"metric": self.metric, "mode": self.mode}

    def oriented(self, value: float) -> float:
        """`value` turned so that larger is better: itself for "max", its negation for "min"."""
        return value if self.mode == "max" else -value

    def best(self, values: Iterable[float | None]) -> float | None:
        """The best of `values`, None and NaN skipped; None when none is left."""
        kept = [v for v in values if v is not None and not math.isnan(v)]
        return max(kept, key=self.oriented, default=None)

    def worst_first(self, value: float | None) -> float:
        """A sort key, smaller is better; NaN and missing values sort last."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return math.inf
        return -self.oriented(value)


OBJECTIVE = Objective()
"""The default: validation accuracy, larger is better."""
OBJECTIVES: dict[str, Literal["max", "min"]] = {"val_accuracy": "max", "val_macro_f1": "max", "val_loss": "min"}
"""The metrics a run may be ranked by (`--objective`), each with its direction."""


def objective_named(metric: str) -> Objective:
    """The Objective of a metric in OBJECTIVES, its direction from its name.

    Raises:
        ValueError: one line naming the metric and the ones offered.
    """
    if metric not in OBJECTIVES:
        raise ValueError(f"--objective {metric}: no such metric; expected one of {', '.join(OBJECTIVES)}")
    return Objective(metric, OBJECTIVES[metric])


class State(StrEnum):
    """A trial's state in trials.csv."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    """Trained every epoch it was given (COMPLETE in the study)."""
    STOPPED_EARLY = "stopped_early"
    """Stopped by ASHA or by a budget (PRUNED in the study)."""
    DIVERGED = "diverged"
    """Its loss became NaN or infinite (FAIL in the study)."""
    ERRORED = "errored"
    """It raised, and its retries did too (FAIL in the study)."""

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")

    @property
    def ended(self) -> bool:
        return self not in (State.PENDING, State.RUNNING)


@dataclass(frozen=True)
class Column:
    """One column of a table: its name, the type of its values, what it holds."""

    name: str
    kind: type
    help: str


EPOCH_COLUMNS = (
    Column("trial_id", str, "the trial"),
    Column("epoch", int, "1, 2, ... (a resumed trial may report an epoch twice; the last row wins)"),
    Column("train_loss", float, "mean cross-entropy over the epoch's training steps"),
    Column("train_accuracy", float, "accuracy on the training batches as they were trained"),
    Column("val_loss", float, "cross-entropy on the validation split"),
    Column("val_accuracy", float, "accuracy on the validation split"),
    Column("val_macro_f1", float, "macro-F1 on the validation split: F1 averaged over the classes, unweighted"),
    Column("examples", int, "training examples processed in this epoch"),
    Column("epoch_s", float, "seconds of training steps"),
    Column("eval_s", float, "seconds of validation"),
    Column("examples_per_s", float, "training examples per second"),
    Column("tokens_per_s", float, "real (unpadded) training tokens per second"),
    Column("padding_fraction", float, "share of batch tokens that were padding"),
    Column("time", float, "Unix seconds at the report"),
    Column("trial_time_s", float, "seconds since the trial (or its resumed part) started"),
    Column("node_id", str, "Ray node id"),
    Column("hostname", str, "host name"),
    Column("device", str, "CPU or GPU:0"),
    Column("lstm", str, "the LSTM implementation: fused or keras"),
    Column("gpu_ids", str, "Ray's GPU ids, ;-separated"),
    Column("latency_ms", float, "median ms per review at batch 1, the network alone, on the first validation reviews"),
)
ORIGIN = "origin"
"""Where a trial came from when an earlier run handed it on (search.warm): a study trial's user
attribute and trials.csv's column, "RUN_FOLDER/trial_NNNN"."""
ADDED = "added_from_earlier_run"
"""The study trials' user attribute, True, of a trial --warm-start added from an earlier run (search.warm):
never trained here, never counted in the run's trials or budgets."""
TRIAL_HEAD = (
    Column("trial_id", str, "trial_NNNN, from the study's trial number"),
    Column("number", int, "the Optuna trial number (0, 1, ...), as optuna-dashboard shows it"),
    Column("preset", str, "tutorial-single, tutorial-stacked, or empty for a sampled trial"),
    Column(ORIGIN, str, "the earlier run and trial a configuration queued by --warm-start came from; else empty"),
    Column("state", str, "a State value"),
    Column("reason", str, "why it stopped early, diverged or errored"),
)
TRIAL_TAIL = (
    Column("epochs", int, "epochs reported"),
    Column("best_epoch", int, "the epoch with the best objective"),
    Column("val_accuracy", float, "at the best epoch (empty for a diverged or errored trial)"),
    Column("val_loss", float, "at the best epoch"),
    Column("val_macro_f1", float, "at the best epoch"),
    Column("train_accuracy", float, "at the last epoch"),
    Column("examples", int, "training examples processed, all epochs"),
    Column("examples_per_s", float, "mean over epochs"),
    Column("tokens_per_s", float, "mean over epochs"),
    Column("epoch_s", float, "mean over epochs"),
    Column("setup_s", float, "seconds before the first training step"),
    Column("started_at", float, "Unix seconds"),
    Column("ended_at", float, "Unix seconds"),
    Column("node_id", str, "Ray node id of the last epoch"),
    Column("hostname", str, "host name of the last epoch"),
    Column("device", str, "CPU or GPU:0"),
    Column("lstm", str, "fused or keras"),
    Column("gpu_ids", str, "Ray's GPU ids, ;-separated"),
    Column("cpus", float, "CPUs given to the trial"),
    Column("checkpoint", str, "the latest checkpoint, relative to the run directory"),
    Column("best_checkpoint", str, "the best epoch's checkpoint, relative to the run directory"),
    Column("latency_ms", float, "median over epochs"),
    Column("feasible", str, "with --max-latency-ms: yes (latency_ms within it) or no; else empty"),
    Column("review_tokens", int, "tokens each review kept: max_len, or fewer where the trial's memory holds fewer; 0 = whole"),
    Column("reviews_cut", int, "training and validation reviews cut for the trial's memory (beyond max_len)"),
)


NUMBER = "trial_number"
"""The key of a Tune trial's config that holds its study trial number."""


def trial_id(number: int) -> str:
    """The trial id of study trial `number` (trial_0003 for 3)."""
    return f"trial_{number:04d}"


def trial_columns(param_names: Iterable[str]) -> list[str]:
    """trials.csv's columns: the head, one column per searched hyperparameter, the tail."""
    return [c.name for c in TRIAL_HEAD] + list(param_names) + [c.name for c in TRIAL_TAIL]


def names(columns: Iterable[Column], kind: type | None = None) -> list[str]:
    """Column names, optionally only those of one kind (str, int or float)."""
    return [c.name for c in columns if kind is None or c.kind is kind]


# ---------------------------------------------------------------- the search space's parameter


@dataclass(frozen=True)
class Param:
    """One searched hyperparameter, as search/space.py declares it and run.json records it."""

    name: str
    kind: Literal["int", "float", "categorical"]
    help: str = ""
    role: Literal["model", "train", ""] = ""
    """Whether it shapes the network or its training."""
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    log: bool = False

    def contains(self, value: Any) -> bool:
        if self.kind == "categorical":
            return value in self.choices
        return self.low <= value <= self.high

    def describe(self) -> str:
        """The range as people read it: [16, 128] log, or {32, 64, 128}."""
        if self.kind == "categorical":
            return "{" + ", ".join(map(str, self.choices)) + "}"
        return f"[{self.low:g}, {self.high:g}]" + (" log" if self.log else "")

    @property
    def numeric(self) -> bool:
        return self.kind in ("int", "float") and self.low is not None and self.high is not None

    @property
    def pinned(self) -> bool:
        """Whether it is held at one value: a categorical of one choice (as --fix makes it)."""
        return self.kind == "categorical" and self.choices is not None and len(self.choices) == 1

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "choices": list(self.choices) if self.choices is not None else None}

    @classmethod
    def from_json(cls, entry: dict) -> Param:
        """A run.json space entry → Param; raises ValueError on an entry without a name or kind."""
        if not isinstance(entry, dict) or not entry.get("name") or entry.get("kind") not in ("int", "float", "categorical"):
            raise ValueError(f"not a search-space entry: {entry!r}")
        choices = entry.get("choices")
        return cls(
            name=str(entry["name"]),
            kind=entry["kind"],
            help=str(entry.get("help") or ""),
            role=entry.get("role") or "",
            low=_finite_or_none(entry.get("low")),
            high=_finite_or_none(entry.get("high")),
            choices=tuple(choices) if isinstance(choices, list) else None,
            log=bool(entry.get("log")),
        )


def _finite_or_none(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# ---------------------------------------------------------------- ranking


def rank_key(row: dict, objective: Objective = OBJECTIVE) -> tuple:
    """How trials are ranked everywhere (leaderboard, progress, summary, export, certification).

    Every ended trial that reported a value, neither diverged nor errored, and met
    --max-latency-ms if the run has one, by the objective at its best epoch, however it ended:
    completed, or stopped by ASHA or a budget (its value is what it found, at the fidelity it
    reached; the study keeps it PRUNED); then the running ones that reported a value (not the
    best yet while an ended one has a value); then the rest. Ties go to the trial that trained
    more epochs, then to the lower number.
    """
    value = as_float(row.get(objective.metric))
    scored = not math.isnan(value) and row.get("state") not in (State.DIVERGED, State.ERRORED) and row.get("feasible") != "no"
    ended = row.get("state") not in (State.PENDING, State.RUNNING)
    group = 0 if scored and ended else 1 if scored else 2
    return group, objective.worst_first(value), -as_float(row.get("epochs") or 0), as_float(row.get("number"))


def best_row(rows: Iterable[dict], objective: Objective = OBJECTIVE) -> dict | None:
    """The best trial: the first by rank_key among those with a value, or None."""
    ranked = sorted(rows, key=lambda row: rank_key(row, objective))
    return ranked[0] if ranked and rank_key(ranked[0], objective)[0] < 2 else None


def as_float(value) -> float:
    """A table cell as a float; empty, missing or unparsable cells are NaN."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


# ---------------------------------------------------------------- lists in lines


SHOWN_IN_TERMINAL = 8
"""Items a list in the terminal shows before it says how many there are (`cut`); files and the report show all."""


def cut(items: list[str], shown: int | None, sep: str = ", ") -> str:
    """`items` joined by `sep`; with `shown`, the first `shown` of a longer list and "… (N in all)"."""
    if shown is None or len(items) <= shown:
        return sep.join(items)
    return sep.join(items[:shown]) + f"{sep}… ({len(items):,} in all)"


def visible(name: str) -> str:
    """A name as a line prints it with what is invisible escaped: each character that Python does not
    print (a zero-width space, a byte-order mark, a no-break space, a control character) as its
    escape ("pos\\u200b"), the rest as it is ("café")."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in name)


def counts_text(counts: dict[str, int]) -> str:
    """Things and their counts as a line shows them: "😂 12, ! 4"."""
    return ", ".join(f"{thing} {count:,}" for thing, count in counts.items())


NO_TEST_SPLIT = "no test split (--test-fraction 0)"
"""What a run without a test split (one table file, --test-fraction 0) says where a test figure
would be; its result is the cross-validated estimate (--cv K)."""


def quantity(count: int, noun: str) -> str:
    """`count` of a regular `noun` as a sentence says it: "1 seed", "3 seeds", "1,000 epochs"."""
    return f"{count:,} {noun}{'s' * (count != 1)}"
