"""Open a video and its first-frame mask, checking everything a user can get wrong up front.

Shared by `tools/infer.py` (local model) and `tools/serve_client.py` (TF Serving). Imports no
TensorFlow, so the serving client stays light.
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional

import numpy as np

from osmn.errors import UserError
from osmn.inference.frames import FrameSource, default_mask_path
from osmn.inference.masks import object_ids
from osmn.io import davis_palette, read_mask


@dataclasses.dataclass
class VideoInput:
    """A video with its first-frame mask.

    Attributes:
        source: the frames.
        labels: [H, W] uint8 first-frame label map (0 background, 255 void, ids 1..).
        palette: the mask's palette, or the DAVIS palette for a grey mask.
        ids: the object ids present in `labels`, ascending.
        frame0: [H, W, 3] uint8 RGB first frame.
        sequence: the sequence name used for the output folder.
    """

    source: FrameSource
    labels: np.ndarray
    palette: np.ndarray
    ids: List[int]
    frame0: np.ndarray
    sequence: str


def open_video(video, mask=None, sequence: Optional[str] = None) -> VideoInput:
    """Open `video` (folder of frames or a video file) and its first-frame `mask`.

    `mask` defaults to the DAVIS layout's first annotation (folders only).

    Raises:
        UserError: missing video or mask, a video file without --mask, a mask with no object, or
            a mask whose size differs from the frames.
    """
    source = FrameSource(video)
    if mask is None:
        if not source.is_folder:
            raise UserError(f"{video}: a video file needs --mask (its first-frame mask)")
        mask = default_mask_path(video)
    labels, palette = read_mask(mask)
    ids = object_ids(labels)
    if not ids:
        raise UserError(f"{mask}: the mask holds no object (only background/void)")
    frame0 = source.frame(0)
    if labels.shape != frame0.shape[:2]:
        raise UserError(f"{mask}: mask size {labels.shape[1]}x{labels.shape[0]} differs from the "
                        f"frame size {frame0.shape[1]}x{frame0.shape[0]} of {source.file(0)}")
    palette = davis_palette() if palette is None else palette
    sequence = sequence or (source.path.name if source.is_folder else source.path.stem)
    return VideoInput(source, labels, palette, ids, frame0, sequence)
