"""The search space, declared once.

Everything else derives from `SPACE`: Optuna's distributions, the start point, the tutorial's
points, the configs a trial trains, the CLI's help and the report's axes (through run.json). Each
parameter carries the value the search starts from (as keras-tuner's hyperparameters carry their
`default=`); the tutorial's values are those of its models (`models.PRESETS`) trained its way
(`TUTORIAL_TRAINING`), read back through the parameters' roles. No TensorFlow here:
`python -m search.run --help` and the report stay light.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from models.config import (
    EMBEDDING_USES,
    POOLINGS,
    PRESETS,
    TUTORIAL_BATCH_SIZE,
    TUTORIAL_EPOCHS,
    TUTORIAL_LEARNING_RATE,
    ModelConfig,
    stacked_units,
)
from runfiles.cli import UsageError
from runfiles.layout import TUTORIAL_PRESETS, Param
from search.train import SCHEDULES, TrainConfig


@dataclass(frozen=True)
class Hyperparameter(Param):
    """A searched hyperparameter as this module declares it: its range, as run.json records it
    (`Param`), and the value the search starts from."""

    start: Any = None
    """Its value in the start point (`START_POINT`), queued after the tutorial's two models."""

    def to_json(self) -> dict:
        """run.json's entry: the range alone (run.json keeps the start point whole, `start_point`)."""
        return {k: v for k, v in super().to_json().items() if k != "start"}


SPACE: tuple[Hyperparameter, ...] = (
    Hyperparameter("depth", "int", "BiLSTM layers: 1 = single, 2-3 = stacked", "model", 1, 3, start=1),
    Hyperparameter("units", "int", "LSTM units of the first layer; deeper layers halve it", "model", 16, 128, log=True, start=64),
    Hyperparameter("embedding_dim", "int", "width of the token embedding", "model", 16, 256, log=True, start=128),
    Hyperparameter(
        "pooling",
        "categorical",
        "the last BiLSTM's final states, or its outputs pooled over time",
        "model",
        choices=POOLINGS,
        start="max",
    ),
    Hyperparameter("dropout", "float", "dropout rate before the output layer", "model", 0.0, 0.6, start=0.0),
    Hyperparameter(
        "vocab_size",
        "int",
        "vocabulary size, padding and [UNK] included (at most the corpus's)",
        "model",
        1000,
        20000,
        log=True,
        start=20000,
    ),
    Hyperparameter(
        "ngram_buckets",
        "categorical",
        "hashed word-bigram buckets of a linear part on words and bigrams added to the logits (Wide & Deep); 0 = none",
        "model",
        choices=(0, 2**18, 2**20),
        start=2**20,
    ),
    Hyperparameter(
        "embeddings",
        "categorical",
        "how the embedding uses the --embeddings vectors: not at all (random), as its trainable start, or frozen; "
        "searched only with --embeddings",
        "model",
        choices=EMBEDDING_USES,
        start="init",
    ),
    Hyperparameter(
        "learning_rate",
        "float",
        "Adam's learning rate (the peak of a linear schedule)",
        "train",
        1e-4,
        1e-2,
        log=True,
        start=2e-3,
    ),
    Hyperparameter(
        "schedule",
        "categorical",
        "learning rate: constant, or linear warm-up then decay to 0",
        "train",
        choices=SCHEDULES,
        start="linear",
    ),
    Hyperparameter("batch_size", "categorical", "reviews per training step", "train", choices=(32, 64, 128), start=64),
    Hyperparameter(
        "max_len",
        "categorical",
        "tokens kept per review, 0 = the whole review (choices from the corpus's lengths)",
        "train",
        choices=(128, 256, 512, 0),
        start=0,
    ),
)
LENGTH_QUANTILES = (0.5, 0.75, 0.9)
"""Review lengths (in tokens, of the training split) that max_len's choices cut at, besides 0 = whole."""
BUCKETS_PER_BIGRAM = 4
"""The linear part's weights per distinct word bigram of the training split, at most (`bucket_cap`)."""
FROM_DATA = frozenset({"max_len", "ngram_buckets"})
"""Parameters whose searched choices `fitted` takes from the data: --fix pins any value >= 0."""
FROM_VECTORS = frozenset({"embedding_dim"})
"""Parameters a vectors file (--embeddings) sets, to its width: --fix pins any value >= 1, which
`search.config.check_embeddings` holds to the file's width, or to the range without one."""
WITH_VECTORS = frozenset({"embeddings"})
"""Parameters in a run's space only with a vectors file (--embeddings): `fitted` leaves them out without one."""
PARAMS = {p.name: p for p in SPACE}
START_POINT: dict[str, Any] = {p.name: p.start for p in SPACE}
"""Queued after the tutorial's two models, as KerasTuner tries its hyperparameters' defaults
first: assembled from the values that measured best when each addition to the space was tried
one factor at a time on 20,000 training / 5,000 validation reviews (docs/results.md,
"What each change bought"); the linear part (ngram_buckets) from its measurement across the regimes
of docs/regimes.md; embeddings (with a vectors file only) from the start point with each use of
the vectors on two regimes (docs/vectors.md, "The start value"). Optuna's sampler learns from it
as from any other trial."""
TUTORIAL_TRAINING = TrainConfig(
    epochs=TUTORIAL_EPOCHS,
    learning_rate=TUTORIAL_LEARNING_RATE,
    batch_size=TUTORIAL_BATCH_SIZE,
    schedule="constant",
    max_len=0,
    bucket=False,
)
"""How the tutorial trains its models: Adam at a constant 1e-4, batches of 64 whole reviews in
the data's order (no bucketing by length), 10 epochs."""


