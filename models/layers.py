"""Layers of ours that an exported model holds, registered with Keras for safe-mode loading.

`models.text` imports this module, so `import models.text` registers everything an exported
`model.keras` needs (the standardization, NonEmpty, MaskedPooling).
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
