"""FusedBiLSTM computes what Keras's Bidirectional(LSTM) computes, values and gradients."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from models import ModelConfig, build_model, kernels, resolve_lstm
from models.fused import FusedBiLSTM


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
    fused, plain = build_model(config, lstm="fused"), build_model(config, lstm="keras")
    plain.set_weights(fused.get_weights())
    ids = np.array([[5, 6, 7, 0, 0, 0], [3, 9, 9, 2, 8, 1]], np.int32)
    np.testing.assert_allclose(fused(ids).numpy(), plain(ids).numpy(), atol=1e-5)
    np.testing.assert_allclose(fused(ids[:1, :3]).numpy(), fused(ids[:1]).numpy(), atol=1e-6)  # padding is masked
    fused.save(tmp_path / "fused.keras")
    loaded = keras.saving.load_model(tmp_path / "fused.keras", safe_mode=True)
    assert any(isinstance(layer, FusedBiLSTM) for layer in loaded.layers)
    np.testing.assert_allclose(loaded(ids).numpy(), fused(ids).numpy(), atol=1e-6)


def test_auto_picks_the_kernel_on_a_cpu():
    assert kernels.load() is not None, kernels.why_unavailable()
    assert [resolve_lstm(choice) for choice in ("auto", "fused", "keras")] == ["fused", "fused", "keras"]
    assert any(isinstance(layer, FusedBiLSTM) for layer in build_model(ModelConfig(), lstm="auto").layers)
    with pytest.raises(ValueError, match="lstm='cudnn' is invalid"):
        resolve_lstm("cudnn")


def test_a_failed_build_says_why_and_keeps_the_whole_log(tmp_path, monkeypatch):
    monkeypatch.setenv("BILSTM_KERNEL_CACHE", str(tmp_path / "kernels"))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    with pytest.raises(kernels.KernelBuildError, match="no C\\+\\+ compiler"):
        kernels.build()
    broken = tmp_path / "cxx"  # a compiler that prints a warning, then two errors
    broken.write_text(
        "#!/bin/sh\necho 'lstm.cc:1:1: warning: odd' >&2\necho 'lstm.cc:2:5: error: first' >&2\n"
        "echo 'lstm.cc:9:1: error: second' >&2\nexit 1\n"
    )
    broken.chmod(0o755)
    monkeypatch.setenv("CXX", str(broken))
    with pytest.raises(kernels.KernelBuildError, match=r"building lstm\.cc failed: lstm\.cc:2:5: error: first") as caught:
        kernels.build()
    assert "\n" not in str(caught.value)
    (log,) = (tmp_path / "kernels").glob("*.log")
    assert "warning: odd" in log.read_text() and "error: second" in log.read_text() and str(log) in str(caught.value)
    assert not list((tmp_path / "kernels").glob("*.so"))  # nothing half-built is left to load


def test_the_cache_key_covers_the_compiler(tmp_path, monkeypatch):
    monkeypatch.setenv("BILSTM_KERNEL_CACHE", str(tmp_path / "kernels"))
    wrapper = tmp_path / "g++-wrapper"
    wrapper.write_text('#!/bin/sh\n[ "$1" = --version ] && { echo "wrapper 1.0"; exit 0; }\nexec g++ "$@"\n')
    wrapper.chmod(0o755)
    default = kernels.library_path()
    monkeypatch.setenv("CXX", str(wrapper))
    assert kernels.library_path() != default


def test_the_cache_key_covers_the_source_not_where_it_lies(tmp_path, monkeypatch):
    monkeypatch.setenv("BILSTM_KERNEL_CACHE", str(tmp_path / "kernels"))
    default = kernels.library_path()
    copy = tmp_path / "working_dir" / "models" / "kernels" / "lstm.cc"  # as a Ray job unpacks the project on a node
    copy.parent.mkdir(parents=True)
    copy.write_bytes(kernels.SOURCE.read_bytes())
    monkeypatch.setattr(kernels, "SOURCE", copy)
    assert kernels.library_path() == default
    copy.write_bytes(copy.read_bytes() + b"\n// changed\n")
    assert kernels.library_path() != default


def test_without_a_kernel_auto_uses_keras_and_fused_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("BILSTM_KERNEL_CACHE", str(tmp_path / "kernels"))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    kernels.load.cache_clear()
    try:
        assert resolve_lstm("auto") == "keras" and "no C++ compiler" in kernels.why_unavailable()
        with pytest.raises(RuntimeError, match="lstm='fused': no C\\+\\+ compiler"):
            resolve_lstm("fused")
    finally:
        kernels.load.cache_clear()  # later tests load the real kernel again
    monkeypatch.undo()
    assert kernels.load() is not None and kernels.why_unavailable() is None


def test_concurrent_builds_compile_once(tmp_path):
    import subprocess
    import sys

    calls = tmp_path / "calls"
    slow = tmp_path / "cxx"  # a compiler that takes a while and records each build
    slow.write_text(
        '#!/bin/sh\n[ "$1" = --version ] && { echo "slow 1.0"; exit 0; }\n'
        f'echo build >> {calls}\nsleep 2\nwhile [ "$1" != -o ]; do shift; done\ntouch "$2"\n'
    )
    slow.chmod(0o755)
    env = {**__import__("os").environ, "CXX": str(slow), "BILSTM_KERNEL_CACHE": str(tmp_path / "kernels")}
    code = "from models import kernels; print(kernels.build())"
    builders = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    paths = {builder.communicate(timeout=120)[0].strip() for builder in builders}
    assert all(builder.returncode == 0 for builder in builders)
    assert len(paths) == 1 and calls.read_text().splitlines() == ["build"]
