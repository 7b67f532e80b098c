"""Pure computations on the trials' table: ranking, Pareto front, progress, edges, lanes, importance;
and on the data's classes: each split's balance and the exported model's results per class."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models.config import TUTORIAL_EPOCHS
from reports.load import Run
from runfiles.documents import Baseline, Budget, Certification, CertifiedConfig, DataFacts, Summary
from runfiles.layout import OBJECTIVE, TUTORIAL_PRESETS, Objective, Param, State, as_float, best_row, quantity, rank_key

MIN_IMPORTANCE_TRIALS = 5
METRIC_NAMES = {"val_accuracy": "validation accuracy", "val_macro_f1": "validation macro-F1", "val_loss": "validation loss"}
"""The objectives (runfiles.layout.OBJECTIVES) as the page names them."""
SPLITS = ("train", "val", "test")
"""The splits in the order the page lists them (a split the data facts add is listed after them)."""
EDGE_FRACTION = 0.1
"""A value within this fraction of a range's width (log width where log) of a bound sits at its edge."""


def metric_name(metric: str) -> str:
    """An objective's metric as people read it: "validation accuracy" for val_accuracy."""
    return METRIC_NAMES.get(metric, metric)


def state_label(state: str) -> str:
    return State(state).label if state in State._value2member_map_ else (state.replace("_", " ") or "unknown")


def depth(trials: pd.DataFrame) -> pd.Series:
    """BiLSTM layers per trial: the depth column, else NaN."""
    values = pd.to_numeric(trials["depth"], errors="coerce") if "depth" in trials else pd.Series(np.nan, index=trials.index)
    return values.astype(float)


def family(trials: pd.DataFrame) -> pd.Series:
    """ "single" (depth 1), "stacked" (depth 2+) or "unknown"."""
    d = depth(trials)
    return pd.Series(np.where(d.isna(), "unknown", np.where(d <= 1, "single", "stacked")), index=trials.index)


def ranked(trials: pd.DataFrame, objective: Objective) -> pd.DataFrame:
    """Trials in the harness's one ranking (runfiles.layout.rank_key): ended ones with a value that
    neither diverged nor errored, however they ended, by the objective; then running ones; then the rest."""
    keys = [rank_key(row, objective) for row in trials.to_dict("records")]
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return trials.iloc[order]


def pinned(space: list[Param]) -> dict:
    """The hyperparameters a run held fixed (a categorical with one choice, as --fix makes it,
    or a range of one value): name → value, in the space's order."""
    values = {}
    for param in space:
        if param.pinned:
            values[param.name] = param.choices[0]
        elif param.numeric and param.low == param.high:
            values[param.name] = param.low
    return values


def searched(space: list[Param]) -> list[Param]:
    """The hyperparameters that vary between trials: the space without the pinned ones."""
    fixed = pinned(space)
    return [param for param in space if param.name not in fixed]


def pinned_text(space: list[Param]) -> str:
    """ "units=16, embedding_dim=16" for the pinned hyperparameters, "" when none is."""
    return ", ".join(f"{name}={format_value(name, value)}" for name, value in pinned(space).items())


def counts_as_best(trials: pd.DataFrame, objective: Objective) -> np.ndarray:
    """True for the ended trials the harness's ranking lets be the best (rank_key group 0: scored,
    neither diverged nor errored, completed or stopped early)."""
    return np.array([rank_key(row, objective)[0] == 0 for row in trials.to_dict("records")], bool)


def best_so_far(values: np.ndarray, counts: np.ndarray, objective: Objective) -> np.ndarray:
    """The running best of the values that count (NaN until the first one): a trial that cannot be
    the best (stopped early, say) never moves it, whatever its value."""
    masked = np.where(np.asarray(counts, bool), np.asarray(values, float), np.nan)
    if not len(masked):
        return masked
    return objective.oriented(np.fmax.accumulate(objective.oriented(masked)))  # oriented: larger is better, both ways


