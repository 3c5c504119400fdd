"""The segmentation network (paper §3.5; original `model_func.py`: `osmn`, scope `osmn/seg`).

A VGG16 hyper-column FCN as in OSVOS:

    image -> conv1_x -> pool -> conv2_x -> pool -> conv3_x -> pool -> conv4_x -> pool -> conv5_x
                           |                 |                |                |
                     side conv2_2_16   conv3_3_16       conv4_3_16       conv5_3_16  (3x3, 16 ch)
                           |                 |                |                |
                       up x2, crop      up x4, crop      up x8, crop     up x16, crop
                           +--------------- concat (64 ch) ---------------+
                                                  |
                                     upscore_fuse (1x1 conv) -> logit

The concat + fusion is computed in the equivalent form sum_j up_j(side_j @ W_fuse_j) + b (see
`_side_logit`). Batch broadcasting: an image batch of 1 with gamma/betas of batch K
gives K outputs; the layers before the first modulation then run once, not K times.

Every conv of the modulated blocks (conv3_1..conv5_3 by default) is followed by its ReLU, then
the visual scale, then the spatial bias: y = relu(conv(x)) * gamma_c + beta (original
`modulated_conv_block`). Side outputs read the conv outputs AFTER modulation.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from osmn import config
from osmn.config import ModelConfig
from osmn.model.modulation import ChannelScale, SpatialBias
from osmn.model.upsampling import BilinearUpsampling
from osmn.model.vgg import build_vgg_conv_blocks, conv_initializer, max_pool, vgg_conv_blocks


@keras.saving.register_keras_serializable(package="osmn")
class SegmentationNetwork(keras.layers.Layer):
    """Modulated VGG16 FCN: image, gamma, betas -> foreground logit at the input size.

    Args:
        model_config: `ModelConfig` or dict of its fields. Defaults to the paper's VGG16.

    Call args:
        image: [B, H, W, 3] float32, BGR minus mean; any H, W >= 1. B may be 1 while gamma
            and betas have batch K: the image is then shared by the K objects.
        gamma: [B, G] scales, or None (no visual modulation).
        betas: dict layer name -> [B, h, w, C] biases, or None (no spatial modulation).

    Returns:
        logits: [B, H, W, 1] float32 (batch max(B, K) when broadcasting).
    """

    def __init__(self, model_config=None, **kwargs):
        super().__init__(**kwargs)
        self.model_config = ModelConfig.of(model_config)
        self.conv_blocks = vgg_conv_blocks(self.model_config.block_channels())
        self.pools = [max_pool(f"pool{b}") for b in range(1, 5)]
        self.gamma_slices = self.model_config.gamma_slices()
        self.scale = ChannelScale(name="visual_modulation")
        self.bias = SpatialBias(name="spatial_modulation")
        self.side_convs, self.upsamplers = [], []
        for block in config.SIDE_OUTPUT_BLOCKS:
            last = config.VGG_BLOCK_DEPTHS[block - 1]
            self.side_convs.append(keras.layers.Conv2D(
                config.SIDE_OUTPUT_CHANNELS, 3, padding="same",
                kernel_initializer=conv_initializer(), name=f"conv{block}_{last}_16"))
            self.upsamplers.append(BilinearUpsampling(
                2 ** (block - 1), config.SIDE_OUTPUT_CHANNELS, name=f"score_multi{block}_up"))
        self.fuse = keras.layers.Conv2D(1, 1, kernel_initializer=conv_initializer(),
                                        name="upscore_fuse")

    def build(self, input_shape=None):
        build_vgg_conv_blocks(self.conv_blocks)
        channels = self.model_config.block_channels()
        for block, side in zip(config.SIDE_OUTPUT_BLOCKS, self.side_convs):
            side.build((None, None, None, channels[block - 1]))
        self.fuse.build((None, None, None,
                         config.SIDE_OUTPUT_CHANNELS * len(config.SIDE_OUTPUT_BLOCKS)))
        if not self.model_config.train_seg:
            # The original's `fix_seg`: conv1-conv5 and the side convs frozen, the fusion conv
            # trainable.
            for layer in self.trunk_layers() + self.side_convs:
                layer.trainable = False
        self.built = True

    def trunk_layers(self):
        return [conv for block in self.conv_blocks for conv in block]

    def call(self, image, gamma=None, betas=None):
        x = image
        logits = None
        for block, convs in enumerate(self.conv_blocks, start=1):
            if block > 1:
                x = self.pools[block - 2](x)
            for conv in convs:
                x = conv(x)
                if gamma is not None and conv.name in self.gamma_slices:
                    start, stop = self.gamma_slices[conv.name]
                    x = self.scale(x, gamma[:, start:stop])
                if betas is not None and conv.name in betas:
                    x = self.bias(x, betas[conv.name])
            if block in config.SIDE_OUTPUT_BLOCKS:
                term = self._side_logit(block, x, image)
                logits = term if logits is None else logits + term
        logits = logits + tf.cast(self.fuse.bias, logits.dtype)
        return tf.cast(logits, tf.float32)

    def side_output(self, block):
        """Side block `block`'s 3x3 conv and the [16, 1] rows of the fusion kernel that read it."""
        index = config.SIDE_OUTPUT_BLOCKS.index(block)
        channels = config.SIDE_OUTPUT_CHANNELS
        return (self.side_convs[index],
                self.fuse.kernel[0, 0, index * channels:(index + 1) * channels, :])

    def _side_logit(self, block, x, image):
        """Side output `block`'s share of the logit: up(side_conv(x) @ W_fuse[block]).

        The original concatenates the four upsampled 16-channel side outputs and applies the 1x1
        `upscore_fuse` conv. Upsampling is linear and acts on each channel alone, so
        fuse(concat_j up_j(s_j)) = sum_j up_j(s_j @ W_j) + b, with W_j the rows of the fusion
        kernel that read side output j: the same function and weights, with one channel
        upsampled instead of 16 and no 64-channel full-size concat (docs/performance.md).

        Returns:
            [B, H, W, 1] in the compute dtype, without the fusion bias.
        """
        side_conv, rows = self.side_output(block)
        side = side_conv(x)
        side = tf.einsum("bhwc,co->bhwo", side, tf.cast(rows, side.dtype))
        return self.upsamplers[config.SIDE_OUTPUT_BLOCKS.index(block)](side, image)

    def kernels(self):
        """Kernels that get weight decay: conv1_1..conv5_3, the side convs, the fixed upsampling
        kernels (constants: their decay is a constant, as in the original) and the fusion conv."""
        return ([conv.kernel for conv in self.trunk_layers()]
                + [side.kernel for side in self.side_convs]
                + [up.kernel for up in self.upsamplers]
                + [self.fuse.kernel])

    def get_config(self):
        return {**super().get_config(), "model_config": self.model_config.to_dict()}
