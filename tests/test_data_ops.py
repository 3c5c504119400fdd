"""The data pipeline's TF ops, each run eagerly AND inside `tf.data.Dataset.map` (they can differ).

Decoding (images, palette masks by colour, COCO RLE), the training visual guide (jittered crop,
rotation, flip), the perturbed spatial guide's statistics.
"""


import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from pycocotools import mask as mask_utils

from layer_checks import eager_and_mapped
from osmn import config
from osmn.data import augment, decode
from osmn.guides import robust_moments, spatial_guide


def random_mask(h, w, seed):
    rng = np.random.default_rng(seed)
    m = np.zeros((h, w), np.uint8)
    for _ in range(4):
        y, x = rng.integers(0, h), rng.integers(0, w)
        m[y:y + rng.integers(1, h + 1), x:x + rng.integers(1, w + 1)] = 1
    m[rng.random((h, w)) < 0.02] = 1
    return m


@pytest.mark.parametrize("h,w", [(48, 64), (37, 53), (1, 1), (5, 300)])
def test_coco_rle_decode_matches_pycocotools(h, w):
    m = random_mask(h, w, h * w)
    counts = mask_utils.encode(np.asfortranarray(m))["counts"]
    out = eager_and_mapped(lambda c: decode.decode_coco_rle(c, h, w), tf.constant(counts))
    assert out.dtype == tf.uint8 and out.shape == (h, w)
    np.testing.assert_array_equal(out.numpy(), m)


def test_coco_rle_decode_polygon_and_long_runs():
    # A polygon's RLE, and an all-ones mask (one long run with many 5-bit groups).
    rle = mask_utils.merge(mask_utils.frPyObjects([[10, 10, 300, 20, 200, 400, 5, 300]], 480, 640))
    expected = mask_utils.decode(rle)
    decode_480x640 = lambda c: decode.decode_coco_rle(c, 480, 640)  # noqa: E731
    out = eager_and_mapped(decode_480x640, tf.constant(rle["counts"]))
    np.testing.assert_array_equal(out.numpy(), expected)
    full = mask_utils.encode(np.asfortranarray(np.ones((480, 640), np.uint8)))["counts"]
    assert eager_and_mapped(decode_480x640, tf.constant(full)).numpy().all()


def test_coco_rle_decode_wrong_size_fails():
    counts = mask_utils.encode(np.asfortranarray(np.ones((4, 4), np.uint8)))["counts"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="RLE length"):
        decode.decode_coco_rle(tf.constant(counts), 5, 4)


