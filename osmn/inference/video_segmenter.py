"""One object per video holding all inference state (as Cutie/XMem's InferenceCore).

The algorithm of the paper (§4.1.1) and of the original `osmn.py: test`:
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
from osmn.guides import spatial_guide, visual_guide
from osmn.inference.finetune import finetune_objects
from osmn.inference.merge import merge_probabilities
from osmn.inference.object_manager import ObjectManager
from osmn.model.modulation_pass import resolve_kernel
from osmn.preprocessing import resize_image, resize_mask, to_model_input

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


def working_frame(frame: tf.Tensor, work_hw: tf.Tensor) -> tf.Tensor:
    """Frame [H, W, 3] uint8 -> [h, w, 3] float32 RGB at the working size.

    Resized with the antialiased bilinear filter and rounded to integers as PIL does (spec,
    "Input conventions"); returned unchanged (as float32) when the sizes agree.
    """
    frame = tf.convert_to_tensor(frame)
    same = tf.reduce_all(tf.shape(frame)[:2] == work_hw)

    def resize():
        return tf.clip_by_value(tf.round(resize_image(frame, work_hw[0], work_hw[1])), 0.0, 255.0)

    return tf.cond(same, lambda: tf.cast(frame, tf.float32), resize)


def _build_step(model, counter: list, modulation_kernel: str):
    """The per-frame step of one model as a tf.function with a fixed, dynamic-shape signature."""

    @tf.function(input_signature=[
        tf.TensorSpec([None, None, 3], tf.uint8),      # frame, any size
        tf.TensorSpec([2], tf.int32),                  # working (height, width)
        tf.TensorSpec([None, None, None], tf.uint8),   # previous masks [K, h, w] in {0, 1}
        tf.TensorSpec([None, None], tf.float32),       # gammas [K, G]
    ])
    def step(frame, work_hw, previous_masks, gammas):
        counter[0] += 1  # Python side effect: runs once per trace, not per call.
        image = to_model_input(working_frame(frame, work_hw))[None]
        guides = tf.map_fn(lambda m: spatial_guide(m, work_hw[0], work_hw[1]), previous_masks,
                           fn_output_signature=tf.TensorSpec([None, None, 1], tf.float32))
        logits = model.segment_objects(image, guides, gammas,
                                       modulation_kernel=modulation_kernel)
        return tf.sigmoid(tf.cast(logits[..., 0], tf.float32))

    return step


class VideoSegmenter:
    """Segments the objects of a first-frame mask through a video, one frame per `step`.

    Args:
        model: `osmn.model.OSMN`, shared by every object.
        keep_last_guide: bool. An empty prediction keeps the object's last non-empty mask as
            the next spatial guide's source instead of giving an all-zero guide (the original).
            Defaults to False.
        work_size: optional (width, height). Frames are segmented at this size (antialiased
            bilinear, as the original: 854x480 for DAVIS) and results resized back (nearest).
            Defaults to None: each frame at its own size.
        postprocess: optional `PostProcess` (e.g. `osmn.inference.crf.DenseCrf`), applied per
            object to the thresholded mask; its output replaces the object's probability.
        finetune_steps: int. When > 0, `start` fine-tunes one copy of the model per object on
            frame 0 for this many steps (`osmn.inference.finetune`), and each object is then
            segmented by its own copy. Defaults to 0 (the shared model, batched objects).
        finetune_seed: int. Seed of the fine-tuning augmentation. Defaults to 0.
        on_finetune_step: optional callback(step, loss) for a progress bar.
        modulation_kernel: "auto", "xla" or "native" (`osmn.model.modulation_pass`). Defaults
            to "auto": the native kernel when it builds, else XLA.

    Attributes:
        objects: `ObjectManager` (after `start`).
        gammas: [K, G] float32 visual modulation parameters (after `start`).
        object_models: list of K fine-tuned models, or None (after `start`).
        modulator_seconds: float. Time of the once-per-video visual modulation.
        finetune_seconds: float. Time of the online fine-tuning.
        segmentation_seconds: float. Total time of all `step` calls.
        step_seconds: list of float. Time of each `step` call (the first includes tracing).
        frames_segmented: int. Number of `step` calls.
        trace_count: int. How often the per-frame tf.function(s) were traced.

    Example:
    >>> segmenter = VideoSegmenter(model)
    >>> first = segmenter.start(frame0_rgb, mask0_labels)   # frame 0: the given mask
    >>> result = segmenter.step(frame1_rgb)                 # result.labels [H, W] uint8
    """

    def __init__(self, model, keep_last_guide: bool = False,
                 work_size: Optional[Tuple[int, int]] = None,
                 postprocess: Optional[PostProcess] = None,
                 finetune_steps: int = 0, finetune_seed: int = 0,
                 on_finetune_step: Optional[Callable[[int, float], None]] = None,
                 modulation_kernel: str = "auto"):
        self.model = model
        # The per-frame step is not XLA-compiled, so the native kernel can run there.
        self.modulation_kernel = resolve_kernel(modulation_kernel, jit_compile=False)
        self.keep_last_guide = keep_last_guide
        self.work_size = None if work_size is None else (int(work_size[0]), int(work_size[1]))
        self.postprocess = postprocess
        self.finetune_steps = int(finetune_steps)
        self.finetune_seed = finetune_seed
        self.on_finetune_step = on_finetune_step
        self.object_models = None
        self.finetune_seconds = 0.0
        self._counter = [0]
        self._steps = {}
        self.objects: Optional[ObjectManager] = None
        self.gammas: Optional[np.ndarray] = None
        self._previous = None  # [K, h, w] uint8 masks, the next spatial guides' sources.
        self.modulator_seconds = 0.0
        self.segmentation_seconds = 0.0
        self.step_seconds = []
        self.frames_segmented = 0

    @property
    def trace_count(self) -> int:
        return self._counter[0]

    @property
    def guide_masks(self) -> np.ndarray:
        """[K, h, w] bool: the masks the next frame's spatial guides are computed from."""
        return np.asarray(self._previous) > 0

    def _groups(self):
        """(model, batch positions) pairs: one shared model, or one model per object."""
        if self.object_models is None:
            return [(self.model, list(range(self.objects.num_objects)))]
        if len(self.object_models) != self.objects.num_objects:
            raise ValueError(f"{len(self.object_models)} object models for "
                             f"{self.objects.num_objects} objects")
        return [(m, [k]) for k, m in enumerate(self.object_models)]

    def _step_fn(self, model):
        if id(model) not in self._steps:
            self._steps[id(model)] = _build_step(model, self._counter, self.modulation_kernel)
        return self._steps[id(model)]

    def _work_hw(self, frame_hw) -> np.ndarray:
        if self.work_size is None:
            return np.array(frame_hw, np.int32)
        return np.array([self.work_size[1], self.work_size[0]], np.int32)

    def start(self, frame: np.ndarray, labels: np.ndarray) -> FrameResult:
        """Frame 0 and its mask: runs the visual modulator once per object.

        Args:
            frame: [H, W, 3] uint8 RGB.
            labels: [H, W] uint8 label mask (object ids, 0 background, 255 void).

        Returns:
            `FrameResult` of frame 0: the given labels, and the object masks as probabilities.

        Raises:
            ValueError: the mask's size differs from the frame's, or it holds no object.
        """
        frame = np.asarray(frame, np.uint8)
        labels = np.asarray(labels, np.uint8)
        if labels.shape != frame.shape[:2]:
            raise ValueError(f"mask size {labels.shape} differs from frame size {frame.shape[:2]}")
        ids = [int(v) for v in np.unique(labels) if v not in (0, config.VOID_LABEL)]
        if not ids:
            raise ValueError("the first-frame mask holds no object")
        self.objects = ObjectManager(ids)
        masks = self.objects.masks_from_labels(labels).astype(np.uint8)  # [K, H, W]
        work_hw = self._work_hw(frame.shape[:2])
        work_frame = working_frame(frame, work_hw)
        work_masks = resize_mask(tf.constant(masks[..., None]), work_hw[0], work_hw[1])[..., 0]

        # Drop the step functions of a previous video's fine-tuned copies (they hold the models).
        self._steps = {key: fn for key, fn in self._steps.items() if key == id(self.model)}
        if self.finetune_steps > 0:
            started = time.perf_counter()
            self.object_models = finetune_objects(
                self.model, np.asarray(work_frame, np.uint8), np.asarray(work_masks) > 0,
                self.finetune_steps, seed=self.finetune_seed, on_step=self.on_finetune_step)
            self.finetune_seconds = time.perf_counter() - started
        started = time.perf_counter()
        guides = tf.stack([visual_guide(work_frame, m) for m in work_masks])  # [K, 224, 224, 3]
        gammas = [None] * self.objects.num_objects
        for model, positions in self._groups():
            gamma = model.modulate(tf.gather(guides, positions), training=False)
            for k, g in zip(positions, np.asarray(gamma, np.float32)):
                gammas[k] = g
        self.gammas = np.stack(gammas)
        self.modulator_seconds = time.perf_counter() - started
        self._previous = np.asarray(work_masks, np.uint8)
        return FrameResult(labels=labels, probabilities=masks.astype(np.float32))

    def step(self, frame: np.ndarray) -> FrameResult:
        """Segment the next frame.

        Args:
            frame: [H, W, 3] uint8 RGB (any size; segmented at `work_size` if given).

        Returns:
            `FrameResult` at the frame's size.
        """
        if self.objects is None:
            raise RuntimeError("call start(frame0, mask0) before step()")
        started = time.perf_counter()
        frame = np.asarray(frame, np.uint8)
        work_hw = self._work_hw(frame.shape[:2])
        previous = self._previous
        if previous.shape[1:] != tuple(work_hw):  # frame size changed: guides follow it.
            previous = np.asarray(resize_mask(tf.constant(previous[..., None]),
                                              work_hw[0], work_hw[1])[..., 0])
        probabilities = np.zeros((self.objects.num_objects,) + tuple(work_hw), np.float32)
        for model, positions in self._groups():
            probabilities[positions] = self._step_fn(model)(
                tf.constant(frame), tf.constant(work_hw), tf.constant(previous[positions]),
                tf.constant(self.gammas[positions])).numpy()
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
