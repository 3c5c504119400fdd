"""One object per video holding all inference state (as Cutie/XMem's InferenceCore).

The algorithm of the paper (§4.1.1) and of the original `osmn.py: test`, for every backend (the
in-process `osmn.inference.engine.LocalEngine` or a TF Serving server,
`osmn.export.ServingBackend`):
* the visual modulator runs ONCE per object, on the first frame and its mask -> gamma [K, G];
* frame 1's spatial guide comes from frame 0's mask; frame t >= 2's from each object's own
  thresholded prediction of frame t-1 (probability > MASK_THRESHOLD, strict), kept in memory
  (the original re-read it from the PNG it had just written);
* an object whose prediction comes back empty gets an all-zero guide next frame, as in the
  original, unless `keep_last_guide`, which keeps its last non-empty mask as the guide source;
* all objects share one batched forward pass per frame (objects are the batch axis);
* per-object probabilities are merged into one label map (`osmn.inference.merge`).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Optional, Tuple

import numpy as np
import tensorflow as tf

from osmn import config
from osmn.inference.engine import LocalEngine, working_frame
from osmn.inference.finetune import finetune_objects
from osmn.inference.masks import object_ids
from osmn.inference.merge import merge_probabilities
from osmn.inference.object_manager import ObjectManager
from osmn.model.osmn_model import OSMN
from osmn.preprocessing import resize_mask

# (frame_rgb [h, w, 3] uint8 at the working size, mask [h, w] bool) -> probability [h, w] float32.
PostProcess = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclasses.dataclass
class FrameResult:
    """One segmented frame.

    Attributes:
        labels: [H, W] uint8 label map at the frame's size (user ids, 0 background).
        probabilities: [K, H, W] float32 foreground probability per object, batch order
            (`VideoSegmenter.objects.ids`), at the frame's size (nearest resize).
    """

    labels: np.ndarray
    probabilities: np.ndarray


class VideoSegmenter:
    """Segments the objects of a mask through a video, one frame per `step`.

    Args:
        backend: what runs the model: `osmn.inference.engine.LocalEngine` (in-process; an
            `OSMN` is taken as `LocalEngine(model)`, precision "auto") or
            `osmn.export.ServingBackend` (TF Serving). Anything with `object_gammas`,
            `segment_masks`, `describe` and `trace_count` works.
        keep_last_guide: bool. An empty prediction keeps the object's last non-empty mask as
            the next spatial guide's source instead of giving an all-zero guide (the original).
            Defaults to False.
        work_size: optional (width, height). Frames are segmented at this size (antialiased
            bilinear, as the original: 854x480 for DAVIS) and results resized back (nearest);
            the visual guide is cropped from the full-resolution frame, as the original's
            test path does. Defaults to None: each frame at its own size.
        postprocess: optional `PostProcess` (e.g. `osmn.inference.crf.DenseCrf`), applied per
            object to the thresholded mask; its output replaces the object's probability.
        finetune_steps: int. When > 0, `start` fine-tunes one copy of the model per object on
            its frame for this many steps (`osmn.inference.finetune`; `LocalEngine` only), and
            each object is then segmented by its own copy. Defaults to 0.
        finetune_seed: int. Seed of the fine-tuning augmentation. Defaults to 0.
        on_finetune_step: optional callback(step, loss) for a progress bar.

    Attributes:
        backend: the backend.
        objects: `ObjectManager` (after `start`).
        gammas: [K, G] float32 visual modulation parameters (after `start`).
        object_models: list of K fine-tuned models, or None (after `start`).
        modulator_seconds: float. Time of the visual modulation of the last `start`.
        finetune_seconds: float. Time of the online fine-tuning of the last `start`.
        segmentation_seconds: float. Total time of all `step` calls.
        step_seconds: list of float. Time of each `step` call (the first includes tracing).
        frames_segmented: int. Number of `step` calls.
        trace_count: int. How often the per-frame function(s) were traced.

    `start` may be called again at any frame t, with frame t and a mask of it (the app's
    "start from frame t" and "correct at frame t"): it restarts every object from that frame,
    its visual guide (gamma) from that frame's object crop and its spatial guide from that
    mask; later `step`s follow the new mask. The objects are those of the new mask.

    Example:
    >>> segmenter = VideoSegmenter(LocalEngine(model, precision="auto"))
    >>> first = segmenter.start(frame0_rgb, mask0_labels)   # frame 0: the given mask
    >>> result = segmenter.step(frame1_rgb)                 # result.labels [H, W] uint8
    """

    def __init__(self, backend, keep_last_guide: bool = False,
                 work_size: Optional[Tuple[int, int]] = None,
                 postprocess: Optional[PostProcess] = None,
                 finetune_steps: int = 0, finetune_seed: int = 0,
                 on_finetune_step: Optional[Callable[[int, float], None]] = None):
        self.backend = LocalEngine(backend) if isinstance(backend, OSMN) else backend
        self.keep_last_guide = keep_last_guide
        self.work_size = None if work_size is None else (int(work_size[0]), int(work_size[1]))
        self.postprocess = postprocess
        self.finetune_steps = int(finetune_steps)
        if self.finetune_steps > 0 and not isinstance(self.backend, LocalEngine):
            raise ValueError("online fine-tuning needs a LocalEngine backend")
        self.finetune_seed = finetune_seed
        self.on_finetune_step = on_finetune_step
        self.object_models = None
        self._object_backends = None
        self.finetune_seconds = 0.0
        self._retired_traces = 0
        self.objects: Optional[ObjectManager] = None
        self.gammas: Optional[np.ndarray] = None
        self._previous = None  # [K, h, w] uint8 masks, the next spatial guides' sources.
        self.modulator_seconds = 0.0
        self.segmentation_seconds = 0.0
        self.step_seconds = []
        self.frames_segmented = 0

    @property
    def trace_count(self) -> int:
        backends = [self.backend] + list(self._object_backends or [])
        return self._retired_traces + sum(b.trace_count for b in backends)

    def describe(self) -> str:
        """The backend's precision and path (or server), for a summary line."""
        return self.backend.describe()

    @property
    def guide_masks(self) -> np.ndarray:
        """[K, h, w] bool: the masks the next frame's spatial guides are computed from."""
        return np.asarray(self._previous) > 0

    def _groups(self):
        """(backend, batch positions) pairs: one shared backend, or one per fine-tuned object."""
        if self._object_backends is None:
            return [(self.backend, list(range(self.objects.num_objects)))]
        return [(b, [k]) for k, b in enumerate(self._object_backends)]

    def _work_hw(self, frame_hw) -> np.ndarray:
        if self.work_size is None:
            return np.array(frame_hw, np.int32)
        return np.array([self.work_size[1], self.work_size[0]], np.int32)

    def start(self, frame: np.ndarray, labels: np.ndarray) -> FrameResult:
        """A frame and its mask: (re)starts every object from them.

        Runs the visual modulator once per object on this frame's object crops (full
        resolution), and takes the mask as the source of the next frame's spatial guides. Any
        frame of a video may be given, also after `step`s: the segmenter then restarts there.

        Args:
            frame: [H, W, 3] uint8 RGB.
            labels: [H, W] uint8 label mask (object ids, 0 background, 255 void).

        Returns:
            `FrameResult` of this frame: the given labels, and the object masks as
            probabilities.

        Raises:
            ValueError: the mask's size differs from the frame's, or it holds no object.
        """
        frame = np.asarray(frame, np.uint8)
        labels = np.asarray(labels, np.uint8)
        if labels.shape != frame.shape[:2]:
            raise ValueError(f"mask size {labels.shape} differs from frame size {frame.shape[:2]}")
        ids = list(object_ids(labels))
        if not ids:
            raise ValueError("the mask holds no object")
        self.objects = ObjectManager(ids)
        masks = self.objects.masks_from_labels(labels).astype(np.uint8)  # [K, H, W]
        work_hw = self._work_hw(frame.shape[:2])
        work_masks = masks
        if tuple(work_hw) != masks.shape[1:]:
            work_masks = np.asarray(resize_mask(tf.constant(masks[..., None]),
                                                work_hw[0], work_hw[1])[..., 0])
        if self._object_backends is not None:  # a previous start's fine-tuned copies
            self._retired_traces += sum(b.trace_count for b in self._object_backends)
            self.object_models = self._object_backends = None
        if self.finetune_steps > 0:
            started = time.perf_counter()
            work_frame = np.asarray(working_frame(frame, work_hw), np.uint8)
            self.object_models = finetune_objects(
                self.backend.source_model, work_frame, work_masks > 0, self.finetune_steps,
                seed=self.finetune_seed, on_step=self.on_finetune_step)
            self._object_backends = [self.backend.with_model(m) for m in self.object_models]
            self.finetune_seconds = time.perf_counter() - started
        started = time.perf_counter()
        # The visual guide from the full-resolution frame, as the original's test path
        # (`dataset_davis.py`) crops it before resizing only the segmentation input.
        gammas = [None] * self.objects.num_objects
        for backend, positions in self._groups():
            for k, g in zip(positions, backend.object_gammas(frame, masks[positions])):
                gammas[k] = g
        self.gammas = np.stack(gammas).astype(np.float32)
        self.modulator_seconds = time.perf_counter() - started
        self._previous = work_masks.astype(np.uint8)
        return FrameResult(labels=labels, probabilities=masks.astype(np.float32))

    def step(self, frame: np.ndarray) -> FrameResult:
        """Segment the next frame.

        Args:
            frame: [H, W, 3] uint8 RGB (any size; segmented at `work_size` if given).

        Returns:
            `FrameResult` at the frame's size.
        """
        if self.objects is None:
            raise RuntimeError("call start(frame, mask) before step()")
        started = time.perf_counter()
        frame = np.asarray(frame, np.uint8)
        work_hw = self._work_hw(frame.shape[:2])
        previous = self._previous
        if previous.shape[1:] != tuple(work_hw):  # frame size changed: guides follow it.
            previous = np.asarray(resize_mask(tf.constant(previous[..., None]),
                                              work_hw[0], work_hw[1])[..., 0])
        groups = self._groups()
        if len(groups) == 1:
            probabilities = groups[0][0].segment_masks(frame, work_hw, previous, self.gammas)
        else:
            probabilities = np.zeros((self.objects.num_objects,) + tuple(work_hw), np.float32)
            for backend, positions in groups:
                probabilities[positions] = backend.segment_masks(
                    frame, work_hw, previous[positions], self.gammas[positions])
        masks = probabilities > config.MASK_THRESHOLD
        if self.postprocess is not None:
            small = np.asarray(working_frame(frame, work_hw), np.uint8)
            probabilities = np.stack([self.postprocess(small, m) for m in masks]).astype(np.float32)
            masks = probabilities > config.MASK_THRESHOLD
        if self.keep_last_guide:
            empty = ~masks.any(axis=(1, 2))
            masks[empty] = previous[empty] > 0
        self._previous = masks.astype(np.uint8)
        if tuple(work_hw) != frame.shape[:2]:
            probabilities = np.asarray(resize_mask(tf.constant(probabilities[..., None]),
                                                   frame.shape[0], frame.shape[1])[..., 0])
        labels = merge_probabilities(probabilities, self.objects)
        self.step_seconds.append(time.perf_counter() - started)
        self.segmentation_seconds += self.step_seconds[-1]
        self.frames_segmented += 1
        return FrameResult(labels=labels, probabilities=probabilities)


def load_segmenter(path, precision: str = "auto", work_size: Optional[Tuple[int, int]] = None,
                   **options) -> VideoSegmenter:
    """A `VideoSegmenter` for a `.keras` checkpoint: the one way to get one from a file.

    Args:
        path: an OSMN `.keras` model (`osmn.model.load_osmn`).
        precision: "auto", "float32" or "bfloat16" (`LocalEngine`). Defaults to "auto".
        work_size: optional (width, height), see `VideoSegmenter`. Defaults to the model's own
            working size (`ModelConfig.working_size`, the size it was validated at), else None.
        **options: the other `VideoSegmenter` arguments (keep_last_guide, postprocess, ...).

    Example:
    >>> segmenter = load_segmenter("data/sample_model.keras")
    >>> segmenter.start(frame0, mask0); segmenter.step(frame1).labels
    """
    from osmn.model import load_osmn  # noqa: PLC0415 (loading is not part of the algorithm)
    model = load_osmn(path)
    return VideoSegmenter(LocalEngine(model, precision=precision),
                          work_size=work_size or model.model_config.working_size, **options)
