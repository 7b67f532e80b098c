"""The BiLSTM text-classifier family: typed configs, one builder, tutorial presets.

Keras only: nothing here knows of Ray, Optuna or files.
"""

from models.build import build_model, make_vectorizer, with_vectorizer
from models.config import (
    PRESETS,
    TUTORIAL_BATCH_SIZE,
    TUTORIAL_LEARNING_RATE,
    ModelConfig,
    stacked_units,
)

__all__ = [
    "PRESETS",
    "TUTORIAL_BATCH_SIZE",
    "TUTORIAL_LEARNING_RATE",
    "ModelConfig",
    "build_model",
    "make_vectorizer",
    "stacked_units",
    "with_vectorizer",
]
