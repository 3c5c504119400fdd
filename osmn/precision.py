"""Compute precision: the one vocabulary of every `--precision` flag and `precision=` argument.

A precision name, the Keras dtype policy it builds a model under, and what it means:

    float32    float32 variables and compute                            Keras "float32"
    bfloat16   float32 variables, bfloat16 compute                      Keras "mixed_bfloat16"
    float16    float32 variables, float16 compute; training scales the  Keras "mixed_float16"
               loss (`loss_scaling`) so that small gradients survive
    auto       resolved by `inference_auto` (per backbone and CPU) or `training_auto` (per device)

Inference (`osmn.inference.LocalEngine`: tools/infer.py, tools/segment_many.py, the app) runs on
the CPU and takes `INFERENCE_PRECISIONS`; training (tools/train.py, `osmn.training.train`) takes
`TRAINING_PRECISIONS`, which adds float16 for GPUs. Layers take the global Keras policy when
they are built: `dtype_policy(precision)` is the one way to build them at a precision.

No TensorFlow import at module level: tools define their flags from it before loading TF.
"""

from __future__ import annotations

import contextlib
from typing import Optional

from osmn.errors import UserError

AUTO = "auto"
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
# The precisions the CPU runs: the inference engine's, once "auto" is resolved, and the ones the
# CPU speed benchmarks compare.
CPU_PRECISIONS = ("float32", "bfloat16")
INFERENCE_PRECISIONS = (AUTO,) + CPU_PRECISIONS
TRAINING_PRECISIONS = (AUTO, "float32", "bfloat16", "float16")

# Inference "auto": bfloat16 for a backbone of `BF16_BACKBONES` on a CPU with one of
# `BF16_CPU_FLAGS` (oneDNN runs bfloat16 convolutions in hardware there: AMX tiles, or AVX-512
# bfloat16 dot products; without them it emulates bfloat16 and is not faster), else float32.
# VGG16: bfloat16, 5.6x faster than float32 on an AMX Xeon and 2.2x on an AVX512-BF16 EPYC
# without AMX (medians, loaded host), masks at IoU 0.998. Lite: float32. On the AMX Xeon its
# depthwise convs gained nothing from bfloat16; on the EPYC the shipped width-1/4 model runs
# at the same speed in both (tools/infer.py on car-shadow, 0.021-0.025 s per frame) and
# bfloat16 lowers its J there from 0.661 to 0.656 (docs/inference.md). Measured with
# benchmarks/engine.py and benchmarks/benchmark.py (benchmarks/results/).
BF16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
BF16_BACKBONES = frozenset({"vgg16"})


def check(precision: str, allowed=TRAINING_PRECISIONS) -> str:
    """`precision` itself if it is one of `allowed`.

    Raises:
        UserError: any other value.
    """
    if precision not in allowed:
        raise UserError(f"precision must be one of {', '.join(allowed)}, got {precision!r}")
    return precision


def inference_auto(backbone: str, cpu_flags: Optional[frozenset] = None) -> str:
    """What inference "auto" runs a `backbone` model at on this CPU (or one with `cpu_flags`)."""
    if cpu_flags is None:
        from osmn.kernels.cpu import cpu_flags as read_cpu_flags  # noqa: PLC0415
        cpu_flags = read_cpu_flags()
    return "bfloat16" if backbone in BF16_BACKBONES and cpu_flags & BF16_CPU_FLAGS else "float32"


def training_auto(gpu: Optional[bool] = None) -> str:
    """What training "auto" runs at: float16 (mixed, with loss scaling) when a GPU is visible (or
    `gpu`), else float32.

    On the CPU float32: measured faster than bfloat16 on an AMD EPYC with AVX512-BF16 and
    without AMX (0.57 s/step float32, 0.62 s/step bfloat16); bfloat16 training on AMX CPUs is
    not measured: ask for it with --precision=bfloat16.
    """
    if gpu is None:
        import tensorflow as tf  # noqa: PLC0415
        gpu = bool(tf.config.list_logical_devices("GPU"))
    return "float16" if gpu else "float32"


def policy(precision: str) -> str:
    """The Keras dtype policy name of a precision ("bfloat16" -> "mixed_bfloat16").

    Raises:
        UserError: "auto" (resolve it first) or an unknown name.
    """
    return POLICIES[check(precision, tuple(POLICIES))]


def loss_scaling(precision: str) -> bool:
    """Whether training at `precision` needs loss scaling (float16's narrow exponent range)."""
    return precision == "float16"


@contextlib.contextmanager
def dtype_policy(precision: str):
    """Build layers at `precision` inside the block: Keras' global dtype policy is set to
    `policy(precision)` and restored afterwards (also on error)."""
    import keras  # noqa: PLC0415
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy(precision))
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
