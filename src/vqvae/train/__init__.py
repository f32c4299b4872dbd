"""Training: the loop shared by every model, checkpoints, data order, data parallelism."""

from .checkpoint import CheckpointError
from .distributed import DistInfo
from .loop import Task, TrainConfig, Trainer, TrainingDiverged, adam, native_bf16
from .sampler import ResumableBatches

__all__ = [
    "CheckpointError",
    "DistInfo",
    "ResumableBatches",
    "Task",
    "TrainConfig",
    "Trainer",
    "TrainingDiverged",
    "adam",
    "native_bf16",
]
