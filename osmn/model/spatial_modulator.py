"""The spatial modulator (paper §3.4; original `model_func.py`: `osmn`, scope `modulator_sp`).

The Gaussian guide is average-pooled (2x2, stride 2, SAME, padded cells excluded from the mean)
four times to 1/2, 1/4, 1/8, 1/16. For each modulated VGG block a bias-free 1x1 conv produces
(channels x layers in the block) maps from the pooled guide at that block's resolution, followed
by batch norm and ReLU, and the result is sliced per layer: layer i of the block takes channels
[i*C:(i+1)*C]. The paper (eq. 3) describes only a per-channel scale and shift of the guide; the
batch norm + ReLU is what the authors' code does, and we follow the code.
"""

from __future__ import annotations

from typing import NamedTuple

import keras
from keras import ops

from osmn import config
from osmn.config import ModelConfig
from osmn.model.vgg import conv_initializer


class AffineBias(NamedTuple):
    """One layer's bias in inference, not yet evaluated: beta = relu(guide * scale + shift).

    Attributes:
        guide: [B, h, w, 1] the spatial guide average-pooled to the layer's resolution.
        scale, shift: [C] float32.
    """

    guide: object
    scale: object
    shift: object


@keras.saving.register_keras_serializable(package="osmn")
class SpatialModulator(keras.layers.Layer):
    """Spatial guide -> per-layer biases beta.

    Block b's biases are at the resolution of VGG block b: the guide pooled b-1 times
    (conv1 reads the unpooled guide, conv3 the 1/4 map, conv5 the 1/16 map).

    Args:
        model_config: `ModelConfig` or dict of its fields. Defaults to the paper's VGG16.

    Call args:
        spatial_guide: [B, H, W, 1] float32 in [0, 1].
        training: bool. Batch norm uses batch statistics (and updates its moving averages) when
            True; pass False for the original's `fix_bn`.

    Returns:
        dict: layer name (e.g. "conv3_1") -> beta [B, ceil(H/2^(b-1)), ceil(W/2^(b-1)), C].
    """

    def __init__(self, model_config=None, **kwargs):
        super().__init__(**kwargs)
        self.model_config = ModelConfig.of(model_config)
        self.pool = keras.layers.AveragePooling2D(2, 2, padding="same", name="guide_pool")
        self.blocks = []  # (block number, layer names, channels per layer)
        layers_by_block = {}
        for name, channels in self.model_config.modulated_layers():
            block = int(name[4])
            layers_by_block.setdefault(block, []).append((name, channels))
        self.convs, self.norms = [], []
        for block, layers in sorted(layers_by_block.items()):
            channels = layers[0][1]
            self.blocks.append((block, [n for n, _ in layers], channels))
            self.convs.append(keras.layers.Conv2D(
                channels * len(layers), 1, use_bias=False, kernel_initializer=conv_initializer(),
                name=f"conv{block}"))
            self.norms.append(keras.layers.BatchNormalization(
                momentum=config.BN_MOMENTUM, epsilon=config.BN_EPSILON, name=f"conv{block}_bn"))

    def build(self, input_shape=None):
        for conv, norm in zip(self.convs, self.norms):
            conv.build((None, None, None, 1))
            norm.build((None, None, None, conv.filters))
        self.built = True

    def call(self, spatial_guide, training=False):
        pooled = {1: spatial_guide}
        for block in range(2, max(b for b, _, _ in self.blocks) + 1):
            pooled[block] = self.pool(pooled[block - 1])
        betas = {}
        for (block, names, channels), conv, norm in zip(self.blocks, self.convs, self.norms):
            maps = keras.activations.relu(norm(conv(pooled[block]), training=training))
            for i, name in enumerate(names):
                betas[name] = maps[..., i * channels:(i + 1) * channels]
        return betas

    def affine_biases(self, spatial_guide):
        """The biases of `call(spatial_guide, training=False)` in their affine form, unevaluated.

        With the moving statistics, block b's maps are relu(BN(pooled_guide * w)): w is the
        bias-free 1x1 conv from ONE channel and BN an affine map per channel, so layer i's beta
        is relu(pooled_guide * scale + shift) with scale = w * g / sqrt(var + eps) and shift =
        beta_bn - mean * g / sqrt(var + eps), sliced to the layer's channels as `call` slices
        its maps. Same values as `call(training=False)` up to rounding; for code that evaluates
        the bias inside another pass (`osmn.inference.engine`) instead of writing it to memory.

        Args:
            spatial_guide: [B, H, W, 1] float32.

        Returns:
            dict: layer name -> `AffineBias`.
        """
        pooled = {1: spatial_guide}
        for block in range(2, max(b for b, _, _ in self.blocks) + 1):
            pooled[block] = self.pool(pooled[block - 1])
        biases = {}
        for (block, names, channels), conv, norm in zip(self.blocks, self.convs, self.norms):
            inv = ops.rsqrt(ops.convert_to_tensor(norm.moving_variance) + norm.epsilon)
            scale = ops.convert_to_tensor(norm.gamma) * inv
            shift = ops.convert_to_tensor(norm.beta) - ops.convert_to_tensor(
                norm.moving_mean) * scale
            scale = ops.reshape(ops.convert_to_tensor(conv.kernel), (-1,)) * scale
            for i, name in enumerate(names):
                part = slice(i * channels, (i + 1) * channels)
                biases[name] = AffineBias(pooled[block], scale[part], shift[part])
        return biases

    def kernels(self):
        """Kernels that get weight decay: the three 1x1 convs (batch norm excluded)."""
        return [conv.kernel for conv in self.convs]

    def get_config(self):
        return {**super().get_config(), "model_config": self.model_config.to_dict()}
