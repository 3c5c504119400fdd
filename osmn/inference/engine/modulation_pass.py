"""The modulated layer's scale and bias in inference as ONE pass over the conv output.

    y[k, h, w, c] = x[b, h, w, c] * gamma[k, c] + relu(guide[k, h, w] * scale[c] + shift[c])

with b = k, or b = 0 when x is the frame shared by K objects (batch broadcast). This is
`ChannelScale` then `SpatialBias` on the spatial modulator's inference-mode output (see
`SpatialModulator.affine_biases`) without writing the biases to memory. Two kernels compute it:

* "xla": an XLA-compiled loop (works anywhere, also inside a whole-frame XLA function);
* "native": the C++ op `osmn/kernels/modulate_op.cc` (built on first use), bit-identical in
  bfloat16 and ~4x faster than XLA's loop on the same map; it cannot run inside an XLA cluster.

Both compute in float32 and round once to x's dtype. The pass is memory-bound; in bfloat16
XLA's CPU loop reaches about a third of the memory bandwidth of the native vectorised loop.
"""

from __future__ import annotations

from typing import Tuple

import tensorflow as tf

from osmn.errors import UserError
from osmn.kernels import build
from osmn.kernels.cpu import cpu_flags

MODULATION_KERNELS = ("xla", "native")
# The CPU feature the native loop's fast path needs (bfloat16 <-> float32 in AVX-512). Without
# it the op runs a scalar loop, which is not expected to beat XLA's vectorised one (not
# measured: no such machine here), so "auto" keeps XLA there.
NATIVE_FAST_PATH_FLAG = "avx512_bf16"


@tf.function(jit_compile=True, reduce_retracing=True)
def modulate_xla(x, gamma, guide, scale, shift):
    """The pass as one XLA-compiled loop. x [B, h, w, C], gamma [K, C], guide [K, h, w, 1],
    scale and shift [C] -> [K, h, w, C] in x's dtype. XLA compiles once per shape."""
    y = tf.cast(x, tf.float32) * tf.cast(gamma, tf.float32)[:, None, None, :]
    y += tf.nn.relu(tf.cast(guide, tf.float32) * tf.cast(scale, tf.float32)
                    + tf.cast(shift, tf.float32))
    return tf.cast(y, x.dtype)


def modulate_native(x, gamma, guide, scale, shift):
    """The pass as the native op (same arguments and result as `modulate_xla`).

    Raises:
        UserError: the native kernel is unavailable (the reason is in the message).
    """
    op = native_op()
    return op.osmn_modulate(x, tf.cast(gamma, tf.float32), tf.cast(guide, tf.float32),
                            tf.cast(scale, tf.float32), tf.cast(shift, tf.float32))


def modulate_pool_taps_native(x, gamma, guide, scale, shift, taps_kernel, pool: bool = True):
    """The pass of a side block's last modulated conv and its two readers as one native op.

    Computes m = `modulate_native(x, gamma, guide, scale, shift)` one pixel at a time and
    returns what inference reads of it, without writing m to memory:

    Args:
        x, gamma, guide, scale, shift: as `modulate_xla` (x [B, h, w, C], B = K or 1).
        taps_kernel: [C, 9] float32, the block's folded side-output taps
            (`inference_head.tap_kernel`).
        pool: bool. Also return the 2x2 stride-2 SAME max pool of m (into the next block).

    Returns:
        (pooled [K, ceil(h / 2), ceil(w / 2), C] in x's dtype, or None without `pool`;
         taps [K, h, w, 9] float32 = m @ taps_kernel, with m and the kernel rounded to x's
         dtype and the products summed in float32, not rounded to x's dtype at the end as the
         separate einsum's output is).

    Raises:
        UserError: the native kernel is unavailable.
    """
    op = native_op()
    # The kernel in x's precision, as the separate `inference_head.side_taps` uses it.
    kernel = tf.cast(tf.cast(tf.transpose(taps_kernel), x.dtype), tf.float32)   # [9, C]
    pooled, taps = op.osmn_modulate_pool_taps(
        x, tf.cast(gamma, tf.float32), tf.cast(guide, tf.float32), tf.cast(scale, tf.float32),
        tf.cast(shift, tf.float32), kernel, pool=pool)
    return (pooled if pool else None), taps


def native_op():
    """The loaded native op module. Raises UserError with the reason when unavailable."""
    op, reason = build.load("modulate_op")
    if op is None:
        raise UserError(f"the native modulation kernel is unavailable: {reason}")
    return op


def native_status() -> Tuple[bool, str]:
    """(available, reason) of the native kernel; builds it on the first call."""
    op, reason = build.load("modulate_op")
    return op is not None, reason


def modulate(x, gamma, guide, scale, shift, kernel: str = "xla"):
    """The modulation pass with `kernel` ("xla" or "native"); see the module docstring."""
    if kernel == "native":
        return modulate_native(x, gamma, guide, scale, shift)
    if kernel == "xla":
        return modulate_xla(x, gamma, guide, scale, shift)
    raise UserError(f"modulation kernel must be one of {MODULATION_KERNELS}, got {kernel!r}")


def resolve_kernel(requested: str, jit_compile: bool) -> str:
    """The kernel to use for `requested` ("auto", "xla" or "native") in a (non-)XLA function.

    "auto" is "native" when the frame function is not XLA-compiled, the CPU has the native
    loop's fast path (AVX512-BF16) and the op loads; else "xla". Asking for "native" inside an
    XLA function, or when it does not load, is an error.

    Raises:
        UserError: unknown kernel, or "native" where it cannot run.
    """
    if requested not in MODULATION_KERNELS + ("auto",):
        raise UserError(f"modulation kernel must be one of {MODULATION_KERNELS + ('auto',)}, "
                        f"got {requested!r}")
    if requested == "xla":
        return "xla"
    if jit_compile:
        if requested == "native":
            raise UserError("the native modulation kernel cannot run inside an XLA-compiled "
                            "function: use jit_compile=False or modulation_kernel='xla'")
        return "xla"
    if requested == "auto" and NATIVE_FAST_PATH_FLAG not in cpu_flags():
        return "xla"
    available, reason = native_status()
    if requested == "native" and not available:
        raise UserError(f"the native modulation kernel is unavailable: {reason}")
    return "native" if available else "xla"
