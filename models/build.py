"""One builder for the whole BiLSTM family, and the raw-text wrapper used for export."""

from __future__ import annotations

import keras

from models.config import ModelConfig
from models.fused import FusedBiLSTM


def build_model(config: ModelConfig, fused: bool = False) -> keras.Sequential:
    """Integer token ids (0 = padding, masked) in, one logit out.

    With `PRESETS["tutorial-single"]` and `PRESETS["tutorial-stacked"]` this is the
    tutorial's network layer for layer, minus its TextVectorization (see `with_vectorizer`).
    `fused` swaps each `Bidirectional(LSTM)` for `FusedBiLSTM`: the same network, faster on
    a CPU; the two builds' weights are interchangeable (`get_weights` / `set_weights`).
    """
    layers: list[keras.layers.Layer] = [
        keras.Input(shape=(None,), dtype="int32", name="token_ids"),
        keras.layers.Embedding(config.vocab_size, config.embedding_dim, mask_zero=True),
    ]
    for i, units in enumerate(config.units):
        last = i == config.depth - 1
        if fused:
            layers.append(FusedBiLSTM(units, return_sequences=not last))
        else:
            layers.append(keras.layers.Bidirectional(keras.layers.LSTM(units, return_sequences=not last)))
    layers.append(keras.layers.Dense(config.dense_units, activation="relu"))
    if config.dropout > 0:
        layers.append(keras.layers.Dropout(config.dropout))
    layers.append(keras.layers.Dense(1))
    return keras.Sequential(layers, name=f"bilstm_{config.depth}x")


def make_vectorizer(vocabulary: list[str], max_len: int | None = None) -> keras.layers.TextVectorization:
    """The TextVectorization that maps raw text to the ids a network was trained on.

    `vocabulary` starts with the padding ("") and out-of-vocabulary ("[UNK]") tokens.
    `max_len` keeps the first `max_len` tokens, as training did; shorter reviews are then
    padded with 0, which the network masks, so their predictions are unchanged.
    """
    return keras.layers.TextVectorization(
        max_tokens=len(vocabulary),
        vocabulary=vocabulary[2:],
        output_sequence_length=max_len or None,
        name="vectorizer",
    )


def with_vectorizer(network: keras.Model, vectorizer: keras.layers.TextVectorization) -> keras.Model:
    """Wrap a trained network so that it takes a batch of raw review strings."""
    text = keras.Input(shape=(), dtype="string", name="text")
    logit = network(vectorizer(text))
    return keras.Model(text, logit, name="text_classifier")
