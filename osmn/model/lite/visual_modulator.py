"""The lite visual modulator (original `model_func.py`: `visual_modulator_lite`).

A MobileNet v1 classifier on the 224x224 visual guide: the 13-layer trunk, global average pool
(slim's 7x7 VALID pool at 224), a 1x1 conv to 2048 "classes" (not squeezed), ReLU, then four
1x1 heads to 128, 256, 512, 1024 scales, concatenated into gamma [B, 1920]. The classifier and
the heads start with zero weights and unit biases, so every gamma starts at exactly 1 (the
classifier outputs 1, ReLU keeps it, the heads ignore it). slim's dropout before the classifier
(keep probability 0.999 by default) is left out.
"""

from __future__ import annotations

import keras
from keras import ops

from osmn import config
from osmn.config import ModelConfig
from osmn.model.lite.mobilenet import MobileNetTrunk


def _zero_one_conv(filters: int, name: str) -> keras.layers.Conv2D:
    return keras.layers.Conv2D(filters, 1, kernel_initializer="zeros",
                               bias_initializer=keras.initializers.Constant(config.FC8_BIAS_INIT),
                               name=name)


@keras.saving.register_keras_serializable(package="osmn")
class LiteVisualModulator(keras.layers.Layer):
    """Visual guide -> gamma with the lite backbone.

    Args:
        model_config: `ModelConfig` or dict of its fields with backbone "lite".

    Call args:
        visual_guide: [B, 224, 224, 3] float32, BGR minus mean, background 0.
        training: bool. Batch norm in training mode.

    Returns:
        gamma: [B, G] (G = 1920 at width 1.0), the compute dtype.
    """

    def __init__(self, model_config=None, **kwargs):
        super().__init__(**kwargs)
        self.model_config = ModelConfig.of(model_config, backbone="lite")
        width = self.model_config.width_multiplier
        self.trunk = MobileNetTrunk(
            self.model_config.mobilenet_channels(),
            config.scaled_width(config.MOBILENET_STEM_CHANNELS, width), name="mobilenet")
        self.classes = config.scaled_width(config.LITE_VISUAL_CLASSES, width)
        self.classifier = _zero_one_conv(self.classes, "conv_preds")
        self.heads = [_zero_one_conv(c, f"{name}_gamma")
                      for name, c in self.model_config.modulated_layers()]

    def build(self, input_shape=None):
        self.trunk.build((None, None, None, 3))
        self.classifier.build((None, 1, 1, self.model_config.mobilenet_channels()[-1]))
        for head in self.heads:
            head.build((None, 1, 1, self.classes))
        self.built = True

    def call(self, visual_guide, training=False):
        x = self.trunk.stem_call(visual_guide, training)
        for i in range(1, len(config.MOBILENET_LAYERS) + 1):
            x = self.trunk.layer_call(i, x, training)
        x = ops.mean(x, axis=(1, 2), keepdims=True)
        x = keras.activations.relu(self.classifier(x))
        gamma = ops.concatenate([head(x) for head in self.heads], axis=-1)
        return ops.reshape(gamma, (-1, self.model_config.gamma_size))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.model_config.gamma_size)

    def kernels(self):
        return (self.trunk.kernels() + [self.classifier.kernel]
                + [head.kernel for head in self.heads])

    def get_config(self):
        return {**super().get_config(), "model_config": self.model_config.to_dict()}
