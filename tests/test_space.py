import dataclasses

import numpy as np
import optuna
import pytest

from models import PRESETS, lstm_for
from runfiles.cli import UsageError
from runfiles.layout import Objective, Param
from search.space import (
    PARAMS,
    SPACE,
    START_POINT,
    TUTORIAL_TRAINING,
    WITH_VECTORS,
    bucket_cap,
    configs_from,
    distinct_bigrams,
    fitted,
    narrowed,
    optuna_space,
    parse_fixed,
    preset_of,
    preset_point,
    space_values,
    start_point,
    train_values,
    tutorial_point,
)


def test_space_covers_what_the_issue_asks_for():
    assert {"depth", "units", "dropout", "learning_rate", "vocab_size", "batch_size", "max_len"} <= set(PARAMS)
    assert PARAMS["learning_rate"].log and PARAMS["vocab_size"].log
    assert (PARAMS["depth"].low, PARAMS["depth"].high) == (1, 3)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_tutorial_models_are_points_of_the_space(preset):
    point = preset_point(preset, SPACE)
    model, train = configs_from(point, num_classes=2)
    assert model == PRESETS[preset]
    assert train_values(point) == {"learning_rate": 1e-4, "batch_size": 64, "max_len": 0, "schedule": "constant"}
    assert (train.learning_rate, train.batch_size, train.max_len, train.schedule) == (1e-4, 64, 0, "constant")
    assert preset_of(point) == preset
    assert preset_of({**point, "dropout": 0.3}) == ""
    older = tuple(p for p in SPACE if p.name != "ngram_buckets")  # a run recorded before the linear part
    old_point = preset_point(preset, older)
    assert "ngram_buckets" not in old_point and preset_of(old_point, older) == preset
    assert configs_from(old_point, num_classes=2)[0] == PRESETS[preset]


def test_start_point_moves_into_the_space():
    assert start_point(SPACE) == START_POINT
    lengths = [100, 200, 300, 400, 1000]
    small = fitted(narrowed(SPACE, {"units": 16}), vocabulary_size=5000, lengths=lengths)
    point = start_point(small)
    assert point["units"] == 16 and point["vocab_size"] == 5000 and point["max_len"] == 0
    assert all(p.contains(point[p.name]) for p in small)
    no_max = tuple(p if p.name != "pooling" else dataclasses.replace(p, choices=("last", "mean")) for p in SPACE)
    assert start_point(no_max) is None  # a categorical value the space lacks drops the point


def test_optuna_distributions_follow_the_declaration():
    distributions = optuna_space(SPACE)
    assert list(distributions) == [p.name for p in SPACE]
    assert distributions["learning_rate"] == optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)
    assert distributions["batch_size"] == optuna.distributions.CategoricalDistribution((32, 64, 128))
    assert [p.to_json()["name"] for p in SPACE] == list(distributions)


def test_on_a_corpus_smaller_than_the_vocab_range_the_space_and_the_presets_say_the_corpuss_size():
    small = fitted(SPACE, vocabulary_size=30, lengths=[5, 8, 13])
    vocab = next(p for p in small if p.name == "vocab_size")
    assert (vocab.low, vocab.high) == (30, 30)
    for preset in PRESETS:
        point = preset_point(preset, small)
        assert point["vocab_size"] == 30 and preset_of(point, small) == preset and preset_of(point) == ""
    assert start_point(small)["vocab_size"] == 30 and optuna_space(small)["vocab_size"].high == 30


def test_narrowing_pins_values_and_a_pinned_preset_is_no_longer_the_tutorials():
    space = narrowed(SPACE, {"max_len": 128, "units": 16})
    assert optuna_space(space)["max_len"] == optuna.distributions.CategoricalDistribution((128,))
    point = preset_point("tutorial-stacked", space)
    assert point["max_len"] == 128 and point["units"] == 16 and point["depth"] == 2
    assert preset_of(point) == ""  # never called the tutorial's model unless it is
    assert {p.name for p in space if p.pinned} == {"max_len", "units"}
    with pytest.raises(UsageError, match="not a searched parameter"):
        narrowed(SPACE, {"colour": 1})


@pytest.mark.parametrize(
    "item, message",
    [
        ("depth=7", "--fix depth=7: depth must lie in [1, 3]"),
        ("batch_size=48", "--fix batch_size=48: batch_size must lie in {32, 64, 128}"),
        ("learning_rate=0.9", "--fix learning_rate=0.9: learning_rate must lie in [0.0001, 0.01] log"),
        ("units=many", "--fix units=many: units takes an integer in [16, 128] log"),
        ("colour=blue", "--fix colour=blue: expected NAME=VALUE with NAME one of depth"),
        ("depth", "--fix depth: expected NAME=VALUE"),
    ],
)
def test_fixed_values_outside_the_space_are_refused(item, message):
    with pytest.raises(UsageError) as caught:
        parse_fixed([item])
    assert str(caught.value).startswith(message)


