"""Masks <-> the image editor's paint layers: one colour per object, the masks' palette colours.

The editor shows frame t as its background and the mask of frame t as a paint layer
([H, W, 4] RGBA): each object in its palette colour (the DAVIS palette, so the colours of
the downloaded masks and overlays), at `LAYER_OPACITY` so that the frame shows through.
Reading a layer back, a pixel whose alpha is at least `MIN_ALPHA` belongs to the object whose
palette colour is nearest to the pixel's colour (brush strokes are antialiased and the browser
stores premultiplied alpha, so colours come back a few levels off); the other pixels are
background. Layers are read in order, later ones painting over earlier ones.
"""

from __future__ import annotations

from typing import Iterable, Optional

import numpy as np

from osmn import config
from osmn.inference.masks import davis_palette

LAYER_OPACITY = 0.6  # Display choice: how much of a painted object's colour covers the frame.
MIN_ALPHA = 48  # A painted pixel: alpha >= 48 of 255 (strokes' soft edges below it are ignored).
MAX_BRUSH_OBJECTS = 8  # Brush colours offered in the editor: objects 1..8.


def brush_colours(palette: Optional[np.ndarray] = None, count: int = MAX_BRUSH_OBJECTS):
    """The editor's brush colours, object 1 first: [("#rrggbb", opacity), ...]."""
    palette = davis_palette() if palette is None else palette
    return [("#%02x%02x%02x" % tuple(int(c) for c in palette[i]), LAYER_OPACITY)
            for i in range(1, count + 1)]


def layer_from_labels(labels: np.ndarray, palette: Optional[np.ndarray] = None) -> np.ndarray:
    """[H, W] uint8 labels -> [H, W, 4] uint8 RGBA paint layer (objects in palette colours)."""
    palette = davis_palette() if palette is None else np.asarray(palette, np.uint8)
    labels = np.asarray(labels, np.uint8)
    layer = np.zeros(labels.shape + (4,), np.uint8)
    objects = (labels > 0) & (labels != config.VOID_LABEL)
    layer[..., :3] = palette[labels]
    layer[..., 3] = np.where(objects, round(255 * LAYER_OPACITY), 0)
    return layer


def labels_from_layers(layers: Iterable[np.ndarray], shape,
                       palette: Optional[np.ndarray] = None) -> np.ndarray:
    """Paint layers ([H, W, 4] RGBA each) -> [H, W] uint8 labels of frame shape `shape`.

    A layer of another size than the frame (the editor's canvas) is resized (nearest).
    """
    palette = davis_palette() if palette is None else np.asarray(palette, np.uint8)
    height, width = shape[:2]
    labels = np.zeros((height, width), np.uint8)
    candidates = np.arange(1, config.VOID_LABEL)  # every object id 1..254
    colours = palette[candidates].astype(np.int32)  # [254, 3]
    for layer in layers:
        if layer is None:
            continue
        layer = np.asarray(layer)
        if layer.ndim != 3 or layer.shape[2] != 4:
            continue
        if layer.shape[:2] != (height, width):
            rows = (np.arange(height) * layer.shape[0] // height)
            cols = (np.arange(width) * layer.shape[1] // width)
            layer = layer[rows][:, cols]
        painted = layer[..., 3] >= MIN_ALPHA
        if not painted.any():
            continue
        pixels = layer[painted][:, :3].astype(np.int32)  # [N, 3]
        unique, inverse = np.unique(pixels, axis=0, return_inverse=True)
        distances = ((unique[:, None, :] - colours[None]) ** 2).sum(-1)  # [U, 254]
        labels[painted] = candidates[distances.argmin(1)][inverse.reshape(-1)]
    return labels
