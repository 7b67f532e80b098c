"""What a trial's memory holds: the tokens per review a training step may keep, from a measured estimate.

A trial given whole reviews (max_len 0) pads each batch to its longest review, so a few texts of
100,000 characters ask one batch for gigabytes. Each trial is therefore given at most the tokens per
review that its share of the machine's memory holds at its batch size and network width
(`tokens_kept`); reviews longer than that are cut, and the run says so (docs/search.md, "Memory").

The estimate is an upper envelope of peak resident memory measured on this project's CPU pipeline
(one traced training or evaluation step of `search.train`, the fused LSTM kernel or Keras's layers,
batches of 32 and 64 reviews of 1,024 and 4,096 tokens, embedding 16-256, one to three layers of
16-128 units, every pooling, the linear part at 1, 10 and 100 logits); re-measure one configuration
against it with `tools.stepmemory`:

    python -m tools.stepmemory --units 128,64,32 --embedding-dim 256 --batch-size 32 --tokens 4096

A trial on a GPU keeps its activations in the GPU's memory, which is not estimated here: there a
review is cut only by max_len, and a trial that outgrows its GPU raises and is retried, then errored.
"""

from __future__ import annotations

from models.config import ModelConfig

MIB = 2**20
STEP_BYTES = (1500, 8, 85)
"""Bytes per padded token of one training step with the fused kernel: a constant, per embedding
dimension, per LSTM unit (summed over the layers, both directions included): a least-squares fit
of the measurements (1221, 3.9, 76) rounded up until it bounds every one of them (they lie at
52-95% of it)."""
LINEAR_BYTES_PER_LOGIT = 16
"""Bytes per padded token and logit of the linear part (its word and bigram rows gathered, and
their gradients), where it has buckets."""
EVAL_SHARE = 0.55
"""An evaluation step's bytes per token against a training step's estimate (measured at most 0.53 of it)."""
KERAS_FACTOR = 1.5
"""Keras's LSTM layers on a CPU against the fused kernel (measured 1.29 at one layer of 64, 1.47 at 128, 64, 32)."""
WORKER_BYTES = 1024 * MIB
"""A trial's process besides its weights and batches: Ray's worker with TensorFlow loaded and its
steps traced (measured: 0.87 GiB peak for a trial of 16 units on 32-token reviews)."""
BYTES_PER_WEIGHT = 16
"""A weight, its gradient and Adam's two moments, float32 each."""
BYTES_PER_DATA_TOKEN = 4
"""The trial's own copy of the training and validation ids (`Split.with_vocab`), int32."""


def parameters(model: ModelConfig) -> int:
    """Weights of `models.build_model(model)`: embedding, BiLSTM layers, pooling, dense layers, linear part."""
    count, width = model.vocab_size * model.embedding_dim, model.embedding_dim
    for units in model.units:
        count += 2 * 4 * units * (width + units + 1)
        width = 2 * units
    width *= 2 if model.pooling == "max_mean" else 1
    count += (width + 1) * model.dense_units + (model.dense_units + 1) * model.logits
    if model.ngram_buckets:
        count += (model.vocab_size + model.ngram_buckets) * model.logits
    return count


def step_bytes_per_token(model: ModelConfig, lstm: str = "fused") -> float:
    """Bytes per padded token (batch x time) of one training step of `model` (`STEP_BYTES`), with
    `lstm` "fused" or "keras" (`KERAS_FACTOR`)."""
    constant, per_dimension, per_unit = STEP_BYTES
    per_token = constant + per_dimension * model.embedding_dim + per_unit * sum(model.units)
    if model.ngram_buckets:
        per_token += LINEAR_BYTES_PER_LOGIT * model.logits
    return per_token * (KERAS_FACTOR if lstm == "keras" else 1.0)


def training_memory_mb(trial_memory_mb: int, data_tokens: int) -> int:
    """Of a trial's share of memory (MiB), what its network, optimizer and batches may use: less
    its process (`WORKER_BYTES`) and its copy of `data_tokens` training and validation ids; 0 (no
    bound) when the share is unknown (0)."""
    if not trial_memory_mb:
        return 0
    return max(1, int((trial_memory_mb * MIB - WORKER_BYTES - BYTES_PER_DATA_TOKEN * data_tokens) // MIB))


def tokens_kept(model: ModelConfig, batch_size: int, eval_batch: int, memory_mb: int, lstm: str = "fused") -> int:
    """The most tokens per review for which training `model` fits in `memory_mb` MiB
    (`training_memory_mb`): its weights with their gradients and Adam's moments
    (`BYTES_PER_WEIGHT`), and the larger of a training step of `batch_size` reviews and an
    evaluation step of `eval_batch` (`EVAL_SHARE`), each padded to that many tokens. At least 1 (a
    configuration whose weights alone outgrow the memory is not helped by cutting reviews)."""
    per_token = step_bytes_per_token(model, lstm) * max(batch_size, EVAL_SHARE * eval_batch)
    return max(1, int((memory_mb * MIB - BYTES_PER_WEIGHT * parameters(model)) // per_token))
