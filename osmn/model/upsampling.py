"""Fixed bilinear upsampling of the side outputs and the original's crop back to the input size.

Original `model_func.py`: the side outputs are upsampled by transposed convs (`score-multi{j}-up`,
16 channels, kernel 2s, stride s, VALID, no bias, NOT trainable) whose kernels are set by
`interp_surgery` to the FCN bilinear kernel on the channel diagonal, then cropped by
`crop_features` at floor((up - n) / 2), with up = (m - 1) * s + k for a side map of m cells and
an input of n pixels. These offsets are 1, 2, 4, 8 only when n is a multiple of 16 (854 wide
gives 1, 3, 5, 13). The kernel here is a constant, never a variable, so no restore can change it
(the original re-set it after every restore for the same reason).
"""

from __future__ import annotations

import numpy as np
import keras
import tensorflow as tf


def bilinear_kernel(size: int, channels: int) -> np.ndarray:
    """The FCN bilinear kernel on the channel diagonal (original `interp_surgery`).

    For kernel size k: f = (k + 1) // 2, centre c = f - 1 for odd k and f - 0.5 for even k;
    weight (1 - |y - c| / f) * (1 - |x - c| / f) from channel i to channel i only.

    Returns:
        [size, size, channels, channels] float32, the Keras/TF transposed-conv layout
        [k, k, out, in].
    """
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    og = np.ogrid[:size, :size]
    filt = (1 - abs(og[0] - center) / factor) * (1 - abs(og[1] - center) / factor)
    kernel = np.zeros((size, size, channels, channels), np.float32)
    for i in range(channels):
        kernel[:, :, i, i] = filt
    return kernel


def crop_offset(input_size: int, map_size: int, stride: int) -> int:
    """Start of the crop along one axis: floor((up - n) / 2), up = (m - 1) * s + 2s."""
    upsampled = (map_size - 1) * stride + 2 * stride
    return (upsampled - input_size) // 2


@keras.saving.register_keras_serializable(package="osmn")
class BilinearUpsampling(keras.layers.Layer):
    """Upsample a side output by `stride` with the fixed bilinear kernel and crop to a size.

    Args:
        stride: int. Upsampling factor s (2, 4, 8, 16); the kernel is 2s.
        channels: int. Channels of the side output (16).

    Call args:
        x: [B, m_h, m_w, C] side output, m = ceil(n / s).
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
        s, k = self.stride, self.kernel_size
        x_shape = tf.shape(x)
        target = tf.shape(reference)[1:3]
        up = (x_shape[1:3] - 1) * s + k
        out = tf.nn.conv2d_transpose(
            x, tf.cast(self._kernel, x.dtype),
            tf.stack([x_shape[0], up[0], up[1], self.channels]),
            strides=s, padding="VALID")
        offset = (up - target) // 2
        return tf.slice(out, tf.stack([0, offset[0], offset[1], 0]),
                        tf.stack([-1, target[0], target[1], -1]))

    def compute_output_shape(self, x_shape, reference_shape):
        return (x_shape[0], reference_shape[1], reference_shape[2], self.channels)

    def get_config(self):
        return {**super().get_config(), "stride": self.stride, "channels": self.channels}