def test_a_parameter_pinned_twice_to_different_values_is_refused():
    assert parse_fixed(["depth=2", "depth=2"]) == {"depth": 2}
    with pytest.raises(UsageError, match="--fix depth=3: depth is already pinned to 2; pin it once"):
        parse_fixed(["depth=2", "depth=3"])


def test_data_dependent_ranges_follow_the_prepared_data():
    short = fitted(SPACE, vocabulary_size=600, lengths=np.array([3, 5, 8, 9, 12, 20]))  # a corpus of short sentences
    by_name = {p.name: p for p in short}
    vocab = by_name["vocab_size"]
    assert (vocab.low, vocab.high) == (600, 600) and by_name["max_len"].choices == (0,)  # nothing a trial could change
    imdb = {p.name: p for p in fitted(SPACE, 20002, np.arange(1, 1001))}
    assert imdb["vocab_size"].high == 20000 and imdb["max_len"].choices == (512, 768, 928, 0)
    pinned = fitted(narrowed(SPACE, {"max_len": 128}), 600, np.arange(1, 50))
    assert {p.name: p for p in pinned}["max_len"].choices == (128,)
    for preset in sorted(PRESETS):
        assert preset_point(preset, fitted(SPACE, 20002, np.arange(1, 1001)))["max_len"] == 0


def test_the_linear_parts_buckets_follow_the_training_bigrams_and_the_classes():
    import numpy as np

    lengths = np.arange(1, 1001)
    # the regimes of docs/regimes.md keep (0, 2^18, 2^20): distinct bigrams of their training splits
    for bigrams, logits in ((1_023_970, 1), (167_324, 1), (158_927, 1), (1_023_970, 4)):  # full, small, short, ratings4
        space = {p.name: p for p in fitted(SPACE, 20002, lengths, bigrams, logits)}
        without_vectors = {k: v for k, v in START_POINT.items() if k not in WITH_VECTORS}
        assert space["ngram_buckets"].choices == (0, 2**18, 2**20) and start_point(tuple(space.values())) == without_vectors
    assert bucket_cap(167_324, 1) == 2**20 and bucket_cap(1_023_970, 1) == 2**22  # >= 4 buckets per bigram
    many = {p.name: p for p in fitted(SPACE, 20002, lengths, 150_000, logits=100)}  # 100 classes on a small corpus
    assert many["ngram_buckets"].choices == (0, 2**13)  # 4 x 150,000 -> 2^20 weights, / 100 logits -> 2^13 buckets
    assert start_point(tuple(many.values()))["ngram_buckets"] == 2**13  # the start point's 2^20 moves to the cap
    between = {p.name: p for p in fitted(SPACE, 20002, lengths, 100_000, logits=1)}
    assert between["ngram_buckets"].choices == (0, 2**18, 2**19)  # the choices above the cap become the cap
    pinned = fitted(narrowed(SPACE, {"ngram_buckets": 2**20}), 20002, lengths, 10, logits=100)
    assert {p.name: p for p in pinned}["ngram_buckets"].choices == (2**20,)
    assert parse_fixed(["ngram_buckets=4096"]) == {"ngram_buckets": 4096}  # any count, as the data may want


def test_distinct_bigrams_count_pairs_within_each_review():
    import numpy as np

    # reviews [5 6 5 6] [6 5] [7]: pairs (5,6) (6,5) within the first, (6,5) again in the second; none across reviews
    tokens, offsets = np.array([5, 6, 5, 6, 6, 5, 7]), np.array([0, 4, 6, 7])
    assert distinct_bigrams(tokens, offsets) == 2
    assert distinct_bigrams(np.array([5, 6, 7]), np.array([0, 1, 2, 3])) == 0


def test_fixed_values_are_typed():
    assert parse_fixed(["depth=2", "learning_rate=0.001", "max_len=0"]) == {"depth": 2, "learning_rate": 0.001, "max_len": 0}
    # max_len's choices come from the data's lengths (`fitted`): any length may be pinned, not a negative one.
    assert parse_fixed(["max_len=64"]) == {"max_len": 64}
    with pytest.raises(UsageError, match="--fix max_len=-1: max_len must lie in"):
        parse_fixed(["max_len=-1"])