def best_trial(run: Run) -> dict | None:
    """The run's best trial as {trial_id, number, params, value, test_accuracy, final}: summary.json's
    (final: True; its test accuracy when its own model was exported), else the first by the harness's
    ranking; None before any trial has a value. params holds every hyperparameter, pinned ones included."""
    best = run.summary.best if run.summary else None
    if best is not None and best.trial_id:
        match = run.trials[run.trials["trial_id"] == str(best.trial_id)]
        row = match.iloc[0] if len(match) else pd.Series(dtype=object)
        params = best.params if isinstance(best.params, dict) else params_of(row, run.space)
        return {
            "trial_id": str(best.trial_id),
            "number": as_float(_or(best.number, row.get("number"))),
            "params": params,
            "value": as_float(_or(best.value, row.get(run.metric))),
            "test_accuracy": as_float(best.test_accuracy),
            "final": True,
        }
    row = best_row(run.trials.to_dict("records"), run.objective)
    if row is None:
        return None
    return {
        "trial_id": row["trial_id"],
        "number": as_float(row["number"]),
        "params": params_of(pd.Series(row), run.space),
        "value": as_float(row[run.metric]),
        "test_accuracy": math.nan,
        "final": False,
    }


def _or(recorded, fallback):
    """A summary's value, or the trial table's where the summary records none."""
    return fallback if recorded is None else recorded


def params_of(row: pd.Series, space: list[Param]) -> dict:
    """A trial's searched hyperparameters (missing ones left out)."""
    values = {}
    for param in space:
        value = row.get(param.name)
        if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
            continue
        values[param.name] = value
    return values


