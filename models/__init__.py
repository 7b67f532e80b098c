"""The BiLSTM text-classifier family: typed configs, one builder, tutorial presets, checkpoints.

Keras and TensorFlow only, plus the LSTM kernel they compile for this machine
(`models.kernels`): nothing here knows of Ray, Optuna or run directories. The configs
(`models.config`) import no TensorFlow; the Keras parts load when first used, so
`from models import ModelConfig` stays cheap.
"""

import importlib

from models.config import (
    EMBEDDING_USES,
    LSTM_CHOICES,
    LSTM_IMPLEMENTATIONS,
    POOLINGS,
    PRESETS,
    TUTORIAL_BATCH_SIZE,
    TUTORIAL_EPOCHS,
    TUTORIAL_LEARNING_RATE,
    LstmChoice,
    ModelConfig,
    lstm_for,
    one_of,
    stacked_units,
)

_KERAS_PARTS = {
    "FusedBiLSTM": "models.fused",
    "HashedNgramLogits": "models.layers",
    "MaskedPooling": "models.layers",
    "build_model": "models.build",
    "make_vectorizer": "models.build",
    "mean_logits": "models.build",
    "resolve_lstm": "models.build",
    "uses_fused": "models.build",
    "with_vectorizer": "models.build",
    "load_checkpoint": "models.checkpoint",
    "save_checkpoint": "models.checkpoint",
}

__all__ = [
    "EMBEDDING_USES",
    "LSTM_CHOICES",
    "LSTM_IMPLEMENTATIONS",
    "POOLINGS",
    "PRESETS",
    "TUTORIAL_BATCH_SIZE",
    "TUTORIAL_EPOCHS",
    "TUTORIAL_LEARNING_RATE",
    "LstmChoice",
    "ModelConfig",
    "lstm_for",
    "one_of",
    "stacked_units",
    *_KERAS_PARTS,
]


def __getattr__(name: str):
    """Load a Keras part (and TensorFlow with it) on first use."""
    if name in _KERAS_PARTS:
        return getattr(importlib.import_module(_KERAS_PARTS[name]), name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")
