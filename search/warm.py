"""Warm start: a new search that learns from earlier runs (`python -m search.run --warm-start RUN [RUN ...]`).

    python -m search.run --data DATA --warm-start runs/reference --out runs/warm
    python -m search.run --data OTHER.csv --warm-start runs/reference --warm-start-top 5 --out runs/other

- **Trials** (an earlier run on the same data, its fingerprint equal, ranked by the same
  objective): its ended trials enter the new study with `optuna.Study.add_trials` (parameters,
  distributions, values, states, intermediate values), before anything is queued, so TPE models
  them from its first proposal. They are never trained here, never counted in the trials or the
  budgets (`search.searcher.started_trials` leaves them out), and never exported: the tables
  hold only what this run trains. ASHA's rungs start from their intermediate values
  (`seed_rungs`).
- **Configurations** (other data, which includes another set of classes, or another objective,
  whose values do not rank by this run's; or a run kept without its study.db, such as
  docs/reference, whose trials' distributions and intermediate values went with it): its best
  configurations are queued first, with `enqueue_trial`, the certified ones first (the exported
  one first of those), then the rest by its own ranking, `--warm-start-top` of them in all; they
  are trained here like any trial. Their values come from the study where the run has one, else
  from trials.csv, each cell typed by the earlier run's recorded space (`typed_params`).
- **Another space**: a trial or configuration with a value outside the new space is dropped and
  counted; a hyperparameter the earlier run lacks takes the new start point's value
  (`search.space.start_point`), or its pinned value.

Every trial that came from an earlier run carries its origin (`ORIGIN`: the run's folder and
trial id) as a user attribute in the study; trials.csv's origin column, run.json's `warm_start`
(`runfiles.documents.WarmSource`), the header and the report's leaderboard show it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from runfiles.cli import UsageError
from runfiles.documents import RunFacts, Summary, WarmSource
from runfiles.layout import ADDED, ORIGIN, STUDY_NAME, Objective, Param, RunDir, rank_key
from runfiles.lock import refuse_if_held
from runfiles.study import read_only_study, study_problem
from runfiles.trials import lost_trials, read_trials
from search.config import WARM_FLAG as FLAG
from search.config import WARM_START_TOP
from search.config import WARM_TOP_FLAG as TOP_FLAG


@dataclass(frozen=True)
class WarmRun:
    """An earlier run a new search learns from, as checked before Ray starts."""

    run_dir: RunDir
    facts: RunFacts
    why_configurations: str = ""
    """Why only its configurations are taken (other data, another objective); empty: its trials enter the study."""
    trials: tuple = ()
    """Its study's trials (`optuna.trial.FrozenTrial`s, in order of number), read once, read-only."""

    @property
    def takes_trials(self) -> bool:
        """Whether its trials enter the new study (same data and objective), rather than its configurations."""
        return not self.why_configurations


def check_runs(paths: list[Path], fingerprint: str, objective: Objective, top: int = WARM_START_TOP) -> list[WarmRun]:
    """The earlier runs named by --warm-start, each a finished or stopped run no driver holds,
    with its study's trials read (read-only: an earlier run is never written).

    `fingerprint` is the new run's data fingerprint (`search.data.data_fingerprint`), `objective`
    its ranking. A run without study.db but with trials.csv hands on its configurations only.
    Raises UsageError, one line naming the flag and the path: not a run (no run.json beside a
    study.db or trials.csv), a run a live driver holds, a run named twice, a run.json that is not JSON or
    lacks what a warm start reads, a study.db that does not hold the run's study, a finished run's
    tables that lack trials (`runfiles.trials.lost_trials`), or
    --warm-start-top below 1.
    """
    if top < 1:
        raise UsageError(f"{TOP_FLAG} {top} is invalid: expected an integer >= 1")
    runs, seen = [], set()
    for path in paths:
        run_dir = RunDir(path.expanduser())
        if not (run_dir.run_json.is_file() and (run_dir.study_db.is_file() or run_dir.trials_csv.is_file())):
            raise UsageError(f"{FLAG} {path}: not a run (no run.json beside a study.db or trials.csv); {WHAT_WORKS}")
        if run_dir.root.resolve() in seen:
            raise UsageError(f"{FLAG} {path}: named twice; give each run once")
        seen.add(run_dir.root.resolve())
        try:
            refuse_if_held(run_dir, "let it finish (or stop it) first, then warm-start from it")
        except UsageError as error:
            raise UsageError(f"{FLAG} {error}") from None
        if lost := lost_trials(run_dir):
            raise UsageError(f"{FLAG} {lost}")
        facts = _facts(path, run_dir)
        trials = _trials(path, run_dir, facts.study) if run_dir.study_db.is_file() else ()
        why = _why_configurations(facts, fingerprint, objective) or _why_no_study(run_dir)
        runs.append(WarmRun(run_dir, facts, why, trials))
    return runs


