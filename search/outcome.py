"""The last phases of a run: how its trials ended, the best one's export, the summary, the report.

The best trial is computed once, here (`runfiles.layout.best_row` on the trial table, which
agrees with the study's best trial), and the export, summary.json, the final line and
the report all use that answer.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

from ray import tune

from runfiles import predictions
from runfiles.cli import INTERRUPTED, fail
from runfiles.documents import BestTrial, Budget, Card, Certification, Exported, RunFacts, Summary, TutorialEntry
from runfiles.layout import MODEL_FILE, TUTORIAL_PRESETS, State, as_float, best_row
from search.cluster import node_facts
from search.export import export_best
from search.searcher import trial_of
from search.session import Session
from search.space import configs_from
from search.tuner import Built


@dataclass
class Outcome:
    """How a session ended: the exit code so far, and the best trial when there is one."""

    code: int
    best: dict | None = None


def settle(session: Session, built: Built) -> Outcome:
    """End the trials the time budget cut, detect an interruption, find the best trial."""
    table, run_dir, progress = built.table, session.run_dir, session.progress
    if built.time_budget.spent and built.searcher is not None:  # Tune ended every trial at once: tell the study and the table
        for number, params in built.searcher.prune_unfinished("time budget ran out"):
            table.add(number, params)
        unfinished = [row for row in table.rows.values() if row["state"] in (State.PENDING, State.RUNNING)]
        table.mark(unfinished, State.STOPPED_EARLY, _out_of_time)
        progress.say(
            _ended_by(f"the time budget ({session.search.time_budget_min:g} min)", table.counts()["total"], session.search.trials)
        )
    unfinished = [row for row in table.rows.values() if row["state"] in (State.PENDING, State.RUNNING)]
    _record_session(session, built.search_s, built.ledger.used, session_wall_s(session))
    if unfinished or (not built.searcher_done() and not built.time_budget.spent):
        progress.say(f"interrupted; continue with: {run_dir.resume_command}")
        return Outcome(INTERRUPTED)
    if built.tuner is None and built.ledger.exhausted:
        progress.say("the run's budget is spent: nothing left to train (raise --time-budget or --budget-examples to go on)")
    elif built.ledger.exhausted and table.counts()["total"] < session.search.trials:
        progress.say(
            _ended_by(f"the examples budget ({session.search.budget_examples:,})", table.counts()["total"], session.search.trials)
        )
    best = best_row(table.rows.values(), session.objective)
    if best is None:
        fail(_why_no_best(table.counts(), built.time_budget.spent, table.rows.values(), session.search.max_latency_ms))
        return Outcome(1)
    return Outcome(0, best)


def _ended_by(budget: str, started: int, trials: int) -> str:
    """The line that says a budget ended the search when `started` of its `trials` had started."""
    return f"{budget} ended the search: {started} of {trials} trials started"


def _out_of_time(epochs: int) -> str:
    """Why the time budget stopped a trial that had trained `epochs` epochs."""
    return f"time budget ran out after epoch {epochs}" if epochs else "time budget ran out before its first epoch ended"


def _why_no_best(counts: dict, time_spent: bool, rows=(), max_latency_ms: float | None = None) -> str:
    latencies = [as_float(r.get("latency_ms")) for r in rows if not math.isnan(as_float(r.get("latency_ms")))]
    if max_latency_ms is not None and latencies:
        return (
            f"error: no trial met --max-latency-ms {max_latency_ms:g} (the fastest took {min(latencies):.2f} ms per review); "
            "nothing was exported: raise the limit, or --fix smaller units, depth or max_len"
        )
    if counts["total"] and counts[State.DIVERGED.value] == counts["total"]:
        return "error: every trial diverged (its loss became NaN or infinite); try a lower --fix learning_rate=..."
    if time_spent:
        return "error: no trial finished an epoch within the time budget; raise --time-budget"
    return "error: no trial finished an epoch; see the reasons in trials.csv"


def _record_session(session: Session, search_s: float, examples_used: int, wall_s: float) -> None:
    """Add this session's searching and wall time to run.json (budgets and totals span
    sessions), the training examples the run has used so far, and which LSTM
    implementation each node ran."""
    facts = _facts(session)
    record = facts.sessions[-1]
    record.search_s, record.examples_used, record.wall_s = search_s, examples_used, wall_s
    facts.nodes = node_facts(session.run_dir)
    facts.write(session.run_dir)


def _facts(session: Session) -> RunFacts:
    """run.json as this session keeps it (read once when the session did not write it)."""
    if session.facts is None:
        session.facts = RunFacts.read(session.run_dir)
    return session.facts


# ---------------------------------------------------------------- export and summary


def export_and_summarize(session: Session, built: Built, outcome: Outcome, export: bool = True) -> Summary:
    """Export the best trial (unless it is already exported, or `export` is off because
    certification will export) and write summary.json."""
    best = outcome.best
    card, earlier = _unchanged(session, best)
    session.exported_before = card is not None
    certification, result = (earlier.certification, earlier.result) if earlier else (None, None)
    card = card or (_export(session, best) if export else None)
    summary = summarize(session, built, _best_entry(session, best, card), card, certification, result)
    _say_best(summary.best, session, card)
    return summary


def summarize(
    session: Session,
    built: Built,
    best: BestTrial | None = None,
    card: Card | None = None,
    certification: Certification | None = None,
    result: str | None = None,
) -> Summary:
    """Write summary.json: the run ended (also when no trial had a value to export: `best` None);
    `result`: the cross-validated estimate an earlier session's certification stated (Summary.result)."""
    record_wall_s(session)
    metric = session.objective.metric
    summary = Summary(
        best=best,
        exported=Exported.from_card(card),
        certification=certification,
        tutorial={
            row["preset"]: TutorialEntry(row["trial_id"], row["state"], _number(row.get(metric)))
            for row in built.table.rows.values()
            if row.get("preset") in TUTORIAL_PRESETS
        },
        counts=built.table.counts(),
        wall_s=_facts(session).wall_s(),
        budget=_budget(session, built),
        finished=True,
        result=result,
    )
    summary.write(session.run_dir, session.objective)
    predictions.keep_recorded(session.run_dir)
    return summary


