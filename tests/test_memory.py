"""search.memory: a trial is given at most the tokens per review its memory holds, and says so.

    python -m pytest -q tests/test_memory.py

The estimate's own constants are measured (`python -m search.memory`); here: the weights it counts
are the ones Keras builds, a trial really trains on reviews cut to what its memory holds and reports
how many, its export cuts alike, and the run's facts and header name the cut.
"""

import math

import numpy as np
import pytest

from models import ModelConfig, build_model
from runfiles.documents import DataFacts
from search import train
from search.data import Prepared, Split
from search.memory import BYTES_PER_WEIGHT, EVAL_SHARE, MIB, parameters, step_bytes_per_token, tokens_kept
from search.train import EVAL_BATCH, TrainConfig, review_tokens

TINY = ModelConfig(vocab_size=64, units=(8,), embedding_dim=4, pooling="max")
"""The network of `_params()`."""


@pytest.mark.parametrize(
    "config",
    [
        TINY,
        ModelConfig(vocab_size=500, units=(32, 16, 8), embedding_dim=24, pooling="max_mean", dropout=0.2),
        ModelConfig(vocab_size=300, units=(16,), embedding_dim=8, pooling="last", ngram_buckets=1024, num_classes=5),
    ],
    ids=["tiny", "stacked", "linear-part-5-classes"],
)
def test_the_weights_counted_are_those_keras_builds(config):
    assert parameters(config) == build_model(config, lstm="keras").count_params()


def _reviews(lengths: list[int], seed: int) -> Split:
    rng = np.random.default_rng(seed)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return Split(rng.integers(2, 64, offsets[-1]).astype(np.int32), offsets, (np.arange(len(lengths)) % 2).astype(np.int32))


def _with_long_reviews() -> Prepared:
    """40 training reviews of 10 tokens and 2 of 3,000; validation and test: 10 of 10 and 1 of 3,000."""
    splits = {
        "train": _reviews([10] * 40 + [3000] * 2, 0),
        "val": _reviews([10] * 10 + [3000], 1),
        "test": _reviews([10] * 10 + [3000], 2),
    }
    vocabulary = ["", "[UNK]", *(f"w{i}" for i in range(2, 64))]
    return Prepared(splits, vocabulary, "x", DataFacts(classes=["neg", "pos"], sizes={k: len(v) for k, v in splits.items()}))


def _memory_for(tokens: int, config: TrainConfig) -> int:
    """The MiB that hold TINY's training at `tokens` per review and a few more (MiB rounds up)."""
    per_token = step_bytes_per_token(TINY, config.lstm) * max(config.batch_size, EVAL_SHARE * EVAL_BATCH)
    return math.ceil((BYTES_PER_WEIGHT * parameters(TINY) + tokens * per_token) / MIB)


def test_a_trial_trains_and_exports_reviews_cut_to_what_its_memory_holds(tmp_path):
    from models import load_checkpoint  # noqa: F401  (registers the layers model.keras holds)
    from runfiles.documents import Card
    from search.export import export_network

    data = _with_long_reviews()
    base = TrainConfig(epochs=1, batch_size=8, learning_rate=1e-2, lstm="keras")
    config = TrainConfig(**{**base.__dict__, "memory_mb": _memory_for(100, base)})
    kept = review_tokens(TINY, config, data)
    assert kept == tokens_kept(TINY, 8, EVAL_BATCH, config.memory_mb, "keras") and 100 <= kept < 3000
    history = train.train_and_evaluate(TINY, config, data.for_trials())
    epoch = history[0]
    assert epoch["review_tokens"] == kept and epoch["reviews_cut"] == 3  # 2 training, 1 validation
    assert round(epoch["tokens_per_s"] * epoch["epoch_s"]) == 40 * 10 + 2 * kept  # the tokens it really trained on

    network = build_model(TINY, lstm="keras")
    card = export_network(network, _params(), data, tmp_path / "best_model", Card(trial_id="trial_0000"), config)
    assert card.review_tokens == kept and card.train["max_len"] == 0
    assert Card.read(tmp_path / "best_model") == card  # written through its type, read back whole
    assert f'"output_sequence_length": {kept}' in (tmp_path / "best_model" / "model.keras").read_bytes().decode("latin-1")


def _params() -> dict:
    return {"depth": 1, "units": 8, "embedding_dim": 4, "pooling": "max", "dropout": 0.0, "vocab_size": 64, "max_len": 0}


def test_memory_cuts_only_where_the_longest_review_does_not_fit():
    data = _with_long_reviews()
    base = TrainConfig(batch_size=8, lstm="keras")
    holds_all = TrainConfig(**{**base.__dict__, "memory_mb": _memory_for(3000, base)})
    holds_100 = TrainConfig(**{**base.__dict__, "memory_mb": _memory_for(100, base)})
    assert review_tokens(TINY, base, data) == 0  # no bound: whole reviews
    assert review_tokens(TINY, holds_all, data) == 0  # the longest fits: whole reviews, no padding to a bound
    assert review_tokens(TINY, TrainConfig(**{**holds_100.__dict__, "max_len": 50}), data) == 50  # max_len cuts first
    assert 100 <= review_tokens(TINY, holds_100, data) < 3000
    assert train.reviews_cut(data, 0, review_tokens(TINY, holds_100, data)) == 3 and train.reviews_cut(data, 50, 50) == 0


def test_the_run_says_what_memory_cuts_in_its_widest_configuration(tmp_path):
    from runfiles.layout import RunDir
    from search.config import Resources, SearchConfig
    from search.console import Progress
    from search.data import DataConfig
    from search.session import Session

    data, search = _with_long_reviews(), SearchConfig(max_epochs=2, fixed={"vocab_size": 64})

    def session(trial_memory_mb: int) -> Session:
        resources = Resources(2, 0, 1, 0, 2, None, trial_memory_mb=trial_memory_mb)
        return Session(RunDir(tmp_path), search, DataConfig(source="x.csv"), data, resources, "", False, 0.0, Progress())

    facts = session(1500).memory_facts("fused")
    assert session(1500).train_base("auto").memory_mb == facts.training_mb < 1500
    assert facts.widest["batch_size"] == 128 and facts.widest["units"] == [128, 64, 32]
    assert 0 < facts.widest_tokens < 3000 and facts.reviews_longer == {"train": 2, "val": 1}
    line = facts.text()
    assert line.startswith("1,500 MiB per trial") and line.endswith("2 training and 1 validation reviews are longer")
    facts = session(10**6).memory_facts("fused")
    assert facts.widest_tokens == 0 and facts.text() == ""  # every review fits whole: no header line
