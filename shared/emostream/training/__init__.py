"""FER2013 data, training and evaluation."""

from emostream.errors import DatasetError
from emostream.training.evaluate import classification_report, predict_proba
from emostream.training.fer2013 import FaceDataset, load_fer2013
from emostream.training.trainer import TrainConfig, train

__all__ = [
    "DatasetError",
    "FaceDataset",
    "TrainConfig",
    "classification_report",
    "load_fer2013",
    "predict_proba",
    "train",
]
