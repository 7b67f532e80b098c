"""The search space, declared once, and the objective it is searched for.

Everything else derives from `SPACE`: Optuna's distributions, the tutorial's starting
points, the configs a trial trains, the CLI's help and the report's axes (through run.json).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from models import PRESETS, TUTORIAL_BATCH_SIZE, TUTORIAL_LEARNING_RATE, ModelConfig, stacked_units


@dataclass(frozen=True)
class Objective:
    """The metric trials are ranked by; the scheduler, searcher, report and export share it."""

    metric: str = "val_accuracy"
    mode: Literal["max", "min"] = "max"


OBJECTIVE = Objective()


@dataclass(frozen=True)
class Param:
    """One searched hyperparameter."""

    name: str
    kind: Literal["int", "float", "categorical"]
    help: str
    role: Literal["model", "train"]
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    log: bool = False

    def contains(self, value: Any) -> bool:
        if self.kind == "categorical":
            return value in self.choices
        return self.low <= value <= self.high

    def describe(self) -> str:
        if self.kind == "categorical":
            return "{" + ", ".join(map(str, self.choices)) + "}"
        return f"[{self.low:g}, {self.high:g}]" + (" log" if self.log else "")


SPACE: tuple[Param, ...] = (
    Param("depth", "int", "BiLSTM layers: 1 = single, 2-3 = stacked", "model", 1, 3),
    Param("units", "int", "LSTM units of the first layer; deeper layers halve it", "model", 16, 128, log=True),
    Param("embedding_dim", "int", "width of the token embedding", "model", 16, 128, log=True),
    Param("dropout", "float", "dropout rate before the output layer", "model", 0.0, 0.6),
    Param("vocab_size", "int", "vocabulary size, padding and [UNK] included", "model", 1000, 20000, log=True),
    Param("learning_rate", "float", "Adam's learning rate", "train", 1e-4, 1e-2, log=True),
    Param("batch_size", "categorical", "reviews per training step", "train", choices=(32, 64, 128)),
    Param("max_len", "categorical", "tokens kept per review, 0 = the whole review", "train", choices=(128, 256, 512, 0)),
)
PARAMS = {p.name: p for p in SPACE}


def narrowed(space: tuple[Param, ...], fixed: dict[str, Any]) -> tuple[Param, ...]:
    """The space with some parameters pinned to one value (a categorical of one choice)."""
    for name, value in fixed.items():
        if name not in PARAMS:
            raise ValueError(f"cannot fix {name!r}: not a searched parameter ({', '.join(PARAMS)})")
    return tuple(
        dataclasses.replace(p, kind="categorical", low=None, high=None, log=False, choices=(fixed[p.name],))
        if p.name in fixed
        else p
        for p in space
    )


def optuna_space(space: tuple[Param, ...]) -> dict:
    """Optuna distributions for OptunaSearch."""
    import optuna.distributions as d

    def one(p: Param):
        if p.kind == "categorical":
            return d.CategoricalDistribution(p.choices)
        if p.kind == "int":
            return d.IntDistribution(int(p.low), int(p.high), log=p.log)
        return d.FloatDistribution(p.low, p.high, log=p.log)

    return {p.name: one(p) for p in space}


def to_json(space: tuple[Param, ...]) -> list[dict]:
    return [{**dataclasses.asdict(p), "choices": list(p.choices) if p.choices else None} for p in space]


def configs_from(params: dict[str, Any]) -> tuple[ModelConfig, dict[str, Any]]:
    """A trial's sampled values → (model config, training overrides)."""
    model = ModelConfig(
        vocab_size=int(params["vocab_size"]),
        embedding_dim=int(params["embedding_dim"]),
        units=stacked_units(int(params["units"]), int(params["depth"])),
        dropout=float(params["dropout"]),
    )
    train = {
        "learning_rate": float(params["learning_rate"]),
        "batch_size": int(params["batch_size"]),
        "max_len": int(params["max_len"]) or None,
    }
    return model, train


def preset_point(preset: str, space: tuple[Param, ...]) -> dict[str, Any]:
    """A tutorial model expressed in the space's parameters (pinned ones keep their value)."""
    model = PRESETS[preset]
    point = {
        "depth": model.depth,
        "units": model.units[0],
        "embedding_dim": model.embedding_dim,
        "dropout": model.dropout,
        "vocab_size": model.vocab_size,
        "learning_rate": TUTORIAL_LEARNING_RATE,
        "batch_size": TUTORIAL_BATCH_SIZE,
        "max_len": 0,
    }
    for p in space:
        if p.kind == "categorical" and len(p.choices) == 1:
            point[p.name] = p.choices[0]
        if not p.contains(point[p.name]):
            raise ValueError(f"the {preset} model's {p.name}={point[p.name]} lies outside the space {p.describe()}")
    return point


def preset_of(params: dict[str, Any], space: tuple[Param, ...]) -> str:
    """The tutorial preset these values are, or "" for a sampled configuration."""
    for preset in PRESETS:
        if all(params.get(k) == v for k, v in preset_point(preset, space).items()):
            return preset
    return ""
