"""Region similarity J and boundary accuracy F, and their statistics, as the DAVIS benchmark.

Definitions follow the official DAVIS 2017 evaluation code (`davis2017-evaluation`:
`davis2017/metrics.py`, `davis2017/utils.py`), reimplemented with numpy:

* J (`db_eval_iou`): |S & G| / |S | G| over the pixels that are not void; 1 when the union is
  empty (both masks empty).
* F (`f_measure`): boundaries by `seg2bmap` (a pixel is a boundary pixel when it differs from its
  right, lower or lower-right neighbour; the last row compares only to the right, the last column
  only downwards, the bottom-right pixel never is); the tolerance is a disk of radius
  ceil(0.008 x image diagonal) pixels (bound_th = 0.008; 8 px at 854x480); precision = fraction
  of the result's boundary pixels within the dilated ground-truth boundary, recall = fraction of
  the ground truth's boundary pixels within the dilated result boundary; F = 2PR / (P + R), 0 when
  P + R = 0; an empty result boundary gives P = 1, R = 0, an empty ground-truth boundary P = 0,
  R = 1, both empty P = R = 1. Void pixels are removed from both masks before the boundaries.
* Statistics (`db_statistics`) over one object's per-frame values: mean; recall = fraction of
  frames with value > 0.5; decay = mean of the first quarter minus mean of the last quarter,
  with the official bins: ids = round(linspace(1, n, 5)) - 1 and bin i = values[ids[i]:ids[i+1]+1]
  (neighbouring bins share their boundary frame). The official code casts ids to uint8, which
  wraps above 256 frames; we keep them as integers.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np

BOUND_TH = 0.008  # davis2017-evaluation `f_measure`: tolerance as a fraction of the diagonal.
DECAY_BINS = 4  # davis2017-evaluation `db_statistics`: N_bins.
RECALL_THRESHOLD = 0.5  # davis2017-evaluation `db_statistics`: recall = mean(values > 0.5).


def _void(mask: np.ndarray, void: Optional[np.ndarray]) -> np.ndarray:
    return np.zeros(mask.shape, bool) if void is None else np.asarray(void, bool)


def jaccard(annotation: np.ndarray, segmentation: np.ndarray,
            void: Optional[np.ndarray] = None) -> np.ndarray:
    """Region similarity J.

    Args:
        annotation, segmentation: [..., H, W] bool (any leading frame axes).
        void: optional [..., H, W] bool; these pixels are ignored.

    Returns:
        float64 array of the leading shape (a 0-d array for single masks).
    """
    annotation = np.asarray(annotation, bool)
    segmentation = np.asarray(segmentation, bool)
    keep = ~_void(annotation, void)
    inter = np.sum(annotation & segmentation & keep, axis=(-2, -1))
    union = np.sum((annotation | segmentation) & keep, axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        j = np.where(union == 0, 1.0, inter / np.maximum(union, 1))
    return np.asarray(j, np.float64)


def seg2bmap(segmentation: np.ndarray) -> np.ndarray:
    """Boundary map of a binary mask [H, W] -> [H, W] bool (official `_seg2bmap`, same size)."""
    seg = np.asarray(segmentation, bool)
    east = np.zeros_like(seg)
    south = np.zeros_like(seg)
    south_east = np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    boundary = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    boundary[-1, :] = seg[-1, :] ^ east[-1, :]
    boundary[:, -1] = seg[:, -1] ^ south[:, -1]
    boundary[-1, -1] = False
    return boundary


def disk_dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation of [H, W] bool by the disk x^2 + y^2 <= radius^2 (skimage `disk`).

    Row by row of the disk: a horizontal run of half-width floor(sqrt(r^2 - dy^2)) via cumulative
    sums, shifted by dy. Pixels outside the image count as background.
    """
    mask = np.asarray(mask, bool)
    height, width = mask.shape
    radius = int(radius)
    padded = np.zeros((height + 2 * radius, width + 2 * radius + 1), np.int32)
    padded[radius:radius + height, radius + 1:radius + 1 + width] = mask
    cumulative = np.cumsum(padded, axis=1)  # cumulative[:, j] = sum of padded[:, :j + 1]
    out = np.zeros_like(mask)
    runs = {}
    for dy in range(-radius, radius + 1):
        half = math.isqrt(radius * radius - dy * dy)
        if half not in runs:
            # Column x of the image is padded column x + radius + 1; window [x - half, x + half].
            high = cumulative[:, radius + 1 + half: radius + 1 + half + width]
            low = cumulative[:, radius - half: radius - half + width]
            runs[half] = (high - low) > 0
        out |= runs[half][radius + dy: radius + dy + height]
    return out


def boundary_tolerance(shape: Tuple[int, int], bound_th: float = BOUND_TH) -> int:
    """Dilation radius in pixels: bound_th itself if >= 1, else ceil(bound_th x diagonal)."""
    if bound_th >= 1:
        return int(bound_th)
    return int(math.ceil(bound_th * math.hypot(shape[0], shape[1])))


def f_measure(annotation: np.ndarray, segmentation: np.ndarray,
              void: Optional[np.ndarray] = None, bound_th: float = BOUND_TH) -> float:
    """Boundary accuracy F of one frame: annotation, segmentation, void [H, W] bool."""
    annotation = np.asarray(annotation, bool)
    segmentation = np.asarray(segmentation, bool)
    keep = ~_void(annotation, void)
    radius = boundary_tolerance(annotation.shape, bound_th)
    fg_boundary = seg2bmap(segmentation & keep)
    gt_boundary = seg2bmap(annotation & keep)
    n_fg, n_gt = int(fg_boundary.sum()), int(gt_boundary.sum())
    if n_fg == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    elif n_fg == 0:
        precision, recall = 1.0, 0.0
    elif n_gt == 0:
        precision, recall = 0.0, 1.0
    else:
        precision = float(np.sum(fg_boundary & disk_dilate(gt_boundary, radius))) / n_fg
        recall = float(np.sum(gt_boundary & disk_dilate(fg_boundary, radius))) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


def boundary_f(annotation: np.ndarray, segmentation: np.ndarray,
               void: Optional[np.ndarray] = None, bound_th: float = BOUND_TH) -> np.ndarray:
    """F per frame: [T, H, W] bool inputs (void optional) -> [T] float64."""
    annotation = np.asarray(annotation, bool)
    segmentation = np.asarray(segmentation, bool)
    voids = [None] * len(annotation) if void is None else void
    return np.array([f_measure(a, s, v, bound_th)
                     for a, s, v in zip(annotation, segmentation, voids)], np.float64)


def statistics(values: np.ndarray) -> Tuple[float, float, float]:
    """(mean, recall, decay) of one object's per-frame values [T] (NaNs ignored)."""
    values = np.asarray(values, np.float64)
    if values.size == 0:
        return math.nan, math.nan, math.nan
    with np.errstate(invalid="ignore"):
        mean = float(np.nanmean(values)) if np.any(~np.isnan(values)) else math.nan
        recall = float(np.nanmean(values > RECALL_THRESHOLD))
    ids = (np.round(np.linspace(1, len(values), DECAY_BINS + 1) + 1e-10) - 1).astype(np.int64)
    bins = [values[ids[i]:ids[i + 1] + 1] for i in range(DECAY_BINS)]
    first, last = bins[0], bins[-1]
    if np.all(np.isnan(first)) or np.all(np.isnan(last)):
        return mean, recall, math.nan
    return mean, recall, float(np.nanmean(first) - np.nanmean(last))
