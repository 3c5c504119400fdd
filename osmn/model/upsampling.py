"""Fixed bilinear upsampling of the side outputs and the original's crop back to the input size.

Original `model_func.py`: the side outputs are upsampled by transposed convs (`score-multi{j}-up`,
16 channels, kernel 2s, stride s, VALID, no bias, NOT trainable) whose kernels are set by
`interp_surgery` to the FCN bilinear kernel on the channel diagonal, then cropped by
`crop_features` at floor((up - n) / 2), with up = (m - 1) * s + k for a side map of m cells and
an input of n pixels. These offsets are 1, 2, 4, 8 only when n is a multiple of 16 (854 wide
gives 1, 3, 5, 13). The kernel here is a constant, never a variable, so no restore can change it
(the original re-set it after every restore for the same reason).

The kernel is diagonal over channels and separable, k2(a, b) = k1(a) * k1(b), so the transposed
conv plus crop equals, per channel, out = U_h @ x @ U_w^T with a banded [n, m] matrix U per axis
(`interpolation_matrix`; two non-zeros per row). That is what `call` computes: it does no work
for the 15 zero off-diagonal channel pairs of the 16x16 kernel and works for any channel count
(the segmentation network upsamples one channel per side output, its side conv times its
fusion rows, see `segmentation_network.py`). Measured in `benchmarks/`: see docs/performance.md.
"""

from __future__ import annotations

import numpy as np
import keras
import tensorflow as tf


def bilinear_weights(size: int) -> np.ndarray:
    """The 1-D FCN bilinear filter of length k = `size` (original `interp_surgery`, one axis).

    f = (k + 1) // 2, centre c = f - 1 for odd k and f - 0.5 for even k; weight 1 - |t - c| / f.

    Returns:
        [size] float32.
    """
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    return (1 - abs(np.arange(size) - center) / factor).astype(np.float32)


def bilinear_kernel(size: int, channels: int) -> np.ndarray:
    """The FCN bilinear kernel on the channel diagonal (original `interp_surgery`).

    Separable: weight `bilinear_weights(size)[y] * bilinear_weights(size)[x]` from channel i to
    channel i only.

    Returns:
        [size, size, channels, channels] float32, the Keras/TF transposed-conv layout
        [k, k, out, in].
    """
    weights = bilinear_weights(size)
    filt = weights[:, None] * weights[None, :]
    kernel = np.zeros((size, size, channels, channels), np.float32)
    for i in range(channels):
        kernel[:, :, i, i] = filt
    return kernel


def crop_offset(input_size, map_size, stride: int):
    """Start of the crop along one axis: floor((up - n) / 2), up = (m - 1) * s + 2s.

    Works on Python ints and on scalar int32 tensors alike.
    """
    upsampled = (map_size - 1) * stride + 2 * stride
    return (upsampled - input_size) // 2


def interpolation_matrix(input_size, map_size, stride: int) -> tf.Tensor:
    """One axis of the fixed transposed conv followed by the original's crop, as a matrix.

    Row y (output pixel) holds the 1-D bilinear weights k1(t) at t = y + offset - i * s for the
    side-output cells i with 0 <= t < 2s (k1 as in `bilinear_kernel`: f = s, centre s - 0.5),
    offset = `crop_offset(input_size, map_size, stride)`.

    Args:
        input_size: int or scalar int32 tensor n (output pixels along the axis).
        map_size: int or scalar int32 tensor m (side-output cells along the axis).
        stride: int s.

    Returns:
        [n, m] float32.
    """
    offset = crop_offset(input_size, map_size, stride)
    taps = tf.cast(tf.range(input_size)[:, None] + offset - tf.range(map_size)[None, :] * stride,
                   tf.float32)
    weights = 1.0 - tf.abs(taps - (stride - 0.5)) / stride
    return tf.where((taps >= 0) & (taps < 2 * stride), weights, tf.zeros_like(weights))


@keras.saving.register_keras_serializable(package="osmn")
class BilinearUpsampling(keras.layers.Layer):
    """Upsample a side output by `stride` with the fixed bilinear kernel and crop to a size.

    Args:
        stride: int. Upsampling factor s (2, 4, 8, 16); the kernel is 2s.
        channels: int. Channels of the original's side output (16); sets the size of the
            `kernel` constant (which gets weight decay as in the original), not what `call`
            accepts.

    Call args:
        x: [B, m_h, m_w, C] side output, m = ceil(n / s); any C (each channel on its own).
        reference: [B, n_h, n_w, ...] any tensor whose spatial size is the target.

    Returns:
        [B, n_h, n_w, C] in x's dtype.
    """

    def __init__(self, stride, channels, **kwargs):
        super().__init__(**kwargs)
        self.stride = stride
        self.channels = channels
        self.kernel_size = 2 * stride
        self._kernel = bilinear_kernel(self.kernel_size, channels)

    @property
    def kernel(self) -> tf.Tensor:
        """The fixed [2s, 2s, C, C] kernel as a float32 constant."""
        return tf.constant(self._kernel)

    def call(self, x, reference):
        x_shape = tf.shape(x)
        target = tf.shape(reference)[1:3]
        rows = tf.cast(interpolation_matrix(target[0], x_shape[1], self.stride), x.dtype)
        cols = tf.cast(interpolation_matrix(target[1], x_shape[2], self.stride), x.dtype)
        x = tf.einsum("yi,bijc->byjc", rows, x)
        return tf.einsum("xj,byjc->byxc", cols, x)

    def compute_output_shape(self, x_shape, reference_shape):
        return (x_shape[0], reference_shape[1], reference_shape[2], x_shape[3])

    def get_config(self):
        return {**super().get_config(), "stride": self.stride, "channels": self.channels}