def format_value(name: str, value) -> str:
    """A hyperparameter value as people read it: integers without .0, max_len 0 as "full",
    ngram_buckets as "none" or a power of two ("2^20")."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        number = float(value)
        if math.isnan(number):
            return ""
        if name == "max_len" and number == 0:
            return "full"
        if name == "ngram_buckets" and number.is_integer() and number >= 0:
            return _buckets(int(number))
        if number.is_integer() and abs(number) < 1e15:
            return str(int(number))
        return f"{number:.3g}"
    text = str(value)
    if name == "max_len" and text in ("0", "0.0"):
        return "full"
    if name == "ngram_buckets" and text.isdigit():
        return _buckets(int(text))
    return text


def _buckets(count: int) -> str:
    if count == 0:
        return "none"
    return f"2^{count.bit_length() - 1}" if count & (count - 1) == 0 else str(count)


def headline(run: Run) -> list[dict]:
    """The best model (and the certified one) beside the tutorial's two models, as rows for a table:
    {model, trial_id, params, value (the objective's, e.g. val_accuracy), test_accuracy, examples_per_s,
    tokens_per_s, state}, and val_text or test_text where a cell is not one number."""
    trials, best = run.trials, run.summary.best if run.summary else None
    certified = run.summary.certification if run.summary else None
    rows = []
    if best is not None:
        match = trials[trials["trial_id"] == str(best.trial_id)]
        row = match.iloc[0].to_dict() if len(match) else {}
        params = best.params if isinstance(best.params, dict) else params_of(pd.Series(row), run.space)
        rows.append(
            {
                "model": "best of the search" if certified else "best (exported)",
                "trial_id": str(best.trial_id),
                "params": params,
                "value": as_float(_or(best.value, row.get(run.metric))),
                "test_accuracy": as_float(best.test_accuracy),
                "examples_per_s": as_float(_or(best.examples_per_s, row.get("examples_per_s"))),
                "tokens_per_s": as_float(_or(best.tokens_per_s, row.get("tokens_per_s"))),
                "state": state_label(str(row.get("state", "completed"))),
            }
        )
    else:
        top = ranked(trials, run.objective)
        top = top[top[run.metric].notna()] if run.metric in top else top.iloc[:0]
        if len(top):
            row = top.iloc[0]
            rows.append(_trial_row("best so far", row, run.space, run.metric))
    if certified is not None:
        rows.extend(certified_rows(certified, run.metric))
    for preset in TUTORIAL_PRESETS:
        match = trials[trials["preset"] == preset]
        if len(match):
            rows.append(_trial_row(preset, match.iloc[-1], run.space, run.metric))
        else:
            rows.append(
                {
                    "model": preset,
                    "trial_id": "",
                    "params": {},
                    "value": math.nan,
                    "test_accuracy": math.nan,
                    "examples_per_s": math.nan,
                    "tokens_per_s": math.nan,
                    "state": "not in this run",
                }
            )
    return rows + baseline_rows(run)


def certified_rows(certified: Certification, metric: str = OBJECTIVE.metric) -> list[dict]:
    """The exported configuration, certified over seeds (means ± standard deviations of the objective
    `metric` and of test accuracy), and its refit on train + validation when there is one."""
    chosen = certified.chosen or CertifiedConfig()
    row = {
        "model": f"certified over {quantity(len(chosen.seeds), 'seed')}",
        "trial_id": str(chosen.trial_id),
        "params": chosen.params or {},
        "value": as_float(chosen.value_mean),
        "val_text": plus_minus(chosen.value_mean, chosen.value_std, metric),
        "test_accuracy": as_float(chosen.test_accuracy_mean),
        "test_text": plus_minus(chosen.test_accuracy_mean, chosen.test_accuracy_std),
        "examples_per_s": math.nan,
        "tokens_per_s": math.nan,
        "state": "certified",
    }
    refit = certified.refit
    if refit is None:
        return [{**row, "model": f"exported: {row['model']}"}]
    fitted = {
        **row,
        "model": f"exported: refit on train + validation ({quantity(len(refit.seeds), 'seed')})",
        "value": math.nan,
        "val_text": "(trained on it)",
        "test_accuracy": as_float(refit.test_accuracy_mean),
        "test_text": plus_minus(refit.test_accuracy_mean, refit.test_accuracy_std),
        "state": "refit",
    }
    ensemble = certified.ensemble
    if ensemble is None:
        return [fitted, row]
    averaged = {
        **fitted,
        "model": f"exported: mean-logit ensemble of the {quantity(len(ensemble.seeds), 'refit')}",
        "test_accuracy": as_float(ensemble.test_accuracy),
        "test_text": "",
        "state": "ensemble",
    }
    each = f"refit on train + validation ({quantity(len(refit.seeds), 'seed')}), one model each"
    return [averaged, {**fitted, "model": each}, row]


def baseline_rows(run: Run) -> list[dict]:
    """The tutorial's models trained as the tutorial trains them, and the linear baseline (baseline.json), if there."""
    baseline = run.baseline or Baseline()
    rows = []
    for preset, model in baseline.models.items():
        rows.append(
            {
                "model": f"{preset}, the tutorial's training ({baseline.epochs} epochs)",
                "trial_id": "",
                "params": model.params or {},
                "value": as_float(model.value),
                "test_accuracy": as_float(model.test_accuracy),
                "examples_per_s": as_float(model.examples_per_s),
                "tokens_per_s": math.nan,
                "state": "baseline",
            }
        )
    if baseline.linear is not None:
        rows.append(
            {
                "model": LINEAR_MODEL,
                "trial_id": "",
                "params": {"C": baseline.linear.c},
                "value": as_float(baseline.linear.value),
                "test_accuracy": as_float(baseline.linear.test_accuracy),
                "examples_per_s": math.nan,
                "tokens_per_s": math.nan,
                "state": "baseline",
            }
        )
    return rows


LINEAR_MODEL = "linear: TF-IDF word uni+bigrams, logistic regression"
"""The linear baseline's name in the page's tables (search.linear)."""


def plus_minus(mean, std, metric: str = "test_accuracy") -> str:
    """ "84.12% ± 0.31%" for a mean and a standard deviation of `metric` (a loss: "0.3412 ± 0.0050"); "" without a mean."""
    mean, std = as_float(mean), as_float(std)
    return "" if math.isnan(mean) else f"{_formatted(metric, mean)} ± {_formatted(metric, std)}"


def fmt_metric(metric: str, value) -> str:
    """A value of `metric` as the page shows it: a loss to 4 decimals, a fraction (accuracy, F1) in
    percent; "" for a missing value."""
    value = as_float(value)
    return "" if math.isnan(value) else _formatted(metric, value)


def _formatted(metric: str, value: float) -> str:
    return f"{value:,.4f}" if metric.endswith("loss") else f"{value:.2%}"


SEARCH, CERTIFICATION, TUTORIAL_MODELS = (
    "the search",
    "certification over seeds (and the refit)",
    "the tutorial's two models, trained as the tutorial trains them",
)
"""compute()'s names of its parts."""


def compute(run: Run) -> list[tuple[str, float, float | None]]:
    """(what, training examples processed, its budget or None) for each part of the run that
    recorded what it processed: the search, certification, the tutorial's models (baseline.json
    holds none after `search.baseline --linear-only` alone)."""
    summary = run.summary or Summary()
    budget = summary.budget or Budget()
    used = as_float(budget.examples_used)
    if math.isnan(used) and len(run.epochs) and "examples" in run.epochs:
        used = float(run.epochs["examples"].sum())
    found = [(SEARCH, used, budget.budget_examples)]
    if summary.certification is not None:
        found.append((CERTIFICATION, as_float(summary.certification.examples), None))
    if run.baseline is not None:
        found.append((TUTORIAL_MODELS, as_float(run.baseline.examples), None))
    return [(what, examples, limit) for what, examples, limit in found if not math.isnan(examples)]


def tutorial_compute(run: Run) -> tuple[int, int] | None:
    """(training reviews, examples) of the tutorial's way on this run's data: its two models,
    10 epochs each, on every labelled training review (train + validation: the tutorial carves
    no validation split); None for runs recorded without split sizes."""
    sizes = run.info.data.sizes
    if "train" not in sizes:
        return None
    reviews = int(sizes["train"]) + int(sizes.get("val", 0))
    return reviews, len(TUTORIAL_PRESETS) * TUTORIAL_EPOCHS * reviews


def _trial_row(model: str, row: pd.Series, space: list[Param], metric: str) -> dict:
    return {
        "model": model,
        "trial_id": row["trial_id"],
        "params": params_of(row, space),
        "value": as_float(row.get(metric)),
        "test_accuracy": math.nan,
        "examples_per_s": as_float(row["examples_per_s"]),
        "tokens_per_s": as_float(row["tokens_per_s"]),
        "state": state_label(row["state"]),
    }


def pareto_mask(accuracy: np.ndarray, throughput: np.ndarray) -> np.ndarray:
    """True where no other point is at least as good on both axes and better on one (both maximized)."""
    accuracy, throughput = np.asarray(accuracy, float), np.asarray(throughput, float)
    mask = np.zeros(len(accuracy), bool)
    for i in range(len(accuracy)):
        if np.isnan(accuracy[i]) or np.isnan(throughput[i]):
            continue
        dominated = (
            (accuracy >= accuracy[i]) & (throughput >= throughput[i]) & ((accuracy > accuracy[i]) | (throughput > throughput[i]))
        )
        mask[i] = not dominated.any()
    return mask


def run_start(run: Run) -> float:
    """Unix seconds when the run started: run.json's started_at, else the first trial's start."""
    started = run.info.started_at or None
    if started:
        try:
            return pd.Timestamp(started).timestamp()
        except (ValueError, TypeError):
            pass
    values = pd.concat([run.trials["started_at"], run.epochs["time"] - run.epochs["trial_time_s"]]).dropna()
    return float(values.min()) if len(values) else math.nan


def trial_ends(trials: pd.DataFrame, epochs: pd.DataFrame) -> pd.Series:
    """When each trial ended, or its last report for one still running."""
    last_report = epochs.groupby("trial_id")["time"].max() if len(epochs) else pd.Series(dtype=float)
    return trials["ended_at"].fillna(trials["trial_id"].map(last_report)).astype(float)


def progress(run: Run) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Best objective so far, in order of trial number and in order of the time each trial ended.

    Only the trials the harness's ranking lets be the best (completed ones) move the best so far;
    the others still show as points. by_time holds every trial that has ended or reported, with
    the training examples processed until its end (summed over the trials that ended before it).
    """
    metric, trials = run.metric, run.trials
    rows = trials.assign(
        value=trials.get(metric, np.nan),
        counts=counts_as_best(trials, run.objective),
        examples=trials["examples"].fillna(0.0),
        known_at=trial_ends(trials, run.epochs),
    )
    by_number = rows[rows["value"].notna()].sort_values("number")
    by_time = rows.dropna(subset=["known_at"]).sort_values(["known_at", "number"])
    start = run_start(run)
    if math.isnan(start) and len(by_time):
        start = float(by_time["known_at"].min())
    columns, objective = ["trial_id", "number", "state", "value", "counts"], run.objective
    return (
        by_number[columns].assign(best=best_so_far(by_number["value"], by_number["counts"], objective)).reset_index(drop=True),
        by_time[columns]
        .assign(
            minutes=(by_time["known_at"] - start) / 60.0,
            examples_processed=by_time["examples"].cumsum(),
            best=best_so_far(by_time["value"], by_time["counts"], objective),
        )
        .reset_index(drop=True),
    )


def top_trials(trials: pd.DataFrame, objective: Objective, n: int) -> pd.DataFrame:
    """The n best trials by the objective, among those with a value."""
    rows, metric = ranked(trials, objective), objective.metric
    return rows[rows[metric].notna()].head(n) if metric in rows else rows.iloc[:0]


def position(param: Param, values: np.ndarray) -> np.ndarray:
    """Where values sit in the param's range: 0 at low, 1 at high (log scale where log)."""
    low, high, values = param.low, param.high, np.asarray(values, float)
    if param.log and low > 0 and high > 0:
        with np.errstate(divide="ignore", invalid="ignore"):
            low, high, values = np.log(low), np.log(high), np.log(values)
    return (values - low) / (high - low) if high > low else np.full(len(values), 0.5)


def edge_warnings(run: Run) -> dict[str, str]:
    """Per numeric param, a warning when the best trials all sit at one edge of its range.

    "Best trials" are the top 10% of those with a value (at least 1, at most 5). A bottom
    edge at a natural minimum (0 for a float, 1 for an int: no dropout, one layer) is not
    flagged, since the range cannot be widened there.
    """
    top = top_trials(run.trials, run.objective, 5)
    count = int(run.trials[run.metric].notna().sum()) if run.metric in run.trials else 0
    top = top.head(max(1, min(5, math.ceil(0.1 * count))))
    warnings = {}
    if not len(top):
        return warnings
    for param in searched(run.space):
        if not param.numeric or param.name not in top:
            continue
        where = position(param, top[param.name].to_numpy(float))
        where = where[~np.isnan(where)]
        if not len(where):
            continue
        bounds = f"[{format_value(param.name, param.low)}, {format_value(param.name, param.high)}]"
        best = "the best trial" if len(top) == 1 else f"the {len(top)} best trials"
        if (where >= 1 - EDGE_FRACTION).all():
            warnings[param.name] = f"best {param.name} sits at the top of its range {bounds} ({best}): widen it"
        elif (where <= EDGE_FRACTION).all() and not _natural_minimum(param):
            warnings[param.name] = f"best {param.name} sits at the bottom of its range {bounds} ({best}): widen it"
    return warnings


def _natural_minimum(param: Param) -> bool:
    return (param.kind == "float" and param.low == 0) or (param.kind == "int" and param.low <= 1)


def importances(run: Run) -> tuple[dict[str, float] | None, str]:
    """Optuna's hyperparameter importances on the stored study, or (None, why not)."""
    if run.study is None:
        return None, run.study_note or "no study"
    import optuna

    completed = [t for t in run.study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if len(completed) < MIN_IMPORTANCE_TRIALS:
        return None, (
            f"too few completed trials in the study for importances: {len(completed)} "
            f"(at least {MIN_IMPORTANCE_TRIALS} are needed)"
        )
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    try:
        values = optuna.importance.get_param_importances(run.study, evaluator=evaluator)
    except Exception as error:  # importance is advisory: report the reason, keep the page
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return None, f"Optuna could not compute importances: {first_line}"
    fixed = pinned(run.space)
    values = {name: value for name, value in values.items() if name not in fixed}
    if not values:
        return None, "Optuna returned no importances (no parameter varies across completed trials)"
    note = (
        f"PED-ANOVA (optuna.importance.PedAnovaImportanceEvaluator, Optuna's default) "
        f"on {len(completed)} completed trials of the stored study; normalized to sum to 1."
    )
    return dict(values), note


def segments(trials: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """Where each started trial ran: one row per stretch on one node (a trial that moved, e.g.
    after its node was lost, has one per node), with start and end in Unix seconds."""
    rows = trials[trials["started_at"].notna()].copy()
    rows["end"] = trial_ends(rows, epochs)
    latest = np.nanmax(np.concatenate([rows["end"].to_numpy(float), rows["started_at"].to_numpy(float)])) if len(rows) else np.nan
    rows["end"] = rows["end"].fillna(latest)
    rows["start"] = rows["started_at"]
    columns = ["trial_id", "number", "state", "hostname", "node_id", "device", "gpu_ids", "start", "end"]
    pieces = []
    for _, trial in rows.iterrows():
        mine = epochs[epochs["trial_id"] == trial["trial_id"]].sort_values("time") if len(epochs) else epochs
        stretches = _stretches(mine)
        if len(stretches) < 2:
            pieces.append({c: trial[c] for c in columns})
            continue
        for i, stretch in enumerate(stretches):
            first = stretch.iloc[0]
            start = trial["start"] if i == 0 else first["time"] - first["trial_time_s"]
            end = trial["end"] if i == len(stretches) - 1 else stretch["time"].max()
            pieces.append(
                {
                    **{c: trial[c] for c in ("trial_id", "number", "state")},
                    "hostname": first["hostname"],
                    "node_id": first["node_id"],
                    "device": first["device"],
                    "gpu_ids": first["gpu_ids"],
                    "start": start,
                    "end": end,
                }
            )
    return pd.DataFrame(pieces, columns=columns)


def _stretches(epochs: pd.DataFrame) -> list[pd.DataFrame]:
    """A trial's epochs cut where the node that reported them changes."""
    if not len(epochs) or "node_id" not in epochs or epochs["node_id"].eq("").all():
        return [epochs]
    change = (epochs["node_id"] != epochs["node_id"].shift()).cumsum()
    return [group for _, group in epochs.groupby(change, sort=True)]


def moves(placed: pd.DataFrame) -> list[dict]:
    """Trials that ran on more than one node: {trial_id, number, from, to, at} per move."""
    found = []
    for trial_id, group in placed.sort_values("start").groupby("trial_id", sort=False):
        for before, after in zip(group.iloc[:-1].itertuples(), group.iloc[1:].itertuples(), strict=True):
            found.append(
                {"trial_id": trial_id, "number": after.number, "from": before.place, "to": after.place, "at": after.start}
            )
    return found


def lanes(trials: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """Trials placed on lanes: one per place (host, node where a host has several, device, GPU
    ids) and per trial running at once there; a trial that moved is on one lane per place."""
    rows = segments(trials, epochs)
    host = rows["hostname"].where(rows["hostname"] != "", rows["node_id"].str.slice(0, 8)).replace("", "unknown host")
    shared = rows.groupby(host)["node_id"].transform("nunique") > 1 if len(rows) else pd.Series(dtype=bool)
    node = rows["node_id"].str.slice(0, 8).map(lambda n: f" · node {n}").where(shared, "")
    device = rows["device"].replace("", "unknown device")
    gpus = rows["gpu_ids"].map(lambda g: f" (GPU ids {g})" if g else "")
    rows["place"] = host + node + " · " + device + gpus
    rows["lane"] = ""
    for place, group in rows.sort_values(["start", "number"]).groupby("place", sort=True):
        slot_ends: list[float] = []
        for index, row in group.iterrows():
            slot = next((i for i, end in enumerate(slot_ends) if end <= row["start"]), len(slot_ends))
            slot_ends[slot : slot + 1] = [row["end"]]
            rows.loc[index, "lane"] = f"{place} #{slot + 1}"
    return rows[["trial_id", "number", "state", "place", "lane", "start", "end"]].sort_values(["lane", "start"])


def utilization(placed: pd.DataFrame) -> dict:
    """Busy time / (lanes x wall time) for the placed trials."""
    if not len(placed):
        return {"lanes": 0, "wall_s": math.nan, "busy_s": 0.0, "utilization": math.nan}
    wall = float(placed["end"].max() - placed["start"].min())
    busy = float((placed["end"] - placed["start"]).clip(lower=0).sum())
    count = placed["lane"].nunique()
    return {"lanes": count, "wall_s": wall, "busy_s": busy, "utilization": busy / (count * wall) if wall > 0 else math.nan}


# ---------------------------------------------------------------- classes


def class_names(run: Run) -> list[str]:
    """The class names in index order: the exported model's (its output order), else run.json's data
    facts'; [] for runs recorded before classes were named."""
    exported = run.summary.exported if run.summary else None
    for names in (exported.classes if exported else None, run.info.data.classes):
        if isinstance(names, list) and names:
            return [str(name) for name in names]
    return []


def class_balance(facts: DataFacts) -> pd.DataFrame:
    """Each split's examples per class, from run.json's data facts (classes, class counts): one row
    per class (in the facts' order, then any class only the counts name), one int column per split
    (train, val, test, then any other). Empty for runs recorded without class counts."""
    counts = {str(k): v for k, v in (facts.class_counts or {}).items() if isinstance(v, dict)}
    if not counts:
        return pd.DataFrame()
    classes = [str(name) for name in facts.classes or []]
    for split in counts.values():
        classes += [str(name) for name in split if str(name) not in classes]
    splits = [s for s in SPLITS if s in counts] + [s for s in counts if s not in SPLITS]
    columns = {split: [_count({str(k): v for k, v in counts[split].items()}.get(name)) for name in classes] for split in splits}
    return pd.DataFrame(columns, index=pd.Index(classes, name="class"))


def _count(value) -> int:
    number = as_float(value)
    return 0 if math.isnan(number) else int(number)


def per_class(confusion, classes: list[str]) -> pd.DataFrame | None:
    """Precision, recall and F1 per class from a K x K confusion matrix (rows: the true class, columns:
    the predicted one), as sklearn.metrics.precision_recall_fscore_support(average=None, zero_division=0)
    gives them: a ratio with nothing to divide by is 0. Columns: support (true examples), predicted,
    precision, recall, f1; indexed by `classes` (by 0..K-1 when they are not K names). None when
    `confusion` is not a square table (K >= 2) of non-negative counts."""
    try:
        matrix = np.asarray(confusion, dtype=float)
    except (TypeError, ValueError):
        return None
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 2:
        return None
    if not np.isfinite(matrix).all() or (matrix < 0).any():
        return None
    hits, support, predicted = np.diag(matrix), matrix.sum(axis=1), matrix.sum(axis=0)
    names = classes if len(classes) == len(matrix) else [str(i) for i in range(len(matrix))]
    return pd.DataFrame(
        {
            "support": support.astype(int),
            "predicted": predicted.astype(int),
            "precision": _ratio(hits, predicted),
            "recall": _ratio(hits, support),
            "f1": _ratio(2 * hits, support + predicted),  # 2·tp / (2·tp + fp + fn)
        },
        index=pd.Index(names, name="class"),
    )


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (zero_division=0)."""
    return np.divide(numerator, denominator, out=np.zeros_like(numerator, dtype=float), where=denominator > 0)
