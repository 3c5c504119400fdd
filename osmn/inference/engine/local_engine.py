"""The inference engine: one `OSMN` as the fast per-frame graph every caller runs.

`LocalEngine(model, precision)` builds, from a model's public parts:

* the model to run at the precision (`inference_model`: a copy under Keras' `mixed_bfloat16`
  policy for bfloat16, the model itself for float32);
* `gamma`: visual guides [K, 224, 224, 3] -> gammas [K, G], once per object;
* `segment`: THE per-frame function, (image [1, H, W, 3], spatial guides [K, H, W, 1], gammas
  [K, G]) -> (probabilities, masks) for K objects in one pass (`forward.segment_objects`),
  XLA-compiled where that measured faster for the backbone and precision;
* `segment_frame`: what `osmn.inference.VideoSegmenter` calls each frame: the frame (uint8, any
  size) resized to the working size, the spatial guides from the previous masks, then
  `segment`, as one traced function. The tool, the benchmarks and the app all run this.

Every function has a dynamic-shape input signature: a video is traced once, whatever its
size and number of objects.

Example:
>>> engine = LocalEngine(model)                          # precision="auto"
>>> gammas = engine.gamma(visual_guides)                 # [K, 224, 224, 3] -> [K, G], once
>>> probabilities, masks = engine.segment(image, guides, gammas)   # every frame
>>> engine.trace_count                                   # 1, whatever the sizes and K
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import tensorflow as tf

from osmn import config
from osmn.guides import spatial_guide, visual_guide
from osmn.inference.engine.forward import segment_objects
from osmn.inference.engine.modulation_pass import resolve_kernel
from osmn.model.osmn_model import OSMN
from osmn.precision import (CPU_PRECISIONS, INFERENCE_PRECISIONS, check, dtype_policy,
                            inference_auto, policy)
from osmn.preprocessing import resize_image, to_model_input

# XLA for the per-frame `segment`, per (backbone, precision), where it measured faster.
# VGG16 float32: XLA (oneDNN graph execution took 1.21x its time on the AMX Xeon,
# benchmarks/results/benchmark-intel-xeon-2c-amx-2026-11-25.json; on the loaded AVX512-BF16 EPYC
# the two were within 10%, engine-amd-epyc-2c-2026-12-05-precision-choice.json). VGG16 bfloat16:
# no XLA, 6.0x slower on the AMX Xeon (XLA's CPU convolutions use neither AMX nor oneDNN's
# bfloat16). Lite float32: no XLA, 5.7x slower on the EPYC (4.23 vs 0.74 s per 854x480 frame at
# full width, same file).
XLA_BY_DEFAULT = {("vgg16", "float32"): True, ("vgg16", "bfloat16"): False,
                  ("lite", "float32"): False, ("lite", "bfloat16"): False}


def choose_precision(model: OSMN, flags: Optional[frozenset] = None) -> str:
    """What `precision="auto"` runs `model` at on this CPU (or on a CPU with `flags`)."""
    return inference_auto(model.model_config.backbone, flags)


def default_jit_compile(model: OSMN, precision: str) -> bool:
    """Whether `segment` is XLA-compiled by default for `model`'s backbone at `precision`."""
    return XLA_BY_DEFAULT[(model.model_config.backbone, precision)]


def inference_model(model: OSMN, precision: str = "float32") -> OSMN:
    """The model to run at `precision`: `model` itself for float32, else a copy of it.

    The copy is built under the precision's Keras dtype policy (e.g. `mixed_bfloat16`: float32
    variables, bfloat16 compute) and receives `model`'s float32 weights; the global policy is
    restored afterwards. Weight names and order are those of `model`.

    Raises:
        UserError: unknown precision.
    """
    check(precision, CPU_PRECISIONS)
    if model.segmentation_network.dtype_policy.name == policy(precision):
        return model
    model_config = {k: v for k, v in model.get_config().items() if k != "dtype"}
    with dtype_policy(precision):
        copy = OSMN.from_config(model_config)
    copy.set_weights(model.get_weights())
    return copy


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


