"""The original's input convention in one place: RGB -> BGR minus the VGG mean, scale 1.0.

Source: `dataset_davis.py` / `dataset_coco.py` of the original; the Caffe VGG16 convention.
All functions are TensorFlow ops and work eagerly and inside `tf.data`.
"""

from __future__ import annotations

import tensorflow as tf

from osmn.config import MEAN_BGR


def to_model_input(rgb: tf.Tensor) -> tf.Tensor:
    """RGB pixels in [0, 255] (any dtype) -> model input.

    Args:
        rgb: [..., H, W, 3] or [..., H, W, 1] (grey, repeated to 3 channels), values 0..255.

    Returns:
        [..., H, W, 3] float32, BGR minus MEAN_BGR.
    """
    rgb = tf.convert_to_tensor(rgb)
    rgb = tf.cast(rgb, tf.float32)
    if rgb.shape[-1] == 1:
        rgb = tf.repeat(rgb, 3, axis=-1)
    bgr = tf.reverse(rgb, axis=[-1])
    return bgr - tf.constant(MEAN_BGR, tf.float32)


def from_model_input(model_input: tf.Tensor) -> tf.Tensor:
    """Inverse of `to_model_input`: [..., H, W, 3] float32 BGR-mean -> uint8 RGB."""
    bgr = tf.cast(model_input, tf.float32) + tf.constant(MEAN_BGR, tf.float32)
    rgb = tf.reverse(bgr, axis=[-1])
    return tf.cast(tf.clip_by_value(tf.round(rgb), 0.0, 255.0), tf.uint8)


def resize_image(image: tf.Tensor, height, width) -> tf.Tensor:
    """Resize like the original's PIL bilinear (antialiased when shrinking).

    `tf.image.resize(..., antialias=True)` agrees with PIL within one grey level (spec, "Input
    conventions"); without antialias it was up to 16 levels off on a large shrink.

    Args:
        image: [H, W, C] or [B, H, W, C], any numeric dtype.

    Returns:
        float32 of the same rank, [height, width] spatially.
    """
    return tf.image.resize(tf.cast(image, tf.float32), tf.stack([height, width]),
                           method="bilinear", antialias=True)


def resize_mask(mask: tf.Tensor, height, width) -> tf.Tensor:
    """Resize a label mask [H, W, 1] (or batched) with nearest neighbour; keeps the dtype."""
    resized = tf.image.resize(mask, tf.stack([height, width]), method="nearest")
    return tf.cast(resized, mask.dtype)
