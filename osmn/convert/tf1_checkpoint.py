"""Convert one of the authors' TF1 OSMN checkpoints into this project's Keras model.

Every checkpoint variable is accounted for by name (spec `original_code.md`, "Checkpoint
variable names"; the checkpoint's own list is authoritative):

* model weights (`tf1_names.tf1_name_map`): shape-checked and copied, no transposes;
* the fixed upsampling kernels `osmn/seg/score-multi{j}-up/weights`, when present: checked to
  equal `osmn.model.bilinear_kernel` (ours are constants and never loaded);
* training state, skipped by rule: `global_step`, `beta1_power`, `beta2_power`, and the Adam
  slots `<var>/Adam`, `<var>/Adam_1` of model weights;
* anything else is unexpected. Unexpected or missing names, wrong shapes and wrong upsampling
  kernels all fail together in one `UserError` that lists them; nothing is silently dropped.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Tuple

import numpy as np
import keras
import tensorflow as tf

from osmn.config import ModelConfig
from osmn.convert.tf1_names import (fixed_upsampling_kernels, infer_model_config, skip_reason,
                                    tf1_name_map)
from osmn.errors import UserError
from osmn.model import OSMN
from osmn.progress import Progbar

# Largest |difference| accepted between a stored upsampling kernel and the bilinear kernel: the
# original computes it in float64 numpy and stores float32, so it should be exact.
FIXED_KERNEL_ATOL = 1e-6


@dataclasses.dataclass(frozen=True)
class ConversionReport:
    """What `convert_tf1_checkpoint` did.

    Attributes:
        checkpoint: str. The checkpoint prefix.
        model_config: ModelConfig. The architecture used (inferred from the shapes unless given).
        loaded: tuple of (TF1 name, Keras path), every model weight.
        checked_fixed: tuple of str. Upsampling kernels found and verified.
        skipped: tuple of (TF1 name, reason). Training state left out by rule.
    """

    checkpoint: str
    model_config: ModelConfig
    loaded: Tuple[Tuple[str, str], ...]
    checked_fixed: Tuple[str, ...]
    skipped: Tuple[Tuple[str, str], ...]

    def __str__(self) -> str:
        reasons = {}
        for _, reason in self.skipped:
            reasons[reason] = reasons.get(reason, 0) + 1
        skipped = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items())) or "nothing"
        return (f"{self.checkpoint}: loaded {len(self.loaded)} weights, verified "
                f"{len(self.checked_fixed)} fixed upsampling kernels, skipped {skipped}; "
                f"model config {self.model_config.to_dict()}")


def keras_weights(model: OSMN) -> Dict[str, keras.Variable]:
    """Keras path relative to the model ("segmentation_network/conv1_1/kernel") -> variable."""
    return {w.path.split("/", 1)[1]: w for w in model.weights}


class _CheckedReader:
    """A checkpoint reader whose `get_tensor` turns a truncated or corrupt `.data-*` file (which
    the index alone does not reveal) into a `UserError` naming the checkpoint."""

    def __init__(self, reader, prefix: str):
        self._reader, self._prefix = reader, prefix

    def __getattr__(self, name):
        return getattr(self._reader, name)

    def get_tensor(self, name):
        try:
            return self._reader.get_tensor(name)
        except Exception as error:  # DataLossError, OutOfRangeError, ... from a cut data file
            raise UserError(f"{self._prefix}: the checkpoint's data file is truncated or corrupt "
                            f"(reading {name}: {type(error).__name__})") from None


def _read(prefix: str):
    try:
        return _CheckedReader(tf.train.load_checkpoint(prefix), prefix)
    except Exception as error:  # NotFoundError, DataLossError, ValueError, ...
        raise UserError(f"{prefix}: not a readable TF checkpoint ({type(error).__name__}: "
                        f"{str(error).splitlines()[0] if str(error) else ''})") from error


def _listing(title: str, names) -> str:
    return f"{title} ({len(names)}): {', '.join(names)}"


def convert_tf1_checkpoint(prefix, model_config: Optional[dict] = None,
                           verbose: bool = False) -> Tuple[OSMN, ConversionReport]:
    """Build an OSMN model holding the weights of a TF1 checkpoint.

    Args:
        prefix: TF1 checkpoint prefix (e.g. `.../osmn.ckpt-300000`, without `.index`).
        model_config: optional dict of `ModelConfig` fields. Fields given win over what is
            inferred from the checkpoint (`infer_model_config`); the training-only switches
            `train_seg` and `fix_bn` are not recorded in a checkpoint and come from here.
        verbose: show a progress bar while copying.

    Returns:
        (model, report). The model is built and holds every checkpoint weight.

    Raises:
        UserError: unreadable checkpoint; missing, unexpected or wrongly shaped variables; or
            stored upsampling kernels that differ from the bilinear kernel. The message lists
            every offending name.
    """
    prefix = str(prefix)
    reader = _read(prefix)
    shapes = {name: tuple(shape) for name, shape in reader.get_variable_to_shape_map().items()}
    cfg = infer_model_config(shapes, **dict(model_config or {}))
    names = tf1_name_map(cfg)
    fixed = fixed_upsampling_kernels()
    model = OSMN(cfg)
    variables = keras_weights(model)
    uncovered = sorted(set(variables) - set(names.values()))
    if uncovered:  # the table and the model disagree: a bug here, not a user error
        raise RuntimeError(f"no TF1 name for Keras weights {uncovered}")

    skipped, unexpected = [], []
    for name in sorted(shapes):
        if name in names or name in fixed:
            continue
        reason = skip_reason(name, names)
        if reason:
            skipped.append((name, reason))
        else:
            unexpected.append(name)
    missing = sorted(set(names) - set(shapes))
    wrong_shape = [f"{name} {list(shapes[name])} (model needs "
                   f"{list(variables[names[name]].shape)})"
                   for name in sorted(names) if name in shapes
                   and shapes[name] != tuple(variables[names[name]].shape)]
    wrong_fixed = [name for name, kernel in sorted(fixed.items()) if name in shapes and (
        shapes[name] != kernel.shape
        or not np.allclose(reader.get_tensor(name), kernel, rtol=0, atol=FIXED_KERNEL_ATOL))]
    problems = [_listing(title, found) for title, found in (
        ("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape),
        ("upsampling kernels that are not the bilinear kernel", wrong_fixed)) if found]
    if problems:
        raise UserError(f"{prefix}: cannot convert to OSMN {cfg.to_dict()}: "
                        + "; ".join(problems))

    progress = Progbar(len(names), unit_name="weight") if verbose else None
    loaded = []
    for name, path in sorted(names.items()):
        variables[path].assign(reader.get_tensor(name).astype(variables[path].dtype))
        loaded.append((name, path))
        if progress is not None:
            progress.add(1)
    report = ConversionReport(checkpoint=prefix, model_config=cfg, loaded=tuple(loaded),
                              checked_fixed=tuple(n for n in sorted(fixed) if n in shapes),
                              skipped=tuple(skipped))
    return model, report
