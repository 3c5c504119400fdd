"""The inference engine keeps the network's function, and its functions trace once.

Reference: `benchmarks/reference.py`, the segmentation network as the original computes it:
16-channel transposed-conv upsampling, concat, 1x1 fusion.
"""

import pathlib
import sys

import numpy as np
import pytest
import tensorflow as tf
import keras

from osmn import config
from osmn.errors import UserError
from osmn.inference.engine import (LocalEngine, choose_precision, inference_head, inference_model,
                                   segment_objects)
from osmn.model import OSMN

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
from reference import original_segment  # noqa: E402
from layer_checks import randomize_weights as randomize

TINY = {"width_multiplier": 1 / 16}


def inputs(k, height, width, seed=1):
    rng = np.random.default_rng(seed)
    image = tf.constant(rng.normal(0, 50, (1, height, width, 3)), tf.float32)
    visual = tf.constant(rng.normal(0, 50, (k, 224, 224, 3)), tf.float32)
    spatial = tf.constant(rng.uniform(0, 1, (k, height, width, 1)), tf.float32)
    return image, visual, spatial


def assert_close_relative(actual, expected, rel=1e-5):
    actual, expected = np.asarray(actual), np.asarray(expected)
    scale = np.abs(expected).max()
    assert scale > 1e-3  # the weights make the logits non-trivial
    err = np.abs(actual - expected).max()
    assert err <= rel * scale, (err, scale)


@pytest.mark.parametrize("height,width", [(65, 97), (241, 323)])
@pytest.mark.parametrize("model_config", [TINY, {**TINY, "mod_early_conv": True}])
def test_segment_equals_the_original_formulation(height, width, model_config):
    model = OSMN(model_config)
    randomize(model)
    image, visual, spatial = inputs(2, height, width)
    image = tf.repeat(image, 2, axis=0)
    gamma = model.gamma(visual)
    betas = model.spatial_biases(spatial)
    expected = original_segment(model.segmentation_network, image, gamma, betas)
    assert_close_relative(model.segment(image, spatial, gamma), expected)
    # The plain FCN (no modulation at all) too.
    assert_close_relative(model.segmentation_network(image, None, None),
                          original_segment(model.segmentation_network, image, None, None))


@pytest.mark.parametrize("model_config", [
    TINY, {**TINY, "mod_early_conv": True}, {**TINY, "use_visual_modulator": False},
    {**TINY, "use_spatial_modulator": False},
    {**TINY, "use_visual_modulator": False, "use_spatial_modulator": False}])
def test_segment_objects_equals_k_separate_passes(model_config):
    model = OSMN(model_config)
    randomize(model, seed=2)
    image, _, spatial = inputs(3, 49, 71, seed=3)
    gammas = tf.constant(np.random.default_rng(3).normal(1, 0.5, (3, model.gamma_size)),
                         tf.float32)
    batched = segment_objects(model, image, spatial, gammas).numpy()
    assert batched.shape == (3, 49, 71, 1)
    for k in range(3):
        alone = model.segment(image, spatial[k:k + 1], gammas[k:k + 1]).numpy()
        assert_close_relative(batched[k:k + 1], alone)
    if "use_visual_modulator" not in model_config or "use_spatial_modulator" not in model_config:
        # The objects differ by far more than the tolerance of the comparison above.
        assert np.abs(batched[0] - batched[1]).max() > 1e-4 * np.abs(batched).max()


