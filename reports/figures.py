"""Figures of the report: pure functions from tables to matplotlib Figures (None when there is nothing to draw).

Figures are built with matplotlib.figure.Figure and rendered by the Agg canvas, so no
pyplot state or GUI backend is involved. Text that comes from data is passed through
plain() so that a "$" in it is never read as mathtext.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from reports.analysis import family, format_value, metric_name, pareto_mask, state_label
from runfiles.layout import Objective, Param, State

STATE_COLORS = {
    State.COMPLETED: "#1f77b4",
    State.STOPPED_EARLY: "#ff7f0e",
    State.DIVERGED: "#9467bd",
    State.ERRORED: "#d62728",
    State.RUNNING: "#2ca02c",
    State.PENDING: "#7f7f7f",
}
FAMILY_COLORS = {"single": "#4c72b0", "stacked": "#dd8452", "unknown": "#8c8c8c"}
FADED_STATES = (State.STOPPED_EARLY, State.DIVERGED, State.ERRORED)
"""Trials whose learning curve is drawn faded and dashed: they did not train every epoch they were given."""
FADED_TEXT = ", ".join(s.label for s in FADED_STATES[:-1]) + f" or {FADED_STATES[-1].label}"
STATE_ORDER = [State.COMPLETED, State.STOPPED_EARLY, State.RUNNING, State.DIVERGED, State.ERRORED, State.PENDING]


class Pictures(dict):
    """A page's figures by file name (matplotlib Figures, written when the page is)."""

    def add(self, name: str, picture: Figure | None) -> str | None:
        """Keep `picture` as `name`; return the name for the page, or None when there is no picture."""
        if picture is None:
            return None
        self[name] = picture
        return name


def plain(text) -> str:
    """Data text safe for matplotlib: no mathtext, bounded length."""
    text = str(text).replace("$", r"\$")
    return text if len(text) <= 40 else text[:39] + "…"


METRIC_LABELS = {
    "val_accuracy": "validation accuracy (fraction correct)",
    "val_macro_f1": "validation macro-F1 (F1 averaged over classes)",
    "val_loss": "validation loss (cross-entropy)",
}
"""The objectives as a figure's axis names them, with their unit."""


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, plain(metric))


def _figure(width: float, height: float, rows: int = 1, cols: int = 1):
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, cols, squeeze=False)
    return figure, axes


