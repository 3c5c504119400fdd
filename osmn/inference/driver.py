"""The loop that runs a `VideoSegmenter` over a video and writes its results.

Shared by `tools/infer.py` (local model) and `tools/serve_client.py` (TF Serving): the same
frames, the same algorithm, the same files.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np


def segment_video(segmenter, source, labels: np.ndarray, writer, start_frame: int = 0,
                  save_scores: bool = False,
                  on_frame: Optional[Callable[[int], None]] = None) -> int:
    """Segment `source` from frame `start_frame` on, writing one result per frame.

    Frames before `start_frame` are neither segmented nor written. `labels` is the mask of
    frame `start_frame`, which is written as given; every later frame is `segmenter.step`.

    Args:
        segmenter: `osmn.inference.VideoSegmenter` (any backend).
        source: `osmn.inference.FrameSource`.
        labels: [H, W] uint8 label mask of frame `start_frame`.
        writer: `osmn.inference.ResultWriter` (open).
        start_frame: int, 0 <= start_frame < len(source). Defaults to 0.
        save_scores: bool. Hand the per-object probabilities to the writer.
        on_frame: optional callback(frames done so far) after each frame (a progress bar).

    Returns:
        The number of frames written (len(source) - start_frame).
    """
    if not 0 <= start_frame < len(source):
        raise ValueError(f"start_frame {start_frame} outside 0..{len(source) - 1}")
    frame = source.frame(start_frame)
    result = segmenter.start(frame, labels)
    writer.put(source.names[start_frame], frame, result.labels,
               result.probabilities if save_scores else None)
    done = 1
    if on_frame is not None:
        on_frame(done)
    for index, frame in source.prefetched(start_frame + 1, frame.shape):
        result = segmenter.step(frame)
        writer.put(source.names[index], frame, result.labels,
                   result.probabilities if save_scores else None)
        done += 1
        if on_frame is not None:
            on_frame(done)
    return done
