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
    """[K, H, W] float probabilities -> [H, W] int: 0 background, k + 1 for object position k.

    The argmax over [background, object 1, ..., object K] taken as a running maximum, one
    object at a time: a later entry wins only when strictly greater, which is argmax's
    first-entry rule for ties. Same result, without stacking a [K + 1, H, W] array and
    reducing over its first axis (6-9 ms per 854x480 frame).
    """
    probabilities = np.asarray(probabilities, np.float32)
    best = np.full(probabilities.shape[1:], config.BACKGROUND_SCORE, np.float32)
    winners = np.zeros(probabilities.shape[1:], np.int64)
    for k, probability in enumerate(probabilities):
        better = probability > best
        winners[better] = k + 1
        np.maximum(best, probability, out=best)
    return winners


def merge_probabilities(probabilities: np.ndarray, objects: ObjectManager) -> np.ndarray:
    """Per-object probabilities [K, H, W] (batch order of `objects`) -> label map [H, W] uint8."""
    return objects.labels_from_positions(winner_positions(probabilities))
