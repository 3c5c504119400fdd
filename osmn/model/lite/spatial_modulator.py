"""The lite spatial modulator (original `model_func.py`: `osmn_lite`, scope `modulator_sp`).

The guide (padded to a multiple of 32, as the image) is average-pooled by 4, then by 2, 2, 2
(VALID) to 1/4, 1/8, 1/16, 1/32, the resolutions of MobileNet's pointwise layers 3, 5, 11, 13;
each pooled map goes through a bias-free 1x1 conv + batch norm + ReLU to 128, 256, 512, 1024
channels, the bias of that layer. The conv starts from N(0, 0.001) and the batch norm uses the
VGG16 model's spatial-modulator settings (decay 0.99): this is not a MobileNet part.
"""

from __future__ import annotations

import keras

from osmn import config
from osmn.config import ModelConfig
from osmn.model.lite.mobilenet import pad_to_multiple
from osmn.model.vgg import conv_initializer


@keras.saving.register_keras_serializable(package="osmn")
class LiteSpatialModulator(keras.layers.Layer):
    """Spatial guide -> the biases of the four modulated MobileNet layers.

    Args:
        model_config: `ModelConfig` or dict of its fields with backbone "lite".

    Call args:
        spatial_guide: [B, H, W, 1] float32 in [0, 1], any H, W.
        training: bool. Batch norm with batch statistics when True.

    Returns:
        dict "conv_pw_3" -> [B, H'/4, W'/4, 128], ..., "conv_pw_13" -> [B, H'/32, W'/32, 1024]
        (H', W' = H, W rounded up to multiples of 32; channels scale with the width).
    """

    def __init__(self, model_config=None, **kwargs):
        super().__init__(**kwargs)
        self.model_config = ModelConfig.of(model_config, backbone="lite")
        self.layers_ = self.model_config.modulated_layers()
        self.pools = [keras.layers.AveragePooling2D(k, k, padding="valid", name=f"guide_pool{j}")
                      for j, k in enumerate(config.LITE_GUIDE_POOLS, start=1)]
        self.convs = [keras.layers.Conv2D(c, 1, use_bias=False,
                                          kernel_initializer=conv_initializer(), name=name)
                      for name, c in self.layers_]
        self.norms = [keras.layers.BatchNormalization(
            momentum=config.BN_MOMENTUM, epsilon=config.BN_EPSILON, name=f"{name}_bn")
            for name, _ in self.layers_]

    def build(self, input_shape=None):
        for conv, norm in zip(self.convs, self.norms):
            conv.build((None, None, None, 1))
            norm.build((None, None, None, conv.filters))
        self.built = True

    def call(self, spatial_guide, training=False):
        x, _ = pad_to_multiple(spatial_guide)
        betas = {}
        for (name, _), pool, conv, norm in zip(self.layers_, self.pools, self.convs, self.norms):
            x = pool(x)
            betas[name] = keras.activations.relu(norm(conv(x), training=training))
        return betas

    def kernels(self):
        return [conv.kernel for conv in self.convs]

    def get_config(self):
        return {**super().get_config(), "model_config": self.model_config.to_dict()}
