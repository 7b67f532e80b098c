"""The model family's typed configuration and the tutorial's two presets."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, get_args

STANDARDIZATION_VERSION = 1
"""Of `models.text.standardize`: bumped whenever its mapping changes (prepared data is cached under it)."""

Pooling = Literal["last", "max", "mean", "max_mean"]
"""What the last BiLSTM layer hands on (`ModelConfig.pooling`)."""
POOLINGS: tuple[str, ...] = get_args(Pooling)

EmbeddingUse = Literal["none", "init", "frozen"]
"""How a network uses word vectors (`ModelConfig.embeddings`): not at all (random start), as the
start of its trainable embedding, or as a frozen embedding."""
EMBEDDING_USES: tuple[str, ...] = get_args(EmbeddingUse)

LstmImplementation = Literal["fused", "keras"]
"""An LSTM implementation a network is built with: Keras's `Bidirectional(LSTM)` ("keras",
cuDNN on a GPU) or `models.FusedBiLSTM` ("fused", a compiled CPU kernel; same network, same
weights)."""
LstmChoice = Literal["auto", LstmImplementation]
"""An LstmImplementation, or "auto": fused where TensorFlow sees no GPU and the kernel loads,
Keras's layers otherwise."""
LSTM_IMPLEMENTATIONS: tuple[str, ...] = get_args(LstmImplementation)
LSTM_CHOICES: tuple[str, ...] = get_args(LstmChoice)


def one_of(choices: Iterable[str]) -> str:
    """Choices as a refusal names them: 'auto', 'fused' or 'keras'."""
    quoted = [repr(c) for c in choices]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def lstm_for(choice: LstmChoice, on_gpu: bool) -> LstmImplementation:
    """The implementation `choice` means on a device, before asking whether the kernel loads.

    "keras" and "fused" mean themselves; "auto" means Keras's layers on a GPU (where they
    run cuDNN) and the fused kernel on a CPU. Where the fused kernel is wanted but cannot be
    built or loaded, the caller falls back to Keras's layers for "auto" and fails for
    "fused" (`models.resolve_lstm`, `search.tuner.choose_lstm`).
    """
    if choice not in LSTM_CHOICES:
        raise ValueError(f"lstm={choice!r} is invalid: expected {one_of(LSTM_CHOICES)}")
    if choice == "auto":
        return "keras" if on_gpu else "fused"
    return choice


@dataclass(frozen=True)
class ModelConfig:
    """A single (depth 1) or stacked (depth 2+) bidirectional LSTM classifier."""

    vocab_size: int = 1000
    """Token ids the embedding accepts, padding (0) and out-of-vocabulary (1) included."""
    embedding_dim: int = 64
    """Width of the token embedding."""
    units: tuple[int, ...] = (64,)
    """LSTM units per direction, one entry per stacked layer (first = closest to the input)."""
    dense_units: int = 64
    """Width of the ReLU layer between the LSTMs and the output logit."""
    dropout: float = 0.0
    """Dropout rate after the ReLU layer; 0 leaves the layer out."""
    pooling: Pooling = "last"
    """What the last BiLSTM layer hands on: its final states ("last", as the tutorial's), or
    its outputs over time pooled by "max", "mean" or both ("max_mean", concatenated)."""
    num_classes: int = 2
    """Classes the network tells apart: two get one logit (sigmoid; the tutorial's head), K > 2
    get K logits (softmax)."""
    ngram_buckets: int = 0
    """Hashed word-bigram buckets of a linear part on the review's words and bigrams whose logits
    add to the LSTMs' (`models.HashedNgramLogits`, Wide & Deep); 0 leaves it out (the tutorial's)."""
    deep: bool = True
    """Whether the BiLSTM network (Wide & Deep's deep part) is built; False leaves the linear part
    alone (ngram_buckets > 0), as certification's ablation trains it (`search.certify`)."""
    embeddings: EmbeddingUse = "none"
    """How the embedding uses word vectors given to `models.build_model`: "none" starts it at
    random (the tutorial's), "init" starts it from the vectors and trains it, "frozen" keeps the
    vectors as they are (the layer is not trained)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "units", tuple(int(u) for u in self.units))
        _check(self.vocab_size >= 3, "vocab_size", self.vocab_size, "an integer >= 3")
        _check(self.embedding_dim >= 1, "embedding_dim", self.embedding_dim, "an integer >= 1")
        _check(len(self.units) >= 1, "units", self.units, "one or more layer widths")
        _check(all(u >= 1 for u in self.units), "units", self.units, "widths >= 1")
        _check(self.dense_units >= 1, "dense_units", self.dense_units, "an integer >= 1")
        _check(0.0 <= self.dropout < 1.0, "dropout", self.dropout, "a rate in [0, 1)")
        _check(self.pooling in POOLINGS, "pooling", self.pooling, f"one of {', '.join(POOLINGS)}")
        _check(self.num_classes >= 2, "num_classes", self.num_classes, "an integer >= 2")
        _check(self.ngram_buckets >= 0, "ngram_buckets", self.ngram_buckets, "an integer >= 0")
        _check(self.deep or self.ngram_buckets > 0, "deep", self.deep, "True, or a linear part (ngram_buckets > 0)")
        _check(self.embeddings in EMBEDDING_USES, "embeddings", self.embeddings, f"one of {', '.join(EMBEDDING_USES)}")

    @property
    def depth(self) -> int:
        return len(self.units)

    @property
    def logits(self) -> int:
        """Width of the output layer (`logits_for`)."""
        return logits_for(self.num_classes)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "units": list(self.units)}

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        return cls(**{**values, "units": tuple(values["units"])})


def logits_for(num_classes: int) -> int:
    """Width of the output layer for `num_classes` classes: 1 for two (sigmoid), else one per class (softmax)."""
    return 1 if num_classes == 2 else num_classes


def stacked_units(first: int, depth: int) -> tuple[int, ...]:
    """Layer widths that halve with depth, as in the tutorial's 64 + 32 (never below 8)."""
    return tuple(max(8, first // 2**i) for i in range(depth))


def _check(ok: bool, name: str, value, allowed: str) -> None:
    if not ok:
        raise ValueError(f"{name}={value!r} is invalid: expected {allowed}")


PRESETS: dict[str, ModelConfig] = {
    "tutorial-single": ModelConfig(vocab_size=1000, units=(64,), dropout=0.0),
    "tutorial-stacked": ModelConfig(vocab_size=1000, units=(64, 32), dropout=0.5),
}
"""The two hand-picked models of TensorFlow's "Text classification with an RNN"."""

TUTORIAL_LEARNING_RATE = 1e-4
TUTORIAL_BATCH_SIZE = 64
TUTORIAL_EPOCHS = 10
