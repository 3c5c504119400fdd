"""Label masks of inference: the object ids of a label map. Reading and writing masks lives in
`osmn.io` (one reading rule for the whole project, documented in docs/inference.md); the names
are re-exported here for the inference API.

A label mask is `[H, W] uint8`: 0 background, 1..254 object ids, 255 void (DAVIS 2017).
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from osmn import config
from osmn.io import atomic_save, davis_palette, read_mask, write_mask  # noqa: F401 (re-exported)


def object_ids(labels: np.ndarray) -> Tuple[int, ...]:
    """Sorted object ids of a label mask (every value except 0 and void)."""
    values = np.unique(labels)
    return tuple(int(v) for v in values if v not in (0, config.VOID_LABEL))
