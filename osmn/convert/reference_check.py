"""End-to-end check of a conversion against outputs of the original graph (`--check REF.npz`).

The `.npz` holds float32 arrays, inputs already in the model's convention (BGR minus the mean,
`osmn.preprocessing.to_model_input`):

    visual_guide   [B, 224, 224, 3]   input of the visual modulator
    image          [B, H, W, 3]       input of the segmentation network
    spatial_guide  [B, H, W, 1]       Gaussian guide in [0, 1]
    gamma          [B, G]             expected visual-modulator output (G = 3840 by default)
    logits         [B, H, W, 1]       expected segmentation output, before the sigmoid

(the issue asks for B = 1; any B works.) The model runs in inference mode (no dropout, batch
norm with its moving statistics), as the original's test graph does.
"""

from __future__ import annotations

import dataclasses
import pathlib
import zipfile
from typing import Dict

import numpy as np

from osmn import config
from osmn.errors import UserError

REFERENCE_KEYS = ("visual_guide", "image", "spatial_guide", "gamma", "logits")


@dataclasses.dataclass(frozen=True)
class ReferenceResult:
    """Largest absolute differences between the model's and the reference's outputs."""

    gamma_max_abs_diff: float
    logits_max_abs_diff: float

    def passed(self, tolerance: float) -> bool:
        """True if the logits agree within `tolerance` (gamma is reported, not gated)."""
        return self.logits_max_abs_diff <= tolerance

    def __str__(self) -> str:
        return (f"max |gamma - reference| = {self.gamma_max_abs_diff:.3g}, "
                f"max |logits - reference| = {self.logits_max_abs_diff:.3g}")


def _shape_problem(arrays: Dict[str, np.ndarray], gamma_size: int) -> str:
    vg, image = arrays["visual_guide"], arrays["image"]
    size = config.VISUAL_GUIDE_SIZE
    batch = vg.shape[0] if vg.ndim else None
    if vg.shape != (batch, size, size, 3):
        return f"visual_guide has shape {vg.shape}, expected [B, {size}, {size}, 3]"
    if image.ndim != 4 or image.shape[0] != batch or image.shape[-1] != 3:
        return f"image has shape {image.shape}, expected [{batch}, H, W, 3]"
    height, width = image.shape[1:3]
    expected = {"spatial_guide": (batch, height, width, 1), "gamma": (batch, gamma_size),
                "logits": (batch, height, width, 1)}
    for key, shape in expected.items():
        if arrays[key].shape != shape:
            return f"{key} has shape {arrays[key].shape}, expected {list(shape)}"
    return ""


def load_reference(path, gamma_size: int) -> Dict[str, np.ndarray]:
    """Read and validate a reference `.npz` (format in the module docstring).

    Args:
        path: the `.npz` file.
        gamma_size: G of the model being checked (`OSMN.gamma_size`).

    Returns:
        {key: float32 array} for the five `REFERENCE_KEYS`.

    Raises:
        UserError: missing/unreadable file, missing key, non-float array, or a shape mismatch.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise UserError(f"{path}: reference file not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise UserError(f"{path}: not a readable .npz ({type(error).__name__})") from error
    missing = [key for key in REFERENCE_KEYS if key not in arrays]
    if missing:
        raise UserError(f"{path}: missing arrays {', '.join(missing)} (needs "
                        f"{', '.join(REFERENCE_KEYS)})")
    for key in REFERENCE_KEYS:
        if not np.issubdtype(arrays[key].dtype, np.floating):
            raise UserError(f"{path}: {key} has dtype {arrays[key].dtype}, expected float32")
    problem = _shape_problem(arrays, gamma_size)
    if problem:
        raise UserError(f"{path}: {problem}")
    return {key: arrays[key].astype(np.float32) for key in REFERENCE_KEYS}


def model_outputs(model, reference: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Run `model` in inference mode on the reference inputs -> {"gamma", "logits"} float32."""
    gamma = model.gamma(reference["visual_guide"], training=False)
    logits = model.segment(reference["image"], reference["spatial_guide"], gamma,
                           training=False)
    return {"gamma": np.asarray(gamma, np.float32), "logits": np.asarray(logits, np.float32)}


def check_reference(model, path) -> ReferenceResult:
    """Compare `model` with the reference outputs stored in `path`.

    Returns:
        `ReferenceResult` with the largest absolute gamma and logits differences.
    """
    reference = load_reference(path, model.gamma_size)
    outputs = model_outputs(model, reference)
    return ReferenceResult(
        gamma_max_abs_diff=float(np.max(np.abs(outputs["gamma"] - reference["gamma"]))),
        logits_max_abs_diff=float(np.max(np.abs(outputs["logits"] - reference["logits"]))))
