"""The video algorithm of `osmn.inference.VideoSegmenter`, run through TF Serving signatures.

Per video: `visual_guide` + `modulate` once for all objects (objects are the batch axis, so each
object's gamma is computed once); per later frame: `spatial_guide` from each object's previous
thresholded prediction, then `segment`. Merging and the empty-prediction rule are those of
`osmn.inference` (original `osmn.py: test`, `davis_eval.py`; see docs/inference.md). Frames are
segmented at their own size. Needs numpy only (plus the server).
"""

from __future__ import annotations

import time
from typing import Tuple

import numpy as np

from osmn import config
from osmn.errors import UserError
from osmn.export.rest_client import ServingClient
from osmn.inference.merge import merge_probabilities
from osmn.inference.object_manager import ObjectManager


class RemoteVideoSegmenter:
    """Segments the objects of a first-frame mask through a video served by TF Serving.

    Args:
        client: `ServingClient` of an export written by `osmn.export.export_saved_model`.
        keep_last_guide: bool. An empty prediction keeps the object's last non-empty mask as
            the next guide's source (as `VideoSegmenter`); default: an all-zero guide (original).

    Attributes:
        objects: `ObjectManager` (after `start`).
        gammas: [K, G] float32 (after `start`).
        modulator_seconds, segmentation_seconds: float. Wall time of the requests.
        frames_segmented: int. Number of `step` calls.
    """

    def __init__(self, client: ServingClient, keep_last_guide: bool = False):
        self.client = client
        self.keep_last_guide = keep_last_guide
        self.objects = None
        self.gammas = None
        self._previous = None  # [K, H, W] uint8 in {0, 1}: sources of the next spatial guides.
        self.modulator_seconds = 0.0
        self.segmentation_seconds = 0.0
        self.frames_segmented = 0

    def start(self, frame: np.ndarray, labels: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Frame 0 and its label mask -> (labels [H, W] uint8, object masks [K, H, W] float32).

        Runs `visual_guide` and `modulate` once for all K objects. Frame 0's result is the
        given mask, as in `osmn.inference.VideoSegmenter`.
        """
        frame = np.asarray(frame, np.uint8)
        labels = np.asarray(labels, np.uint8)
        if labels.shape != frame.shape[:2]:
            raise UserError(f"mask size {labels.shape[1]}x{labels.shape[0]} differs from the "
                            f"frame size {frame.shape[1]}x{frame.shape[0]}")
        ids = [int(v) for v in np.unique(labels) if v not in (0, config.VOID_LABEL)]
        if not ids:
            raise UserError("the first-frame mask holds no object")
        self.objects = ObjectManager(ids)
        masks = self.objects.masks_from_labels(labels).astype(np.uint8)  # [K, H, W]
        started = time.perf_counter()
        guides = self.client.predict("visual_guide", {"image": frame[None], "mask": masks},
                                     "visual_guide")
        self.gammas = self.client.predict("modulate", {"visual_guide": guides}, "gamma")
        self.modulator_seconds = time.perf_counter() - started
        self._previous = masks
        return labels, masks.astype(np.float32)

    def step(self, frame: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Next frame [H, W, 3] uint8 -> (labels [H, W] uint8, probabilities [K, H, W] float32)."""
        if self.objects is None:
            raise RuntimeError("call start(frame0, mask0) before step()")
        frame = np.asarray(frame, np.uint8)
        if frame.shape[:2] != self._previous.shape[1:]:
            raise UserError(f"frame size {frame.shape[1]}x{frame.shape[0]} differs from the "
                            f"first frame's {self._previous.shape[2]}x{self._previous.shape[1]}")
        started = time.perf_counter()
        guides = self.client.predict("spatial_guide", {"mask": self._previous}, "spatial_guide")
        probabilities = self.client.predict(
            "segment", {"image": frame[None], "spatial_guide": guides, "gamma": self.gammas},
            "probability")[..., 0]
        self.segmentation_seconds += time.perf_counter() - started
        self.frames_segmented += 1
        masks = (probabilities > config.MASK_THRESHOLD).astype(np.uint8)
        if self.keep_last_guide:
            empty = masks.reshape(len(masks), -1).max(axis=1) == 0
            masks[empty] = self._previous[empty]
        self._previous = masks
        return merge_probabilities(probabilities, self.objects), probabilities
