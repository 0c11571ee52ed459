"""Emotion models: the Residual Masking Network, its registry and checkpoints."""

from emostream.errors import CheckpointError
from emostream.models.checkpoint import (
    DEFAULT_CHECKPOINT,
    EmotionClassifier,
    EnsembleClassifier,
    load_checkpoint,
    load_models,
    save_checkpoint,
    set_temperature,
    untrained_model,
)
from emostream.models.registry import EMOTIONS, ModelSpec, Preprocessing, get_spec, list_specs
from emostream.models.rmn import MaskingBlock, ResMasking, RMNConfig

__all__ = [
    "DEFAULT_CHECKPOINT",
    "EMOTIONS",
    "CheckpointError",
    "EmotionClassifier",
    "EnsembleClassifier",
    "MaskingBlock",
    "ModelSpec",
    "Preprocessing",
    "RMNConfig",
    "ResMasking",
    "get_spec",
    "list_specs",
    "load_checkpoint",
    "load_models",
    "save_checkpoint",
    "set_temperature",
    "untrained_model",
]
