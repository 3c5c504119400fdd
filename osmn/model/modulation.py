"""The modulation layers (paper eq. 2, §3.2): a channel-wise scale and a per-pixel bias.

In the original (`model_func.py`: `modulated_conv_block`) modulation comes AFTER the conv's
ReLU and nothing follows it: y = relu(conv(x)) * gamma_c + beta. gamma is unconstrained (it can
be negative); there is no mean/variance normalisation, unlike conditional batch norm (§3.1).
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="osmn")
class ChannelScale(keras.layers.Layer):
    """Visual modulation: y[b, h, w, c] = x[b, h, w, c] * gamma[b, c].

    Call args:
        x: [B, H, W, C] features.
        gamma: [B, C] scales from the visual modulator (one vector per sample).

    Returns:
        [B, H, W, C], the compute dtype.

    Example:
    >>> layer = ChannelScale()
    >>> layer(keras.ops.ones((1, 2, 2, 3)), keras.ops.convert_to_tensor([[1., 2., 3.]])).shape
    TensorShape([1, 2, 2, 3])
    """

    def call(self, x, gamma):
        return x * gamma[:, None, None, :]

    def compute_output_shape(self, x_shape, gamma_shape):
        return x_shape


@keras.saving.register_keras_serializable(package="osmn")
class SpatialBias(keras.layers.Layer):
    """Spatial modulation: y[b, h, w, c] = x[b, h, w, c] + beta[b, h, w, c].

    Call args:
        x: [B, H, W, C] features.
        beta: [B, H, W, C] biases from the spatial modulator (same spatial size as `x`).

    Returns:
        [B, H, W, C], the compute dtype.
    """

    def call(self, x, beta):
        return x + beta

    def compute_output_shape(self, x_shape, beta_shape):
        return x_shape
