"""The VGG16 conv trunk shared by the segmentation network and the visual modulator.

`model_func.py` of the original: blocks of [2, 2, 3, 3, 3] 3x3 SAME convs with biases and ReLU,
[64, 128, 256, 512, 512] channels, 2x2 stride-2 SAME max pools between blocks (odd sizes give
ceil(n / 2)). Weights ~ N(0, 0.001), biases 0; weight decay is applied by `osmn.losses`.
"""

from __future__ import annotations

from typing import List

import keras

from osmn import config


def conv_initializer():
    """N(0, 0.001) for every conv weight (the original's initializer)."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=config.CONV_INIT_STDDEV)


def vgg_conv_blocks(block_channels) -> List[List[keras.layers.Conv2D]]:
    """The 13 VGG16 convs, grouped per block and named `conv{block}_{i}` like the original.

    Args:
        block_channels: five ints, the channels of blocks 1..5.

    Returns:
        A list of five lists of `Conv2D` layers (ReLU included), not yet built.
    """
    blocks = []
    for block, (depth, channels) in enumerate(zip(config.VGG_BLOCK_DEPTHS, block_channels),
                                              start=1):
        blocks.append([
            keras.layers.Conv2D(channels, 3, padding="same", activation="relu",
                                kernel_initializer=conv_initializer(), name=f"conv{block}_{i}")
            for i in range(1, depth + 1)])
    return blocks


def build_vgg_conv_blocks(blocks, in_channels: int = 3) -> None:
    """Create the weights of `vgg_conv_blocks` (they do not depend on the spatial size)."""
    for convs in blocks:
        for conv in convs:
            conv.build((None, None, None, in_channels))
            in_channels = conv.filters


def max_pool(name: str) -> keras.layers.MaxPooling2D:
    """2x2 stride-2 SAME max pool (between VGG blocks)."""
    return keras.layers.MaxPooling2D(2, 2, padding="same", name=name)
