import json

import numpy as np
import pytest

from models import ModelConfig
from runfiles.documents import DataFacts
from search import train
from search.data import Split
from search.train import TrainConfig, batch_rows, pad_batch


def _split(lengths):
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    tokens = np.arange(2, 2 + offsets[-1], dtype=np.int32)
    return Split(tokens, offsets, np.arange(len(lengths)) % 2)


def test_pad_batch_right_pads_and_truncates():
    split = _split([3, 1, 5])
    assert pad_batch(split, np.array([0, 1]), None).tolist() == [[2, 3, 4], [5, 0, 0]]
    assert pad_batch(split, np.array([2, 1]), 2).tolist() == [[6, 7], [5, 0]]


def test_bucketing_covers_every_row_once_and_pads_less():
    lengths = np.random.default_rng(0).integers(10, 1000, 5000)
    rng = np.random.default_rng(1)
    bucketed = batch_rows(lengths, 64, rng, bucket=True)
    plain = batch_rows(lengths, 64, np.random.default_rng(1), bucket=False)
    assert sorted(np.concatenate(bucketed).tolist()) == list(range(5000))
    padded = lambda rows: sum(len(r) * lengths[r].max() for r in rows)
    assert padded(bucketed) < 0.6 * padded(plain)
    assert not np.array_equal(np.concatenate(bucketed), np.concatenate(batch_rows(lengths, 64, rng, bucket=True)))


@pytest.mark.parametrize(
    "field, value",
    [
        ("epochs", 0),
        ("learning_rate", 0.0),
        ("max_len", -1),
        ("batch_size", 0),
        ("lstm", "cudnn"),
        ("schedule", "cosine"),
        ("schedule_epochs", -1),
        ("warmup", 1.0),
    ],
)
def test_train_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_train_and_evaluate_learns_and_measures(sample, tmp_path):
    from search.data import DataConfig, prepare

    data = prepare(DataConfig(source=sample, max_vocab=2000)).for_trials()
    seen = []
    history = train.train_and_evaluate(
        ModelConfig(vocab_size=2000, units=(8,), dense_units=8, embedding_dim=16),
        TrainConfig(epochs=3, learning_rate=1e-2, batch_size=32, max_len=200),
        data,
        on_epoch=lambda m, training: seen.append((m["epoch"], training.network.count_params())),
    )
    assert [m["epoch"] for m in history] == [1, 2, 3] == [e for e, _ in seen]
    for m in history:
        assert 0 <= m["val_accuracy"] <= 1 and 0 <= m["train_accuracy"] <= 1
        assert m["examples_per_s"] > 0 and m["tokens_per_s"] > m["examples_per_s"] and 0 <= m["padding_fraction"] < 1
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[0]["setup_s"] > 0


def test_a_checkpoint_continues_with_the_other_lstm_implementation(sample, tmp_path):
    from models import load_checkpoint, save_checkpoint, uses_fused
    from search.data import DataConfig, prepare

    data = prepare(DataConfig(source=sample, max_vocab=2000)).for_trials()
    config = ModelConfig(vocab_size=2000, units=(8, 4), dense_units=8, embedding_dim=8)
    saved = []
    train.train_and_evaluate(
        config,
        TrainConfig(epochs=1, batch_size=32, max_len=50, lstm="fused"),
        data,
        on_epoch=lambda m, training: saved.append(
            save_checkpoint(tmp_path, training.network, training.optimizer, config, {"epoch": 1})
        ),
    )
    fused, fused_optimizer, _, _ = load_checkpoint(tmp_path, lstm="fused")
    plain, plain_optimizer, loaded_config, state = load_checkpoint(tmp_path, lstm="keras")
    assert uses_fused(fused) and not uses_fused(plain) and loaded_config == config and state == {"epoch": 1}
    ids = np.array([[4, 5, 6, 0], [7, 8, 9, 10]], np.int32)
    np.testing.assert_allclose(plain(ids).numpy(), fused(ids).numpy(), atol=1e-5)
    assert int(plain_optimizer.iterations) == int(fused_optimizer.iterations) > 0
    for mine, theirs in zip(plain_optimizer.variables, fused_optimizer.variables):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    resumed = train.Training(plain, plain_optimizer, epoch=1)
    history = train.train_and_evaluate(
        config, TrainConfig(epochs=2, batch_size=32, max_len=50, lstm="keras"), data, resume=resumed
    )
    assert [(m["epoch"], m["lstm"]) for m in history] == [(2, "keras")]


def test_a_non_finite_loss_ends_training_as_diverged(sample):
    from search.data import DataConfig, prepare

    data = prepare(DataConfig(source=sample, max_vocab=2000)).for_trials()
    config = ModelConfig(vocab_size=2000, units=(8,), dense_units=8, embedding_dim=8)
    training = train.start_training(config, TrainConfig(lstm="keras"), len(data.splits["train"]))
    weights = training.network.get_weights()
    training.network.set_weights(weights[:-1] + [np.full_like(weights[-1], np.nan)])  # a NaN output bias
    history = train.train_and_evaluate(config, TrainConfig(epochs=3, batch_size=32, max_len=50), data, resume=training)
    assert len(history) == 1 and history[0]["diverged"] == "training loss is nan"
    assert np.isnan(history[0]["val_accuracy"])


