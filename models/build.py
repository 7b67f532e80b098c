"""One builder for the whole BiLSTM family, and the raw-text wrapper used for export."""

from __future__ import annotations

import keras
import numpy as np

from models import kernels
from models.config import LstmChoice, ModelConfig, lstm_for
from models.fused import FusedBiLSTM
from models.layers import HashedNgramLogits, MaskedPooling
from models.text import NonEmpty, text_vectorizer


def resolve_lstm(lstm: LstmChoice) -> str:
    """ "fused" or "keras" for this process: `lstm_for` on whether TensorFlow sees a GPU.

    "auto" falls back to Keras's layers where the fused kernel does not load. Raises
    RuntimeError for "fused" when the kernel is unavailable, and ValueError for anything
    but the three choices.
    """
    import tensorflow as tf

    # only "auto" depends on the device; listing devices initializes TensorFlow's runtime
    on_gpu = lstm == "auto" and bool(tf.config.list_logical_devices("GPU"))
    if lstm_for(lstm, on_gpu) == "keras":
        return "keras"
    if kernels.load() is not None:
        return "fused"
    if lstm == "fused":
        raise RuntimeError(f"lstm='fused': {kernels.why_unavailable()}")
    return "keras"


def uses_fused(network: keras.Model) -> bool:
    """Whether a network was built with `FusedBiLSTM` layers."""
    return any(isinstance(layer, FusedBiLSTM) for layer in network.layers)


def build_model(
    config: ModelConfig, lstm: LstmChoice = "keras", name: str | None = None, vectors: np.ndarray | None = None
) -> keras.Model:
    """Integer token ids [batch, time] (0 = padding, masked) in, logits [batch, config.logits] out:
    one logit for two classes (sigmoid(logit) = P(class 1)), one per class for K > 2 (softmax).

    With `PRESETS["tutorial-single"]` and `PRESETS["tutorial-stacked"]` this is the
    tutorial's network layer for layer, minus its TextVectorization (see `with_vectorizer`).
    `lstm` picks the implementation (`resolve_lstm`): `FusedBiLSTM` is the same network as
    `Bidirectional(LSTM)`, faster on a CPU, and the two builds' weights are interchangeable
    (`get_weights` / `set_weights`), so a checkpoint continues with either.
    With `config.ngram_buckets` > 0 the logits are the sum of that network's and a linear model's
    on the review's words and hashed bigrams (`HashedNgramLogits`; Wide & Deep); with
    `config.deep` False, that linear model alone.

    `vectors` (vocabulary size >= config.vocab_size, config.embedding_dim) float: word vectors by
    token id (`search.data.vectors.Vectors.matrix`); with `config.embeddings` "init" or "frozen" the
    embedding starts from their first config.vocab_size rows (frozen: not trained), so that they
    become the layer's weights and a saved model needs nothing else. Without them the embedding
    starts at random (a checkpoint's or a retrained network's weights are then set on it; a frozen
    one stays untrained all the same). Raises ValueError for vectors of another width or too few rows.
    """
    if not config.deep:
        ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        return keras.Model(ids, _linear_part(config)(ids), name=name or "linear_part")
    fused = resolve_lstm(lstm) == "fused"
    embedding = keras.layers.Embedding(
        config.vocab_size, config.embedding_dim, mask_zero=True, trainable=config.embeddings != "frozen"
    )
    layers: list[keras.layers.Layer] = [keras.Input(shape=(None,), dtype="int32", name="token_ids"), embedding]
    pooled = config.pooling != "last"
    for i, units in enumerate(config.units):
        last = i == config.depth - 1 and not pooled
        if fused:
            layers.append(FusedBiLSTM(units, return_sequences=not last))
        else:
            layers.append(keras.layers.Bidirectional(keras.layers.LSTM(units, return_sequences=not last)))
    if pooled:
        layers.append(MaskedPooling(config.pooling))
    layers.append(keras.layers.Dense(config.dense_units, activation="relu"))
    if config.dropout > 0:
        layers.append(keras.layers.Dropout(config.dropout))
    layers.append(keras.layers.Dense(config.logits))
    network = _network(layers, config, name or f"bilstm_{config.depth}x")
    if vectors is not None and config.embeddings != "none":
        embedding.set_weights([starting_vectors(config, vectors)])
    return network


def _linear_part(config: ModelConfig) -> HashedNgramLogits:
    """The linear model on the review's words and hashed bigrams (Wide & Deep's wide part)."""
    return HashedNgramLogits(config.vocab_size, config.ngram_buckets, config.logits, name="ngram_logits")


def _network(layers: list[keras.layers.Layer], config: ModelConfig, name: str) -> keras.Model:
    """`layers` (an Input first) in sequence, their logits summed with the linear part's where
    config.ngram_buckets > 0."""
    if not config.ngram_buckets:
        return keras.Sequential(layers, name=name)
    ids, deep = layers[0], layers[0]
    for layer in layers[1:]:
        deep = layer(deep)
    return keras.Model(ids, keras.layers.Add(name="wide_and_deep")([deep, _linear_part(config)(ids)]), name=name)


def starting_vectors(config: ModelConfig, vectors: np.ndarray) -> np.ndarray:
    """The rows of `vectors` an embedding of `config` starts from: the first vocab_size, as float32.
    Raises ValueError for vectors of another width than config.embedding_dim, or fewer rows."""
    rows, width = vectors.shape
    if width != config.embedding_dim or rows < config.vocab_size:
        raise ValueError(
            f"word vectors of {rows} x {width} cannot start an embedding of {config.vocab_size} x {config.embedding_dim}"
        )
    return np.asarray(vectors[: config.vocab_size], np.float32)


def mean_logits(networks: list[keras.Model]) -> keras.Model:
    """One network of several (each ids [batch, time] → logits [batch, L], distinctly named): the
    mean of their logits [batch, L], a deep ensemble's average (Lakshminarayanan et al. 2017,
    averaging logits rather than probabilities, so a two-class model keeps one logit)."""
    ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    return keras.Model(ids, keras.layers.Average(name="mean_logits")([net(ids) for net in networks]), name="ensemble")


def make_vectorizer(vocabulary: list[str], max_len: int = 0) -> keras.layers.TextVectorization:
    """The TextVectorization that maps raw text to the ids a network was trained on.

    `vocabulary` starts with the padding ("") and out-of-vocabulary ("[UNK]") tokens.
    `max_len` keeps the first `max_len` tokens, as training did (0: whole reviews);
    shorter reviews are then padded with 0, which the network masks, so their
    predictions are unchanged.
    """
    return text_vectorizer(vocabulary=vocabulary, max_len=max_len, name="vectorizer")


def with_vectorizer(network: keras.Model, vectorizer: keras.layers.TextVectorization) -> keras.Model:
    """Wrap a trained network so that it takes a batch of raw strings [batch] → logits [batch, 1 or K]
    (`ModelConfig.logits`).

    Any string works, the empty one included (`models.text.NonEmpty`).
    """
    text = keras.Input(shape=(), dtype="string", name="text")
    logit = network(NonEmpty()(vectorizer(text)))
    return keras.Model(text, logit, name="text_classifier")
