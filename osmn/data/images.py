"""Python-side checks of image files, run once while a sample index is built (not per step).

`check_image(path, mode)` returns the image size or a problem string; the TF decoding on the
training path can then trust the files it is given.
"""

from __future__ import annotations

import io
import os
from typing import NamedTuple, Tuple, Union

from PIL import Image


class Problem(NamedTuple):
    """Why a file cannot be used: `problem` (a short category, the key of `DataReport`
    counts) and `detail` (free text)."""
    problem: str
    detail: str = ""

# JPEG end-of-image marker: its absence is the usual sign of a truncated download.
_JPEG_EOI = b"\xff\xd9"


def _open(path_or_bytes):
    if isinstance(path_or_bytes, bytes):
        return io.BytesIO(path_or_bytes)
    return path_or_bytes


def _exists(path_or_bytes) -> bool:
    return isinstance(path_or_bytes, bytes) or os.path.isfile(path_or_bytes)


def check_image(path, mode: str = "decode") -> Union[Tuple[int, int], Problem]:
    """(width, height) of a readable image, or the `Problem` with it.

    Args:
        path: image file, or its encoded bytes (TFDS sources).
        mode: "decode" decodes every pixel (finds any corruption PIL finds); "header" reads only
            the header and, for JPEG, checks the end-of-image marker (fast, for COCO-size sets).
    """
    if not _exists(path):
        return Problem("missing image")
    try:
        with Image.open(_open(path)) as image:
            size = image.size
            fmt = image.format
            if mode == "decode":
                image.load()
            elif fmt == "JPEG":
                if isinstance(path, bytes):
                    tail = path[-2:]
                else:
                    with open(path, "rb") as f:
                        f.seek(-2, os.SEEK_END)
                        tail = f.read(2)
                if tail != _JPEG_EOI:
                    return Problem("corrupt image", "truncated JPEG: no end-of-image marker")
    except (OSError, SyntaxError, ValueError) as e:
        return Problem("corrupt image", f"{type(e).__name__}: {_strip(e, path)}")
    if fmt not in ("JPEG", "PNG", "BMP", "GIF"):
        return Problem("unsupported image format", str(fmt))
    return size


def _strip(error, path) -> str:
    """The error message without the path (the report prints the path once)."""
    return str(error) if isinstance(path, bytes) else str(error).replace(path, "")


def read_mask(path):
    """Mask file (or encoded bytes) -> (mode "P" or "L", uint8 array [H, W], palette [256, 3]
    uint8 or None), or a `Problem`. The rule of `osmn.io.decode_mask` (lossy and colour masks
    refused), reported as a `Problem` instead of raised."""
    from osmn.io import MaskError, decode_mask  # noqa: PLC0415
    try:
        return decode_mask(path)
    except MaskError as error:
        detail = str(error)
        if not isinstance(path, bytes):
            detail = detail.replace(f"{path}: ", "", 1)
        return Problem(error.problem, detail)