def test_segment_objects_shares_the_unmodulated_layers(monkeypatch):
    """The layers before conv3_1's modulation see a batch of 1 whatever K is."""
    model = OSMN(TINY)
    seen = {}
    net = model.segmentation_network
    for conv in net.trunk_layers():
        original = conv.call

        def spy(x, _original=original, _name=conv.name):
            seen[_name] = int(x.shape[0])
            return _original(x)

        conv.call = spy
    side_taps = inference_head.side_taps

    def spy_taps(x, side_conv, rows):  # the inference head reads the side convs' kernels
        seen[side_conv.name] = int(x.shape[0])
        return side_taps(x, side_conv, rows)

    monkeypatch.setattr(inference_head, "side_taps", spy_taps)
    image, visual, spatial = inputs(4, 33, 45)
    segment_objects(model, image, spatial, model.gamma(visual))
    assert {n: seen[n] for n in ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv2_2_16",
                                 "conv3_1")} == dict.fromkeys(
        ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv2_2_16", "conv3_1"), 1)
    assert seen["conv3_2"] == 4 and seen["conv5_3_16"] == 4


def test_inference_fn_traces_once_for_all_sizes_and_object_counts():
    model = OSMN(TINY)
    randomize(model, seed=4)
    fns = LocalEngine(model, "float32", jit_compile=False)
    assert fns.model is model
    for k, (height, width) in [(1, (33, 47)), (2, (40, 56)), (3, (33, 47))]:
        image, visual, spatial = inputs(k, height, width, seed=k)
        gammas = fns.gamma(visual)
        np.testing.assert_allclose(gammas.numpy(), model.gamma(visual).numpy(), rtol=1e-5,
                                   atol=1e-5)
        probabilities, masks = fns.segment(image, spatial, gammas)
        assert probabilities.shape == (k, height, width, 1) and probabilities.dtype == tf.float32
        expected = tf.sigmoid(segment_objects(model, image, spatial, gammas)).numpy()
        np.testing.assert_allclose(probabilities.numpy(), expected, atol=1e-5)
        np.testing.assert_array_equal(masks.numpy(),
                                      probabilities.numpy() > config.MASK_THRESHOLD)
    assert fns.trace_count == 1
    assert fns.gamma.experimental_get_tracing_count() == 1


def test_bfloat16_inference_model_copies_the_weights_and_restores_the_policy():
    model = OSMN(TINY)
    randomize(model, seed=5)
    assert inference_model(model, "float32") is model
    low = inference_model(model, "bfloat16")
    assert keras.config.dtype_policy().name == "float32"
    assert low.segmentation_network.dtype_policy.name == "mixed_bfloat16"
    assert low.visual_modulator.conv_blocks[0][0].dtype_policy.name == "mixed_bfloat16"
    assert inference_model(low, "bfloat16") is low
    assert [w.path for w in low.weights] == [w.path for w in model.weights]
    for a, b in zip(low.weights, model.weights):
        assert a.dtype == "float32"
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    fns = LocalEngine(model, precision="bfloat16")
    image, visual, spatial = inputs(2, 45, 61)
    gammas = fns.gamma(visual)
    probabilities, _ = fns.segment(image, spatial, gammas)
    assert probabilities.dtype == tf.float32
    expected = tf.sigmoid(segment_objects(model, image, spatial, model.gamma(visual)))
    assert 0.05 < expected.numpy().min() and expected.numpy().max() < 0.95  # not saturated
    assert np.abs(probabilities.numpy() - expected.numpy()).max() < 0.02


def test_xla_option_gives_the_same_result():
    model = OSMN(TINY)
    randomize(model, seed=6)
    image, visual, spatial = inputs(2, 37, 53)
    plain = LocalEngine(model, "float32", jit_compile=False)
    xla = LocalEngine(model, "float32")  # VGG16 float32: XLA by default
    assert xla.jit_compile
    gammas = plain.gamma(visual)
    np.testing.assert_allclose(xla.segment(image, spatial, gammas)[0].numpy(),
                               plain.segment(image, spatial, gammas)[0].numpy(), atol=1e-4)


def test_unknown_precision_is_a_user_error():
    with pytest.raises(UserError, match="precision"):
        LocalEngine(OSMN(TINY), precision="float16")


def test_auto_precision_is_per_backbone_and_cpu():
    vgg, lite = OSMN(TINY), OSMN({**TINY, "backbone": "lite"})
    for flags in ({"avx512_bf16"}, {"amx_bf16", "avx512_bf16"}):
        assert choose_precision(vgg, frozenset(flags)) == "bfloat16"
        assert choose_precision(lite, frozenset(flags)) == "float32"
    assert choose_precision(vgg, frozenset({"avx2", "avx512f"})) == "float32"
    engine = LocalEngine(lite)
    assert engine.precision == "float32" and not engine.jit_compile
    assert engine.describe().startswith("float32 (auto), ")


@pytest.mark.parametrize("model_config", [TINY, {**TINY, "backbone": "lite"}])
def test_engine_frame_equals_the_paper_model_forward(model_config):
    """`segment_frame` (what VideoSegmenter runs) = sigmoid(OSMN.segment) of the same inputs."""
    from osmn.guides import spatial_guide  # noqa: PLC0415
    from osmn.preprocessing import to_model_input  # noqa: PLC0415
    model = OSMN(model_config)
    randomize(model, seed=8)
    engine = LocalEngine(model, "float32")
    rng = np.random.default_rng(8)
    frame = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    masks = np.zeros((2, 37, 53), np.uint8)
    masks[0, 5:20, 4:30], masks[1, 20:35, 25:50] = 1, 1
    gammas = engine.gamma(tf.constant(rng.normal(0, 50, (2, 224, 224, 3)), tf.float32))
    actual = engine.segment_masks(frame, np.array([37, 53], np.int32), masks, gammas.numpy())
    guides = tf.stack([spatial_guide(m) for m in masks])
    image = to_model_input(tf.cast(frame, tf.float32))[None]
    expected = tf.sigmoid(model.segment(tf.repeat(image, 2, 0), guides, gammas))[..., 0]
    assert actual.shape == (2, 37, 53)
    np.testing.assert_allclose(actual, expected.numpy(), atol=1e-5)