@pytest.mark.parametrize("flags, lstm", [([], "fused"), (["--lstm", "keras"], "keras")])
def test_command_prints_and_writes_json(sample, tmp_path, capsys, flags, lstm):
    out = tmp_path / "one.json"
    code = train.main(
        ["--preset", "tutorial-single", "--data", sample, "--epochs", "1", "--limit", "100", "--json", str(out), *flags]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "epoch 1:" in printed and "examples/s" in printed
    result = json.loads(out.read_text())
    assert result["preset"] == "tutorial-single" and result["model"]["units"] == [64]
    assert result["data"]["sizes"] == {"train": 80, "val": 20, "test": 240}
    assert len(result["epochs"]) == 1 and result["epochs"][0]["examples_per_s"] > 0
    assert result["epochs"][0]["lstm"] == lstm


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "/nonexistent/imdb.tar.gz"], "no such file"),
        (["--epochs", "0"], "epochs=0"),
        (["--json", "/no/dir/x.json"], "/no/dir"),
        (["--epochs", "two"], "invalid int value: 'two'"),
        (["--lstm", "cudnn"], "invalid choice: 'cudnn'"),
    ],
)
def test_command_bad_input_is_one_line_and_exit_2(sample, capsys, args, message):
    code = train.main(["--data", sample, *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1 and err.startswith("error: ")


def test_the_linear_schedule_warms_up_then_decays_to_zero_over_the_planned_steps():
    optimizer = train.make_optimizer(
        TrainConfig(epochs=2, batch_size=10, learning_rate=0.01, schedule="linear", warmup=0.25), train_examples=100
    )
    schedule = optimizer.learning_rate if callable(optimizer.learning_rate) else optimizer._learning_rate
    rates = [float(schedule(step)) for step in (0, 4, 5, 10, 19, 20)]  # 20 planned steps, 5 of warm-up
    np.testing.assert_allclose(rates, [0.002, 0.01, 0.01, 0.01 * 10 / 15, 0.01 / 15, 0.0], atol=1e-7)


def test_a_retraining_stopped_at_its_trials_peak_keeps_its_trials_schedule():
    # Certification retrains a trial that peaked at epoch 1 of 2 for 1 epoch, at the rates its trial had.
    def rates(config):
        optimizer = train.make_optimizer(config, train_examples=100)
        schedule = optimizer.learning_rate if callable(optimizer.learning_rate) else optimizer._learning_rate
        return [float(schedule(step)) for step in range(10)]

    trial = TrainConfig(epochs=2, batch_size=10, learning_rate=0.01, schedule="linear")
    retraining = TrainConfig(epochs=1, schedule_epochs=2, batch_size=10, learning_rate=0.01, schedule="linear")
    np.testing.assert_allclose(rates(retraining), rates(trial), atol=1e-7)
    assert rates(TrainConfig(epochs=1, batch_size=10, learning_rate=0.01, schedule="linear"))[9] < rates(trial)[9] / 2


def _word_classes(n_per_class: int, seed: int = 0) -> Split:
    """Three classes that a word tells apart: class c's reviews hold token 10 + c among random ones."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), n_per_class).astype(np.int32)
    reviews = [np.append(rng.integers(20, 60, rng.integers(3, 12)), 10 + c) for c in labels]
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in reviews])]).astype(np.int64)
    return Split(np.concatenate(reviews).astype(np.int32), offsets, labels)


def test_a_three_class_network_gets_three_logits_and_learns_macro_f1():
    from search.data import Prepared

    data = Prepared({"train": _word_classes(60), "val": _word_classes(20, seed=1)}, [], "x", DataFacts(classes=["a", "b", "c"]))
    config = ModelConfig(vocab_size=64, units=(8,), dense_units=8, embedding_dim=8, pooling="max", num_classes=3)
    history = train.train_and_evaluate(config, TrainConfig(epochs=6, learning_rate=2e-2, batch_size=16, lstm="keras"), data)
    last = history[-1]
    assert config.logits == 3 and last["val_accuracy"] > 0.9 and last["val_macro_f1"] > 0.9
    assert last["val_loss"] < history[0]["val_loss"]


def test_evaluate_counts_as_scikit_learn_does_and_a_nan_logit_is_never_right():
    import tensorflow as tf
    from sklearn.metrics import confusion_matrix, f1_score

    split = _word_classes(5)
    logits = {10: [3.0, 0, 0], 11: [0, 0, 3.0], 12: [np.nan, 0, 0]}  # class 1 always read as 2; class 2 unscored

    def eval_step(x, y):  # a "network" that reads the class word: its logits are the table's
        losses, predicted = train.scores(tf.constant(y), tf.constant([logits[int(row[row > 0][-1])] for row in x]))
        return tf.reduce_sum(losses), predicted

    scored = train.evaluate(eval_step, split, 0, num_classes=3)
    labels, predicted = split.labels, np.array([0] * 5 + [2] * 5 + [-1] * 5)
    assert scored.accuracy == pytest.approx(1 / 3)
    assert scored.macro_f1 == pytest.approx(f1_score(labels, predicted, labels=[0, 1, 2], average="macro", zero_division=0))
    assert scored.confusion == confusion_matrix(labels, predicted, labels=[0, 1, 2]).tolist()
    assert np.isnan(scored.loss)
