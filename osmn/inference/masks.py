"""Label masks on disk: reading palette or grey PNGs, writing DAVIS palette PNGs.

A label mask is `[H, W] uint8`: 0 background, 1..254 object ids, 255 void (DAVIS 2017).
Reading rule (written down in docs/inference.md):
* a palette ("P") or grey ("L") PNG gives its pixel values as labels;
* a GREY mask whose only values are 0 and 255 is a DAVIS 2016 binary mask: its 255 pixels are
  object 1, not void (a palette mask's 255 is always void);
* otherwise every non-zero value except 255 is an object id and 255 is void.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
from typing import Optional, Tuple

import numpy as np
from PIL import Image

from osmn import config
from osmn.errors import UserError


def davis_palette() -> np.ndarray:
    """The DAVIS 2017 annotation palette ([256, 3] uint8): the PASCAL VOC colour map.

    Index i gets its colour from the bits of i spread over R, G, B (0 black, 1 dark red,
    2 dark green, 3 olive, ...), the palette of the DAVIS 2017 PNGs.
    """
    palette = np.zeros((256, 3), np.uint8)
    for index in range(256):
        value, r, g, b = index, 0, 0, 0
        for bit in range(8):
            r |= ((value >> 0) & 1) << (7 - bit)
            g |= ((value >> 1) & 1) << (7 - bit)
            b |= ((value >> 2) & 1) << (7 - bit)
            value >>= 3
        palette[index] = (r, g, b)
    return palette


def read_mask(path) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Read a label mask.

    Args:
        path: a palette or grey PNG.

    Returns:
        labels: [H, W] uint8 (0 background, object ids, 255 void).
        palette: [256, 3] uint8 of a palette PNG, or None for a grey one.

    Raises:
        UserError: missing, unreadable, or not a single-channel (palette/grey) image.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise UserError(f"{path}: mask file not found")
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            palette = None
            if mode == "P":
                raw = image.getpalette() or []
                raw = (list(raw) + [0] * 768)[:768]
                palette = np.asarray(raw, np.uint8).reshape(256, 3)
                labels = np.asarray(image)
            elif mode in ("L", "1"):
                labels = np.asarray(image.convert("L"))
            elif mode in ("I", "I;16", "I;16B", "I;16L"):
                labels = np.asarray(image)
                if labels.max(initial=0) > 255:
                    raise UserError(f"{path}: mask has ids above 255")
            else:
                raise UserError(f"{path}: mask is a {mode} image; expected a palette or grey PNG")
    except UserError:
        raise
    except Exception as error:  # PIL raises several types for corrupt files.
        raise UserError(f"{path}: unreadable mask ({type(error).__name__})") from error
    labels = np.array(labels, np.uint8)
    if mode == "1":
        labels = (labels > 0).astype(np.uint8) * 255
    values = np.unique(labels)
    if palette is None and set(values.tolist()) <= {0, 255} and 255 in values:
        labels = (labels == 255).astype(np.uint8)  # DAVIS 2016 grey mask: 255 is the object.
    return labels, palette


def object_ids(labels: np.ndarray) -> Tuple[int, ...]:
    """Sorted object ids of a label mask (every value except 0 and void)."""
    values = np.unique(labels)
    return tuple(int(v) for v in values if v not in (0, config.VOID_LABEL))


def write_mask(path, labels: np.ndarray, palette: Optional[np.ndarray] = None) -> None:
    """Write `labels` ([H, W] uint8) as a palette PNG atomically (temp file, then rename).

    Args:
        palette: [256, 3] uint8; defaults to `davis_palette()`.
    """
    palette = davis_palette() if palette is None else palette
    image = Image.fromarray(np.asarray(labels, np.uint8), mode="P")
    image.putpalette(np.asarray(palette, np.uint8).reshape(-1).tolist())
    atomic_save(path, lambda f: image.save(f, format="PNG"))


def atomic_save(path, save) -> None:
    """Call `save(file_object)` on a temp file beside `path`, then rename it to `path`."""
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            save(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
