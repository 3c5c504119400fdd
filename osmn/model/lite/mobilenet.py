"""MobileNet v1 layers of the lite variant (original `mobilenet_v1.py`, `keras.applications.MobileNet`).

Layer names follow `keras.applications.MobileNet` (`conv1`, `conv1_bn`, `conv_dw_1`,
`conv_dw_1_bn`, `conv_pw_1`, `conv_pw_1_bn`, ...) so the Keras ImageNet weights load by name
(`osmn.model.lite.imagenet`). Convs are bias-free and followed by batch norm (decay 0.997,
epsilon 1e-3) and ReLU6; kernels start from a truncated normal with stddev 0.09 (slim
`mobilenet_v1_arg_scope`). Padding is SAME as in slim: on inputs whose sides are multiples of 32
(the lite model pads to that) it equals Keras' `ZeroPadding2D(((0, 1), (0, 1)))` + VALID.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from osmn import config


def lite_initializer():
    """Truncated normal, stddev 0.09 (slim `mobilenet_v1_arg_scope`)."""
    return keras.initializers.TruncatedNormal(stddev=config.LITE_INIT_STDDEV)


def lite_batch_norm(name: str) -> keras.layers.BatchNormalization:
    return keras.layers.BatchNormalization(
        momentum=config.LITE_BN_MOMENTUM, epsilon=config.LITE_BN_EPSILON, name=name)


def resize_bilinear_tf1(x, size):
    """TF1 `resize_bilinear` (align_corners=False, half_pixel_centers=False), as the original.

    Args:
        x: [B, h, w, C] float. size: (height, width), ints or int32 scalars.

    Returns:
        [B, height, width, C] float32 (the op computes in float32).
    """
    return tf.raw_ops.ResizeBilinear(images=tf.cast(x, tf.float32), size=tf.stack(size),
                                     align_corners=False, half_pixel_centers=False)


@keras.saving.register_keras_serializable(package="osmn")
class MobileNetTrunk(keras.layers.Layer):
    """The stem and 13 depthwise-separable layers of MobileNet v1.

    The owner calls `stem_call` then `layer_call(i, ...)` for i = 1..13 and reads (and
    modulates) the features it needs in between.

    Args:
        channels: 13 ints, the pointwise channels (`ModelConfig.mobilenet_channels()`).
        stem_channels: int, channels of the first 3x3 stride-2 conv.
    """

    def __init__(self, channels, stem_channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = tuple(int(c) for c in channels)
        self.stem_channels = int(stem_channels)
        self.stem = keras.layers.Conv2D(stem_channels, 3, strides=2, padding="same",
                                        use_bias=False, kernel_initializer=lite_initializer(),
                                        name="conv1")
        self.stem_bn = lite_batch_norm("conv1_bn")
        self.depthwise, self.depthwise_bn, self.pointwise, self.pointwise_bn = [], [], [], []
        for i, (out, (_, stride)) in enumerate(zip(channels, config.MOBILENET_LAYERS), start=1):
            self.depthwise.append(keras.layers.DepthwiseConv2D(
                3, strides=stride, padding="same", use_bias=False,
                depthwise_initializer=lite_initializer(), name=f"conv_dw_{i}"))
            self.depthwise_bn.append(lite_batch_norm(f"conv_dw_{i}_bn"))
            self.pointwise.append(keras.layers.Conv2D(
                out, 1, use_bias=False, kernel_initializer=lite_initializer(),
                name=f"conv_pw_{i}"))
            self.pointwise_bn.append(lite_batch_norm(f"conv_pw_{i}_bn"))

    def layers(self):
        """Every conv and batch norm, in order."""
        out = [self.stem, self.stem_bn]
        for parts in zip(self.depthwise, self.depthwise_bn, self.pointwise, self.pointwise_bn):
            out.extend(parts)
        return out

    def build(self, input_shape=None) -> None:
        in_channels = 3 if input_shape is None else input_shape[-1]
        self.stem.build((None, None, None, in_channels))
        self.stem_bn.build((None, None, None, self.stem.filters))
        channels = self.stem.filters
        for dw, dw_bn, pw, pw_bn in zip(self.depthwise, self.depthwise_bn, self.pointwise,
                                        self.pointwise_bn):
            dw.build((None, None, None, channels))
            dw_bn.build((None, None, None, channels))
            pw.build((None, None, None, channels))
            pw_bn.build((None, None, None, pw.filters))
            channels = pw.filters
        self.built = True

    def stem_call(self, x, training):
        return keras.activations.relu6(self.stem_bn(self.stem(x), training=training))

    def layer_call(self, i: int, x, training):
        """Depthwise-separable layer i (1-based): dw 3x3 + BN + ReLU6, pw 1x1 + BN + ReLU6."""
        x = keras.activations.relu6(
            self.depthwise_bn[i - 1](self.depthwise[i - 1](x), training=training))
        return keras.activations.relu6(
            self.pointwise_bn[i - 1](self.pointwise[i - 1](x), training=training))

    def kernels(self):
        return ([self.stem.kernel] + [dw.kernel for dw in self.depthwise]
                + [pw.kernel for pw in self.pointwise])

    def get_config(self):
        return {**super().get_config(), "channels": self.channels,
                "stem_channels": self.stem_channels}


def pad_to_multiple(x, multiple: int = config.MOBILENET_OUTPUT_STRIDE):
    """Zero-pad [B, H, W, C] at the bottom and right to sides that are multiples of `multiple`.

    The original's lite pools are VALID, so it only accepts multiples of 32 (448x256 is, 854x480
    is not); ours pad, run, and crop the output back to [H, W]. Zero is the mean colour for an
    image in the model's convention and "no object" for a spatial guide.

    Returns:
        (padded [B, H', W', C], (H, W) int32 scalars of the input).
    """
    shape = tf.shape(x)
    height, width = shape[1], shape[2]
    # Written without the modulo of a negative number: tf2onnx turns FloorMod into a truncating
    # ONNX Mod there (-37 % 32 gave -5).
    pad_h = (multiple - height % multiple) % multiple
    pad_w = (multiple - width % multiple) % multiple
    padded = tf.pad(x, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]])
    # Pad with computed amounts forgets every static dim; the reshape (a no-op) gives the
    # channels back, which LiteRT's converter needs for the convs (set_shape does not reach it,
    # and it has no EnsureShape op).
    padded = tf.reshape(padded, tf.stack([shape[0], height + pad_h, width + pad_w,
                                          x.shape[-1]]))
    return padded, (height, width)
