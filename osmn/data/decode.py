"""Decoding of training files as TensorFlow ops (usable eagerly and inside `tf.data`).

* JPEG/PNG images -> [H, W, 3] uint8 RGB (grey images repeated to 3 channels).
* Label PNGs: `tf.io.decode_png` turns a palette (indexed) PNG into its palette COLOURS, not its
  indices, so an object is selected by comparing pixels with that object's colour, which the
  index scan (`osmn.data.video_samples`) reads once per file with PIL. Grey PNGs decode to
  (v, v, v) and are matched the same way.
* COCO compressed RLE strings (the `counts` of `pycocotools.mask.frPyObjects`) -> [H, W] uint8,
  decoded in TensorFlow so that COCO masks never leave the graph.
"""

from __future__ import annotations

import tensorflow as tf


def decode_image(encoded: tf.Tensor) -> tf.Tensor:
    """Encoded image bytes -> [H, W, 3] uint8 RGB (JPEG, PNG, BMP, GIF first frame)."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def read_image(path: tf.Tensor) -> tf.Tensor:
    """Image file -> [H, W, 3] uint8 RGB (JPEG, PNG, BMP, GIF first frame)."""
    return decode_image(tf.io.read_file(path))


def decode_label_colours(encoded: tf.Tensor) -> tf.Tensor:
    """Label PNG bytes -> [H, W, 3] uint8 colours (palette entries for indexed PNGs, (v,v,v)
    for grey)."""
    colours = tf.io.decode_png(encoded, channels=3)
    colours.set_shape([None, None, 3])
    return colours


def colour_mask(colours: tf.Tensor, colour: tf.Tensor) -> tf.Tensor:
    """[H, W, 3] uint8 colours, [3] uint8 colour -> [H, W, 1] float32, 1 where equal."""
    equal = tf.reduce_all(tf.equal(colours, tf.cast(colour, colours.dtype)), axis=-1, keepdims=True)
    return tf.cast(equal, tf.float32)


def decode_coco_rle(counts: tf.Tensor, height, width) -> tf.Tensor:
    """Decode a COCO compressed RLE string into a mask, as `pycocotools.mask.decode` does.

    The format (pycocotools `maskApi.c`: `rleFrString`): each run length is written in 5-bit
    groups as characters 48 + group, lowest group first; bit 0x20 of a character means "more
    groups follow", bit 0x10 of the last group is the sign. From the third run on, the value is
    a difference to the run two places before. Runs alternate 0 and 1 starting with 0, in
    column-major (Fortran) order.

    Args:
        counts: scalar string, the RLE `counts`.
        height, width: int scalars, the mask size.

    Returns:
        [height, width] uint8 in {0, 1}.
    """
    chars = tf.cast(tf.io.decode_raw(counts, tf.uint8), tf.int64) - 48
    group = tf.bitwise.bitwise_and(chars, 0x1f)
    ends = tf.equal(tf.bitwise.bitwise_and(chars, 0x20), 0)  # last character of a run
    run_id = tf.cumsum(tf.cast(ends, tf.int64), exclusive=True)  # [n_chars]
    n_runs = tf.reduce_sum(tf.cast(ends, tf.int64))
    run_start = tf.concat([[0], tf.where(ends)[:-1, 0] + 1], axis=0)  # first char of each run
    position = tf.range(tf.size(chars, out_type=tf.int64)) - tf.gather(run_start, run_id)
    value = tf.math.unsorted_segment_sum(
        tf.bitwise.left_shift(group, 5 * position), run_id, n_runs)
    # Sign: bit 0x10 of a run's last group; sign-extend from bit 5 x (groups in the run).
    groups = tf.math.unsorted_segment_sum(tf.ones_like(run_id), run_id, n_runs)
    negative = tf.bitwise.bitwise_and(tf.boolean_mask(group, ends), 0x10) > 0
    value = tf.where(negative, value - tf.bitwise.left_shift(tf.ones_like(value), 5 * groups),
                     value)
    # Undo the delta coding x[i] = d[i] + x[i - 2] for i > 2: a cumulative sum per parity,
    # the even chain starting at x[2] and the odd one at x[1].
    index = tf.range(n_runs)
    parity = index % 2
    even = tf.cumsum(tf.where((parity == 0) & (index > 0), value, 0))
    odd = tf.cumsum(tf.where(parity == 1, value, 0))
    runs = tf.where(index == 0, value, tf.where(parity == 0, even, odd))
    height = tf.cast(height, tf.int64)
    width = tf.cast(width, tf.int64)
    total = height * width
    tf.debugging.assert_equal(tf.reduce_sum(runs), total,
                              message="RLE length does not match the image size")
    # Runs alternate 0, 1, 0, ...: the value flips at every run end. Mark the flips and take a
    # cumulative parity (an empty run flips twice at one pixel: no change, as it should).
    # (tf.repeat would build a [runs, longest run] mask: hundreds of millions of cells.)
    ends = tf.cumsum(runs)[:-1]
    ends = tf.boolean_mask(ends, ends < total)
    flips = tf.math.unsorted_segment_sum(tf.ones_like(ends), ends, total)
    flat = tf.cast(tf.math.floormod(tf.cumsum(flips), 2), tf.uint8)
    return tf.transpose(tf.reshape(flat, tf.stack([width, height])))
