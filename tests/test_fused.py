"""FusedBiLSTM computes what Keras's Bidirectional(LSTM) computes, values and gradients."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from models import ModelConfig, build_model, kernels
from models.fused import FusedBiLSTM
from search.train import use_fused_lstm


def _pair(units: int, return_sequences: bool, inputs, mask):
    reference = keras.layers.Bidirectional(keras.layers.LSTM(units, return_sequences=return_sequences))
    fused = FusedBiLSTM(units, return_sequences=return_sequences)
    reference(inputs, mask=mask)
    fused(inputs, mask=mask)
    fused.set_weights(reference.get_weights())
    return reference, fused


def _value_and_gradients(layer, inputs, mask, weight):
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = layer(inputs, mask=mask)
        loss = tf.reduce_sum(tf.sin(3 * outputs * weight))
    return outputs, tape.gradient(loss, [inputs, *layer.trainable_variables])


@pytest.mark.parametrize("return_sequences", [True, False])
def test_values_and_gradients_match_keras(return_sequences):
    rng = np.random.default_rng(0)
    lengths = np.array([23, 1, 17, 5, 23, 9])
    inputs = tf.constant(rng.normal(size=(6, 30, 5)), tf.float32)  # padded past the longest review
    mask = tf.sequence_mask(lengths, 30)
    reference, fused = _pair(7, return_sequences, inputs, mask)
    # outputs at padded steps carry no meaning in Keras's layer; they are weighted out of the loss
    weight = tf.cast(mask, tf.float32)[:, :, None] if return_sequences else 1.0
    want, want_grads = _value_and_gradients(reference, inputs, mask, weight)
    got, got_grads = _value_and_gradients(fused, inputs, mask, weight)
    np.testing.assert_allclose((got * weight).numpy(), (want * weight).numpy(), atol=1e-6)
    if return_sequences:
        assert not np.any(got.numpy()[~mask.numpy()])
    assert len(got_grads) == 7  # the inputs and six weights, in Keras's order
    for ours, theirs in zip(got_grads, want_grads):
        scale = np.abs(theirs.numpy()).max()
        np.testing.assert_allclose(ours.numpy() / scale, theirs.numpy() / scale, atol=1e-5)


def test_fused_and_keras_builds_are_the_same_network(tmp_path):
    config = ModelConfig(vocab_size=40, embedding_dim=6, units=(8, 4), dense_units=5)
    fused, plain = build_model(config, fused=True), build_model(config)
    plain.set_weights(fused.get_weights())
    ids = np.array([[5, 6, 7, 0, 0, 0], [3, 9, 9, 2, 8, 1]], np.int32)
    np.testing.assert_allclose(fused(ids).numpy(), plain(ids).numpy(), atol=1e-5)
    np.testing.assert_allclose(fused(ids[:1, :3]).numpy(), fused(ids[:1]).numpy(), atol=1e-6)  # padding is masked
    fused.save(tmp_path / "fused.keras")
    loaded = keras.saving.load_model(tmp_path / "fused.keras", safe_mode=True)
    assert any(isinstance(layer, FusedBiLSTM) for layer in loaded.layers)
    np.testing.assert_allclose(loaded(ids).numpy(), fused(ids).numpy(), atol=1e-6)


def test_training_uses_the_kernel_on_a_cpu_unless_told_not_to():
    assert kernels.load() is not None, kernels.why_unavailable()
    assert use_fused_lstm(None) is True and use_fused_lstm(True) is True and use_fused_lstm(False) is False


def test_a_failed_build_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("BILSTM_KERNEL_CACHE", str(tmp_path / "kernels"))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    with pytest.raises(RuntimeError, match="no C\\+\\+ compiler"):
        kernels.build()
    monkeypatch.setenv("CXX", "false")  # a "compiler" that fails
    with pytest.raises(RuntimeError, match="building lstm.cc failed"):
        kernels.build()
    assert not list((tmp_path / "kernels").glob("*.so"))  # nothing half-built is left to load


def test_without_a_kernel_training_warns_and_uses_keras(tmp_path, monkeypatch):
    monkeypatch.setenv("BILSTM_KERNEL_CACHE", str(tmp_path / "kernels"))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    kernels.load.cache_clear()
    try:
        with pytest.warns(UserWarning, match="no C\\+\\+ compiler"):
            assert use_fused_lstm(None) is False
        with pytest.raises(RuntimeError, match="fused_lstm=True: no C\\+\\+ compiler"):
            use_fused_lstm(True)
    finally:
        kernels.load.cache_clear()  # later tests load the real kernel again
    monkeypatch.undo()
    assert kernels.load() is not None and kernels.why_unavailable() is None
