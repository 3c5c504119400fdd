"""Fast per-frame inference: graph functions with fixed signatures, optional XLA and bfloat16.

The model code itself is already arranged for speed (see docs/performance.md): the side outputs
are fused to one channel before the upsampling, and `OSMN.segment_objects` runs the layers
before the first modulation once per frame for all K objects. This module adds what only
inference wants:

* `inference_model(model, precision)`: the same weights in a model built under the Keras
  `mixed_bfloat16` policy (bfloat16 convs on oneDNN, which uses AMX where the CPU has it;
  variables, logits and probabilities stay float32), or the model itself for float32;
* `make_inference_fn(model, precision, jit_compile, modulation_kernel)`: `modulate` and the
  whole per-frame step (modulated trunk, side outputs, upsampling, fusion, spatial modulator,
  sigmoid, threshold) as `tf.function`s with dynamic-shape input signatures, so a video is
  traced once, whatever its size and number of objects; XLA where it measured faster (float32,
  not bfloat16), else the native modulation kernel when it builds (`osmn.kernels`).

Example:
>>> fns = make_inference_fn(model, precision="bfloat16")
>>> gammas = fns.modulate(visual_guides)                  # [K, 224, 224, 3] -> [K, G], once
>>> probabilities, masks = fns.segment(image, guides, gammas)   # every frame
>>> fns.trace_count()                                     # 1 per function, not per frame
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from osmn import config
from osmn.errors import UserError
from osmn.model.modulation_pass import resolve_kernel
from osmn.model.osmn_model import OSMN

# --precision values and the Keras dtype policy each one builds the model under.
PRECISION_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}


def _check_precision(precision: str) -> str:
    if precision not in PRECISION_POLICIES:
        raise UserError(f"precision must be one of {sorted(PRECISION_POLICIES)}, "
                        f"got {precision!r}")
    return PRECISION_POLICIES[precision]


def inference_model(model: OSMN, precision: str = "float32") -> OSMN:
    """The model to run at `precision`: `model` itself for float32, else a copy of it.

    The copy is built under the precision's Keras dtype policy (e.g. `mixed_bfloat16`: float32
    variables, bfloat16 compute) and receives `model`'s float32 weights; the global policy is
    restored afterwards. Weight names and order are those of `model`.

    Raises:
        UserError: unknown precision.
    """
    policy = _check_precision(precision)
    if model.segmentation_network.dtype_policy.name == policy:
        return model
    model_config = {k: v for k, v in model.get_config().items() if k != "dtype"}
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        copy = OSMN.from_config(model_config)
    finally:
        keras.config.set_dtype_policy(previous)
    copy.set_weights(model.get_weights())
    return copy


@dataclasses.dataclass
class InferenceFunctions:
    """The two inference halves of one model as traced graph functions.

    Attributes:
        model: the OSMN model the functions run (a bfloat16 copy for precision "bfloat16").
        precision: "float32" or "bfloat16".
        modulation_kernel: "xla" or "native", the kernel of the modulation passes.
        modulate: tf.function, visual guides [K, 224, 224, 3] float32 -> gammas [K, G] float32.
        segment: tf.function, (image [1, H, W, 3] float32 BGR minus mean, spatial guides
            [K, H, W, 1] float32, gammas [K, G] float32) -> (probabilities [K, H, W, 1]
            float32, masks [K, H, W, 1] bool = probabilities > MASK_THRESHOLD).
    """

    model: OSMN
    precision: str
    modulation_kernel: str
    modulate: tf.types.experimental.GenericFunction
    segment: tf.types.experimental.GenericFunction

    def trace_count(self) -> int:
        """Traces of `segment` so far (1 after any number of frames, sizes and K)."""
        return self.segment.experimental_get_tracing_count()


# XLA for the whole per-frame function, per precision, as measured on an AMX Xeon with TF 2.21
# (docs/performance.md): float32 ~10% less CPU time than oneDNN graph execution; bfloat16
# 5.7x SLOWER (XLA's CPU convolutions do not use AMX).
XLA_BY_DEFAULT = {"float32": True, "bfloat16": False}


def make_inference_fn(model: OSMN, precision: str = "float32", jit_compile=None,
                      modulation_kernel: str = "auto") -> InferenceFunctions:
    """Graph functions for inference with `model` at `precision`.

    Args:
        model: `OSMN` (any dtype policy; its weights are copied for another precision).
        precision: "float32" or "bfloat16" (`mixed_bfloat16` policy). Defaults to "float32".
        jit_compile: bool or None. Compile `segment` with XLA. The signature stays dynamic;
            XLA then compiles once per distinct (H, W, K) (seconds at 480x854, once per video
            size). Defaults to None: `XLA_BY_DEFAULT[precision]`.
        modulation_kernel: "auto", "xla" or "native" (`osmn.model.modulation_pass`). "auto"
            is "native" when the kernel builds and `segment` is not XLA-compiled, else "xla".
            Defaults to "auto".

    Returns:
        `InferenceFunctions`.

    Raises:
        UserError: unknown precision or kernel; "native" with XLA or when it does not build.
    """
    run_model = inference_model(model, precision)
    if jit_compile is None:
        jit_compile = XLA_BY_DEFAULT[precision]
    kernel = resolve_kernel(modulation_kernel, jit_compile)
    gamma_size = run_model.gamma_size

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def modulate(visual_guides):
        return tf.cast(run_model.modulate(visual_guides, training=False), tf.float32)

    @tf.function(input_signature=[
        tf.TensorSpec([1, None, None, 3], tf.float32),
        tf.TensorSpec([None, None, None, 1], tf.float32),
        tf.TensorSpec([None, gamma_size], tf.float32),
    ], jit_compile=jit_compile)
    def segment(image, spatial_guides, gammas):
        logits = run_model.segment_objects(image, spatial_guides, gammas,
                                           modulation_kernel=kernel)
        probabilities = tf.sigmoid(tf.cast(logits, tf.float32))
        return probabilities, probabilities > config.MASK_THRESHOLD

    return InferenceFunctions(run_model, precision, kernel, modulate, segment)
