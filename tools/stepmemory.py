"""Measure one training step's and one evaluation step's peak memory per token against `search.memory`'s estimate.

    python -m tools.stepmemory --units 128,64,32 --embedding-dim 256 --batch-size 32 --tokens 4096

Builds the network (`models.build_model`), traces `search.train`'s steps, runs one step on a batch of
8 tokens, then one on a batch of --tokens per review, each kind in a fresh process, and prints the
peak resident memory the second step added, per padded token (batch x tokens), beside the estimate
(`search.memory.step_bytes_per_token`; an evaluation step: `EVAL_SHARE` of it). Linux only (/proc).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

from models.config import LSTM_IMPLEMENTATIONS, ModelConfig
from search.memory import EVAL_SHARE, step_bytes_per_token


@dataclass(frozen=True)
class Measured:
    """One step's peak memory above the process's resident memory before it, per padded token."""

    training: float
    """Bytes per token of a training step."""
    evaluation: float
    """Bytes per token of an evaluation step."""


def measure(model: ModelConfig, batch_size: int, tokens: int, lstm: str) -> Measured:
    """Peak resident memory of one training step and one evaluation step of `model` on a batch of
    `batch_size` random reviews of `tokens` tokens, each in a fresh process (Linux: /proc's VmHWM,
    reset after a warm-up step)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with context.Pool(1, maxtasksperchild=1) as pool:
        train = pool.apply(_step_peak, (model.to_dict(), batch_size, tokens, lstm, True))
    with context.Pool(1, maxtasksperchild=1) as pool:
        evaluation = pool.apply(_step_peak, (model.to_dict(), batch_size, tokens, lstm, False))
    return Measured(train / (batch_size * tokens), evaluation / (batch_size * tokens))


def _step_peak(model: dict, batch_size: int, tokens: int, lstm: str, training: bool) -> int:
    import keras
    import numpy as np

    from models import build_model
    from search.train import compiled_eval_step, compiled_train_step, configure_tensorflow

    configure_tensorflow(1)
    config = ModelConfig.from_dict(model)
    network = build_model(config, lstm=lstm)
    step = compiled_train_step(network, keras.optimizers.Adam(1e-3)) if training else compiled_eval_step(network)
    rng = np.random.default_rng(0)

    def run(time_steps: int) -> None:
        ids = rng.integers(2, config.vocab_size, size=(batch_size, time_steps)).astype(np.int32)
        labels = rng.integers(0, config.num_classes, size=batch_size).astype(np.int32)
        [np.asarray(out) for out in step(ids, labels)]

    run(8)
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # the peak (VmHWM) starts again from the resident memory now
    before = _status_bytes("VmRSS")
    run(tokens)
    return _status_bytes("VmHWM") - before


def _status_bytes(key: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith(key + ":"))


def main(argv: list[str] | None = None) -> int:
    from runfiles.cli import ArgumentParser

    parser = ArgumentParser(prog="python -m tools.stepmemory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", default="64", help="LSTM units per layer, comma-separated (default: %(default)s)")
    parser.add_argument("--embedding-dim", type=int, default=128, help="(default: %(default)s)")
    parser.add_argument("--pooling", default="max", help="(default: %(default)s)")
    parser.add_argument("--ngram-buckets", type=int, default=0, help="(default: %(default)s)")
    parser.add_argument("--classes", type=int, default=2, help="(default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=32, help="(default: %(default)s)")
    parser.add_argument("--tokens", type=int, default=4096, help="tokens per review of the batch (default: %(default)s)")
    parser.add_argument("--lstm", choices=LSTM_IMPLEMENTATIONS, default="fused", help="(default: %(default)s)")
    args = parser.parse_args(argv)
    model = ModelConfig(
        vocab_size=20000,
        embedding_dim=args.embedding_dim,
        units=tuple(int(u) for u in args.units.split(",")),
        pooling=args.pooling,
        ngram_buckets=args.ngram_buckets,
        num_classes=args.classes,
    )
    measured = measure(model, args.batch_size, args.tokens, args.lstm)
    estimate = step_bytes_per_token(model, args.lstm)
    print(
        json.dumps(
            {
                "training_bytes_per_token": round(measured.training),
                "evaluation_bytes_per_token": round(measured.evaluation),
                "estimate_bytes_per_token": round(estimate),
                "evaluation_estimate_bytes_per_token": round(EVAL_SHARE * estimate),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