WHAT_WORKS = "give the folder of a run search.run wrote (its run.json and study.db or trials.csv as it left them)"
"""What an earlier run that cannot be read should be instead, in --warm-start's one-line refusals."""


def _facts(path: Path, run_dir: RunDir) -> RunFacts:
    """run.json of an earlier run, with what a warm start reads from it (its objective, its data's
    fingerprint, its space); UsageError otherwise."""
    where = f"{FLAG} {path}: {run_dir.run_json}"
    try:
        facts = RunFacts.read(run_dir)
    except (OSError, ValueError) as error:  # not UTF-8, not JSON, not an object (read_json names the file), unreadable
        raise UsageError(f"{FLAG} {path}: {error}; {WHAT_WORKS}") from None
    needed = (("an objective", facts.objective), ("the data's fingerprint", facts.fingerprint), ("a space", facts.params))
    lacking = [what for what, found in needed if not found]
    if lacking:
        raise UsageError(f"{where} lacks {', '.join(lacking)}; {WHAT_WORKS}")
    return facts


def _trials(path: Path, run_dir: RunDir, study: str) -> tuple:
    """The trials of an earlier run's study, read without writing study.db; UsageError when the
    file is not a SQLite database holding the study `study`, or cannot be read as one."""
    where = f"{FLAG} {path}: {run_dir.study_db}"
    problem = study_problem(run_dir.study_db, study)
    if problem:
        raise UsageError(f"{where} {problem}; {WHAT_WORKS}")
    try:
        return tuple(read_only_study(run_dir.study_db, study).get_trials(deepcopy=False))
    except Exception as error:  # a damaged database, or one an incompatible Optuna wrote
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UsageError(f"{where} cannot be read ({first_line}); {WHAT_WORKS}") from None


def _why_configurations(facts: RunFacts, fingerprint: str, objective: Objective) -> str:
    """Why an earlier run's values do not rank by this run's: other data, another objective; "" when they do."""
    if facts.fingerprint != fingerprint:
        return f"other data: fingerprint {facts.fingerprint}, here {fingerprint}"
    if facts.ranking != objective:
        return f"ranked by {facts.ranking.metric}, here by {objective.metric}"
    return ""


NO_STUDY = "no study.db: the trials' distributions and intermediate values are kept there"
"""Why a run on the same data, kept without its study.db, hands on its configurations only."""


def _why_no_study(run_dir: RunDir) -> str:
    return "" if run_dir.study_db.is_file() else NO_STUDY


@dataclass
class WarmPlan:
    """What the earlier runs hand a new study: trials to add, configurations to queue, and the records."""

    trials: list = field(default_factory=list)
    """`optuna.trial.FrozenTrial`s to add (their ORIGIN and ADDED user attributes set)."""
    queued: list[tuple[dict, str]] = field(default_factory=list)
    """(parameters, origin) to queue first, in order."""
    sources: list[WarmSource] = field(default_factory=list)
    """run.json's warm_start: one record per earlier run."""


