"""The last phases of a run: how its trials ended, the best one's export, the summary, the report.

The best trial is computed once, here (`runfiles.layout.best_row` on the trial table, which
agrees with the study's best trial), and the export, summary.json, the final line and
the report all use that answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ray import tune

from runfiles.cli import INTERRUPTED, fail
from runfiles.io import read_json, write_json
from runfiles.layout import CARD_FILE, MODEL_FILE, OBJECTIVE, TUTORIAL_PRESETS, RunDir, State, as_float, best_row
from search.cluster import node_facts
from search.console import Progress
from search.export import export_best
from search.session import Session
from search.tuner import Built, trial_of


@dataclass
class Outcome:
    """How a session ended: the exit code so far, and the best trial when there is one."""

    code: int
    best: dict | None = None


def settle(session: Session, built: Built, progress: Progress) -> Outcome:
    """End the trials the time budget cut, detect an interruption, find the best trial."""
    table, run_dir = built.table, session.run_dir
    if built.time_budget.spent and built.searcher is not None:  # Tune ended every trial at once: tell the study and the table
        for number, params in built.searcher.prune_unfinished("time budget ran out"):
            table.add(number, params)
        unfinished = [row for row in table.rows.values() if row["state"] in (State.PENDING, State.RUNNING)]
        table.mark(unfinished, State.STOPPED_EARLY, "time budget ran out after epoch {epochs}")
    unfinished = [row for row in table.rows.values() if row["state"] in (State.PENDING, State.RUNNING)]
    _record_session(run_dir, built.search_s, built.ledger.used, time.time() - session.started)
    if unfinished or (not built.searcher_done() and not built.time_budget.spent):
        progress.say(f"interrupted; continue with: {run_dir.resume_command}")
        return Outcome(INTERRUPTED)
    if built.tuner is None and built.ledger.exhausted:
        progress.say("the run's budget is spent: nothing left to train (raise --time-budget or --budget-examples to go on)")
    best = best_row(table.rows.values(), OBJECTIVE)
    if best is None:
        fail(_why_no_best(table.counts(), built.time_budget.spent))
        return Outcome(1)
    return Outcome(0, best)


def _why_no_best(counts: dict, time_spent: bool) -> str:
    if counts["total"] and counts[State.DIVERGED.value] == counts["total"]:
        return "error: every trial diverged (its loss became NaN or infinite); try a lower --fix learning_rate=..."
    if time_spent:
        return "error: no trial finished an epoch within the time budget; raise --time-budget"
    return "error: no trial finished an epoch; see the reasons in trials.csv"


def _record_session(run_dir: RunDir, search_s: float, examples_used: int, wall_s: float) -> None:
    """Add this session's searching and wall time to run.json (budgets and totals span
    sessions), the training examples the run has used so far, and which LSTM
    implementation each node ran."""
    facts = read_json(run_dir.run_json)
    facts["sessions"][-1] |= {"search_s": search_s, "examples_used": examples_used, "wall_s": wall_s}
    facts["nodes"] = node_facts(run_dir)
    write_json(run_dir.run_json, facts)


# ---------------------------------------------------------------- export and summary


def export_and_summarize(session: Session, built: Built, outcome: Outcome, progress: Progress, export: bool = True) -> dict:
    """Export the best trial (unless it is already exported, or `export` is off because
    certification will export) and write summary.json."""
    run_dir, best = session.run_dir, outcome.best
    previous = _unchanged(run_dir, best)
    card = previous.get("card") or (_export(session, best) if export else None)
    summary = {
        "best": _best_entry(run_dir, best, card),
        "exported": exported_entry(card),
        "certification": previous.get("certification"),
        "tutorial": {
            row["preset"]: {
                "trial_id": row["trial_id"],
                "state": row["state"],
                OBJECTIVE.metric: _number(row.get(OBJECTIVE.metric)),
            }
            for row in built.table.rows.values()
            if row.get("preset") in TUTORIAL_PRESETS
        },
        "counts": built.table.counts(),
        "wall_s": _wall_s(run_dir, session.started),
        "budget": _budget(session, built),
        "finished": True,
    }
    write_json(run_dir.summary_json, summary)
    entry = summary["best"]
    params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in entry["params"].items())
    tested = (
        f", test_accuracy {entry['test_accuracy']:.4f} on {entry['test_examples']:,} test reviews"
        if "test_accuracy" in entry
        else ""
    )
    progress.field("best", f"{best['trial_id']}: {OBJECTIVE.metric} {entry[OBJECTIVE.metric]:.4f}{tested} ({params})")
    if card:
        progress.field("model", f"{run_dir.best_model} (model.keras takes raw text; saved_model/ for serving)")
    return summary


def _unchanged(run_dir: RunDir, best: dict) -> dict:
    """The export and certification of an earlier session, when its best trial and epoch are
    still the best (a resumed, finished run): the test split is not evaluated again."""
    summary = read_json(run_dir.summary_json) if run_dir.summary_json.is_file() else None
    card = read_json(run_dir.best_model / CARD_FILE) if (run_dir.best_model / MODEL_FILE).is_file() else None
    if not summary or not card:
        return {}
    same = summary["best"]["trial_id"] == best["trial_id"] and str(summary["best"]["best_epoch"]) == str(best["best_epoch"])
    return {"card": card, "certification": summary.get("certification")} if same else {}


def _export(session: Session, best: dict) -> dict:
    run_dir = session.run_dir
    params = trial_of(run_dir, int(best["number"])).params
    facts = {
        "trial_id": best["trial_id"],
        OBJECTIVE.metric: _number(best[OBJECTIVE.metric]),
        "epoch": int(best["best_epoch"]),
        "examples_per_s": _number(best["examples_per_s"]),
        "tokens_per_s": _number(best["tokens_per_s"]),
    }
    path = best["best_checkpoint"]
    if "://" in path:  # in the storage of a cluster: fetched to a temporary folder
        with tune.Checkpoint(path).as_directory() as folder:
            return export_best(Path(folder), params, session.prepared, run_dir.best_model, facts)
    return export_best(run_dir.root / path, params, session.prepared, run_dir.best_model, facts)


def _best_entry(run_dir: RunDir, best: dict, card: dict | None) -> dict:
    """The search's best trial (the study's best); its test accuracy when its own model is exported."""
    entry = {
        "trial_id": best["trial_id"],
        "number": int(best["number"]),
        "params": trial_of(run_dir, int(best["number"])).params,
        "preset": best.get("preset") or "",
        OBJECTIVE.metric: _number(best[OBJECTIVE.metric]),
        "best_epoch": int(best["best_epoch"]),
        "examples_per_s": _number(best["examples_per_s"]),
        "tokens_per_s": _number(best["tokens_per_s"]),
    }
    if card and card["trial_id"] == best["trial_id"] and card.get("seed") is None:
        entry |= {"test_accuracy": card["test_accuracy"], "test_examples": card["test_examples"]}
    return entry


def exported_entry(card: dict | None) -> dict | None:
    """What best_model/ holds: which trial (and seed, for a certified model), its accuracies."""
    if card is None:
        return None
    return {
        k: card.get(k) for k in ("trial_id", "seed", "epoch", OBJECTIVE.metric, "test_accuracy", "test_examples", "certified")
    }


def _wall_s(run_dir: RunDir, started: float) -> float:
    """The run's wall time in seconds: this session's until now, plus the earlier sessions'
    as run.json recorded them (a session killed outright recorded none)."""
    facts = read_json(run_dir.run_json)
    facts["sessions"][-1]["wall_s"] = time.time() - started
    write_json(run_dir.run_json, facts)
    return sum(float(s.get("wall_s") or 0.0) for s in facts["sessions"])


def _budget(session: Session, built: Built) -> dict:
    search, facts = session.search, read_json(session.run_dir.run_json)
    return {
        "trials": search.trials,
        "max_epochs": search.max_epochs,
        "time_budget_min": search.time_budget_min,
        "budget_examples": search.budget_examples,
        "examples_used": built.ledger.used,
        "search_s": sum(float(s.get("search_s") or 0.0) for s in facts["sessions"]),
    }


def _number(value) -> float | None:
    number = as_float(value)
    return None if number != number else number
