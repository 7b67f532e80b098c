"""A bidirectional LSTM for CPUs: Keras's `Bidirectional(LSTM(units))`, computed faster.

Same mathematics, same weights in the same order and shapes (so `set_weights` moves a
trained network between the two), same masking of right-padded batches. What differs is
how it runs:

- the input projection of every time step is one large matrix product before the
  recurrence, instead of a small one inside each step;
- each direction's time loop is one compiled op (`models/kernels/lstm.cc`), forward and
  backward, instead of a graph of a dozen small ops per step; the two directions run
  side by side on the graph executor's threads;
- the recurrent weights' gradient is one large matrix product after the backward loop.

The backward direction reads each review reversed within its own length, so padding
never enters a real step; outputs at padded steps are zero.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from models import kernels
from models.saving import serializable


@serializable
class FusedBiLSTM(keras.layers.Layer):
    """`Bidirectional(LSTM(units, return_sequences=...))` for masked, right-padded input."""

    def __init__(self, units: int, return_sequences: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.return_sequences = return_sequences
        self.supports_masking = True

    def build(self, input_shape) -> None:
        width, units = input_shape[-1], self.units
        self.directions = []
        for name in ("forward", "backward"):
            kernel = self.add_weight((width, 4 * units), "glorot_uniform", name=f"{name}_kernel")
            recurrent = self.add_weight((units, 4 * units), "orthogonal", name=f"{name}_recurrent_kernel")
            bias = self.add_weight((4 * units,), _unit_forget_bias, name=f"{name}_bias")
            self.directions.append((kernel, recurrent, bias))

    def call(self, inputs, mask=None):
        batch, steps = tf.shape(inputs)[0], tf.shape(inputs)[1]
        lengths = tf.fill([batch], steps) if mask is None else tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
        ahead = tf.transpose(inputs, [1, 0, 2])  # [time, batch, width]
        behind = tf.reverse_sequence(ahead, lengths, seq_axis=0, batch_axis=1)
        states = [_lstm(sequence, *(w.value for w in ws)) for sequence, ws in zip((ahead, behind), self.directions)]
        if self.return_sequences:
            states[1] = tf.reverse_sequence(states[1], lengths, seq_axis=0, batch_axis=1)
            sequence = tf.transpose(tf.concat(states, axis=-1), [1, 0, 2])
            return sequence * tf.cast(tf.sequence_mask(lengths, steps), sequence.dtype)[:, :, None]
        last = tf.stack([tf.maximum(lengths - 1, 0), tf.range(batch)], axis=1)
        final = tf.concat([tf.gather_nd(s, last) for s in states], axis=-1)
        return final * tf.cast(lengths > 0, final.dtype)[:, None]

    def compute_mask(self, inputs, mask=None):
        return mask if self.return_sequences else None

    def compute_output_shape(self, input_shape):
        width = 2 * self.units
        return (*input_shape[:2], width) if self.return_sequences else (input_shape[0], width)

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units, "return_sequences": self.return_sequences}


def _unit_forget_bias(shape, dtype=None):
    """Zeros with the forget gate's quarter at one, as Keras's LSTM starts."""
    units = shape[0] // 4
    return tf.concat([tf.zeros([units]), tf.ones([units]), tf.zeros([2 * units])], 0)


def _lstm(sequence, kernel, recurrent, bias):
    """States [time, batch, units] of one direction over `sequence` [time, batch, width]."""
    return _recurrence(tf.einsum("tbw,wg->tbg", sequence, kernel) + bias, recurrent)


@tf.custom_gradient
def _recurrence(projected, recurrent):
    ops = kernels.load()
    if ops is None:
        raise RuntimeError(f"FusedBiLSTM needs its compiled kernel: {kernels.why_unavailable()}")
    # Inputs cut from the tape: the gradient below is the only one taken.
    states, cells, gates = ops.lstm_sequence(tf.stop_gradient(projected), tf.stop_gradient(recurrent))

    def grad(d_states):
        d_projected = ops.lstm_sequence_grad(d_states, cells, gates, recurrent)
        states_before = tf.concat([tf.zeros_like(states[:1]), states[:-1]], axis=0)
        return d_projected, tf.einsum("tbu,tbg->ug", states_before, d_projected)

    return states, grad
