"""A TF Serving export as the backend of `osmn.inference.VideoSegmenter`.

The video algorithm is the segmenter's (one for local and served models); this backend only
turns its two calls into requests to the export's signatures (docs/serving.md):

* `object_gammas`: `visual_guide` (the box crops of the frame, all objects at once), then
  `gamma` -> gammas [K, G], once per object;
* `segment_masks`: `spatial_guide` from the previous masks, then `segment` -> probabilities.
"""

from __future__ import annotations

import numpy as np

from osmn.export.rest_client import ServingClient


class ServingBackend:
    """Runs OSMN's two halves on a TF Serving server.

    Args:
        client: `ServingClient` of an export written by `osmn.export.export_saved_model`.

    Example:
    >>> segmenter = VideoSegmenter(ServingBackend(ServingClient(url, "osmn")))
    """

    trace_count = 0  # nothing is traced on this side

    def __init__(self, client: ServingClient):
        self.client = client

    def describe(self) -> str:
        return f"TF Serving at {self.client.predict_url}"

    def object_gammas(self, frame: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Frame [H, W, 3] uint8, object masks [K, H, W] -> gammas [K, G] float32."""
        guides = self.client.predict("visual_guide", {"image": frame[None], "mask": masks},
                                     "visual_guide")
        return np.asarray(self.client.predict("gamma", {"visual_guide": guides}, "gamma"),
                          np.float32)

    def segment_masks(self, frame: np.ndarray, work_hw, previous: np.ndarray,
                      gammas: np.ndarray) -> np.ndarray:
        """Frame [H, W, 3] uint8, working size (h, w), previous masks [K, h, w] uint8, gammas
        [K, G] -> probabilities [K, h, w] float32 at the working size."""
        if tuple(frame.shape[:2]) != tuple(int(v) for v in work_hw):
            from osmn.inference.engine import working_frame  # noqa: PLC0415 (TF only here)
            frame = np.asarray(working_frame(frame, np.asarray(work_hw, np.int32)), np.uint8)
        guides = self.client.predict("spatial_guide", {"mask": previous}, "spatial_guide")
        probabilities = self.client.predict(
            "segment", {"image": frame[None], "spatial_guide": guides, "gamma": gammas},
            "probability")
        return np.asarray(probabilities, np.float32)[..., 0]
