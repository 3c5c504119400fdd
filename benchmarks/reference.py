"""The segmentation network in the original's formulation (the authors' code), as a reference.

Each side output is upsampled by the 16x16-channel transposed conv with the bilinear kernel on
the channel diagonal, cropped, the four are concatenated to 64 channels and fused by the 1x1
`upscore_fuse` conv; K objects are K copies of the frame. `tests/test_fast_inference.py`
checks `SegmentationNetwork` against it, `speed_variants.py` times it.
"""

from __future__ import annotations

import tensorflow as tf

from osmn import config
from osmn.model import bilinear_kernel, crop_offset


def original_segment(net, image, gamma=None, betas=None):
    """`SegmentationNetwork` `net`'s weights applied as first written.

    Args:
        net: `osmn.model.SegmentationNetwork`.
        image: [B, H, W, 3]; gamma: [B, G] or None; betas: dict of [B, h, w, C] or None.

    Returns:
        logits [B, H, W, 1] in the compute dtype.
    """
    x = image
    side_inputs = {}
    for block, convs in enumerate(net.conv_blocks, start=1):
        if block > 1:
            x = net.pools[block - 2](x)
        for conv in convs:
            x = conv(x)
            if gamma is not None and conv.name in net.gamma_slices:
                start, stop = net.gamma_slices[conv.name]
                x = x * tf.cast(gamma[:, None, None, start:stop], x.dtype)
            if betas is not None and conv.name in betas:
                x = x + tf.cast(betas[conv.name], x.dtype)
        if block in config.SIDE_OUTPUT_BLOCKS:
            side_inputs[block] = x
    size = tf.shape(image)[1:3]
    channels = config.SIDE_OUTPUT_CHANNELS
    sides = []
    for block, side_conv in zip(config.SIDE_OUTPUT_BLOCKS, net.side_convs):
        s = 2 ** (block - 1)
        side = side_conv(side_inputs[block])
        m = tf.shape(side)
        up = (m[1:3] - 1) * s + 2 * s
        full = tf.nn.conv2d_transpose(
            side, tf.cast(bilinear_kernel(2 * s, channels), side.dtype),
            tf.stack([m[0], up[0], up[1], channels]), strides=s, padding="VALID")
        offset = crop_offset(size, m[1:3], s)
        sides.append(tf.slice(full, tf.stack([0, offset[0], offset[1], 0]),
                              tf.stack([-1, size[0], size[1], -1])))
    return net.fuse(tf.concat(sides, axis=-1))
