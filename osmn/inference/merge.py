"""Merging per-object probabilities into one label map, as the original's merge scripts do.

Rule (original `davis_eval.py` / `ytvos_merge_result.py`; spec "Multi-object"): stack a constant
background score of 0.5 (config.BACKGROUND_SCORE) in front of the objects' foreground
probabilities, in increasing id order, and take the per-pixel argmax. Ties go to the earlier entry
(numpy argmax), so a pixel whose best probability is exactly 0.5 stays background, consistent
with the strict `probability > 0.5` threshold of a single object.
"""

from __future__ import annotations

import numpy as np

from osmn import config
from osmn.inference.object_manager import ObjectManager


def winner_positions(probabilities: np.ndarray) -> np.ndarray:
    """[K, H, W] float probabilities -> [H, W] int: 0 background, k + 1 for object position k."""
    probabilities = np.asarray(probabilities, np.float32)
    background = np.full((1,) + probabilities.shape[1:], config.BACKGROUND_SCORE, np.float32)
    return np.argmax(np.concatenate([background, probabilities], axis=0), axis=0)


def merge_probabilities(probabilities: np.ndarray, objects: ObjectManager) -> np.ndarray:
    """Per-object probabilities [K, H, W] (batch order of `objects`) -> label map [H, W] uint8."""
    return objects.labels_from_positions(winner_positions(probabilities))
