"""Training checkpoints: model, optimizer and step, kept atomically, resumed by default.

Layout of a run directory:

    RUN_DIR/train_config.json         the final TrainConfig (recipe + overrides), JSON
    RUN_DIR/checkpoints/ckpt-<step>.* tf.train.Checkpoint(model, optimizer, step)
    RUN_DIR/checkpoints/checkpoint    CheckpointManager's state: which checkpoints exist
    RUN_DIR/model.keras               the model alone (what `tools/infer.py --checkpoint` reads)

Atomicity: TF writes a checkpoint's data and index to temporary files and renames them into
place, and `CheckpointManager` only then rewrites its `checkpoint` state file (itself through a
temporary file and a rename) and deletes the oldest checkpoint. A process killed while saving
therefore leaves the state file pointing at the previous complete checkpoint (at worst a
stray temporary file). `tests/test_training_checkpoints.py` kills writers mid-save to check this.
`model.keras` and `train_config.json` are written through a temporary file and `os.replace`.

Several workers (`MultiWorkerMirroredStrategy`): every worker restores from RUN_DIR (the
chief's checkpoints), and every worker takes part in each save, as TensorFlow asks of
multi-worker saving, but only the chief writes to RUN_DIR; the others write to a scratch
folder that is deleted at once.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile
from typing import Optional

import tensorflow as tf

from osmn.config import TrainConfig
from osmn.errors import UserError
from osmn.io import atomic_write
from osmn.model import OSMN, save_osmn

CONFIG_NAME = "train_config.json"
MODEL_NAME = "model.keras"
CHECKPOINT_SUBDIR = "checkpoints"


def write_text_atomically(path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same folder and a rename."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text)


class RunCheckpoints:
    """The checkpoints of one training run: every model variable, the optimizer, the step.

    Args:
        run_dir: str or path. The run directory (created if needed).
        model: the OSMN being trained.
        optimizer: its optimizer, already built (so that its slots exist before a restore).
        step: int64 `tf.Variable`, completed optimizer steps.
        keep: int. Checkpoints kept (the oldest are deleted).
        is_chief: bool. False on the non-chief workers of a multi-worker run: `save` then writes
            nothing to `run_dir` (`osmn.training.devices.is_chief`). Defaults to True.
    """

    def __init__(self, run_dir, model: OSMN, optimizer, step: tf.Variable, keep: int,
                 is_chief: bool = True):
        self.run_dir = pathlib.Path(run_dir)
        self.model = model
        self.step = step
        self.is_chief = is_chief
        # A Keras 3 model is not a TF trackable: `Checkpoint(model=model)` would save only what
        # the optimizer references (the trainable weights) and silently drop the batch-norm
        # moving statistics and the dropout seed-generator states. List every variable instead,
        # by position (their Keras names depend on how many layers the process built before).
        self.checkpoint = tf.train.Checkpoint(
            model_variables=[v.value for v in model.variables], optimizer=optimizer, step=step)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, str(self.run_dir / CHECKPOINT_SUBDIR), max_to_keep=keep)

    @property
    def latest(self) -> Optional[str]:
        """Prefix of the newest complete checkpoint, or None."""
        return self.manager.latest_checkpoint

    def restore_latest(self) -> int:
        """Restore model, optimizer and step from the newest checkpoint; returns the step.

        Raises:
            UserError: the checkpoint does not match this model (e.g. other width or ablation).
        """
        path = self.latest
        try:
            self.checkpoint.restore(path).assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as error:
            raise UserError(f"{path}: cannot resume from this checkpoint "
                            f"({type(error).__name__}: {str(error).splitlines()[0]})") from error
        return int(self.step.numpy())

    def save(self) -> str:
        """Save a checkpoint numbered by the step, then `model.keras`; returns the prefix.

        A non-chief worker writes the same checkpoint to a scratch folder, deletes it and
        returns the prefix the chief writes.
        """
        step = int(self.step.numpy())
        if not self.is_chief:
            scratch = tempfile.mkdtemp(prefix="osmn-worker-checkpoint-")
            try:
                self.checkpoint.write(os.path.join(scratch, "ckpt"))
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            return str(self.run_dir / CHECKPOINT_SUBDIR / f"ckpt-{step}")
        prefix = self.manager.save(checkpoint_number=step)
        save_osmn(self.model, self.run_dir / MODEL_NAME)
        return prefix


def read_run_config(run_dir) -> Optional[TrainConfig]:
    """The TrainConfig saved in `run_dir`, or None if there is none."""
    path = pathlib.Path(run_dir) / CONFIG_NAME
    if not path.exists():
        return None
    try:
        return TrainConfig.from_json(path.read_text())
    except (ValueError, TypeError, KeyError) as error:
        raise UserError(f"{path}: not a readable training config ({error})") from error


def write_run_config(run_dir, train_config: TrainConfig) -> None:
    """Write `train_config` as JSON beside the checkpoints, atomically."""
    write_text_atomically(pathlib.Path(run_dir) / CONFIG_NAME, train_config.to_json() + "\n")