def plan(
    runs: list[WarmRun], space: tuple[Param, ...], top: int = WARM_START_TOP, max_latency_ms: float | None = None
) -> WarmPlan:
    """The trials and configurations `runs` hand a new study of `space` (see the module's docstring);
    with `max_latency_ms`, each added trial carries its constraint as the sampler would compute it."""
    from search.space import start_point

    fill = {p.name: p.choices[0] for p in space if p.pinned} | (start_point(space) or {})
    result, seen = WarmPlan(), set()
    for run in runs:
        if run.takes_trials:
            kept, dropped = _added_trials(run, space, fill, max_latency_ms)
            kept, repeated = _new(kept, seen, lambda t: (t.params, t.values, t.intermediate_values))
            result.trials += kept
            mode = "trials"
        else:
            kept, dropped = _best_configurations(run, space, fill, top)
            kept, repeated = _new(kept, seen, lambda queued: queued[0])
            result.queued += kept
            mode = "configurations"
        filled = sorted({p.name for p in space} - {p.name for p in run.facts.params})
        result.sources.append(
            WarmSource(
                run=str(run.run_dir.root.resolve()),
                taken=mode,
                why=run.why_configurations,
                kept=len(kept),
                dropped=dropped,
                repeated=repeated,
                filled=[name for name in filled if name in fill],
            )
        )
    return result


def _new(items: list, seen: set, key) -> tuple[list, int]:
    """`items` whose `key` (parameters, and a trial's values) is not in `seen` yet, each added to it;
    and how many were left out as repeats."""
    kept = []
    for item in items:
        text = json.dumps(key(item), sort_keys=True, default=str)
        if text not in seen:
            seen.add(text)
            kept.append(item)
    return kept, len(items) - len(kept)


def moved(params: dict, space: tuple[Param, ...], fill: dict) -> dict | None:
    """`params` as a point of `space`: a missing hyperparameter takes `fill`'s value (the start
    point, pinned values); None when a value lies outside the space or nothing fills a gap."""
    point = {}
    for p in space:
        value = params[p.name] if p.name in params else fill.get(p.name)
        if value is None or not p.contains(value):
            return None
        point[p.name] = value
    return point


def _added_trials(run: WarmRun, space: tuple[Param, ...], fill: dict, max_latency_ms: float | None) -> tuple[list, int]:
    """The ended trials of `run` that its driver trained, moved into `space`; and how many were dropped."""
    import optuna

    from search.scheduler import LatencyLimit
    from search.space import optuna_space

    ended = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)
    trials = [t for t in run.trials if t.state in ended and not t.user_attrs.get(ADDED)]
    distributions, limit = optuna_space(space), LatencyLimit(max_latency_ms) if max_latency_ms else None
    kept = []
    for trial in trials:
        point = moved(trial.params, space, fill)
        if point is None:
            continue
        complete = trial.state == optuna.trial.TrialState.COMPLETE
        added = optuna.trial.create_trial(
            state=trial.state,
            values=trial.values if complete else None,
            params=point,
            distributions=distributions,
            user_attrs={**trial.user_attrs, ORIGIN: origin_of(run.run_dir, trial.number), ADDED: True},
            intermediate_values={step: v for step, v in trial.intermediate_values.items() if math.isfinite(v)},
            constraints=None if limit is None else {"0": limit(trial)[0]},
        )
        kept.append(added)
    return kept, len(trials) - len(kept)


def _best_configurations(run: WarmRun, space: tuple[Param, ...], fill: dict, top: int) -> tuple[list[tuple[dict, str]], int]:
    """Up to `top` configurations of `run`, certified ones first (the exported one first), then by
    its own ranking; moved into `space`, with their origin; and how many of those were dropped."""
    objective = run.facts.ranking
    rows = [r for r in read_trials(run.run_dir) if rank_key(r, objective)[0] == 0]
    ranked = [r["trial_id"] for r in sorted(rows, key=lambda r: rank_key(r, objective))]
    summary = Summary.read(run.run_dir, objective) if run.run_dir.summary_json.is_file() else None
    certified = [c.trial_id for c in summary.certification.configurations] if summary and summary.certification else []
    if summary and summary.certification and summary.certification.exported in certified:
        certified.remove(summary.certification.exported)
        certified.insert(0, summary.certification.exported)
    params = _params_by_trial(run, rows)
    chosen = [t for t in dict.fromkeys([*certified, *ranked]) if t in params][:top]
    kept, dropped = [], 0
    for tid in chosen:
        point = moved(params[tid][1], space, fill)
        if point is None:
            dropped += 1
            continue
        kept.append((point, origin_of(run.run_dir, params[tid][0])))
    return kept, dropped