def test_palette_mask_decoded_by_colour(tmp_path):
    ids = np.zeros((6, 7), np.uint8)
    ids[1:3, 1:4] = 1
    ids[4, :] = 2
    ids[5, 6] = 255
    palette = [0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (3 * 252) + [224, 224, 192]
    image = Image.fromarray(ids, mode="P")
    image.putpalette(palette)
    path = str(tmp_path / "m.png")
    image.save(path)
    colours = eager_and_mapped(lambda p: decode.decode_label_colours(tf.io.read_file(p)),
                               tf.constant(path))
    assert colours.shape == (6, 7, 3) and colours.dtype == tf.uint8
    for value, colour in [(1, (128, 0, 0)), (2, (0, 128, 0)), (255, (224, 224, 192))]:
        mask = eager_and_mapped(decode.colour_mask, colours, tf.constant(colour, tf.uint8))
        assert mask.shape == (6, 7, 1) and mask.dtype == tf.float32
        np.testing.assert_array_equal(mask.numpy()[..., 0], (ids == value).astype(np.float32))


def test_read_image_grey_and_rgb(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(grey).save(tmp_path / "g.png")
    out = eager_and_mapped(decode.read_image, tf.constant(str(tmp_path / "g.png")))
    assert out.shape == (3, 4, 3) and out.dtype == tf.uint8
    np.testing.assert_array_equal(out.numpy(), np.repeat(grey[:, :, None], 3, axis=2))


def test_rotate_nearest_keeps_values_and_black_border():
    image = tf.reshape(tf.range(1, 1 + 9 * 9 * 2, dtype=tf.float32), [9, 9, 2])
    same = eager_and_mapped(augment.rotate_nearest, image, tf.constant(0.0))
    np.testing.assert_array_equal(same.numpy(), image.numpy())
    quarter = eager_and_mapped(augment.rotate_nearest, image, tf.constant(90.0))
    # 90 degrees on a square about its centre: a pure index permutation.
    np.testing.assert_array_equal(np.sort(quarter.numpy().ravel()), np.sort(image.numpy().ravel()))
    rotated = eager_and_mapped(augment.rotate_nearest, tf.ones([20, 30, 1]), tf.constant(10.0))
    values = set(np.unique(rotated.numpy()))
    assert values == {0.0, 1.0}  # nearest: no blending; corners are the black border
    assert rotated.numpy()[0, 0, 0] == 0 and rotated.numpy()[10, 15, 0] == 1


def _guide_inputs():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    mask = np.zeros((90, 120, 1), np.float32)
    mask[20:60, 30:80] = 1
    return tf.constant(image), tf.constant(mask)


def test_train_visual_guide_shapes_background_and_determinism():
    image, mask = _guide_inputs()
    seed = tf.constant([7, 3], tf.int64)
    guide, guide_mask = eager_and_mapped(augment.train_visual_guide, image, mask, seed)
    assert guide.shape == (224, 224, 3) and guide.dtype == tf.float32
    assert guide_mask.shape == (224, 224, 1)
    g, m = guide.numpy(), guide_mask.numpy()
    assert set(np.unique(m)) <= {0.0, 1.0}
    # The crop puts the background at the mean: model input exactly 0 off the mask.
    assert np.all(g[m[..., 0] == 0] == 0)
    assert (m > 0).mean() > 0.3  # the jittered box is mostly object
    again = augment.train_visual_guide(image, mask, seed)
    np.testing.assert_array_equal(again[0].numpy(), g)
    other = augment.train_visual_guide(image, mask, tf.constant([8, 3], tf.int64))
    assert not np.array_equal(other[0].numpy(), g)


def test_train_visual_guide_flips_half_the_time():
    image, mask = _guide_inputs()
    # Object left half bright, right half dark: the flip swaps which half of the guide is bright.
    img = np.zeros((90, 120, 3), np.uint8)
    img[:, :55] = 250
    flips = []
    for s in range(40):
        guide, gm = augment.train_visual_guide(tf.constant(img), mask, tf.constant([s, 0]))
        g = guide.numpy()[..., 0]
        flips.append(g[:, :100].mean() < g[:, 124:].mean())
    assert 8 < sum(flips) < 32


def test_train_visual_guide_empty_mask_is_zero():
    image, mask = _guide_inputs()
    guide, gm = eager_and_mapped(augment.train_visual_guide, image, tf.zeros_like(mask),
                     tf.constant([1, 2], tf.int64))
    assert not guide.numpy().any() and not gm.numpy().any()


def _argmax_center(guide):
    g = guide.numpy()[..., 0]
    y, x = np.unravel_index(np.argmax(g), g.shape)
    return np.array([x, y], np.float32)


def test_perturbed_spatial_guide_center_within_bounds_of_median():
    mask = np.zeros((120, 160, 1), np.float32)
    mask[30:90, 20:70] = 1
    mask[40:50, 100:150] = 1  # makes median and mean differ
    center, std = (t.numpy() for t in robust_moments(tf.constant(mask)))
    seeds = tf.stack([tf.range(30, dtype=tf.int64), tf.fill([30], tf.constant(11, tf.int64))], 1)
    fn = lambda sd: spatial_guide(tf.constant(mask), perturb=True, seed=sd)  # noqa: E731
    mapped = list(tf.data.Dataset.from_tensor_slices(seeds).map(fn))
    shifts = []
    for s, guide in enumerate(mapped):
        if s < 3:  # eager agrees with the map
            np.testing.assert_array_equal(fn(seeds[s]).numpy(), guide.numpy())
        assert guide.shape == (120, 160, 1) and guide.dtype == tf.float32
        assert guide.numpy().max() <= 1.0 and guide.numpy().min() >= 0.0
        c = _argmax_center(guide)
        bound = config.GUIDE_CENTER_SHIFT * std + 1.0  # +1: argmax is on the pixel grid
        assert np.all(np.abs(c - center) <= bound), (c, center, bound)
        shifts.append(c - center)
    assert np.std(np.array(shifts)[:, 0]) > 0.5  # it really is perturbed


def test_spatial_guide_empty_mask_is_zero_in_map():
    guide = eager_and_mapped(lambda m, sd: spatial_guide(m, perturb=True, seed=sd),
                 tf.zeros([30, 40, 1]), tf.constant([1, 1], tf.int64))
    assert guide.shape == (30, 40, 1) and not guide.numpy().any()
