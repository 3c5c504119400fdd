"""Python-side checks of image files, run once while a sample index is built (not per step).

`check_image(path, mode)` returns the image size or a problem string; the TF decoding on the
training path can then trust the files it is given.
"""

from __future__ import annotations

import os
from typing import Optional, Tuple, Union

from PIL import Image

# JPEG end-of-image marker: its absence is the usual sign of a truncated download.
_JPEG_EOI = b"\xff\xd9"


def check_image(path: str, mode: str = "decode") -> Union[Tuple[int, int], str]:
    """(width, height) of a readable image, or a short problem description.

    Args:
        path: image file.
        mode: "decode" decodes every pixel (finds any corruption PIL finds); "header" reads only
            the header and, for JPEG, checks the end-of-image marker (fast, for COCO-size sets).
    """
    if not os.path.isfile(path):
        return "missing image"
    try:
        with Image.open(path) as image:
            size = image.size
            fmt = image.format
            if mode == "decode":
                image.load()
            elif fmt == "JPEG":
                with open(path, "rb") as f:
                    f.seek(-2, os.SEEK_END)
                    if f.read(2) != _JPEG_EOI:
                        return "corrupt image (truncated JPEG)"
    except (OSError, SyntaxError, ValueError) as e:
        return f"corrupt image ({type(e).__name__}: {e})"
    if fmt not in ("JPEG", "PNG", "BMP", "GIF"):
        return f"unsupported image format {fmt}"
    return size


def read_mask(path: str):
    """PIL mask -> (mode, uint8 array [H, W], palette [256, 3] uint8 or None), or a problem str."""
    import numpy as np
    if not os.path.isfile(path):
        return "missing mask"
    try:
        with Image.open(path) as mask:
            if mask.format != "PNG":
                return f"mask is {mask.format}, expected PNG"
            mode = mask.mode
            if mode == "1":
                mask = mask.convert("L")
                mode = "L"
            if mode not in ("P", "L"):
                return f"mask has mode {mode}, expected an indexed (palette) or grey PNG"
            array = np.asarray(mask, dtype=np.uint8)
            palette = None
            if mode == "P":
                raw = mask.getpalette() or []
                raw = (list(raw) + [0] * 768)[:768]
                palette = np.asarray(raw, np.uint8).reshape(256, 3)
    except (OSError, SyntaxError, ValueError) as e:
        return f"corrupt mask ({type(e).__name__}: {e})"
    return mode, array, palette
