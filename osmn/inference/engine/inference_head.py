"""The side-output head for inference: the same function as the training head, cheaper on CPU.

The training formulation (`SegmentationNetwork._side_logit`) computes, per side block j,
up_j(side_conv_j(x_j) @ W_j): a 3x3 conv to 16 channels, a 16 -> 1 matmul with the rows W_j of
the 1x1 fusion conv, and the bilinear upsampling + crop as two dense matrix products. All of it
is linear, so in inference it is regrouped:

1. `side_taps`: the 3x3 kernel and W_j fold into T_j [C, 9], one column per kernel tap, and
   x_j @ T_j is a 1x1 product to 9 channels (reads x_j once and does 1/16 of the multiply-adds
   of the 16-channel 3x3 conv; oneDNN in the frame's precision);
2. `head_logits`, ONE XLA-compiled function for the rest of the frame: each 9-channel map is
   summed over the 3x3 shifts (SAME zero padding) plus b_j @ W_j, upsampled per axis in its
   phase form (`_upsample_axis`: the two non-zero taps of each row of `interpolation_matrix`
   as broadcasts), and the four maps and the fusion bias are summed into the float32 logit.

Same weights, same values up to float rounding (tests/test_inference_head.py compares them).
"""

from __future__ import annotations

import tensorflow as tf

from osmn import config
from osmn.model.upsampling import bilinear_weights, crop_offset

# Tap t of the 3x3 kernel is (dy, dx) = divmod(t, 3), as in the kernel's [3, 3, ...] layout.
TAPS = 9


def side_taps(x, side_conv, fuse_rows):
    """Side block j's 9 tap maps: x_j @ T_j with T_j[c, 3 dy + dx] = K_j[dy, dx, c, :] @ W_j.

    Args:
        x: [B, h, w, C] the block's (modulated) output, in the compute dtype.
        side_conv: the block's `keras.layers.Conv2D` (3x3 -> 16 channels).
        fuse_rows: [16, 1] the rows of the fusion kernel that read this side output.

    Returns:
        [B, h, w, 9] in x's dtype.
    """
    return tf.einsum("bhwc,ct->bhwt", x, tf.cast(tap_kernel(side_conv, fuse_rows), x.dtype))


def tap_kernel(side_conv, fuse_rows):
    """T_j [C, 9] float32, T_j[c, 3 dy + dx] = K_j[dy, dx, c, :] @ W_j (see `side_taps`)."""
    kernel = tf.cast(tf.convert_to_tensor(side_conv.kernel), tf.float32)   # [3, 3, C, 16]
    folded = tf.einsum("yxco,oz->cyx", kernel, tf.cast(fuse_rows, tf.float32))
    return tf.reshape(folded, (-1, TAPS))                                   # [C, 9]


def tap_bias(side_conv, fuse_rows):
    """b_j @ W_j: the side conv's bias carried through the fusion rows, [] float32."""
    bias = tf.cast(tf.convert_to_tensor(side_conv.bias), tf.float32)
    return tf.tensordot(bias, tf.cast(fuse_rows[:, 0], tf.float32), 1)


def _shift_sum(taps):
    """[B, h, w, 9] -> [B, h, w]: sum_t taps[h + dy_t - 1, w + dx_t - 1, t], zeros outside."""
    height, width = tf.shape(taps)[1], tf.shape(taps)[2]
    padded = tf.pad(taps, [[0, 0], [1, 1], [1, 1], [0, 0]])
    total = None
    for t in range(TAPS):
        dy, dx = divmod(t, 3)
        term = padded[:, dy:dy + height, dx:dx + width, t]
        total = term if total is None else total + term
    return total


def _upsample_axis(maps, size, stride: int, axis: int):
    """The fixed transposed conv (kernel 2s, stride s) + crop along `axis` (1 or 2) of [B, ., .].

    Output position q = j s + p (phase p < s) of the uncropped transposed conv reads only cells
    j (tap p) and j - 1 (tap p + s): full[j, p] = k[p] x[j] + k[p + s] x[j - 1] for j = 0..m,
    with zero cells outside. So the upsampling is two broadcast multiply-adds and a reshape,
    which XLA turns into one vectorised loop (a gather per output pixel was 4x slower), then
    the original's crop at `crop_offset`.
    """
    weights = bilinear_weights(2 * stride)
    at_cell = tf.constant(weights[:stride])       # k[p]: cell j
    at_previous = tf.constant(weights[stride:])   # k[p + s]: cell j - 1
    cells = tf.shape(maps)[axis]
    pad = [[0, 0], [0, 0], [0, 0]]
    pad[axis] = [1, 1]
    padded = tf.pad(maps, pad)
    if axis == 1:
        full = (padded[:, 1:, None, :] * at_cell[None, None, :, None]
                + padded[:, :-1, None, :] * at_previous[None, None, :, None])
        full = tf.reshape(full, [tf.shape(maps)[0], (cells + 1) * stride, tf.shape(maps)[2]])
        start = crop_offset(size, cells, stride)
        return full[:, start:start + size, :]
    full = padded[:, :, 1:, None] * at_cell + padded[:, :, :-1, None] * at_previous
    full = tf.reshape(full, [tf.shape(maps)[0], tf.shape(maps)[1], (cells + 1) * stride])
    start = crop_offset(size, cells, stride)
    return full[:, :, start:start + size]


def _upsample(maps, height, width, stride: int):
    """[B, m_h, m_w] -> [B, H, W]: the side output's bilinear upsampling + crop, per axis."""
    return _upsample_axis(_upsample_axis(maps, height, stride, 1), width, stride, 2)


@tf.function(jit_compile=True, reduce_retracing=True)
def head_logits(taps, tap_biases, fuse_bias, height, width):
    """The rest of the frame after the side taps, as one XLA computation.

    Args:
        taps: tuple of [B_j, h_j, w_j, 9], one per side block in `config.SIDE_OUTPUT_BLOCKS`
            order, h_j = ceil(H / 2^(j-1)); B_j is 1 or K (broadcast).
        tap_biases: [len(taps)] float32, `tap_bias` per side block.
        fuse_bias: [1] the fusion conv's bias.
        height, width: scalar int32 H and W of the input image.

    Returns:
        logits [max B_j, H, W, 1] float32.
    """
    total = tf.cast(fuse_bias[0], tf.float32)
    for index, (block, maps) in enumerate(zip(config.SIDE_OUTPUT_BLOCKS, taps)):
        summed = _shift_sum(tf.cast(maps, tf.float32)) + tap_biases[index]
        total = total + _upsample(summed, height, width, 2 ** (block - 1))
    return total[..., None]
