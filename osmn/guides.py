"""The two guides of OSMN, as TensorFlow ops usable eagerly and inside `tf.data`.

* Spatial guide (paper §3.4; original `util.py`: `compute_robust_moments`, `get_gb_image`): a
  one-channel Gaussian heat map at the image's resolution, centred on the per-axis MEDIAN of the
  mask's pixel coordinates with std = 1.4826 x per-axis median absolute deviation (at least 5
  pixels). The paper says "mean and standard deviation"; the code uses these robust moments and
  we follow the code. An empty mask gives an all-zero guide.
* Visual guide (paper §3.5; original `dataset_*.py`): the image cropped to the mask's bounding
  box (extended by int(0.03 x size) per side at test time, pixels outside the image black),
  resized to 224x224 ignoring the aspect ratio, converted to the model's input convention, and
  background pixels set to 0 after mean subtraction, i.e. to the mean colour. (The original's crop
  drops the box's last row and column, an off-by-one we do not copy.)

Coordinates: x is the column index, y the row index, both in pixels.
"""

from __future__ import annotations

from typing import Optional

import tensorflow as tf

from osmn import config
from osmn.preprocessing import resize_image, to_model_input


def _weighted_median(values: tf.Tensor, counts: tf.Tensor) -> tf.Tensor:
    """Median of the multiset holding counts[i] copies of values[i] (1-D, total count >= 1),
    averaging the two middle values as numpy.median does."""
    order = tf.argsort(values, stable=True)
    values, cumulative = tf.gather(values, order), tf.cumsum(tf.gather(counts, order))
    n = cumulative[-1]

    def at(rank):  # the value of the element of this rank in sorted order
        return values[tf.searchsorted(cumulative, tf.reshape(rank + 1, [1]))[0]]

    return 0.5 * (at((n - 1) // 2) + at(n // 2))


def robust_moments(mask: tf.Tensor):
    """Robust centre and spread of a mask's foreground pixels.

    Args:
        mask: [H, W] or [H, W, 1]; foreground where > 0. Must not be empty.

    Returns:
        center: [2] float32 (x, y) per-axis median.
        std: [2] float32 (x, y) 1.4826 x median absolute deviation, at least MIN_GUIDE_STD.
    """
    # The medians of the foreground pixels' x and y are medians of the column and row indices
    # weighted by the foreground count of each column and row: the same values as sorting the
    # N pixel coordinates, from W + H numbers instead (it runs every frame, per object).
    foreground = tf.cast(tf.reshape(mask, tf.shape(mask)[:2]) > 0, tf.int64)
    columns, rows = tf.reduce_sum(foreground, 0), tf.reduce_sum(foreground, 1)
    xs = tf.cast(tf.range(tf.shape(columns)[0]), tf.float32)
    ys = tf.cast(tf.range(tf.shape(rows)[0]), tf.float32)
    center = tf.stack([_weighted_median(xs, columns), _weighted_median(ys, rows)])
    mad = tf.stack([_weighted_median(tf.abs(xs - center[0]), columns),
                    _weighted_median(tf.abs(ys - center[1]), rows)])
    std = tf.maximum(config.MAD_TO_STD * mad, config.MIN_GUIDE_STD)
    return center, std


def gaussian_map(height, width, center: tf.Tensor, std: tf.Tensor) -> tf.Tensor:
    """exp(-sum((p - c)^2 / (2 std^2))) on the pixel grid, clipped to [0, 1].

    Args:
        height, width: int scalars.
        center, std: [2] float32, (x, y).

    Returns:
        [height, width, 1] float32.
    """
    xs = tf.cast(tf.range(width), tf.float32)
    ys = tf.cast(tf.range(height), tf.float32)
    gx = tf.square(xs - center[0]) / (2.0 * tf.square(std[0]))
    gy = tf.square(ys - center[1]) / (2.0 * tf.square(std[1]))
    guide = tf.exp(-(gy[:, None] + gx[None, :]))
    return tf.clip_by_value(guide, 0.0, 1.0)[:, :, None]


def spatial_guide(mask: tf.Tensor, height=None, width=None, perturb: bool = False,
                  seed: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Gaussian spatial guide of a mask.

    Args:
        mask: [H, W] or [H, W, 1], any dtype; foreground where > 0.
        height, width: optional output size. When given and different from the mask's, the
            moments are rescaled to it (the guide is computed at the working resolution).
        perturb: bool. Training augmentation: centre += U(-0.2, 0.2) x std and
            std *= U(1/1.4, 1.4), independently per axis.
        seed: [2] int32/int64 stateless seed, required when `perturb`.

    Returns:
        [height, width, 1] float32 in [0, 1]; all zero when the mask is empty.
    """
    mask = tf.convert_to_tensor(mask)
    mask_hw = tf.shape(mask)[:2]
    out_h = mask_hw[0] if height is None else tf.convert_to_tensor(height, tf.int32)
    out_w = mask_hw[1] if width is None else tf.convert_to_tensor(width, tf.int32)

    def from_mask():
        center, std = robust_moments(mask)
        scale = tf.stack([tf.cast(out_w, tf.float32) / tf.cast(mask_hw[1], tf.float32),
                          tf.cast(out_h, tf.float32) / tf.cast(mask_hw[0], tf.float32)])
        center, std = center * scale, std * scale
        if perturb:
            if seed is None:
                raise ValueError("spatial_guide(perturb=True) needs a seed")
            seeds = tf.random.experimental.stateless_split(seed, 2)
            shift = tf.random.stateless_uniform(
                [2], seeds[0], -config.GUIDE_CENTER_SHIFT, config.GUIDE_CENTER_SHIFT)
            log_scale = tf.random.stateless_uniform(
                [2], seeds[1], -1.0, 1.0) * tf.math.log(config.GUIDE_STD_SCALE)
            center = center + shift * std
            std = std * tf.exp(log_scale)
        return gaussian_map(out_h, out_w, center, std)

    def empty():
        return tf.zeros(tf.stack([out_h, out_w, 1]), tf.float32)

    return tf.cond(tf.reduce_any(mask > 0), from_mask, empty)


def bounding_box(mask: tf.Tensor) -> tf.Tensor:
    """Tight box of the foreground, inclusive: [4] int32 (y0, x0, y1, x1). Mask must be non-empty."""
    mask = tf.reshape(mask, tf.shape(mask)[:2])
    yx = tf.cast(tf.where(mask > 0), tf.int32)
    low = tf.reduce_min(yx, axis=0)
    high = tf.reduce_max(yx, axis=0)
    return tf.concat([low, high], axis=0)


def box_with_test_padding(box: tf.Tensor) -> tf.Tensor:
    """Extend each side of an inclusive box by int(0.03 x box size) of its axis."""
    size = box[2:] - box[:2] + 1
    pad = tf.cast(tf.cast(size, tf.float32) * config.VISUAL_GUIDE_TEST_PAD, tf.int32)
    return tf.concat([box[:2] - pad, box[2:] + pad], axis=0)


def jittered_box(box: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Training box: each side moved by U(-0.1, 0.1) x box size of its axis (stateless seed [2]).

    The box never collapses: each side stays at least one pixel from the opposite side.
    """
    size = tf.cast(box[2:] - box[:2] + 1, tf.float32)
    moves = tf.random.stateless_uniform(
        [4], seed, -config.VISUAL_GUIDE_BOX_JITTER, config.VISUAL_GUIDE_BOX_JITTER)
    moved = tf.cast(box, tf.float32) + moves * tf.concat([size, size], axis=0)
    moved = tf.cast(tf.round(moved), tf.int32)
    low = moved[:2]
    high = tf.maximum(moved[2:], low)
    return tf.concat([low, high], axis=0)


def crop_box(image: tf.Tensor, box: tf.Tensor) -> tf.Tensor:
    """Crop an inclusive box that may leave the image; outside pixels are 0 (black).

    Args:
        image: [H, W, C].
        box: [4] int32 (y0, x0, y1, x1), inclusive.

    Returns:
        [y1 - y0 + 1, x1 - x0 + 1, C], the dtype of `image`.
    """
    hw = tf.shape(image)[:2]
    pad_low = tf.maximum(0, -box[:2])
    pad_high = tf.maximum(0, box[2:] - (hw - 1))
    padded = tf.pad(image, tf.stack([
        tf.stack([pad_low[0], pad_high[0]]), tf.stack([pad_low[1], pad_high[1]]), [0, 0]]))
    start = box[:2] + pad_low
    size = box[2:] - box[:2] + 1
    return tf.slice(padded, tf.concat([start, [0]], 0), tf.concat([size, [-1]], 0))


def visual_guide_from_box(image_rgb: tf.Tensor, mask: tf.Tensor, box: tf.Tensor,
                          size: int = config.VISUAL_GUIDE_SIZE):
    """Crop, resize and mask the object: the visual modulator's input.

    Args:
        image_rgb: [H, W, 3] RGB, values 0..255 (any dtype).
        mask: [H, W] or [H, W, 1]; foreground where > 0.
        box: [4] int32 inclusive (y0, x0, y1, x1), may extend past the image.
        size: output side (224 in the paper).

    Returns:
        guide: [size, size, 3] float32 in the model's convention (BGR minus mean), background 0.
        guide_mask: [size, size, 1] float32 in {0, 1}, the resized object mask.
    """
    mask = tf.reshape(mask, tf.concat([tf.shape(mask)[:2], [1]], 0))
    crop = crop_box(tf.cast(image_rgb, tf.float32), box)
    crop_mask = crop_box(tf.cast(mask > 0, tf.float32), box)
    crop = resize_image(crop, size, size)
    crop_mask = tf.image.resize(crop_mask, [size, size], method="nearest")
    guide = to_model_input(crop) * crop_mask
    return guide, crop_mask


def visual_guide(image_rgb: tf.Tensor, mask: tf.Tensor,
                 size: int = config.VISUAL_GUIDE_SIZE) -> tf.Tensor:
    """Test-time visual guide: box extended by 3% per side. Empty mask -> all-zero guide.

    Args:
        image_rgb: [H, W, 3] RGB 0..255. mask: [H, W] or [H, W, 1].

    Returns:
        [size, size, 3] float32, BGR minus mean, background 0.
    """
    mask = tf.convert_to_tensor(mask)

    def from_mask():
        box = box_with_test_padding(bounding_box(mask))
        return visual_guide_from_box(image_rgb, mask, box, size)[0]

    return tf.cond(tf.reduce_any(mask > 0), from_mask,
                   lambda: tf.zeros([size, size, 3], tf.float32))
