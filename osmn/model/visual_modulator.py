"""The visual modulator (paper §3.3; original `model_func.py`: `visual_modulator`).

A full VGG16 (conv1..conv5, pool5, fc6 as a 7x7 VALID conv, fc7 as a 1x1 conv, dropout 0.5 after
each) whose last layer fc8 is replaced by a 1x1 conv to one scale per modulated channel (3840 for
the default nine layers), initialised with zero weights and unit biases so every gamma starts at 1
(paper §3.5).
"""

from __future__ import annotations

import keras
from keras import ops

from osmn import config
from osmn.config import ModelConfig
from osmn.model.vgg import build_vgg_conv_blocks, conv_initializer, max_pool, vgg_conv_blocks


@keras.saving.register_keras_serializable(package="osmn")
class VisualModulator(keras.layers.Layer):
    """Visual guide -> channel-wise scales gamma.

    Args:
        model_config: `ModelConfig` or dict of its fields (width multiplier, early-layer
            modulation). Defaults to the paper's VGG16.

    Call args:
        visual_guide: [B, 224, 224, 3] float32, BGR minus mean, background 0.
        training: bool. Dropout active when True.

    Returns:
        gamma: [B, G], G = `ModelConfig.gamma_size` (3840 by default), the compute dtype.

    Example:
    >>> vm = VisualModulator({"width_multiplier": 0.0625})
    >>> vm(keras.ops.zeros((1, 224, 224, 3))).shape
    TensorShape([1, 240])
    """

    def __init__(self, model_config=None, **kwargs):
        super().__init__(**kwargs)
        self.model_config = ModelConfig.of(model_config)
        self.conv_blocks = vgg_conv_blocks(self.model_config.block_channels())
        self.pools = [max_pool(f"pool{b}") for b in range(1, 6)]
        fc_units = self.model_config.fc_units()
        self.fc6 = keras.layers.Conv2D(fc_units, config.FC6_KERNEL, padding="valid",
                                       activation="relu", kernel_initializer=conv_initializer(),
                                       name="fc6")
        self.dropout6 = keras.layers.Dropout(config.DROPOUT_RATE, name="dropout6")
        self.fc7 = keras.layers.Conv2D(fc_units, 1, activation="relu",
                                       kernel_initializer=conv_initializer(), name="fc7")
        self.dropout7 = keras.layers.Dropout(config.DROPOUT_RATE, name="dropout7")
        self.fc8 = keras.layers.Conv2D(
            self.model_config.gamma_size, 1, kernel_initializer="zeros",
            bias_initializer=keras.initializers.Constant(config.FC8_BIAS_INIT), name="fc8")

    def build(self, input_shape=None):
        build_vgg_conv_blocks(self.conv_blocks)
        last = self.model_config.block_channels()[-1]
        fc_units = self.model_config.fc_units()
        self.fc6.build((None, config.FC6_KERNEL, config.FC6_KERNEL, last))
        self.fc7.build((None, 1, 1, fc_units))
        self.fc8.build((None, 1, 1, fc_units))
        self.built = True

    def call(self, visual_guide, training=False):
        x = visual_guide
        for convs, pool in zip(self.conv_blocks, self.pools):
            for conv in convs:
                x = conv(x)
            x = pool(x)
        x = self.dropout6(self.fc6(x), training=training)
        x = self.dropout7(self.fc7(x), training=training)
        x = self.fc8(x)
        return ops.reshape(x, (-1, self.model_config.gamma_size))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.model_config.gamma_size)

    def kernels(self):
        """Every kernel that gets weight decay: conv1_1..conv5_3, fc6, fc7, fc8."""
        convs = [conv for block in self.conv_blocks for conv in block]
        return [layer.kernel for layer in convs + [self.fc6, self.fc7, self.fc8]]

    def get_config(self):
        return {**super().get_config(), "model_config": self.model_config.to_dict()}