KIND_NAMES = {int: "an integer", float: "a number", str: "a name"}


def parse_fixed(items: list[str], space: tuple[Param, ...] = SPACE) -> dict[str, Any]:
    """--fix NAME=VALUE pairs → {name: value}, each converted to its parameter's type.

    Raises UsageError naming the pair when the name is not searched, the value does not
    convert, or it lies outside the parameter's range or choices (any value >= 0 for those
    `FROM_DATA`, >= 1 for those `FROM_VECTORS`).
    """
    by_name = {p.name: p for p in space}
    fixed = {}
    for item in items:
        name, _, text = item.partition("=")
        param = by_name.get(name)
        if param is None or not text:
            raise UsageError(f"--fix {item}: expected NAME=VALUE with NAME one of {', '.join(by_name)}")
        kind = type(param.choices[0]) if param.kind == "categorical" else {"int": int, "float": float}[param.kind]
        try:
            value = kind(text)
        except ValueError:
            raise UsageError(f"--fix {item}: {name} takes {KIND_NAMES[kind]} in {param.describe()}") from None
        if (name in FROM_DATA and value >= 0) or (name in FROM_VECTORS and value >= 1):
            pass
        elif not param.contains(value):
            raise UsageError(f"--fix {item}: {name} must lie in {param.describe()}")
        if name in fixed and fixed[name] != value:
            raise UsageError(f"--fix {item}: {name} is already pinned to {fixed[name]}; pin it once")
        fixed[name] = value
    return fixed


def narrowed(space: tuple[Param, ...], fixed: dict[str, Any]) -> tuple[Param, ...]:
    """The space with some parameters pinned to one value (a categorical of one choice)."""
    for name in fixed:
        if name not in {p.name for p in space}:
            raise UsageError(f"cannot fix {name!r}: not a searched parameter ({', '.join(p.name for p in space)})")
    return tuple(
        dataclasses.replace(p, kind="categorical", low=None, high=None, log=False, choices=(fixed[p.name],))
        if p.name in fixed
        else p
        for p in space
    )


