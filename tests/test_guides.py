"""Guides (spec "Input conventions"): each op eagerly and inside tf.data.Dataset.map."""

import numpy as np
import pytest
import tensorflow as tf

from layer_checks import eager_and_mapped, in_dataset_map
from osmn import config
from osmn.guides import (bounding_box, crop_box, jittered_box, robust_moments, spatial_guide,
                         box_with_test_padding, visual_guide)
from osmn.preprocessing import from_model_input, to_model_input


def numpy_spatial_guide(mask):
    """Straightforward reference of the original's `compute_robust_moments` + `get_gb_image`."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return np.zeros(mask.shape + (1,), np.float32)
    cx, cy = np.median(xs), np.median(ys)
    sx = max(1.4826 * np.median(np.abs(xs - cx)), 5.0)
    sy = max(1.4826 * np.median(np.abs(ys - cy)), 5.0)
    gx, gy = np.meshgrid(np.arange(mask.shape[1]), np.arange(mask.shape[0]))
    g = np.exp(-((gx - cx) ** 2 / (2 * sx ** 2) + (gy - cy) ** 2 / (2 * sy ** 2)))
    return np.clip(g, 0, 1)[..., None].astype(np.float32)


def random_mask(rng, height=47, width=63):
    mask = np.zeros((height, width), np.uint8)
    for _ in range(rng.integers(1, 4)):
        y, x = rng.integers(0, height - 5), rng.integers(0, width - 5)
        mask[y:y + rng.integers(2, 30), x:x + rng.integers(2, 30)] = 1
    mask[rng.uniform(size=mask.shape) < 0.02] = 1  # scattered outliers
    return mask


@pytest.mark.parametrize("seed", range(6))
def test_spatial_guide_matches_numpy_reference(seed):
    mask = random_mask(np.random.default_rng(seed))
    expected = numpy_spatial_guide(mask)
    np.testing.assert_allclose(spatial_guide(mask).numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(in_dataset_map(spatial_guide, mask).numpy(), expected, atol=1e-6)


def test_empty_mask_gives_zero_guide():
    empty = np.zeros((20, 30), np.uint8)
    for guide in (spatial_guide(empty), in_dataset_map(spatial_guide, empty)):
        assert guide.shape == (20, 30, 1)
        assert not np.any(guide.numpy())
    assert not np.any(visual_guide(np.full((20, 30, 3), 99, np.uint8), empty).numpy())


def test_robust_moments_floor_and_median():
    mask = np.zeros((50, 50), np.uint8)
    mask[10, 20:23] = 1  # x = 20, 21, 22: MAD 1 -> std 1.48 < 5
    center, std = robust_moments(mask)
    np.testing.assert_allclose(center.numpy(), [21.0, 10.0])
    np.testing.assert_allclose(std.numpy(), [5.0, 5.0])


def test_guide_rescaled_to_a_working_size():
    mask = np.zeros((40, 80), np.uint8)
    mask[10:30, 20:60] = 1
    guide = spatial_guide(mask, 20, 40).numpy()[..., 0]
    assert guide.shape == (20, 40)
    y, x = np.unravel_index(np.argmax(guide), guide.shape)
    assert abs(y - 9.75) <= 0.5 and abs(x - 19.75) <= 0.5


@pytest.mark.parametrize("seed", range(5))
def test_perturbed_centre_stays_within_bounds(seed):
    mask = random_mask(np.random.default_rng(seed), 60, 80)
    center, std = robust_moments(mask)
    guide = spatial_guide(mask, perturb=True, seed=tf.constant([seed, 7])).numpy()[..., 0]
    # Peak of the perturbed Gaussian: the perturbed centre, rounded to the pixel grid.
    y, x = np.unravel_index(np.argmax(guide), guide.shape)
    bound = config.GUIDE_CENTER_SHIFT * std.numpy() + 0.5
    assert abs(x - center.numpy()[0]) <= bound[0] or x in (0, 79)
    assert abs(y - center.numpy()[1]) <= bound[1] or y in (0, 59)
    # Same seed, same guide; other seed, other guide.
    again = spatial_guide(mask, perturb=True, seed=tf.constant([seed, 7])).numpy()[..., 0]
    other = spatial_guide(mask, perturb=True, seed=tf.constant([seed, 8])).numpy()[..., 0]
    np.testing.assert_array_equal(guide, again)
    assert np.abs(guide - other).max() > 0


def test_perturbed_std_within_the_scale_range():
    mask = np.zeros((200, 200), np.uint8)
    mask[60:140, 60:140] = 1
    _, std = robust_moments(mask)
    for seed in range(10):
        guide = spatial_guide(mask, perturb=True, seed=tf.constant([seed, 0])).numpy()[..., 0]
        y, x = np.unravel_index(np.argmax(guide), guide.shape)
        row = guide[y]
        # Half width at exp(-1/2) along x is the std.
        half = np.sum(row >= np.exp(-0.5)) / 2
        assert std.numpy()[0] / 1.4 - 1.5 <= half <= std.numpy()[0] * 1.4 + 1.5


def test_bounding_box_and_test_time_extension():
    mask = np.zeros((100, 200), np.uint8)
    mask[10:60, 150:200] = 1  # 50 x 50 box touching the right border
    box = bounding_box(mask).numpy()
    np.testing.assert_array_equal(box, [10, 150, 59, 199])
    np.testing.assert_array_equal(box_with_test_padding(bounding_box(mask)).numpy(), [9, 149, 60, 200])


def test_crop_outside_the_image_is_black():
    image = tf.fill((10, 10, 3), 200.0)
    crop = crop_box(image, tf.constant([-2, 5, 3, 12])).numpy()
    assert crop.shape == (6, 8, 3)
    assert (crop[:2] == 0).all() and (crop[:, 5:] == 0).all()
    assert (crop[2:, :5] == 200).all()


def test_visual_guide_background_is_the_mean_and_object_kept():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    mask = np.zeros((120, 160), np.uint8)
    mask[30:90, 40:120] = 1
    mask[30:45, 40:60] = 0  # a notch of background inside the box
    for guide in (visual_guide(image, mask), in_dataset_map(visual_guide, image, mask)):
        guide = guide.numpy()
        assert guide.shape == (224, 224, 3) and guide.dtype == np.float32
        # Background (the notch, the 3% margin) is exactly 0 after mean subtraction.
        assert (guide[:3] == 0).all() and (guide[20:40, 20:40] == 0).all()
        # The object's centre is the image's centre pixels in the model convention.
        centre = from_model_input(guide[100:124, 100:124]).numpy().astype(float)
        expected = image[54:66, 74:86].astype(float)
        assert abs(centre.mean() - expected.mean()) < 10


def test_jittered_box_moves_each_side_within_ten_percent():
    box = tf.constant([100, 200, 199, 399])  # 100 x 200
    for seed in range(20):
        moved = jittered_box(box, tf.constant([seed, 1])).numpy()
        limits = np.array([10, 20, 10, 20]) + 1
        assert (np.abs(moved - box.numpy()) <= limits).all()
        assert moved[2] >= moved[0] and moved[3] >= moved[1]


def test_model_input_convention_round_trip():
    rgb = np.array([[[255, 0, 10]]], np.uint8)
    x = to_model_input(rgb).numpy()
    np.testing.assert_allclose(x[0, 0], [10 - 104, 0 - 117, 255 - 123])
    np.testing.assert_array_equal(from_model_input(x).numpy(), rgb)
    grey = to_model_input(np.full((1, 1, 1), 117, np.uint8)).numpy()
    np.testing.assert_allclose(grey[0, 0], [13, 0, -6])


def test_robust_moments_equal_the_sorted_pixel_medians_exactly():
    """The weighted-histogram medians give exactly numpy's medians over the pixel coordinates
    (eagerly and inside tf.data), for sparse, dense and tiny masks."""
    rng = np.random.default_rng(5)
    masks = []
    for i in range(60):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        mask = (rng.random((h, w)) < rng.random()).astype(np.uint8)
        if i % 3 == 0:
            mask[:] = 0
            mask[rng.integers(0, h), rng.integers(0, w)] = 1
        if mask.any():
            masks.append(mask)
    for mask in masks:
        ys, xs = np.nonzero(mask)
        center = np.array([np.median(xs), np.median(ys)], np.float32)
        mad = np.array([np.median(np.abs(xs - center[0])), np.median(np.abs(ys - center[1]))])
        std = np.maximum(config.MAD_TO_STD * mad.astype(np.float32), config.MIN_GUIDE_STD)
        eager = [t.numpy() for t in robust_moments(tf.constant(mask))]
        np.testing.assert_array_equal(eager[0], center)
        np.testing.assert_allclose(eager[1], std, rtol=1e-6)
    eager_and_mapped(robust_moments, tf.constant(masks[1]))
