"""Training OSMN: the step, the loop, checkpoints, learning-rate schedule, devices and summaries."""

from osmn.training.checkpoints import RunCheckpoints, read_run_config, write_run_config
from osmn.training.devices import make_strategy
from osmn.training.schedule import learning_rate_at, make_optimizer
from osmn.training.step import train_step
from osmn.training.trainer import TrainingDiverged, TrainResult, copy_weights, train

__all__ = ["RunCheckpoints", "read_run_config", "write_run_config", "make_strategy",
           "learning_rate_at", "make_optimizer", "TrainingDiverged", "TrainResult",
           "copy_weights", "train", "train_step"]