@pytest.mark.parametrize(
    "code, heavy",
    [
        ("import reports", ("tensorflow", "keras", "ray")),
        ("import runfiles.layout", ("tensorflow", "keras", "ray", "pandas", "numpy")),
        ("import search.space, search.config", ("tensorflow", "keras", "ray")),
        (
            "import runpy, sys; sys.argv = ['search.run', '--help']\n"
            "try:\n    runpy.run_module('search.run', run_name='__main__')\nexcept SystemExit:\n    pass",
            ("tensorflow", "keras", "ray"),
        ),
    ],
)
def test_the_contract_the_space_the_report_and_help_load_no_tensorflow(code, heavy):
    import subprocess
    import sys

    probe = code + f"\nimport sys\nheavy = [m for m in {heavy!r} if m in sys.modules]\nprint('heavy:', heavy)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "heavy: []" in done.stdout


def test_the_objective_alone_knows_its_direction():
    accuracy, loss = Objective("val_accuracy", "max"), Objective("val_loss", "min")
    assert accuracy.best([0.5, None, float("nan"), 0.7, 0.6]) == 0.7 and loss.best([0.5, 0.3, None]) == 0.3
    assert accuracy.best([None, float("nan")]) is None
    assert loss.oriented(0.3) > loss.oriented(0.5) and accuracy.oriented(0.7) > accuracy.oriented(0.5)
    assert sorted([0.5, None, 0.7], key=accuracy.worst_first) == [0.7, 0.5, None]


def test_auto_means_keras_on_a_gpu_and_the_fused_kernel_on_a_cpu():
    assert [lstm_for(choice, on_gpu=True) for choice in ("auto", "fused", "keras")] == ["keras", "fused", "keras"]
    assert [lstm_for(choice, on_gpu=False) for choice in ("auto", "fused", "keras")] == ["fused", "fused", "keras"]
    with pytest.raises(ValueError, match="lstm='cudnn' is invalid"):
        lstm_for("cudnn", on_gpu=False)


def test_a_points_configs_give_the_point_back():
    rng = np.random.default_rng(0)
    points = [START_POINT, *(preset_point(preset, SPACE) for preset in PRESETS)]
    points += [{p.name: _drawn(p, rng) for p in SPACE} for _ in range(20)]
    for point in points:
        assert space_values(*configs_from(point, num_classes=3)) == point
    assert space_values(PRESETS["tutorial-stacked"], TUTORIAL_TRAINING) == tutorial_point("tutorial-stacked")


def _drawn(param: Param, rng: np.random.Generator):
    """A value of `param` drawn at random."""
    if param.kind == "categorical":
        return param.choices[rng.integers(len(param.choices))]
    value = rng.uniform(param.low, param.high)
    return round(value) if param.kind == "int" else float(value)


def test_run_json_records_each_parameters_range_and_the_start_point_whole():
    for p in SPACE:
        entry = p.to_json()
        assert "start" not in entry and Param.from_json(entry) == Param(**{k: getattr(p, k) for k in entry})
    assert {p.name: p.start for p in SPACE} == START_POINT


def test_the_embeddings_parameter_is_searched_only_with_vectors_and_pins_the_width_to_theirs():
    lengths = np.arange(1, 1001)
    plain = {p.name: p for p in fitted(SPACE, 20002, lengths, 100_000)}
    assert "embeddings" not in plain and not plain["embedding_dim"].pinned
    with_vectors = {p.name: p for p in fitted(SPACE, 20002, lengths, 100_000, vectors_dim=300)}
    assert with_vectors["embeddings"].choices == ("none", "init", "frozen")
    assert with_vectors["embedding_dim"].choices == (300,)  # beyond the searched range: the file's width
    point = start_point(tuple(with_vectors.values()))
    assert point["embedding_dim"] == 300 and point["embeddings"] == START_POINT["embeddings"]
    vectors_space, plain_space = tuple(with_vectors.values()), tuple(plain.values())
    for preset in PRESETS:  # the tutorial's models start at random; their width is the pinned one, and they keep their names
        point = preset_point(preset, vectors_space)
        assert point["embeddings"] == "none" and point["embedding_dim"] == 300 and preset_of(point, vectors_space) == preset
        assert preset_of({**point, "embeddings": "init"}, vectors_space) == ""  # the vectors in it: another model
        assert preset_of({**point, "dropout": 0.3}, vectors_space) == ""
        assert preset_of({**preset_point(preset, plain_space), "embedding_dim": 300}, plain_space) == ""  # a --fix
    model, _ = configs_from({**point, "embeddings": "frozen"}, num_classes=2)
    assert model.embeddings == "frozen" and model.embedding_dim == 300
