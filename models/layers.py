"""Layers of ours that an exported model holds, registered with Keras for safe-mode loading.

`models.text` imports this module, so `import models.text` registers everything an exported
`model.keras` needs (the standardization, NonEmpty, MaskedPooling, HashedNgramLogits).
"""

from __future__ import annotations

import keras

from models.saving import serializable


@serializable
class MaskedPooling(keras.layers.Layer):
    """Outputs over time [batch, time, width] → one vector per review, padded steps left out.

    "max" [batch, width], "mean" [batch, width] or "max_mean" (both, [batch, 2 * width]);
    a review with no steps at all pools to zeros.
    """

    def __init__(self, mode: str = "max", **kwargs):
        super().__init__(**kwargs)
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, mask=None):
        ops = keras.ops
        steps = ops.ones(ops.shape(inputs)[:2], dtype="bool") if mask is None else ops.cast(mask, "bool")
        present = ops.cast(steps, inputs.dtype)[:, :, None]
        counts = ops.sum(present, axis=1)
        parts = []
        if self.mode in ("max", "max_mean"):
            lowest = ops.where(present > 0, inputs, ops.full_like(inputs, -1e9))
            parts.append(ops.max(lowest, axis=1) * ops.cast(counts > 0, inputs.dtype))
        if self.mode in ("mean", "max_mean"):
            parts.append(ops.sum(inputs * present, axis=1) / ops.maximum(counts, 1.0))
        return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        width = input_shape[-1] * (2 if self.mode == "max_mean" else 1)
        return (input_shape[0], width)

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}


@serializable
class HashedNgramLogits(keras.layers.Layer):
    """Token ids [batch, time] (0 = padding) → logits [batch, logits] of a linear model on the
    review's words and hashed word bigrams: one learned weight vector per word id and per bigram
    bucket, summed over the review's words and bigrams (counts) and divided by the square root of
    its number of words. The bigrams' buckets are fastText's hashing trick (Joulin et al. 2017,
    "Bag of Tricks for Efficient Text Classification"): bigram (a, b) of a vocabulary of V ids goes
    to bucket (a V + b) 2654435761 mod `buckets`; with a power of two of buckets that is
    (a V + b) mod `buckets` reordered, so bigrams whose pair index differs by a multiple of
    `buckets` share one. Added to a deep network's logits it is Wide & Deep (Cheng et al. 2016).

    Weights start at zero, so the layer adds nothing until it learns. They are stored divided by
    `weight_scale`: Adam moves a weight by about its learning rate per step whatever the
    gradient's size, so the linear part learns `weight_scale` times as fast as the network it is
    added to. 10 comes from validation accuracy on three regimes of docs/regimes.md (the full
    archive, small data, first sentences), the start point with 5, 10 and 20 (docs/search.md, "The
    linear part").
    """

    def __init__(self, vocab_size: int, buckets: int, logits: int = 1, weight_scale: float = 10.0, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.buckets, self.logits, self.weight_scale = vocab_size, buckets, logits, weight_scale

    def build(self, input_shape):
        self.table = self.add_weight(
            shape=(self.vocab_size + self.buckets, self.logits), initializer="zeros", name="ngram_weights"
        )

    def call(self, ids):
        ops = keras.ops
        ids = ops.cast(ids, "int64")
        present = ops.cast(ids > 0, self.compute_dtype)
        pairs = ids[:, :-1] * self.vocab_size + ids[:, 1:]
        bigrams = self.vocab_size + ops.mod(pairs * 2654435761, self.buckets)
        both = present[:, :-1] * present[:, 1:]
        total = ops.einsum("bt,btl->bl", present, ops.take(self.table, ids, axis=0))
        total = total + ops.einsum("bt,btl->bl", both, ops.take(self.table, bigrams, axis=0))
        length = ops.sum(present, axis=1, keepdims=True)
        return self.weight_scale * total / ops.sqrt(ops.maximum(length, 1.0))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.logits)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "buckets": self.buckets,
            "logits": self.logits,
            "weight_scale": self.weight_scale,
        }
