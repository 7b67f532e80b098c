import keras
import numpy as np
import pytest

from models import PRESETS, ModelConfig, build_model, make_vectorizer, stacked_units, with_vectorizer
from search.data import read_reviews


def tutorial_models(encoder):
    """The two models exactly as TensorFlow's "Text classification with an RNN" writes them."""
    single = keras.Sequential([
        encoder,
        keras.layers.Embedding(input_dim=len(encoder.get_vocabulary()), output_dim=64, mask_zero=True),
        keras.layers.Bidirectional(keras.layers.LSTM(64)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(1),
    ])
    stacked = keras.Sequential([
        encoder,
        keras.layers.Embedding(len(encoder.get_vocabulary()), 64, mask_zero=True),
        keras.layers.Bidirectional(keras.layers.LSTM(64, return_sequences=True)),
        keras.layers.Bidirectional(keras.layers.LSTM(32)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(1),
    ])
    return {"tutorial-single": single, "tutorial-stacked": stacked}


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_match_the_tutorial_layer_for_layer(sample, preset):
    texts = read_reviews(sample)[0]["train"][0]
    encoder = keras.layers.TextVectorization(max_tokens=1000)
    encoder.adapt(np.array(texts, dtype=object))
    tutorial = tutorial_models(encoder)[preset]
    tutorial(np.array(texts[:2], dtype=object))
    ours = build_model(PRESETS[preset])
    theirs = tutorial.layers[1:]  # everything after the TextVectorization
    assert [type(layer) for layer in ours.layers] == [type(layer) for layer in theirs]
    ids = np.ones((3, 17), np.int32)
    for a, b in zip(ours.layers, theirs):
        assert a.count_params() == b.count_params(), a.name
    assert ours.count_params() == tutorial.count_params() == {"tutorial-single": 138369, "tutorial-stacked": 175489}[preset]
    assert ours(ids).shape == (3, 1)


def test_padding_is_masked():
    model = build_model(ModelConfig(vocab_size=50, units=(8, 4), dense_units=8, embedding_dim=8))
    ids = np.array([[5, 6, 7]], np.int32)
    padded = np.array([[5, 6, 7, 0, 0, 0]], np.int32)
    np.testing.assert_allclose(model(ids).numpy(), model(padded).numpy(), atol=1e-6)


def test_depth_and_units():
    assert stacked_units(64, 2) == (64, 32) and stacked_units(128, 3) == (128, 64, 32) and stacked_units(16, 3) == (16, 8, 8)
    model = build_model(ModelConfig(units=stacked_units(32, 3)))
    bidirectional = [layer for layer in model.layers if isinstance(layer, keras.layers.Bidirectional)]
    assert [layer.forward_layer.units for layer in bidirectional] == [32, 16, 8]
    assert ModelConfig.from_dict(ModelConfig(units=(32, 16)).to_dict()) == ModelConfig(units=(32, 16))


@pytest.mark.parametrize("field, value", [("vocab_size", 2), ("units", ()), ("dropout", 1.0), ("units", (64, 0))])
def test_model_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        ModelConfig(**{field: value})


@pytest.mark.parametrize("max_len", [None, 4])
def test_raw_text_model_saves_and_loads_in_safe_mode(tmp_path, max_len):
    vocabulary = ["", "[UNK]", "good", "bad", "film", "the"]
    network = build_model(ModelConfig(vocab_size=len(vocabulary), units=(4,), dense_units=4, embedding_dim=4))
    model = with_vectorizer(network, make_vectorizer(vocabulary, max_len))
    texts = np.array(["The film, good!", "bad bad film the unseen words"], dtype=object)
    ids = [[5, 4, 2], [3, 3, 4, 5, 1, 1]]
    expected = np.concatenate([network(np.array([i[:max_len] if max_len else i], np.int32)) for i in ids])
    np.testing.assert_allclose(model(texts).numpy(), expected, atol=1e-6)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(loaded(texts).numpy(), expected, atol=1e-6)
