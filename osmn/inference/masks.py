"""Label masks of inference: the object ids of a label map. Reading and writing masks lives in
`osmn.io` (one reading rule for the whole project, documented in docs/inference.md); the names
are re-exported here for the inference API.

A label mask is `[H, W] uint8`: 0 background, 1..254 object ids, 255 void (DAVIS 2017).
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from osmn import config
from osmn.errors import UserError
from osmn.io import atomic_save, davis_palette, read_mask, write_mask  # noqa: F401 (re-exported)


def object_ids(labels: np.ndarray) -> Tuple[int, ...]:
    """Sorted object ids of a label mask (every value except 0 and void)."""
    values = np.unique(labels)
    return tuple(int(v) for v in values if v not in (0, config.VOID_LABEL))


def check_mask(labels: np.ndarray, frame_shape, name, frame_name=None) -> Tuple[int, ...]:
    """The object ids of a user's mask after the checks every mask to segment from passes.

    Args:
        labels: the label mask, [H, W].
        frame_shape: the shape of its frame, [H, W, ...].
        name: what the error names (the mask file, or e.g. "frame 5").
        frame_name: optional, the frame's file, named in the size error.

    Raises:
        UserError: `labels` is not of the frame's size, or holds no object.
    """
    height, width = frame_shape[:2]
    if labels.shape != (height, width):
        size = f"{labels.shape[1] if labels.ndim > 1 else '?'}x{labels.shape[0]}"
        of = f" of {frame_name}" if frame_name else ""
        raise UserError(f"{name}: mask size {size} differs from the frame size "
                        f"{width}x{height}{of}")
    ids = object_ids(labels)
    if not ids:
        raise UserError(f"{name}: the mask holds no object (only background/void)")
    return ids