def _say_best(entry: BestTrial, session: Session, card: Card | None) -> None:
    """The final lines: the best trial (its test accuracy when its own model is exported, with the
    test reviews that copy training ones), the model, and whether it beats the majority class."""
    progress, facts = session.progress, session.prepared.facts
    params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in entry.params.items())
    tested = (
        f", test_accuracy {entry.test_accuracy:.4f} on {entry.test_examples:,} test reviews{facts.copies_note()}"
        if entry.test_accuracy is not None
        else ""
    )
    progress.field("best", f"{entry.trial_id}: {session.objective.metric} {entry.value:.4f}{tested} ({params})")
    if card:
        progress.field("model", f"{session.run_dir.best_model} (model.keras takes raw text; saved_model/ for serving)")
        floor = facts.floor_note(card.test_accuracy, session.objective)
        if floor:
            progress.say(f"warning   {floor}")


def _unchanged(session: Session, best: dict) -> tuple[Card | None, Summary | None]:
    """The export (card.json) and summary (its certification and result) of an earlier session, when
    its best trial and epoch are still the best (a resumed, finished run): the test split is not
    evaluated again."""
    run_dir = session.run_dir
    summary = Summary.read(run_dir, session.objective) if run_dir.summary_json.is_file() else None
    card = Card.read(run_dir.best_model, session.objective) if (run_dir.best_model / MODEL_FILE).is_file() else None
    if not summary or not card or summary.best is None:
        return None, None
    same = summary.best.trial_id == best["trial_id"] and str(summary.best.best_epoch) == str(best["best_epoch"])
    return (card, summary) if same else (None, None)


def _export(session: Session, best: dict) -> Card:
    run_dir = session.run_dir
    params = trial_of(run_dir, int(best["number"])).params
    _, train = configs_from(params, len(session.prepared.classes), session.train_base(_facts(session).lstm.trials))
    card = Card(
        trial_id=best["trial_id"],
        value=_number(best[session.objective.metric]),
        epoch=int(best["best_epoch"]),
        examples_per_s=_number(best["examples_per_s"]),
        tokens_per_s=_number(best["tokens_per_s"]),
    )
    path = best["best_checkpoint"]
    if "://" in path:  # in the storage of a cluster: fetched to a temporary folder
        with tune.Checkpoint(path).as_directory() as folder:
            return export_best(Path(folder), params, session.prepared, run_dir.best_model, card, train, session.objective)
    return export_best(run_dir.root / path, params, session.prepared, run_dir.best_model, card, train, session.objective)


def _best_entry(session: Session, best: dict, card: Card | None) -> BestTrial:
    """The search's best trial (the study's best); its test accuracy when its own model is exported."""
    run_dir = session.run_dir
    entry = BestTrial(
        trial_id=best["trial_id"],
        number=int(best["number"]),
        params=trial_of(run_dir, int(best["number"])).params,
        preset=best.get("preset") or "",
        value=_number(best[session.objective.metric]),
        best_epoch=int(best["best_epoch"]),
        examples_per_s=_number(best["examples_per_s"]),
        tokens_per_s=_number(best["tokens_per_s"]),
    )
    if card and card.trial_id == best["trial_id"] and card.seed is None:
        entry.test_accuracy, entry.test_examples = card.test_accuracy, card.test_examples
    return entry


def session_wall_s(session: Session) -> float:
    """This session's wall time in seconds, until now (pure: nothing is written)."""
    return time.time() - session.started


def record_wall_s(session: Session) -> None:
    """Write this session's wall time until now into run.json (the run's wall time is then
    `RunFacts.wall_s()`: the sessions' as recorded; a session killed outright recorded none)."""
    facts = _facts(session)
    facts.sessions[-1].wall_s = session_wall_s(session)
    facts.write(session.run_dir)


def _budget(session: Session, built: Built) -> Budget:
    search = session.search
    return Budget(
        trials=search.trials,
        max_epochs=search.max_epochs,
        time_budget_min=search.time_budget_min,
        budget_examples=search.budget_examples,
        examples_used=built.ledger.used,
        search_s=_facts(session).search_s(),
    )


def _number(value) -> float | None:
    number = as_float(value)
    return None if number != number else number