def fitted(
    space: tuple[Param, ...],
    vocabulary_size: int,
    lengths,
    distinct_bigrams: int | None = None,
    logits: int = 1,
    vectors_dim: int | None = None,
) -> tuple[Param, ...]:
    """The space with its data-dependent ranges taken from the prepared data, so that no trial
    is spent on values that change nothing: vocab_size no larger than the corpus's
    vocabulary (both bounds: on a corpus smaller than the range's low end, vocab_size is the
    corpus's size), max_len cut at quantiles of the training reviews' lengths (rounded up to
    a multiple of 32, below the longest review) besides 0, and, given the training split's
    `distinct_bigrams` and the network's `logits` (`models.ModelConfig.logits`), ngram_buckets'
    choices no larger than `bucket_cap` (the larger ones replaced by the cap). Given the width of
    word vectors (`vectors_dim`, --embeddings), embedding_dim is pinned to it, in the configurations
    that leave the vectors out (embeddings=none) too, so that they compare at the same width; without
    them the parameters WITH_VECTORS are left out. Other pinned parameters stay as they are.
    """
    import numpy as np

    fitted_space = []
    for p in space:
        if p.name in WITH_VECTORS and vectors_dim is None:
            continue
        if p.name == "embedding_dim" and vectors_dim is not None:
            p = narrowed((p,), {p.name: vectors_dim})[0]
        elif p.name == "vocab_size" and p.kind == "int":
            high = min(p.high, vocabulary_size)
            p = dataclasses.replace(p, low=min(p.low, high), high=high)
        elif p.name == "max_len" and p.kind == "categorical" and len(p.choices) > 1:
            cuts = {int(-(-np.quantile(lengths, q) // 32) * 32) for q in LENGTH_QUANTILES}
            p = dataclasses.replace(p, choices=(*sorted(c for c in cuts if 0 < c < int(np.max(lengths))), 0))
        elif p.name == "ngram_buckets" and len(p.choices) > 1 and distinct_bigrams is not None:
            cap = bucket_cap(distinct_bigrams, logits)
            p = dataclasses.replace(p, choices=tuple(sorted({min(c, cap) for c in p.choices})))
        fitted_space.append(p)
    return tuple(fitted_space)


def bucket_cap(distinct_bigrams: int, logits: int) -> int:
    """The most hashed-bigram buckets worth offering a linear part of `logits` outputs, for a
    training split of `distinct_bigrams` distinct word bigrams: the largest power of two whose
    table (buckets x logits weights) is at most the smallest power of two holding
    BUCKETS_PER_BIGRAM buckets per distinct bigram.

    With n bigrams hashed into m buckets, the share of them that share a bucket with another is
    about 1 - exp(-n/m) (fastText's hashing trick, Joulin et al. 2017, ran its bigram models at
    about one bucket per bigram: 10M bins); at m >= 4n it is at most 22%, and a bucket no training
    bigram reaches keeps its initial zero weight, so more buckets only add size. With K logits
    the table has K weights per bucket, so its buckets shrink K-fold: the part's size follows the
    training data, not the number of classes.
    """
    weights = 2 ** math.ceil(math.log2(max(1, BUCKETS_PER_BIGRAM * distinct_bigrams)))
    return 2 ** int(math.log2(max(1, weights // max(1, logits))))


def distinct_bigrams(tokens, offsets) -> int:
    """Distinct pairs of consecutive token ids within one review, over reviews given as one flat
    array of ids `tokens` and their `offsets` (`search.data.Split`): what the linear part's
    bigram buckets hash (`models.HashedNgramLogits`)."""
    import numpy as np

    ids = np.asarray(tokens, np.int64)
    pairs = ids[:-1] * (int(ids.max(initial=0)) + 1) + ids[1:]
    within = np.ones(len(pairs), bool)
    ends = np.asarray(offsets[1:-1], np.int64) - 1  # the pair from a review's last token into the next one's first
    within[ends[(ends >= 0) & (ends < len(pairs))]] = False
    return len(np.unique(pairs[within]))


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


DEEP = "deep"
"""The key of a configuration's values that, False, leaves the BiLSTM out of its network
(`models.ModelConfig.deep`: certification's ablation); never searched."""


def model_config(params: dict[str, Any], num_classes: int) -> ModelConfig:
    """The network of a trial's sampled values (the parameters whose role is "model") for data of
    `num_classes` classes (`search.data.Prepared.classes`); `params[DEEP]` False, the linear part alone."""
    values = {p.name: _typed(p, params[p.name]) for p in SPACE if p.role == "model" and p.name in params}
    depth, units = values.pop("depth"), values.pop("units")
    return ModelConfig(**values, units=stacked_units(units, depth), num_classes=num_classes, deep=bool(params.get(DEEP, True)))


def train_values(params: dict[str, Any]) -> dict[str, Any]:
    """A trial's sampled values of search.train.TrainConfig's fields (the parameters whose role is "train")."""
    return {p.name: _typed(p, params[p.name]) for p in SPACE if p.role == "train" and p.name in params}


def configs_from(
    params: dict[str, Any], num_classes: int, base: TrainConfig | None = None, **own: Any
) -> tuple[ModelConfig, TrainConfig]:
    """A trial's sampled values → (model config for `num_classes` classes, train config), merged in
    one order everywhere a trial or a retraining starts: `base` (what the run shares:
    `Session.train_base`), then the sampled values, then `own` (a retraining's own epochs and
    seed, the tutorial's way of training)."""
    train = dataclasses.replace(base or TrainConfig(), **train_values(params))
    return model_config(params, num_classes), dataclasses.replace(train, **own)


def widest(space: tuple[Param, ...], num_classes: int) -> tuple[ModelConfig, TrainConfig]:
    """The configuration of `space` whose training step takes the most memory per token
    (`search.memory.step_bytes_per_token`, which grows with each of these): the largest value of
    each model parameter (the first pooling: pooling costs no estimated memory), the largest batch,
    and the longest reviews it offers (whole ones where max_len offers 0)."""

    def largest(p: Param) -> Any:
        if p.kind != "categorical":
            return p.high
        if p.name == "max_len":
            return 0 if 0 in p.choices else max(p.choices)
        return max(p.choices) if all(isinstance(c, int | float) for c in p.choices) else p.choices[0]

    return configs_from({p.name: largest(p) for p in space}, num_classes)


def _typed(param: Param, value: Any) -> Any:
    """A sampled or recorded value as its parameter's type (JSON and Optuna may hand back 64 for 64.0)."""
    return {"int": int, "float": float}.get(param.kind, lambda v: v)(value)


def space_values(model: ModelConfig, train: TrainConfig, space: tuple[Param, ...] = SPACE) -> dict[str, Any]:
    """The values of `space`'s parameters that make `model` trained as `train`: the inverse of
    `configs_from`, each parameter read from the config of its role (`SPACE`'s, so that a space
    recorded before roles were reads alike), units as the first layer's width."""
    configs = {"model": model, "train": train}
    values = {}
    for p in (p for p in space if p.name in PARAMS):  # a recorded space may name one since taken out
        value = getattr(configs[PARAMS[p.name].role], p.name)
        values[p.name] = value[0] if p.name == "units" else value  # deeper layers follow from it (stacked_units)
    return values


def tutorial_point(preset: str, space: tuple[Param, ...] = SPACE) -> dict[str, Any]:
    """A tutorial model (`models.PRESETS`, trained as `TUTORIAL_TRAINING`) expressed in the space's
    parameters, with what it gets on this space's corpus: a vocabulary of at most the corpus's size
    (the space's vocab_size range, `fitted`), as the tutorial's TextVectorization(max_tokens=1000)
    gets on a smaller corpus. A space recorded before a parameter existed (ngram_buckets) has no
    value for it."""
    point = space_values(PRESETS[preset], TUTORIAL_TRAINING, space)
    vocab = next((p for p in space if p.name == "vocab_size"), None)
    if vocab is not None and vocab.numeric:
        point["vocab_size"] = min(point["vocab_size"], int(vocab.high))
    return point


def preset_point(preset: str, space: tuple[Param, ...]) -> dict[str, Any]:
    """The tutorial model as a starting point of this space: pinned parameters keep their value.

    Raises ValueError when the point lies outside the space.
    """
    point = tutorial_point(preset, space)
    for p in space:
        if p.pinned:
            point[p.name] = p.choices[0]
        if not p.contains(point[p.name]):
            raise ValueError(f"the {preset} model's {p.name}={point[p.name]} lies outside the space {p.describe()}")
    return point


def start_point(space: tuple[Param, ...]) -> dict[str, Any] | None:
    """START_POINT (each parameter's `start`) moved into this space: pinned parameters keep their
    value, numbers are clipped to their range, and a choice taken from the data (`FROM_DATA`)
    becomes the largest offered at most its value; None when one of its other categorical values
    is not offered, or when it is then a tutorial model's point (queued already)."""
    point = {}
    for p in space:
        value = PARAMS[p.name].start
        if p.pinned:
            value = p.choices[0]
        elif p.kind != "categorical":
            value = min(max(value, p.low), p.high)
        elif p.name in FROM_DATA:
            value = max((c for c in p.choices if c <= value), default=value)
        if not p.contains(value):
            return None
        point[p.name] = value
    return None if any(point == preset_point(name, space) for name in TUTORIAL_PRESETS) else point


def preset_of(params: dict[str, Any], space: tuple[Param, ...] = SPACE) -> str:
    """The tutorial preset these values are exactly (on this space's corpus), or "" (a sampled or altered configuration).

    In a space with word vectors (a parameter `WITH_VECTORS` in it), the width the file pins
    (`FROM_VECTORS`, `fitted`) is left out of the comparison: such a run can hold the tutorial's
    network only at that width, and with a random embedding (embeddings "none") it is still the
    tutorial's model there; `search.baseline` trains it at its own width. Any other pin (--fix)
    makes it another model."""
    set_by_file = FROM_VECTORS if any(p.name in WITH_VECTORS for p in space) else frozenset()
    for preset in TUTORIAL_PRESETS:
        if all(params.get(k) == v for k, v in tutorial_point(preset, space).items() if k not in set_by_file):
            return preset
    return ""
