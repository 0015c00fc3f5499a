"""The trainer shared by every family, and its settings."""

from aekit.training.config import TrainConfig
from aekit.training.data import TensorData, TrainData
from aekit.training.trainer import CHECKPOINT, METRICS, Trainer, evaluate

__all__ = ["CHECKPOINT", "METRICS", "TensorData", "TrainConfig", "TrainData", "Trainer", "evaluate"]