class LocalEngine:
    """One model as the inference graph: the backend of `VideoSegmenter` that runs in-process.

    Args:
        model: `osmn.model.OSMN` (any backbone; its weights are copied for bfloat16).
        precision: "auto", "float32" or "bfloat16" (Keras `mixed_bfloat16`: float32 weights,
            bfloat16 compute; probabilities float32). "auto" is `choose_precision(model)`:
            bfloat16 for VGG16 on CPUs with AMX or AVX512-BF16, else float32. Defaults to
            "auto".
        jit_compile: bool or None. Compile `segment` with XLA (once per distinct (H, W, K)).
            Defaults to None: `XLA_BY_DEFAULT` for the backbone and precision.
        modulation_kernel: "auto", "xla" or "native" (`modulation_pass`; VGG16 only). "auto" is
            "native" when it builds, the CPU has its fast path and `segment` is not
            XLA-compiled, else "xla". Defaults to "auto".
        single_op_block_ends: bool. With the native kernel, a side block's last modulation pass,
            pool and side taps as one op. False only to time the separate ops. Defaults to True.

    Attributes:
        source_model: the given model (float32 weights; fine-tuning copies it).
        model: the model that runs (a bfloat16 copy for precision "bfloat16").
        precision, jit_compile, modulation_kernel: what was chosen.
        gamma, segment, segment_frame: the traced functions (see the module docstring).
        trace_count: int. The most that `segment` or `segment_frame` was traced so far.

    Raises:
        UserError: unknown precision or kernel; "native" with XLA or where it does not build.
    """

    def __init__(self, model: OSMN, precision: str = "auto", jit_compile: Optional[bool] = None,
                 modulation_kernel: str = "auto", single_op_block_ends: bool = True):
        check(precision, INFERENCE_PRECISIONS)
        self.source_model = model
        self.requested_precision = precision
        self.precision = choose_precision(model) if precision == "auto" else precision
        self.model = inference_model(model, self.precision)
        self.jit_compile = (default_jit_compile(model, self.precision) if jit_compile is None
                            else bool(jit_compile))
        self.backbone = model.model_config.backbone
        self.modulation_kernel = (resolve_kernel(modulation_kernel, self.jit_compile)
                                  if self.backbone == "vgg16" else "none")
        self.single_op_block_ends = single_op_block_ends
        self._modulation_kernel_arg = modulation_kernel
        self._traces = [0, 0]  # traces of `segment`, of `segment_frame`
        run_model, kernel, traces = self.model, self.modulation_kernel, self._traces

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        def gamma(visual_guides):
            return tf.cast(run_model.gamma(visual_guides, training=False), tf.float32)

        @tf.function(input_signature=[
            tf.TensorSpec([1, None, None, 3], tf.float32),
            tf.TensorSpec([None, None, None, 1], tf.float32),
            tf.TensorSpec([None, run_model.gamma_size], tf.float32),
        ], jit_compile=self.jit_compile)
        def segment(image, spatial_guides, gammas):
            traces[0] += 1  # Python side effect: runs once per trace, not per call.
            logits = segment_objects(run_model, image, spatial_guides, gammas,
                                     modulation_kernel=kernel,
                                     single_op_block_ends=single_op_block_ends)
            probabilities = tf.sigmoid(tf.cast(logits, tf.float32))
            return probabilities, probabilities > config.MASK_THRESHOLD

        @tf.function(input_signature=[
            tf.TensorSpec([None, None, 3], tf.uint8),      # frame, any size
            tf.TensorSpec([2], tf.int32),                  # working (height, width)
            tf.TensorSpec([None, None, None], tf.uint8),   # previous masks [K, h, w] in {0, 1}
            tf.TensorSpec([None, run_model.gamma_size], tf.float32),   # gammas [K, G]
        ])
        def segment_frame(frame, work_hw, previous_masks, gammas):
            traces[1] += 1
            image = to_model_input(working_frame(frame, work_hw))[None]
            guides = tf.map_fn(lambda m: spatial_guide(m, work_hw[0], work_hw[1]),
                               previous_masks,
                               fn_output_signature=tf.TensorSpec([None, None, 1], tf.float32))
            return segment(image, guides, gammas)[0][..., 0]

        self.gamma, self.segment, self.segment_frame = gamma, segment, segment_frame

    @property
    def trace_count(self) -> int:
        """The most that `segment` or `segment_frame` was traced: 1 after any number of
        frames, sizes and object counts (`segment_frame` calls `segment`)."""
        return max(self._traces)

    def describe(self) -> str:
        """The precision and path that run, for a summary line (e.g. "bfloat16, oneDNN graph,
        native modulation kernel")."""
        path = "XLA" if self.jit_compile else "oneDNN graph"
        if self.modulation_kernel == "native":
            path += ", native modulation kernel"
        auto = " (auto)" if self.requested_precision == "auto" else ""
        return f"{self.precision}{auto}, {path}"

    def with_model(self, model: OSMN) -> "LocalEngine":
        """An engine for another model (e.g. a fine-tuned copy) with the same choices."""
        return LocalEngine(model, self.precision, self.jit_compile, self._modulation_kernel_arg,
                           self.single_op_block_ends)

    # The backend interface of `osmn.inference.VideoSegmenter` (numpy in, numpy out).
    def object_gammas(self, frame: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Frame [H, W, 3] uint8 and object masks [K, H, W] (foreground > 0) -> gammas [K, G]:
        each object's visual guide (box crop of this frame, `osmn.guides.visual_guide`) through
        the visual modulator."""
        image = tf.cast(tf.convert_to_tensor(frame), tf.float32)
        guides = tf.stack([visual_guide(image, m) for m in tf.unstack(tf.constant(masks))])
        return self.gamma(guides).numpy()

    def segment_masks(self, frame: np.ndarray, work_hw: np.ndarray, previous: np.ndarray,
                      gammas: np.ndarray) -> np.ndarray:
        """Frame [H, W, 3] uint8, working size (h, w), previous masks [K, h, w] uint8, gammas
        [K, G] -> probabilities [K, h, w] float32 at the working size (`segment_frame`)."""
        return self.segment_frame(tf.constant(frame), tf.constant(work_hw, tf.int32),
                                  tf.constant(previous), tf.constant(gammas)).numpy()
