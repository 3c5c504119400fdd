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
from osmn.inference.masks import check_mask
from osmn.io import davis_palette, read_mask


@dataclasses.dataclass
class VideoInput:
    """A video with the mask of its first segmented frame.

    Attributes:
        source: the frames.
        labels: [H, W] uint8 label map of frame `start_frame` (0 background, 255 void, ids 1..).
        palette: the mask's palette, or the DAVIS palette for a grey mask.
        ids: the object ids present in `labels`, ascending.
        frame0: [H, W, 3] uint8 RGB frame `start_frame`, the first segmented frame.
        sequence: the sequence name used for the output folder.
        start_frame: int. Index of the first segmented frame (the mask's frame).
    """

    source: FrameSource
    labels: np.ndarray
    palette: np.ndarray
    ids: List[int]
    frame0: np.ndarray
    sequence: str
    start_frame: int = 0


def open_video(video, mask=None, sequence: Optional[str] = None,
               start_frame: int = 0) -> VideoInput:
    """Open `video` (folder of frames or a video file) and the `mask` of frame `start_frame`.

    `mask` defaults to the DAVIS layout's annotation of that frame (folders only).

    Raises:
        UserError: missing video or mask, a video file without --mask, a start frame outside
            the video, a mask with no object, or a mask whose size differs from the frames.
    """
    source = FrameSource(video)
    if not 0 <= start_frame < len(source):
        raise UserError(f"--start_frame: {start_frame} is outside the video's frames "
                        f"0..{len(source) - 1}")
    if mask is None:
        if not source.is_folder:
            raise UserError(f"{video}: a video file needs --mask (the mask of its first "
                            "segmented frame)")
        mask = default_mask_path(video, start_frame)
    labels, palette = read_mask(mask)
    frame0 = source.frame(start_frame)
    ids = check_mask(labels, frame0.shape, mask, source.file(start_frame))
    palette = davis_palette() if palette is None else palette
    sequence = sequence or (source.path.name if source.is_folder else source.path.stem)
    return VideoInput(source, labels, palette, ids, frame0, sequence, start_frame)