def _params_by_trial(run: WarmRun, rows: list[dict]) -> dict[str, tuple[int, dict]]:
    """{trial id: (number, parameters)} of `rows` (trials.csv's): the study's parameters where the
    run has its study (rows it lacks left out), else the rows' cells typed by the run's space."""
    if run.run_dir.study_db.is_file():
        stored = {trial.number: trial.params for trial in run.trials}
        return {r["trial_id"]: (int(r["number"]), stored[int(r["number"])]) for r in rows if int(r["number"]) in stored}
    return {r["trial_id"]: (int(r["number"]), typed_params(r, run.facts.params)) for r in rows}


def typed_params(row: dict, space: list[Param]) -> dict:
    """A trials.csv row's hyperparameters as the study held them: each text cell read as its
    Param's kind (int, float, or the categorical choice written as that text); empty or absent
    cells left out, so that `moved` fills them."""
    params = {}
    for p in space:
        text = (row.get(p.name) or "").strip()
        if not text:
            continue
        if p.kind == "categorical":
            params[p.name] = next((c for c in p.choices or () if str(c) == text), text)
        else:
            params[p.name] = float(text) if p.kind == "float" else int(float(text))
    return params


def origin_of(run_dir: RunDir, number: int) -> str:
    """Where a warm trial came from: the earlier run's absolute folder and its trial id."""
    from runfiles.layout import trial_id

    return f"{run_dir.root.resolve()}/{trial_id(number)}"


def untried(points: list[dict], warm: WarmPlan) -> list[dict]:
    """The `points` (the tutorial's models, the start point) that no added trial has trained: a
    warm start on the same data does not train its earlier runs' queued points again."""
    tried = [trial.params for trial in warm.trials]
    return [point for point in points if not any(all(params.get(k) == v for k, v in point.items()) for params in tried)]


def seed_study(run_dir: RunDir, warm: WarmPlan, objective: Objective) -> None:
    """Create the new run's study holding the earlier runs' trials, then their configurations queued
    (each with its ORIGIN), before the searcher queues the tutorial's models and the start point."""
    import optuna

    study = optuna.create_study(
        storage=run_dir.study_url,
        study_name=STUDY_NAME,
        direction="maximize" if objective.mode == "max" else "minimize",
        load_if_exists=True,
    )
    study.add_trials(warm.trials)
    for params, origin in warm.queued:
        study.enqueue_trial(params, user_attrs={ORIGIN: origin}, skip_if_exists=False)


def seed_rungs(scheduler, trials: list, objective: Objective) -> int:
    """Record the added trials' intermediate values in ASHA's rungs, at each rung's milestone epoch,
    as Ray's bracket records a result (signed so that larger is better); returns the values recorded.

    Ray's AsyncHyperBandScheduler keeps its rungs in memory and offers no public way to fill them,
    so this goes through `search.internals` (its brackets and rungs). The intermediate value at an
    epoch is the trial's best so far there (`search.searcher`), at least its value at that epoch:
    the rungs' cut-offs start at most that much stricter than the earlier run's were.
    """
    from search import internals

    sign = 1 if objective.mode == "max" else -1
    recorded = 0
    for bracket in internals.brackets(scheduler):
        for milestone, values in internals.rungs(bracket):
            for trial in trials:
                value = trial.intermediate_values.get(int(milestone))
                if value is not None and trial.state.name != "FAIL":
                    values[trial.user_attrs[ORIGIN]] = sign * value
                    recorded += 1
    return recorded


def origins_text(sources: list[WarmSource]) -> str:
    """The header's warm-start line: what each earlier run handed on, and what was dropped or filled."""
    parts = []
    for source in sources:
        what = "trials added to the study" if source.taken == "trials" else "configurations queued first"
        notes = [source.why] if source.why else []
        if source.dropped:
            notes.append(f"{source.dropped} dropped outside this space")
        if source.repeated:
            notes.append(f"{source.repeated} left out as the same as an earlier run's")
        if source.filled:
            notes.append(f"{', '.join(source.filled)} from this start point")
        parts.append(f"{source.run}: {source.kept} {what}" + (f" ({'; '.join(notes)})" if notes else ""))
    return "; ".join(parts)
