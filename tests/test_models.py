import dataclasses
import os

import keras
import numpy as np
import pytest

from models import PRESETS, ModelConfig, build_model, make_vectorizer, stacked_units, with_vectorizer
from search.data import read_reviews


def tutorial_models(encoder):
    """The two models exactly as TensorFlow's "Text classification with an RNN" writes them."""
    single = keras.Sequential(
        [
            encoder,
            keras.layers.Embedding(input_dim=len(encoder.get_vocabulary()), output_dim=64, mask_zero=True),
            keras.layers.Bidirectional(keras.layers.LSTM(64)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    stacked = keras.Sequential(
        [
            encoder,
            keras.layers.Embedding(len(encoder.get_vocabulary()), 64, mask_zero=True),
            keras.layers.Bidirectional(keras.layers.LSTM(64, return_sequences=True)),
            keras.layers.Bidirectional(keras.layers.LSTM(32)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(1),
        ]
    )
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


@pytest.mark.parametrize("max_len,ngram_buckets", [(None, 0), (4, 0), (None, 64), (4, 64)])
def test_raw_text_model_saves_and_loads_in_safe_mode(tmp_path, max_len, ngram_buckets):
    vocabulary = ["", "[UNK]", "good", "bad", "film", "the"]
    config = ModelConfig(vocab_size=len(vocabulary), units=(4,), dense_units=4, embedding_dim=4, ngram_buckets=ngram_buckets)
    network = build_model(config)
    network.set_weights([np.random.default_rng(0).normal(size=w.shape) for w in network.get_weights()])
    model = with_vectorizer(network, make_vectorizer(vocabulary, max_len))
    texts = np.array(["The film, good!", "bad bad film the unseen words"], dtype=object)
    ids = [[5, 4, 2], [3, 3, 4, 5, 1, 1]]
    expected = np.concatenate([network(np.array([i[:max_len] if max_len else i], np.int32)) for i in ids])
    np.testing.assert_allclose(model(texts).numpy(), expected, atol=1e-6)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(loaded(texts).numpy(), expected, atol=1e-6)


SAME_WORDS = [
    "\ufeffThe café film",
    "the\u00a0cafe\u0301\u2003film",
    "THE CAFÉ FILM!",
    "the<br />café<br/>film",
    "«The» café, film…",
    "ｔｈｅ ｃａｆé ｆｉｌｍ",
    "the\u200bcafé film",
]
"""One review in many spellings: byte-order mark, no-break and em spaces, NFC and NFD accents,
upper case, HTML line breaks, Unicode punctuation, full-width letters, a zero-width space."""


def test_one_standardization_for_every_spelling():
    from models.text import standardize, text_vectorizer

    vectorizer = text_vectorizer(max_tokens=10)
    vectorizer.adapt(np.array(SAME_WORDS, dtype=object))
    vocabulary = vectorizer.get_vocabulary()
    assert vocabulary[:2] == ["", "[UNK]"] and sorted(vocabulary[2:]) == ["cafe", "film", "the"]
    ids = vectorizer(np.array(SAME_WORDS, dtype=object)).numpy()
    assert (ids == ids[0]).all() and [vocabulary[i] for i in ids[0]] == ["the", "cafe", "film"]
    words = standardize(np.array(["don't", "Straße", "ﬁlm", "cof\u00adfee", "½ of 😀"], dtype=object)).numpy()
    assert [w.decode().split() for w in words] == [["dont"], ["strasse"], ["film"], ["coffee"], ["1", "2", "of"]]


def test_the_plain_python_standardization_is_the_models():
    """models.folding.standardized, which matches a vectors file's words without TensorFlow, is
    models.text.standardize on every ASCII character and random code points up to U+2FFFF."""
    from models.folding import standardized
    from models.text import standardize

    rng = np.random.default_rng(0)
    texts = [
        "Café <br />FILM",
        "don't Straße ﬁlm cof\u00adfee ½ of 😀",
        "Ｆｉｌｍ a\u200bb x\x00y İstanbul ǅ ﬃ ÅNGSTRÖM ς",
        "<b>bold</b>and " + "a<" + "b" * 150 + ">c",
        "".join(chr(c) for c in range(128)),
    ]
    codes = [c for c in rng.integers(0x80, 0x30000, 2000).tolist() if not 0xD800 <= c < 0xE000]  # no surrogate: not UTF-8
    texts += ["".join(map(chr, codes[i : i + 40])) for i in range(0, len(codes), 40)]
    ours = [standardized(t) for t in texts]
    models = [" ".join(t.decode().split()) for t in standardize(np.array(texts, dtype=object)).numpy()]
    assert ours == models


def test_the_standardization_runs_in_any_traced_function_whichever_traced_first():
    import tensorflow as tf

    from models import text

    text._eager_fold_table.cache_clear()  # first built inside a traced function, as an export's tracing does
    words = tf.constant(["Café <br />FILM"])
    first, second = tf.function(text.standardize)(words), tf.function(text.standardize)(words)
    assert first.numpy()[0].decode().split() == second.numpy()[0].decode().split() == ["cafe", "film"]


def _exported(tmp_path, max_len: int, pooling: str = "last"):
    from search.export import write_saved_model

    vocabulary = ["", "[UNK]", "good", "bad", "film", "the"]
    config = ModelConfig(vocab_size=len(vocabulary), units=(4,), dense_units=4, embedding_dim=4, pooling=pooling)
    network = build_model(config)
    model = with_vectorizer(network, make_vectorizer(vocabulary, max_len))
    model.save(tmp_path / "model.keras")
    write_saved_model(model, tmp_path / "saved_model")
    return tmp_path


@pytest.mark.parametrize("max_len", [0, 4])
def test_texts_without_words_get_the_same_finite_probability_everywhere(tmp_path, capsys, max_len):
    import json

    import tensorflow as tf

    from search import predict
    from search.export import probabilities

    folder = _exported(tmp_path, max_len)
    texts = ["", "!!!", "   ", "\u00a0", "good film"]
    loaded = keras.saving.load_model(folder / "model.keras", safe_mode=True)
    both = probabilities(loaded, texts)
    np.testing.assert_allclose(both.sum(axis=1), 1, atol=1e-6)
    from_keras = both[:, 1]
    served = tf.saved_model.load(str(folder / "saved_model")).signatures["serving_default"](text=tf.constant(texts))
    assert predict.main([str(folder), "--json", *texts]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert np.isfinite(from_keras).all() and len(set(from_keras[:4].round(6))) == 1
    np.testing.assert_allclose(served["probability"].numpy(), from_keras, atol=1e-6)
    np.testing.assert_allclose(served["logit"].numpy(), np.log(from_keras / (1 - from_keras)), atol=1e-4)
    assert [p["text"] for p in printed] == texts
    np.testing.assert_allclose([p["probabilities"]["positive"] for p in printed], from_keras, atol=1e-6)
    np.testing.assert_allclose(served["probabilities"].numpy(), both, atol=1e-6)
    assert all(p["probability"] == max(p["probabilities"].values()) for p in printed)
    assert all(p["label"] == ("positive" if p["probabilities"]["positive"] > 0.5 else "negative") for p in printed)


def test_predict_reads_files_and_standard_input_and_replaces_bad_bytes(tmp_path, capsys):
    import json
    import subprocess
    import sys

    from search import predict

    folder = _exported(tmp_path, 0, pooling="max_mean")  # a layer of ours: predict's process must register it
    (tmp_path / "reviews.txt").write_bytes("good film\ncaf\xe9 bad\n".encode("latin-1"))
    argument = os.fsdecode(b"caf\xe9 bad")
    done = subprocess.run(  # the command as a user runs it: an argument and standard input
        [sys.executable, "-m", "search.predict", str(folder), argument, "--file", "-", "--json"],
        input=(tmp_path / "reviews.txt").read_bytes(),
        capture_output=True,
    )
    assert done.returncode == 0 and done.stderr == b"", done.stderr[-500:]  # TensorFlow's start-up lines kept away
    assert predict.main([str(folder), argument, "--file", str(tmp_path / "reviews.txt"), "--json"]) == 0
    from_file = capsys.readouterr().out
    from_argv, *rows = [json.loads(line) for line in from_file.splitlines()]
    assert [r["text"] for r in rows] == ["good film", "caf\ufffd bad"]
    assert done.stdout.decode() == from_file  # standard input read as the file is
    assert from_argv["text"] == "caf\ufffd bad"
    assert predict.main([str(folder), "--file", str(tmp_path / "none.txt")]) == 2
    missing = capsys.readouterr().err
    assert missing.count("\n") == 1 and "--file" in missing


def test_predict_gives_one_answer_per_input_line_whatever_the_line_holds(tmp_path, capsys):
    import json

    from search import predict

    (tmp_path / "model").mkdir()
    folder = _exported(tmp_path / "model", 0)
    reviews = ["good\u0085film", "bad\u2028film", "the\rfilm", "film\x0cthe", "", "good", "bad\x1c\x1d\x1efilm", ""]
    (tmp_path / "reviews.txt").write_bytes(("\n".join(reviews[:3]) + "\r\n" + "\n".join(reviews[3:]) + "\n").encode())
    assert predict.main([str(folder), "--file", str(tmp_path / "reviews.txt"), "--jsonl"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]  # however a reader splits lines
    assert [(p["line"], p["text"]) for p in printed] == list(enumerate(reviews, 1))
    assert predict.main([str(folder), "--file", str(tmp_path / "reviews.txt"), "bad\x1b[31m\nfilm"]) == 0
    plain = capsys.readouterr().out.splitlines()
    assert len(plain) == len(reviews) + 1 and plain[0].endswith("bad\\x1b[31m\\nfilm") and plain[1].endswith("good\\x85film")
    assert predict.lines("a\r\nb\n\nc") == ["a", "b", "", "c"] and predict.lines("") == []


def test_an_export_loads_as_kerass_docs_say_and_without_the_project_fails_in_a_short_message(tmp_path):
    import subprocess
    import sys

    vocabulary = ["", "[UNK]", *(f"word{i}" for i in range(5000))]
    network = build_model(ModelConfig(vocab_size=len(vocabulary), units=(4,), dense_units=4, embedding_dim=4, pooling="max"))
    with_vectorizer(network, make_vectorizer(vocabulary, 0)).save(tmp_path / "model.keras")
    script = f"""
import keras
try:
    keras.saving.load_model({str(tmp_path / "model.keras")!r})
except Exception as error:
    print(len(str(error)), str(error).rstrip()[-300:].replace("\\n", " "))
import models.text
print(keras.saving.load_model({str(tmp_path / "model.keras")!r}).predict(keras.ops.array(["word7 word9"]), verbose=0).shape)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    failed, loaded = done.stdout.strip().splitlines()
    assert int(failed.split()[0]) < 3000 and "models.text>standardize" in failed
    assert loaded == "(1, 1)"
    assert keras.saving.get_registered_object("bilstm>standardize") is keras.saving.get_registered_object(
        "models.text>standardize"
    )  # models saved under the old name still load


def test_the_linear_part_adds_word_and_bigram_weights_over_the_root_of_the_length():
    config = ModelConfig(vocab_size=10, units=(4,), dense_units=4, embedding_dim=4, ngram_buckets=7)
    fused, plain = build_model(config, lstm="fused"), build_model(config, lstm="keras")
    wide = plain.get_layer("ngram_logits")
    table = np.random.default_rng(1).normal(size=(17, 1)).astype(np.float32)
    wide.set_weights([table])
    ids = np.array([[3, 9, 1, 0, 0], [4, 0, 0, 0, 0]], np.int32)

    def bigram(a, b):
        return 10 + (a * 10 + b) * 2654435761 % 7

    by_hand = [
        table[[3, 9, 1, bigram(3, 9), bigram(9, 1)]].sum() / np.sqrt(3),
        table[4, 0],
    ]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(wide(ids))[:, 0], 10.0 * np.array(by_hand), rtol=1e-5)
    fused.set_weights(plain.get_weights())  # the same network whichever LSTM runs it, padding ignored
    np.testing.assert_allclose(fused(ids).numpy(), plain(ids).numpy(), atol=1e-5)
    np.testing.assert_allclose(plain(ids[1:, :1]).numpy(), plain(ids[1:]).numpy(), atol=1e-6)


@pytest.mark.parametrize("pooling", ["max", "mean", "max_mean"])
def test_pooling_over_time_ignores_padding_and_matches_across_implementations(pooling, tmp_path):
    config = ModelConfig(vocab_size=50, units=(8, 4), dense_units=8, embedding_dim=8, pooling=pooling)
    fused, plain = build_model(config, lstm="fused"), build_model(config, lstm="keras")
    plain.set_weights(fused.get_weights())
    ids = np.array([[5, 6, 7, 0, 0, 0], [3, 9, 9, 2, 8, 1]], np.int32)
    np.testing.assert_allclose(plain(ids).numpy(), fused(ids).numpy(), atol=1e-5)
    np.testing.assert_allclose(plain(ids[:1, :3]).numpy(), plain(ids[:1]).numpy(), atol=1e-6)  # padding changes nothing
    pooled = next(layer for layer in plain.layers if layer.__class__.__name__ == "MaskedPooling")
    assert pooled.compute_output_shape((2, 6, 8))[-1] == (16 if pooling == "max_mean" else 8)
    plain.save(tmp_path / "pooled.keras")
    loaded = keras.saving.load_model(tmp_path / "pooled.keras", safe_mode=True)
    np.testing.assert_allclose(loaded(ids).numpy(), plain(ids).numpy(), atol=1e-6)


def test_max_pooling_never_picks_a_padded_step():
    from models.layers import MaskedPooling

    outputs = np.array([[[-0.5, -0.2], [-0.1, -0.9], [0.0, 0.0]]], np.float32)  # the last step is padding
    mask = np.array([[True, True, False]])
    np.testing.assert_allclose(MaskedPooling("max")(outputs, mask=mask).numpy(), [[-0.1, -0.2]], atol=1e-7)
    np.testing.assert_allclose(MaskedPooling("mean")(outputs, mask=mask).numpy(), [[-0.3, -0.55]], atol=1e-6)
    empty = MaskedPooling("max_mean")(outputs, mask=np.zeros((1, 3), bool)).numpy()
    assert empty.tolist() == [[0.0, 0.0, 0.0, 0.0]]


@pytest.mark.parametrize("use", ["init", "frozen"])
def test_the_embedding_starts_from_word_vectors_and_a_frozen_one_stays_them(use):
    vectors = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    config = ModelConfig(vocab_size=40, embedding_dim=8, units=(8,), embeddings=use, ngram_buckets=64)
    network = build_model(config, vectors=vectors)
    embedding = _embedding(network)
    assert np.array_equal(embedding.get_weights()[0], vectors[:40]) and embedding.trainable == (use == "init")
    network.compile(optimizer=keras.optimizers.Adam(0.1), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    network.fit(np.array([[2, 3, 4], [5, 6, 0]]), np.array([1.0, 0.0]), epochs=2, verbose=0)
    moved = not np.allclose(embedding.get_weights()[0], vectors[:40])
    assert moved == (use == "init")
    random = build_model(dataclasses.replace(config, embeddings="none"), vectors=vectors)  # "none" leaves them out
    assert not np.allclose(_embedding(random).get_weights()[0], vectors[:40]) and _embedding(random).trainable
    with pytest.raises(ValueError, match="word vectors of 50 x 8 cannot start an embedding of 40 x 16"):
        build_model(dataclasses.replace(config, embedding_dim=16), vectors=vectors)


def _embedding(network):
    return next(layer for layer in network.layers if isinstance(layer, keras.layers.Embedding))
