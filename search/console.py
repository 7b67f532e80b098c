"""What a search shows: a header, live progress, one line per finished trial, the outcome.

On a terminal the progress updates in place (rich's Live display); anywhere else (a
file, CI) only plain lines are written, with no control characters. Unless --verbose,
everything the libraries print on their own (TensorFlow's C++ start-up lines, Ray's
and Tune's logs and tables) goes to the run directory's driver.log instead, while what
a user must see still reaches them: each finished trial with its error's last line and
log, the LSTM kernel falling back to Keras's layers, a resource warning.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from runfiles.layout import OBJECTIVE, Objective, RunDir, State, as_float, best_row

RESOURCE_LOGGER = "ray.tune.execution.insufficient_resources_manager"
"""Tune's warning that trials cannot get the resources they ask for: always shown."""


class Progress:
    """The terminal side of a search (see the module's docstring)."""

    def __init__(self, stream=None):
        self.console = Console(file=stream or sys.stdout, highlight=False, soft_wrap=True)
        self.live: Live | None = None
        self.rows: dict[str, dict] = {}
        self.params: list[str] = []
        self.total, self.concurrency = 0, 1
        self.budget_examples = self.time_budget_s = None
        self.objective = OBJECTIVE
        self.examples_used, self.started, self.examples_at_start = 0, time.time(), 0

    # ------------------------------------------------------------ lines

    def __getstate__(self) -> dict:
        """Tune pickles its callbacks with the tuner: the terminal stays behind."""
        return {k: v for k, v in self.__dict__.items() if k not in ("console", "live")} | {"live": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.console = Console(file=sys.stdout, highlight=False, soft_wrap=True)

    def say(self, text: str) -> None:
        self.console.print(Text(text))

    def warn(self, text: str) -> None:
        self.console.print(Text(f"warning: {text}"))

    def field(self, label: str, text: str) -> None:
        """One line of the header or the outcome: a label, then what it says."""
        self.say(f"{label:<10}  {text}")

    # ------------------------------------------------------------ the search

    def start(
        self,
        rows: dict,
        total: int,
        concurrency: int,
        budget_examples: int | None,
        time_budget_s: float | None,
        examples_used: int,
        params: list[str] = (),
        objective: Objective = OBJECTIVE,
    ) -> None:
        """Begin following a search (live on a terminal): `rows` are the trial table's, kept current,
        ranked by `objective`."""
        self.rows, self.total, self.concurrency, self.params = rows, total, concurrency, list(params)
        self.objective = objective
        self.budget_examples, self.time_budget_s = budget_examples, time_budget_s
        self.examples_used = self.examples_at_start = examples_used
        self.started = time.time()
        if self.console.is_terminal:
            self.live = Live(get_renderable=self.status, console=self.console, refresh_per_second=2, transient=True)
            self.live.start()

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def epoch(self, row: dict, examples_used: int) -> None:
        self.examples_used = examples_used

    def trial_ended(self, row: dict, counts: dict) -> None:
        self.say(trial_line(row, self.objective))

    # ------------------------------------------------------------ the live status

    def status(self) -> Group:
        """The live display: trials by state, budget used with an ETA, the best so far."""
        rows = list(self.rows.values())
        states = [str(r["state"]) for r in rows]
        ended = sum(State(s).ended for s in states if s in State._value2member_map_)
        running = states.count(State.RUNNING)
        counts = " · ".join(f"{states.count(s.value)} {s.label}" for s in State if s.ended and states.count(s.value))
        lines = [
            f"trials    {ended}/{self.total} done ({counts or 'none yet'}), {running} running, "
            f"{max(0, self.total - ended - running)} to go",
            f"budget    {self.budget_text()}; ETA {self.eta_text(ended)}",
        ]
        best, metric = best_row(rows, self.objective), self.objective.metric
        if best is not None:
            config = ", ".join(f"{name}={best[name]}" for name in self.params if name in best)
            lines.append(
                f"best      {best['trial_id']} {metric} {as_float(best[metric]):.4f}" + (f" ({config})" if config else "")
            )
        return Group(*(Text(line) for line in lines))

    def budget_text(self) -> str:
        elapsed = time.time() - self.started
        examples = f"{self.examples_used:,} examples"
        if self.budget_examples:
            examples += f" of {self.budget_examples:,} ({self.examples_used / self.budget_examples:.0%})"
        minutes = f"{elapsed / 60:.1f} min" + (f" of {self.time_budget_s / 60:.1f}" if self.time_budget_s else "")
        return f"{examples}, {minutes}"

    def eta_text(self, ended: int) -> str:
        """Minutes left by the budget that binds first: trials, examples or time."""
        elapsed = max(1e-9, time.time() - self.started)
        estimates = []
        durations = [
            as_float(r.get("ended_at")) - as_float(r.get("started_at"))
            for r in self.rows.values()
            if str(r["state"]) in State._value2member_map_ and State(str(r["state"])).ended
        ]
        durations = [d for d in durations if d == d]
        if durations:
            estimates.append((self.total - ended) * (sum(durations) / len(durations)) / self.concurrency)
        rate = (self.examples_used - self.examples_at_start) / elapsed
        if self.budget_examples and rate > 0:
            estimates.append(max(0, self.budget_examples - self.examples_used) / rate)
        if self.time_budget_s:
            estimates.append(max(0.0, self.time_budget_s - elapsed))
        return f"{min(estimates) / 60:.1f} min" if estimates else "unknown yet"


def say_test_claims(run_dir: RunDir, objective: Objective, progress: Progress) -> None:
    """The run's last lines: what ships and the certified mean on the test split, each with its
    interval, and each comparison with another model tested on the same examples (difference,
    interval, verdict: reports.versus), from the run directory's files; macro-F1's too where it ranks."""
    from reports.versus import cross_validated_lines, terminal_lines  # SciPy loads once a run has something to compare
    from runfiles import predictions
    from runfiles.documents import Baseline, RunFacts, Summary

    found = predictions.read_all(run_dir)
    summary, baseline = Summary.read(run_dir, objective), Baseline.read(run_dir, objective)
    facts = RunFacts.read(run_dir)
    classes = len(facts.data.classes or []) if facts else 0
    for line in cross_validated_lines(found, summary):  # a run without a test split
        progress.say(line)
    for metric in ("accuracy", "macro_f1") if objective.metric == "val_macro_f1" else ("accuracy",):
        for line in terminal_lines(found, summary, baseline, metric, classes):
            progress.say(line)


def trial_line(row: dict, objective: Objective = OBJECTIVE) -> str:
    """One finished trial: id, state, its value or why it ended."""
    state = State(str(row["state"]))
    value = as_float(row.get(objective.metric))
    text = f"{row['trial_id']}  {state.label:<13}"
    if value == value:
        text += f"  {objective.metric} {value:.4f} at epoch {row.get('best_epoch')} of {row.get('epochs')} trained"
    if row.get("reason"):
        text += f"  ({row['reason']})"
    return text


# ---------------------------------------------------------------- quiet libraries


@contextlib.contextmanager
def quiet_libraries(verbose: bool, progress: Progress, log: Path | None = None) -> Iterator[Path | None]:
    """Send what TensorFlow, Ray and Tune print on their own to the file `log` (appended to; None:
    nowhere), unless verbose; yields `log`.

    The process's standard error (file descriptor 2, where C++ code writes) goes to the
    log; Python's sys.stderr keeps the terminal. Ray's tables stay off (RAY_AIR_NEW_OUTPUT=0
    with verbose=0); Tune's resource warning is forwarded to `progress`. Nothing is written to
    the system's temporary folder, so a process killed outright leaves nothing behind there.
    """
    if verbose:
        yield None
        return
    terminal = os.dup(2)
    sys.stderr.flush()
    saved_stderr, saved_env = sys.stderr, os.environ.get("RAY_AIR_NEW_OUTPUT")
    with open(log or os.devnull, "ab", buffering=0) as sink:
        os.dup2(sink.fileno(), 2)
    if _on_descriptor_2(sys.stderr):  # else (a test capturing it) Python's stderr is not fd 2 anyway
        sys.stderr = open(terminal, "w", buffering=1, closefd=False)  # noqa: SIM115 - restored below
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    _quiet_optuna()
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    handler, resources = _Forward(progress), logging.getLogger(RESOURCE_LOGGER)
    resources.addHandler(handler)
    resources.setLevel(logging.WARNING)  # Ray's other loggers stay at ERROR (ray.init's logging_level)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield log
    finally:
        logging.getLogger(RESOURCE_LOGGER).removeHandler(handler)
        sys.stderr.flush()
        sys.stderr = saved_stderr
        os.dup2(terminal, 2)
        os.close(terminal)
        _restore_env("RAY_AIR_NEW_OUTPUT", saved_env)


def _on_descriptor_2(stream) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _restore_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


class _Forward(logging.Handler):
    """Forwards a logger's warnings to the terminal as one line each."""

    def __init__(self, progress: Progress):
        super().__init__(logging.WARNING)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        self.progress.warn(" ".join(record.getMessage().split())[:300])


def keep_log(log: Path | None, run_dir: RunDir) -> None:
    """Append a session's library log (`RunDir.session_log`, with what a session killed outright
    left there) to DIR/driver.log once the run exists (run.json: else nothing was written, and the
    log goes), then delete it; on a full or read-only disk the log is dropped."""
    if log is None or not log.exists():
        return
    try:
        if run_dir.run_json.is_file() and log.stat().st_size:
            with open(run_dir.driver_log, "ab") as kept:
                kept.write(log.read_bytes())
    except OSError:
        pass
    finally:
        log.unlink(missing_ok=True)
