"""The inference head (osmn/inference/engine/inference_head.py) computes the training head's
function."""

import numpy as np
import pytest
import tensorflow as tf

from osmn.inference.engine import inference_head, segment_objects
from osmn.model import OSMN
from osmn.model.upsampling import BilinearUpsampling
from layer_checks import randomize_weights as randomize

TINY = {"width_multiplier": 1 / 16}


@pytest.mark.parametrize("stride", [2, 4, 8, 16])
@pytest.mark.parametrize("height,width", [(480, 854), (65, 97), (17, 19), (1, 3)])
def test_phase_upsampling_equals_the_transposed_conv_and_crop(stride, height, width):
    cells = (-(-height // stride), -(-width // stride))
    maps = tf.random.stateless_normal((2, *cells, 1), seed=(stride, height))
    expected = BilinearUpsampling(stride, 1)(maps, tf.zeros((2, height, width, 1)))
    actual = inference_head._upsample(maps[..., 0], height, width, stride)
    assert actual.shape == (2, height, width)
    np.testing.assert_allclose(actual.numpy(), expected.numpy()[..., 0], atol=2e-6)


@pytest.mark.parametrize("channels", [8, 32])
def test_side_taps_and_shift_sum_equal_the_side_conv_and_fusion_rows(channels):
    side = tf.keras.layers.Conv2D(16, 3, padding="same", bias_initializer="glorot_uniform")
    x = tf.random.stateless_normal((2, 11, 7, channels), seed=(1, channels))
    side.build(x.shape)
    rows = tf.random.stateless_normal((16, 1), seed=(2, channels))
    expected = tf.einsum("bhwc,co->bhwo", side(x), rows)[..., 0]
    taps = inference_head.side_taps(x, side, rows)
    assert taps.shape == (2, 11, 7, inference_head.TAPS)
    actual = inference_head._shift_sum(taps) + inference_head.tap_bias(side, rows)
    np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("height,width", [(65, 97), (241, 323), (17, 19)])
@pytest.mark.parametrize("model_config", [
    TINY, {**TINY, "use_visual_modulator": False, "use_spatial_modulator": False},
    {**TINY, "mod_early_conv": True}])
def test_inference_formulation_equals_the_training_formulation(height, width, model_config):
    model = OSMN(model_config)
    randomize(model, seed=3)
    rng = np.random.default_rng(3)
    image = tf.constant(rng.normal(0, 50, (1, height, width, 3)), tf.float32)
    spatial = tf.constant(rng.uniform(0, 1, (2, height, width, 1)), tf.float32)
    gammas = tf.constant(rng.normal(1, 0.5, (2, model.gamma_size)), tf.float32)
    expected = segment_objects(model, image, spatial, gammas, head="training").numpy()
    actual = segment_objects(model, image, spatial, gammas).numpy()
    assert actual.shape == (2, height, width, 1)
    scale = np.abs(expected).max()
    assert scale > 1e-3
    assert np.abs(actual - expected).max() <= 1e-5 * scale


def test_segment_objects_names_an_unknown_head():
    model = OSMN(TINY)
    with pytest.raises(ValueError, match="head must be 'inference' or 'training', got 'fused'"):
        segment_objects(model, tf.zeros((1, 8, 8, 3)), tf.zeros((1, 8, 8, 1)),
                        tf.ones((1, model.gamma_size)), head="fused")
