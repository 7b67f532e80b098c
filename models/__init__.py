"""The BiLSTM text-classifier family: typed configs, one builder, tutorial presets.

Keras and TensorFlow only, plus the LSTM kernel they compile for this machine
(`models.kernels`): nothing here knows of Ray, Optuna or run directories.
"""

from models.build import build_model, make_vectorizer, with_vectorizer
from models.fused import FusedBiLSTM
from models.config import (
    PRESETS,
    TUTORIAL_BATCH_SIZE,
    TUTORIAL_LEARNING_RATE,
    ModelConfig,
    stacked_units,
)

__all__ = [
    "FusedBiLSTM",
    "PRESETS",
    "TUTORIAL_BATCH_SIZE",
    "TUTORIAL_LEARNING_RATE",
    "ModelConfig",
    "build_model",
    "make_vectorizer",
    "stacked_units",
    "with_vectorizer",
]