def log_axis(axis, low: float, high: float) -> None:
    """A log axis labelled with plain numbers (20, 50, 100; 0.0001, 0.001) that do not collide."""
    decades = math.log10(high / low) if low > 0 and high > low else 1.0
    subs = (1.0,) if decades > 2.5 else (1.0, 2.0, 5.0) if decades > 0.7 else (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def _state_color(state: str) -> str:
    return STATE_COLORS.get(state, "#8c8c8c")


def _jitter(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.12, 0.12, count)


def family_figure(trials: pd.DataFrame, metric: str) -> Figure | None:
    """Single (depth 1) vs stacked (depth 2+): the objective and the throughput, side by side."""
    families = family(trials)
    if not trials[metric].notna().any() and not trials["examples_per_s"].notna().any():
        return None
    figure, axes = _figure(9.5, 4.0, 1, 2)
    groups = [name for name in ("single", "stacked", "unknown") if (families == name).any()]
    panels = [
        (metric, metric_label(metric), "Objective by family"),
        ("examples_per_s", "training throughput (examples/s)", "Throughput by family"),
    ]
    for ax, (column, label, title) in zip(axes[0], panels):
        data = [trials.loc[(families == name) & trials[column].notna(), column].to_numpy(float) for name in groups]
        positions = np.arange(1, len(groups) + 1)
        filled = [i for i, values in enumerate(data) if len(values)]
        if filled:
            boxes = ax.boxplot(
                [data[i] for i in filled], positions=positions[filled], widths=0.5, patch_artist=True, showfliers=False
            )
            for i, patch in zip(filled, boxes["boxes"]):
                patch.set(facecolor=FAMILY_COLORS[groups[i]], alpha=0.35)
        for i, values in enumerate(data):
            ax.scatter(
                positions[i] + _jitter(len(values), i),
                values,
                s=22,
                color=FAMILY_COLORS[groups[i]],
                edgecolor="black",
                linewidth=0.4,
                zorder=3,
            )
        ax.set_xticks(positions, [f"{name}\n(n={len(data[i])})" for i, name in enumerate(groups)])
        ax.set_xlim(0.4, len(groups) + 0.6)
        ax.set_xlabel("model family (single = 1 BiLSTM layer, stacked = 2+)")
        ax.set_ylabel(label)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    return figure


def curves_figure(trials: pd.DataFrame, epochs: pd.DataFrame, metric: str, top: pd.DataFrame) -> Figure | None:
    """Validation accuracy per epoch of the top trials; early-stopped ones faded and dashed."""
    column = metric if metric in epochs and epochs[metric].notna().any() else "val_accuracy"
    curves = epochs[epochs["trial_id"].isin(top["trial_id"]) & epochs[column].notna()]
    if not len(curves):
        return None
    figure, axes = _figure(9.5, 4.6)
    ax = axes[0, 0]
    colors = iter(
        np.tile(
            np.array(
                ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#d62728", "#ff7f0e", "#7f7f7f"]
            ),
            3,
        )
    )
    for _, trial in top.iterrows():
        rows = curves[curves["trial_id"] == trial["trial_id"]]
        color = next(colors)
        if not len(rows):
            continue
        faded = trial["state"] in FADED_STATES
        label = f"#{format_value('number', trial['number'])}" + (f" {plain(trial['preset'])}" if trial["preset"] else "")
        label += f" ({state_label(trial['state'])})" if trial["state"] != State.COMPLETED else ""
        ax.plot(
            rows["epoch"],
            rows[column],
            marker="o",
            markersize=3.5,
            color=color,
            alpha=0.35 if faded else 0.95,
            linestyle="--" if faded else "-",
            linewidth=1.6,
            label=label,
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric_label(column))
    ax.set_title(f"Learning curves of the top {len(top)} trials (faded, dashed: {FADED_TEXT})")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(title="trial", fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return figure


def pareto_figure(trials: pd.DataFrame, objective: Objective, best_id: str) -> Figure | None:
    """Objective against throughput, the Pareto front (the objective in its direction, throughput maximized)
    marked; a loss's axis is inverted, so up and right is better either way."""
    metric = objective.metric
    rows = _scored(trials, metric, "examples_per_s")
    if not len(rows):
        return None
    figure, axes = _figure(9.5, 5.0)
    ax = axes[0, 0]
    families = family(rows)
    for name in ("single", "stacked", "unknown"):
        part = rows[families == name]
        if len(part):
            ax.scatter(
                part["examples_per_s"],
                part[metric],
                s=30,
                color=FAMILY_COLORS[name],
                alpha=0.8,
                edgecolor="black",
                linewidth=0.4,
                label=f"{name} ({len(part)})",
                zorder=3,
            )
    front = _front(ax, rows, "examples_per_s", objective, larger_better=True)
    ax.scatter(front["examples_per_s"], front[metric], s=110, facecolor="none", edgecolor="black", zorder=4)
    for _, row in rows[rows["preset"] != ""].iterrows():
        ax.annotate(
            plain(row["preset"]), (row["examples_per_s"], row[metric]), xytext=(6, -12), textcoords="offset points", fontsize=8
        )
    _best_star(ax, rows, "examples_per_s", metric, best_id)
    throughput_axes(ax, rows["examples_per_s"], metric, f"{versus_title(metric)} vs throughput (up and right is better)")
    _loss_inverted(ax, objective)
    return figure


def latency_figure(trials: pd.DataFrame, objective: Objective, best_id: str, limit_ms: float | None) -> Figure | None:
    """The objective against each network's inference latency (ms per review at batch 1), the Pareto
    front (objective in its direction, latency minimized), infeasible trials (over `limit_ms`) as
    crosses and the limit as a line; None when no trial reported a latency."""
    metric = objective.metric
    if "latency_ms" not in trials:
        return None
    rows = _scored(trials, metric, "latency_ms")
    if not len(rows):
        return None
    figure, axes = _figure(9.5, 5.0)
    ax = axes[0, 0]
    over = (rows["feasible"] == "no").to_numpy() if "feasible" in rows else np.zeros(len(rows), bool)
    within = f"within the limit ({int((~over).sum())})" if limit_ms else f"trials ({len(rows)})"
    ax.scatter(
        rows["latency_ms"][~over],
        rows[metric][~over],
        s=30,
        color=FAMILY_COLORS["single"],
        edgecolor="black",
        linewidth=0.4,
        zorder=3,
        label=within,
    )
    if over.any():
        infeasible = f"over the limit: infeasible ({int(over.sum())})"
        ax.scatter(rows["latency_ms"][over], rows[metric][over], marker="x", s=40, color="gray", zorder=3, label=infeasible)
    _front(ax, rows, "latency_ms", objective, larger_better=False)
    if limit_ms:
        ax.axvline(limit_ms, color="firebrick", linestyle="--", linewidth=1, label=f"--max-latency-ms {limit_ms:g}")
    _best_star(ax, rows, "latency_ms", metric, best_id)
    title = f"{versus_title(metric)} vs inference latency (up and left is better)"
    _versus_axes(
        ax, rows["latency_ms"], metric, "inference latency (ms per review at batch 1, the network alone, log scale)", title
    )
    _loss_inverted(ax, objective)
    return figure


def versus_title(metric: str) -> str:
    """The objective in a title of the kind "Accuracy vs throughput"."""
    name = "accuracy" if metric == "val_accuracy" else plain(metric_name(metric))
    return name[:1].upper() + name[1:]


def _scored(trials: pd.DataFrame, metric: str, x: str) -> pd.DataFrame:
    """The trials that reported the objective and a positive `x` (a throughput, a latency)."""
    return trials[trials[metric].notna() & (trials[x] > 0)]


def _front(ax, rows: pd.DataFrame, x: str, objective: Objective, larger_better: bool) -> pd.DataFrame:
    """The trials no other trial beats on both the objective and `x` (larger `x` better, or smaller),
    joined by a step line; returns them, by `x`."""
    metric = objective.metric
    cost = rows[x].to_numpy() if larger_better else -rows[x].to_numpy()
    front = rows[pareto_mask(objective.oriented(rows[metric].to_numpy()), cost)].sort_values(x)
    ax.plot(
        front[x],
        front[metric],
        drawstyle="steps-pre" if larger_better else "steps-post",
        color="black",
        linewidth=1.2,
        zorder=2,
        label=f"Pareto front ({len(front)} trials)",
    )
    return front


def _best_star(ax, rows: pd.DataFrame, x: str, metric: str, best_id: str) -> None:
    """The best trial (the one exported) as a gold star, where it is among `rows`."""
    best = rows[rows["trial_id"] == best_id]
    if len(best):
        ax.scatter(best[x], best[metric], marker="*", s=260, color="gold", edgecolor="black", zorder=5, label="best (exported)")


def _loss_inverted(ax, objective: Objective) -> None:
    """A loss's axis upside down, so that up is better for every objective, and its label says so."""
    if objective.mode == "min":
        ax.invert_yaxis()
        ax.set_ylabel(f"{metric_label(objective.metric)}, lower is better (axis inverted)")


def throughput_axes(ax, speeds: pd.Series, metric: str, title: str) -> None:
    """Axes of an accuracy-throughput plot (`_versus_axes`): examples/s on a log x axis spanning `speeds`."""
    _versus_axes(ax, speeds, metric, "training throughput (examples/s, log scale)", title)


def _versus_axes(ax, xs: pd.Series, metric: str, xlabel: str, title: str) -> None:
    """Axes of an objective against a cost: `xs` on a log x axis spanning them, labelled `xlabel`; the
    objective on y with room above the top point (for the best trial's star); grid, legend."""
    ax.set_xscale("log")
    ax.margins(y=0.1)
    log_axis(ax.xaxis, xs.min(), xs.max())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(metric_label(metric))
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="best")


def progress_figure(by_number: pd.DataFrame, by_time: pd.DataFrame, metric: str) -> Figure | None:
    """Best objective so far against trial number and against wall time; only completed trials move it."""
    if not len(by_number):
        return None
    figure, axes = _figure(9.5, 3.8, 1, 2)
    left, right = axes[0]
    _progress_points(left, by_number["number"], by_number, "#7f7f7f")
    left.step(by_number["number"], by_number["best"], where="post", color="#1f77b4", label="best so far")
    left.set_xlabel("trial number (order of creation)")
    left.xaxis.get_major_locator().set_params(integer=True)
    left.set_title("Best so far by trial")
    if by_time["value"].notna().any():
        _progress_points(right, by_time["minutes"], by_time, "#7f7f7f")
        right.step(by_time["minutes"], by_time["best"], where="post", color="#1f77b4", label="best so far")
    else:
        right.text(0.5, 0.5, "no trial end times recorded", ha="center", va="center", transform=right.transAxes)
    right.set_xlabel("wall time since the run started (minutes)")
    right.set_title("Best so far by wall time")
    for ax in (left, right):
        ax.set_ylabel(metric_label(metric))
        ax.grid(alpha=0.3)
    handles, labels = left.get_legend_handles_labels()
    figure.legend(handles, labels, fontsize=8, loc="outside lower center", ncol=3, frameon=False)
    return figure


def _progress_points(ax, x, rows: pd.DataFrame, color: str, legend: bool = True) -> None:
    """Each trial's value: filled where it may be the best (ended, scored), hollow where it may not."""
    x, values, counts = np.asarray(x, float), rows["value"].to_numpy(float), rows["counts"].to_numpy(bool)
    others = ~counts & ~np.isnan(values)
    ax.scatter(x[counts], values[counts], s=16, color=color, alpha=0.7, label="ended trial" if legend else None)
    if others.any():
        ax.scatter(
            x[others],
            values[others],
            s=18,
            facecolor="none",
            edgecolor=color,
            alpha=0.8,
            label="running, diverged or errored: cannot be the best" if legend else None,
        )


def param_figure(trials: pd.DataFrame, param: Param, metric: str, best_id: str, warning: str) -> Figure | None:
    """The objective against one hyperparameter's value; log or categorical axis as the space says."""
    if param.name not in trials:
        return None
    rows = trials[trials[metric].notna() & trials[param.name].notna()]
    if not len(rows):
        return None
    figure, axes = _figure(4.8, 3.7)
    ax = axes[0, 0]
    x, xlabel = _param_axis(ax, rows, param)
    for state in STATE_ORDER + sorted(set(rows["state"]) - set(STATE_ORDER)):
        part = rows["state"] == state
        if part.any():
            ax.scatter(
                x[part.to_numpy()],
                rows.loc[part, metric],
                s=22,
                color=_state_color(state),
                edgecolor="black",
                linewidth=0.3,
                alpha=0.85,
                label=state_label(state),
                zorder=3,
            )
    if param.kind != "categorical" and param.numeric:
        for bound in (param.low, param.high):
            ax.axvline(bound, color="#999999", linestyle=":", linewidth=1)
    best = (rows["trial_id"] == best_id).to_numpy()
    if best.any():
        ax.scatter(x[best], rows.loc[best, metric], marker="*", s=200, color="gold", edgecolor="black", zorder=4, label="best")
    ax.margins(y=0.1)  # room for the best trial's star above the top point
    ax.set_xlabel(plain(xlabel))
    ax.set_ylabel(plain(metric_name(metric)))
    ax.set_title(plain(param.name) + ("  ⚠ at edge" if warning else ""), color="#b00020" if warning else "black")
    ax.grid(alpha=0.3)
    figure.legend(fontsize=7, loc="outside lower center", ncol=4, frameon=False)
    return figure


def _param_axis(ax, rows: pd.DataFrame, param: Param) -> tuple[np.ndarray, str]:
    """Where `rows` sit on one hyperparameter's axis (choices jittered; log where the space says so), and its label."""
    if param.kind == "categorical" and param.choices:
        x = np.array([_choice_index(v, param.choices) for v in rows[param.name]], float)
        x = x + _jitter(len(x))
        labels = [plain(format_value(param.name, c)) for c in param.choices]
        ax.set_xticks(range(len(labels)), labels, rotation=30 if max(map(len, labels)) > 6 else 0)
        ax.set_xlim(-0.5, len(labels) - 0.5)
        xlabel = f"{param.name} (choice)"
    else:
        x = pd.to_numeric(rows[param.name], errors="coerce").to_numpy(float)
        if param.log:
            ax.set_xscale("log")
            low = param.low if param.numeric and param.low > 0 else np.nanmin(x)
            high = param.high if param.numeric else np.nanmax(x)
            log_axis(ax.xaxis, low, high)
        if param.kind == "int" and not param.log:
            ax.xaxis.get_major_locator().set_params(integer=True)
        xlabel = f"{param.name}" + (" (log scale)" if param.log else "")
        ax.tick_params(axis="x", labelrotation=30)
    return x, xlabel


def _choice_index(value, choices: tuple) -> float:
    for i, choice in enumerate(choices):
        if value == choice or str(value) == str(choice):
            return float(i)
        try:
            if float(value) == float(choice):
                return float(i)
        except (TypeError, ValueError):
            pass
    return math.nan


def importance_figure(values: dict[str, float]) -> Figure:
    """Horizontal bars, most important on top."""
    names = list(values)[::-1]
    figure, axes = _figure(7.0, 0.9 + 0.38 * len(names))
    ax = axes[0, 0]
    ax.barh([plain(n) for n in names], [values[n] for n in names], color="#4c72b0")
    for i, name in enumerate(names):
        ax.text(values[name], i, f" {values[name]:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, max(max(values.values()) * 1.18, 0.05))
    ax.set_xlabel("importance (fraction of the total)")
    ax.set_title("Hyperparameter importance (PED-ANOVA)")
    ax.grid(axis="x", alpha=0.3)
    return figure


def timeline_figure(placed: pd.DataFrame, start: float, usage: dict) -> Figure | None:
    """Trials as bars on their lane (host · device · concurrent slot) over wall time."""
    if not len(placed):
        return None
    lanes = sorted(placed["lane"].unique())
    origin = start if not math.isnan(start) and start <= placed["start"].min() else placed["start"].min()
    figure, axes = _figure(9.5, 1.4 + 0.42 * len(lanes))
    ax = axes[0, 0]
    span = max((placed["end"].max() - origin) / 60.0, 1e-3)
    for _, row in placed.iterrows():
        y = lanes.index(row["lane"])
        left, width = (row["start"] - origin) / 60.0, max((row["end"] - row["start"]) / 60.0, span * 0.003)
        ax.barh(y, width, left=left, height=0.7, color=_state_color(row["state"]), edgecolor="black", linewidth=0.4)
        if width > span * 0.04:
            ax.text(
                left + width / 2,
                y,
                f"#{format_value('number', row['number'])}",
                ha="center",
                va="center",
                fontsize=7,
                color="white",
            )
    ax.set_yticks(range(len(lanes)), [plain(lane) for lane in lanes], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, span * 1.02)
    ax.set_xlabel("wall time since the run started (minutes)")
    ax.set_title(
        f"Where trials ran: {usage['lanes']} lanes, utilization {usage['utilization']:.0%}"
        if not math.isnan(usage["utilization"])
        else "Where trials ran"
    )
    handles = [Patch(color=_state_color(s), label=state_label(s)) for s in STATE_ORDER if (placed["state"] == s).any()]
    figure.legend(handles=handles, fontsize=8, loc="outside lower center", ncol=max(1, len(handles)), frameon=False)
    ax.grid(axis="x", alpha=0.3)
    return figure


# ---------------------------------------------------------------- comparing runs

RUN_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
RUN_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<"]


def _run_style(index: int) -> tuple[str, str]:
    return RUN_COLORS[index % len(RUN_COLORS)], RUN_MARKERS[index % len(RUN_MARKERS)]


def comparison_progress_figure(curves: dict[str, pd.DataFrame], metric: str) -> Figure | None:
    """Each run's best so far against training examples processed and against wall time, on shared axes.

    curves: run name → its trials in order of completion (analysis.progress's by_time)."""
    if not any(rows["value"].notna().any() for rows in curves.values()):
        return None
    figure, axes = _figure(11.0, 4.4, 1, 2)
    left, right = axes[0]
    right.sharey(left)
    for index, (name, rows) in enumerate(curves.items()):
        color, _ = _run_style(index)
        for ax, x in ((left, "examples_processed"), (right, "minutes")):
            _progress_points(ax, rows[x], rows, color, legend=False)
            ax.step(
                rows[x],
                rows["best"],
                where="post",
                color=color,
                linewidth=1.8,
                label=f"{plain(name)}: best so far" if ax is left else None,
            )
    left.set_xlabel("training examples processed (cumulative, trials in order of completion)")
    left.set_title("Best so far by examples processed")
    left.set_ylabel(metric_label(metric))
    right.set_xlabel("wall time since the run started (minutes)")
    right.set_title("Best so far by wall time")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.set_xlim(left=0)
    left.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    figure.legend(fontsize=8, loc="outside lower center", ncol=min(4, len(curves)), frameon=False)
    return figure


def comparison_pareto_figure(points: dict[str, pd.DataFrame], metric: str) -> Figure | None:
    """Every run's trials (objective against throughput) and its Pareto front (both maximized), overlaid.

    points: run name → columns examples_per_s and value, one row per trial."""
    usable = {name: rows[rows["value"].notna() & (rows["examples_per_s"] > 0)] for name, rows in points.items()}
    if not any(len(rows) for rows in usable.values()):
        return None
    figure, axes = _figure(9.5, 5.0)
    ax = axes[0, 0]
    for index, (name, rows) in enumerate(usable.items()):
        if not len(rows):
            continue
        color, marker = _run_style(index)
        front = rows[pareto_mask(rows["value"].to_numpy(), rows["examples_per_s"].to_numpy())].sort_values("examples_per_s")
        ax.scatter(rows["examples_per_s"], rows["value"], s=22, color=color, marker=marker, alpha=0.3, zorder=2)
        ax.plot(
            front["examples_per_s"],
            front["value"],
            drawstyle="steps-pre",
            color=color,
            linewidth=1.6,
            marker=marker,
            markersize=7,
            markeredgecolor="black",
            markeredgewidth=0.5,
            zorder=3,
            label=f"{plain(name)}: front of {len(front)} (of {len(rows)} trials)",
        )
    speeds = pd.concat([rows["examples_per_s"] for rows in usable.values()])
    throughput_axes(ax, speeds, metric, "Accuracy vs throughput of every run (up and right is better)")
    return figure


# ---------------------------------------------------------------- classes


def confusion_figure(confusion, classes: list[str]) -> Figure | None:
    """The exported model's test split by true class (rows) and predicted class (columns), each cell's
    count written in it (with its share of its row up to 8 classes) and shaded by that share (the
    recall on the diagonal); None when
    `confusion` is not a square table of counts with one name per class."""
    try:
        matrix = np.asarray(confusion, dtype=float)
    except (TypeError, ValueError):  # ragged rows, text
        return None
    if matrix.ndim != 2 or matrix.shape != (len(classes), len(classes)) or not len(classes):
        return None
    count = len(classes)
    rows = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    side = min(2.6 + 0.7 * count, 12.0)
    figure, axes = _figure(side + 1.2, side)
    ax = axes[0, 0]
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    size = 10 if count <= 6 else 8 if count <= 12 else 6
    for (i, j), value in np.ndenumerate(matrix):
        text = f"{value:,.0f}" + (f"\n{shares[i, j]:.0%}" if count <= 8 else "")
        ax.text(j, i, text, ha="center", va="center", fontsize=size, color="white" if shares[i, j] > 0.55 else "black")
    labels = [plain(name) for name in classes]
    ax.set_xticks(
        range(count),
        labels,
        rotation=30 if max(map(len, labels)) > 5 else 0,
        ha="right" if max(map(len, labels)) > 5 else "center",
    )
    ax.set_yticks(range(count), labels)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"Confusion matrix on the test split ({matrix.sum():,.0f} examples)")
    figure.colorbar(image, ax=ax, shrink=0.8, label="share of the true class's examples")
    return figure
