"""Training augmentations of OSMN as stateless TensorFlow ops (eager and inside `tf.data`).

Every random choice takes an explicit stateless seed ([2] int32/int64), so a sample's
augmentation is a function of (training seed, epoch, position) alone: a resumed run sees the
same data. (Keras' `RandomRotation` / `RandomFlip` layers and keras-cv draw from a stateful
seed generator that cannot be set per sample, so they cannot give that property; the rotation
uses TensorFlow's projective-transform kernel, the op those layers use themselves.)

Visual guide (original `dataset_*.py`, spec "Input conventions"): each box side moved by
U(-0.1, 0.1) x box size, crop resized to 224x224, rotated by U(-10, 10) degrees about the centre
with nearest interpolation and a black border, flipped with p = 0.5; the mask gets the same
transforms and background pixels are 0 in the model's convention (the mean colour).
"""

from __future__ import annotations

import math

import tensorflow as tf

from osmn import config
from osmn.guides import bounding_box, jittered_box, visual_guide_from_box


def split_seed(seed: tf.Tensor, n: int) -> tf.Tensor:
    """[2] stateless seed -> [n, 2] independent seeds."""
    return tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), n)


def random_crop(seed: tf.Tensor, size, *tensors):
    """Cut the same window, at a random (seeded) place, out of images of one size.

    Args:
        seed: [2] stateless seed.
        size: (crop_height, crop_width), ints or int32 scalars, at most the images' size.
        *tensors: [H, W, C] tensors of one H, W.

    Returns:
        tuple of [crop_height, crop_width, C] tensors, in the order given.
    """
    shape = tf.shape(tensors[0])
    crop_h, crop_w = tf.cast(size[0], tf.int32), tf.cast(size[1], tf.int32)
    tf.debugging.assert_less_equal(tf.stack([crop_h, crop_w]), shape[:2],
                                   message="crop larger than the image")
    seeds = split_seed(seed, 2)
    top = tf.random.stateless_uniform([], seeds[0], 0, shape[0] - crop_h + 1, tf.int32)
    left = tf.random.stateless_uniform([], seeds[1], 0, shape[1] - crop_w + 1, tf.int32)
    return tuple(t[top:top + crop_h, left:left + crop_w] for t in tensors)


def rotate_nearest(images: tf.Tensor, degrees: tf.Tensor) -> tf.Tensor:
    """Rotate [H, W, C] float32 about its centre, nearest neighbour, 0 outside (black border).

    Positive angles turn the content counter-clockwise on screen.
    """
    shape = tf.shape(images)
    h = tf.cast(shape[0], tf.float32)
    w = tf.cast(shape[1], tf.float32)
    angle = tf.cast(degrees, tf.float32) * (math.pi / 180.0)
    cos, sin = tf.cos(angle), tf.sin(angle)
    # Output pixel (x, y) samples input (a0 x + a1 y + a2, b0 x + b1 y + b2): the inverse rotation.
    cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
    a2 = cx - cos * cx + sin * cy
    b2 = cy - sin * cx - cos * cy
    transform = tf.stack([cos, -sin, a2, sin, cos, b2, 0.0, 0.0])[None, :]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=images[None], transforms=transform, output_shape=shape[:2],
        fill_value=0.0, interpolation="NEAREST", fill_mode="CONSTANT")
    return out[0]


def flip_left_right_if(flip: tf.Tensor, *tensors):
    """Horizontally flip every [H, W, C] tensor when the boolean scalar `flip` is true."""
    return tuple(tf.cond(flip, lambda t=t: tf.reverse(t, axis=[1]), lambda t=t: t)
                 for t in tensors)


def random_flip(seed: tf.Tensor, probability: float = config.VISUAL_GUIDE_FLIP_PROB) -> tf.Tensor:
    """Boolean scalar, true with `probability` (stateless)."""
    return tf.random.stateless_uniform([], tf.cast(seed, tf.int64)) < probability


def train_visual_guide(image_rgb: tf.Tensor, mask: tf.Tensor, seed: tf.Tensor):
    """Training visual guide of one object: jittered box crop, 224x224, rotation, flip.

    Args:
        image_rgb: [H, W, 3] RGB 0..255, any dtype.
        mask: [H, W, 1] (or [H, W]); foreground where > 0. An empty mask gives all zeros.
        seed: [2] int stateless seed.

    Returns:
        guide: [224, 224, 3] float32, BGR minus mean, background (and rotation border) 0.
        guide_mask: [224, 224, 1] float32 in {0, 1}.
    """
    size = config.VISUAL_GUIDE_SIZE
    seeds = split_seed(seed, 3)

    def from_mask():
        box = jittered_box(bounding_box(mask), seeds[0])
        guide, guide_mask = visual_guide_from_box(image_rgb, mask, box, size)
        degrees = tf.random.stateless_uniform(
            [], seeds[1], -config.VISUAL_GUIDE_MAX_ROTATION_DEG,
            config.VISUAL_GUIDE_MAX_ROTATION_DEG)
        # Masking before a nearest rotation equals the original's rotate-then-mask: nearest
        # sampling commutes with the pixel-wise product, and the border has mask 0.
        both = rotate_nearest(tf.concat([guide, guide_mask], axis=-1), degrees)
        guide, guide_mask = both[..., :3], both[..., 3:]
        return flip_left_right_if(random_flip(seeds[2]), guide, guide_mask)

    def empty():
        return tf.zeros([size, size, 3], tf.float32), tf.zeros([size, size, 1], tf.float32)

    guide, guide_mask = tf.cond(tf.reduce_any(mask > 0), from_mask, empty)
    guide.set_shape([size, size, 3])
    guide_mask.set_shape([size, size, 1])
    return guide, guide_mask
