"""Overlays of a label map on its frame, for people to look at."""

from __future__ import annotations

import numpy as np

OVERLAY_ALPHA = 0.5  # Display choice (not from the paper): object colour weight inside a mask.


def overlay(frame: np.ndarray, labels: np.ndarray, palette: np.ndarray,
            alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """Blend each object's palette colour into the frame and draw its outline at full colour.

    Args:
        frame: [H, W, 3] uint8 RGB.
        labels: [H, W] uint8 label map (0 background, ids; 255 void is left as is).
        palette: [256, 3] uint8.

    Returns:
        [H, W, 3] uint8 RGB.
    """
    frame = np.asarray(frame, np.float32)
    colours = np.asarray(palette, np.float32)[labels]
    objects = (labels > 0) & (labels != 255)
    out = np.where(objects[..., None], (1 - alpha) * frame + alpha * colours, frame)
    edge = np.zeros_like(objects)
    edge[:-1] |= labels[:-1] != labels[1:]
    edge[1:] |= labels[1:] != labels[:-1]
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge &= objects
    out[edge] = colours[edge]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
