"""The lite segmentation network (original `model_func.py`: `osmn_lite`; spec "The lite variant").

    image (padded to a multiple of 32) -> MobileNet v1 (output stride 32)
      conv_pw_3 (128 ch, 1/4)  -> * gamma + beta -> side 3x3 conv to 16 -> resize to 1/2 --+
      conv_pw_5 (256 ch, 1/8)  -> * gamma + beta -> side 3x3 conv to 16 -> resize to 1/2 --+
      conv_pw_11 (512 ch, 1/16)-> * gamma + beta -> side 3x3 conv to 16 -> resize to 1/2 --+
      conv_pw_13 (1024 ch, 1/32)-> * gamma + beta -> side 3x3 conv to 16 -> resize to 1/2 -+
                                                concat (64 ch) -> 1x1 conv -> 1 logit
                                                -> resize to the padded size -> crop to H x W

Modulation comes after each pointwise layer's BN + ReLU6 (as `modulated_conv_block` in the
VGG16 model). Resizes are TF1 `resize_bilinear` (no half-pixel centres), as the original. The
side and fusion convs are not MobileNet layers: like the VGG16 model's they start from
N(0, 0.001) with zero biases (ours: the spec does not say otherwise).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from osmn import config
from osmn.config import ModelConfig
from osmn.model.lite.mobilenet import MobileNetTrunk, pad_to_multiple, resize_bilinear_tf1
from osmn.model.vgg import conv_initializer


@keras.saving.register_keras_serializable(package="osmn")
class LiteSegmentationNetwork(keras.layers.Layer):
    """Modulated MobileNet v1 FCN: image, gamma, betas -> foreground logit at the input size.

    Args:
        model_config: `ModelConfig` or dict of its fields with backbone "lite".

    Call args:
        image: [B, H, W, 3] float32, BGR minus mean; any H, W >= 1 (padded to multiples of 32
            inside, output cropped back). B may be 1 while gamma/betas have batch K.
        gamma: [B, 1920] scales (G = `ModelConfig.gamma_size`), or None.
        betas: dict "conv_pw_3" | "conv_pw_5" | "conv_pw_11" | "conv_pw_13" -> [B, H'/s, W'/s, C]
            (H', W' the padded size, s = 4, 8, 16, 32), or None.
        training: bool. Batch norm in training mode.

    Returns:
        logits: [B, H, W, 1] float32.
    """

    def __init__(self, model_config=None, **kwargs):
        super().__init__(**kwargs)
        self.model_config = ModelConfig.of(model_config, backbone="lite")
        channels = self.model_config.mobilenet_channels()
        self.trunk = MobileNetTrunk(
            channels, config.scaled_width(config.MOBILENET_STEM_CHANNELS,
                                          self.model_config.width_multiplier), name="mobilenet")
        self.gamma_slices = self.model_config.gamma_slices()
        self.side_convs = [
            keras.layers.Conv2D(config.SIDE_OUTPUT_CHANNELS, 3, padding="same",
                                kernel_initializer=conv_initializer(), name=f"conv_pw_{i}_16")
            for i in config.LITE_MODULATED_LAYERS]
        self.fuse = keras.layers.Conv2D(1, 1, kernel_initializer=conv_initializer(),
                                        name="upscore_fuse")

    def build(self, input_shape=None):
        self.trunk.build((None, None, None, 3))
        channels = self.model_config.mobilenet_channels()
        for i, side in zip(config.LITE_MODULATED_LAYERS, self.side_convs):
            side.build((None, None, None, channels[i - 1]))
        self.fuse.build((None, None, None,
                         config.SIDE_OUTPUT_CHANNELS * len(config.LITE_MODULATED_LAYERS)))
        if not self.model_config.train_seg:  # the original's `fix_seg`, as in the VGG16 model.
            for layer in [self.trunk] + self.side_convs:
                layer.trainable = False
        self.built = True

    def call(self, image, gamma=None, betas=None, training=False):
        padded, (height, width) = pad_to_multiple(image)
        half = (tf.shape(padded)[1] // 2, tf.shape(padded)[2] // 2)
        x = self.trunk.stem_call(padded, training)
        sides = []
        for i in range(1, len(config.MOBILENET_LAYERS) + 1):
            x = self.trunk.layer_call(i, x, training)
            name = f"conv_pw_{i}"
            if name not in self.gamma_slices:
                continue
            if gamma is not None:
                start, stop = self.gamma_slices[name]
                x = x * tf.cast(gamma[:, None, None, start:stop], x.dtype)
            if betas is not None:
                x = x + tf.cast(betas[name], x.dtype)
            side = self.side_convs[config.LITE_MODULATED_LAYERS.index(i)](x)
            sides.append(resize_bilinear_tf1(side, half))
        batch = tf.reduce_max(tf.stack([tf.shape(s)[0] for s in sides]))
        sides = [tf.broadcast_to(s, tf.concat([[batch], tf.shape(s)[1:]], 0)) for s in sides]
        logits = self.fuse(tf.concat(sides, axis=-1))
        logits = resize_bilinear_tf1(logits, tf.unstack(tf.shape(padded)[1:3]))
        return tf.cast(logits[:, :height, :width, :], tf.float32)

    def kernels(self):
        """Kernels that get weight decay: the MobileNet convs, the side convs, the fusion."""
        return (self.trunk.kernels() + [side.kernel for side in self.side_convs]
                + [self.fuse.kernel])

    def get_config(self):
        return {**super().get_config(), "model_config": self.model_config.to_dict()}
