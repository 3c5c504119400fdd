"""The OSMN network against the paper and the authors' code (spec: "Segmentation network",
"Visual modulator", "Spatial modulator")."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
import keras

from layer_checks import check_layer, randomize_weights
from osmn import config
from osmn.config import ModelConfig
from osmn.losses import weight_decay
from osmn.model import (OSMN, BilinearUpsampling, ChannelScale, SegmentationNetwork, SpatialBias,
                        SpatialModulator, VisualModulator, bilinear_kernel, crop_offset,
                        load_osmn, save_osmn)

TINY = {"width_multiplier": 1 / 16}


def random_inputs(batch, height, width, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "image": tf.constant(rng.normal(0, 50, (batch, height, width, 3)), tf.float32),
        "visual_guide": tf.constant(rng.normal(0, 50, (batch, 224, 224, 3)), tf.float32),
        "spatial_guide": tf.constant(rng.uniform(0, 1, (batch, height, width, 1)), tf.float32),
    }


# --- shapes ----------------------------------------------------------------------------------

@pytest.mark.parametrize("height,width", [(480, 854), (321, 479), (241, 323), (17, 33)])
def test_logits_come_back_at_the_input_size(height, width):
    model = OSMN(TINY)
    inputs = random_inputs(1, height, width)
    logits = model(inputs)
    assert logits.shape == (1, height, width, 1)
    assert logits.dtype == tf.float32


def test_gamma_length_and_order_follow_the_original():
    cfg = ModelConfig()
    assert cfg.gamma_size == 3840
    slices = cfg.gamma_slices()
    assert list(slices) == ["conv3_1", "conv3_2", "conv3_3", "conv4_1", "conv4_2", "conv4_3",
                            "conv5_1", "conv5_2", "conv5_3"]
    assert slices["conv3_1"] == (0, 256)
    assert slices["conv3_2"] == (256, 512)
    assert slices["conv4_1"] == (768, 1280)
    assert slices["conv5_3"] == (3328, 3840)
    early = ModelConfig(mod_early_conv=True)
    assert early.gamma_size == 4224
    assert early.gamma_slices()["conv1_1"] == (0, 64)
    assert early.gamma_slices()["conv3_1"] == (384, 640)


def test_every_gamma_starts_at_one():
    model = OSMN(TINY)
    randomize_weights(model.segmentation_network)
    gamma = model.gamma(random_inputs(2, 32, 32)["visual_guide"])
    assert gamma.shape == (2, ModelConfig(**TINY).gamma_size)
    np.testing.assert_array_equal(gamma.numpy(), 1.0)


def test_unit_gamma_without_spatial_modulator_is_the_plain_fcn():
    model = OSMN({**TINY, "use_spatial_modulator": False})
    randomize_weights(model)
    inputs = random_inputs(2, 41, 57)
    ones = tf.ones((2, model.gamma_size))
    modulated = model.segment(inputs["image"], inputs["spatial_guide"], ones)
    plain = model.segmentation_network(inputs["image"], None, None)
    np.testing.assert_array_equal(modulated.numpy(), plain.numpy())


def _fuse_reading_only(model, sides):
    """Zero the fusion weights of every side output not in `sides` (1-based block numbers)."""
    kernel = model.segmentation_network.fuse.kernel.numpy()
    for i, block in enumerate(config.SIDE_OUTPUT_BLOCKS):
        if block not in sides:
            kernel[..., i * 16:(i + 1) * 16, :] = 0
    model.segmentation_network.fuse.kernel.assign(kernel)


def test_changing_one_gamma_changes_only_what_it_should():
    model = OSMN({**TINY, "use_spatial_modulator": False})
    randomize_weights(model)
    inputs = random_inputs(1, 48, 64)
    gamma = np.ones((1, model.gamma_size), np.float32)
    start, _ = ModelConfig(**TINY).gamma_slices()["conv5_3"]
    changed = gamma.copy()
    changed[0, start + 1] = 3.0

    def logits(g):
        return model.segment(inputs["image"], None, tf.constant(g)).numpy()

    # conv5_3 is read only by side output 5: with the fusion reading sides 2-4 nothing changes.
    _fuse_reading_only(model, sides=(2, 3, 4))
    np.testing.assert_array_equal(logits(gamma), logits(changed))
    # Reading side output 5 only, the change shows.
    randomize_weights(model)
    _fuse_reading_only(model, sides=(5,))
    assert np.abs(logits(gamma) - logits(changed)).max() > 1e-6


def test_channel_scale_touches_only_its_channel():
    x = tf.random.normal((2, 5, 7, 4))
    gamma = tf.constant([[1.0, 1.0, 2.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    y = check_layer(ChannelScale, (x, gamma))
    diff = np.abs(y.numpy() - x.numpy())
    assert diff[0, ..., 2].max() > 0
    assert diff[0, ..., [0, 1, 3]].max() == 0 and diff[1].max() == 0


def test_spatial_bias_adds_per_pixel():
    x = tf.random.normal((2, 5, 7, 4))
    beta = tf.random.normal((2, 5, 7, 4))
    y = check_layer(SpatialBias, (x, beta))
    np.testing.assert_allclose(y.numpy(), x.numpy() + beta.numpy(), atol=1e-6)


# --- side outputs ----------------------------------------------------------------------------

@pytest.mark.parametrize("size,expected", [
    ((480, 854), [(1, 1), (2, 3), (4, 5), (8, 13)]),
    ((241, 323), [(1, 1), (3, 2), (7, 6), (15, 14)]),
])
def test_side_outputs_are_cropped_at_the_originals_offsets(size, expected):
    for j, (offsets, stride) in enumerate(zip(expected, (2, 4, 8, 16))):
        maps = [int(np.ceil(n / stride)) for n in size]
        assert tuple(crop_offset(n, m, stride) for n, m in zip(size, maps)) == offsets


def _numpy_transposed_upsample(x, kernel, stride):
    """Reference transposed conv (VALID): out[i*s + a, j*s + b] += x[i, j] * k[a, b]."""
    batch, h, w, c = x.shape
    k = kernel.shape[0]
    out = np.zeros((batch, (h - 1) * stride + k, (w - 1) * stride + k, c), np.float64)
    for i in range(h):
        for j in range(w):
            out[:, i * stride:i * stride + k, j * stride:j * stride + k, :] += (
                x[:, i:i + 1, j:j + 1, :] * np.einsum("abcc->abc", kernel)[None])
    return out


@pytest.mark.parametrize("stride", [2, 4, 8, 16])
def test_upsampling_equals_transposed_conv_and_original_crop(stride):
    height, width = 241, 323
    m = [int(np.ceil(n / stride)) for n in (height, width)]
    x = np.random.default_rng(stride).normal(size=(1, m[0], m[1], 16)).astype(np.float32)
    reference = tf.zeros((1, height, width, 3))
    out = check_layer(lambda: BilinearUpsampling(stride, 16), (tf.constant(x), reference))
    full = _numpy_transposed_upsample(x, bilinear_kernel(2 * stride, 16), stride)
    oy, ox = (crop_offset(height, m[0], stride), crop_offset(width, m[1], stride))
    np.testing.assert_allclose(out.numpy(), full[:, oy:oy + height, ox:ox + width], atol=1e-4)


def test_bilinear_kernel_is_the_fcn_kernel_on_the_channel_diagonal():
    k = bilinear_kernel(4, 3)
    one_d = np.array([0.25, 0.75, 0.75, 0.25])
    for i in range(3):
        np.testing.assert_allclose(k[:, :, i, i], np.outer(one_d, one_d))
    k[:, :, range(3), range(3)] = 0
    assert not k.any()
    # Stride 16 (kernel 32): f = 16, centre 15.5.
    k32 = bilinear_kernel(32, 1)[:, :, 0, 0]
    assert k32[15, 15] == pytest.approx((1 - 0.5 / 16) ** 2)
    assert k32[0, 0] == pytest.approx((1 - 15.5 / 16) ** 2)


# --- spatial modulator -----------------------------------------------------------------------

def _numpy_avg_pool_same(x):
    """2x2 stride-2 SAME average pool, padded cells excluded (TF semantics)."""
    h, w = x.shape
    out = np.zeros(((h + 1) // 2, (w + 1) // 2))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = x[2 * i:2 * i + 2, 2 * j:2 * j + 2].mean()
    return out


def test_spatial_modulator_pools_like_tf_and_slices_per_layer():
    guide = np.random.default_rng(1).uniform(size=(1, 37, 51, 1)).astype(np.float32)
    layer = SpatialModulator(TINY)
    betas = check_layer(lambda: SpatialModulator(TINY), (tf.constant(guide),))
    cfg = ModelConfig(**TINY)
    assert sorted(betas) == sorted(name for name, _ in cfg.modulated_layers())
    pooled = guide[0, :, :, 0]
    for block in (2, 3, 4, 5):
        pooled = _numpy_avg_pool_same(pooled)
        if block < 3:
            continue
        channels = cfg.block_channels()[block - 1]
        assert betas[f"conv{block}_1"].shape == (1, *pooled.shape, channels)
    # Reference for block 3 with the layer's own weights (batch norm in inference mode).
    betas = layer(tf.constant(guide), training=False)
    conv, norm = layer.convs[0], layer.norms[0]
    pooled = _numpy_avg_pool_same(_numpy_avg_pool_same(guide[0, :, :, 0]))
    w = conv.kernel.numpy()[0, 0, 0]
    z = pooled[..., None] * w
    z = ((z - norm.moving_mean.numpy()) / np.sqrt(norm.moving_variance.numpy() + 1e-3)
         * norm.gamma.numpy() + norm.beta.numpy())
    z = np.maximum(z, 0)
    c = cfg.block_channels()[2]
    for i in range(3):
        np.testing.assert_allclose(betas[f"conv3_{i + 1}"].numpy()[0], z[..., i * c:(i + 1) * c],
                                   atol=1e-5)


def test_fix_bn_freezes_batch_norm_statistics():
    inputs = random_inputs(2, 32, 32)
    for fix_bn, should_move in ((False, True), (True, False)):
        model = OSMN({**TINY, "fix_bn": fix_bn})
        norm = model.spatial_modulator.norms[0]
        before = norm.moving_mean.numpy().copy()
        model(inputs, training=True)
        moved = np.abs(norm.moving_mean.numpy() - before).max() > 0
        assert moved == should_move


# --- switches --------------------------------------------------------------------------------

def test_ablation_switches_remove_the_modulators():
    no_visual = OSMN({**TINY, "use_visual_modulator": False})
    assert no_visual.visual_modulator is None
    np.testing.assert_array_equal(no_visual.gamma(tf.zeros((3, 224, 224, 3))).numpy(), 1.0)
    no_spatial = OSMN({**TINY, "use_spatial_modulator": False})
    assert no_spatial.spatial_modulator is None
    assert no_spatial.spatial_biases(tf.zeros((1, 8, 8, 1))) is None
    logits = no_spatial(random_inputs(1, 33, 35))
    assert logits.shape == (1, 33, 35, 1)


def test_fix_seg_freezes_trunk_and_side_convs_only():
    model = OSMN({**TINY, "train_seg": False})
    seg = model.segmentation_network
    trainable = {w.path for w in model.trainable_weights}
    assert not any(w.path in trainable for layer in seg.trunk_layers() + seg.side_convs
                   for w in layer.weights)
    assert seg.fuse.kernel.path in trainable
    assert any("visual_modulator" in p for p in trainable)
    assert any("spatial_modulator" in p for p in trainable)


def test_early_layer_modulation_adds_conv1_and_conv2():
    model = OSMN({**TINY, "mod_early_conv": True})
    cfg = ModelConfig(**TINY, mod_early_conv=True)
    betas = model.spatial_biases(tf.zeros((1, 31, 45, 1)))
    assert betas["conv1_1"].shape == (1, 31, 45, cfg.block_channels()[0])
    assert betas["conv2_2"].shape == (1, 16, 23, cfg.block_channels()[1])
    assert model.gamma(tf.zeros((1, 224, 224, 3))).shape == (1, cfg.gamma_size)
    assert model(random_inputs(1, 31, 45)).shape == (1, 31, 45, 1)


# --- weight decay ----------------------------------------------------------------------------

def test_weight_decay_is_slims_l2_on_exactly_the_listed_kernels():
    model = OSMN(TINY)
    randomize_weights(model)
    names = sorted(k.path for k in model.decayed_kernels() if hasattr(k, "path"))
    expected_vars = sorted(w.path for w in model.weights if w.path.endswith("/kernel"))
    assert names == expected_vars
    assert len(expected_vars) == 13 + 4 + 1 + 13 + 3 + 3  # seg trunk, sides, fuse, vm, sm
    assert not any("bias" in n or "gamma" in n or "beta" in n or "moving" in n for n in names)
    # plus the four fixed upsampling kernels (constants, as slim decays them too)
    constants = [k for k in model.decayed_kernels() if not hasattr(k, "path")]
    assert len(constants) == 4
    slim = sum(2e-4 * np.sum(np.square(np.asarray(k, np.float64))) / 2
               for k in model.decayed_kernels())
    assert float(weight_decay(model.decayed_kernels())) == pytest.approx(slim, rel=1e-5)


# --- precision, serialization, sizes ---------------------------------------------------------

@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_low_precision_policies(policy):
    keras.config.set_dtype_policy(policy)
    model = OSMN(TINY)
    assert all(w.dtype == "float32" for w in model.weights)
    inputs = random_inputs(1, 45, 61)
    gamma = model.gamma(inputs["visual_guide"])
    assert gamma.dtype == policy.split("_")[1]
    logits = model.segment(inputs["image"], inputs["spatial_guide"], gamma)
    assert logits.dtype == tf.float32 and logits.shape == (1, 45, 61, 1)
    keras.config.set_dtype_policy("float32")
    reference = OSMN(TINY)
    reference.set_weights(model.get_weights())
    expected = reference(inputs)
    assert np.abs(logits.numpy() - expected.numpy()).max() < 0.05 * (
        np.abs(expected.numpy()).max() + 1e-3)


def test_segment_networks_pass_the_layer_checks():
    image = random_inputs(1, 37, 53)["image"]
    gamma = tf.ones((1, ModelConfig(**TINY).gamma_size))
    check_layer(lambda: SegmentationNetwork(TINY), (image, gamma, None),
                low_precision_output_dtype="float32")
    check_layer(lambda: VisualModulator(TINY), (tf.random.normal((2, 224, 224, 3)),))


def test_keras_file_and_weights_round_trip(tmp_path):
    model = OSMN({**TINY, "mod_early_conv": True})
    randomize_weights(model)
    inputs = random_inputs(2, 40, 56)
    expected = model(inputs).numpy()
    save_osmn(model, tmp_path / "m.keras")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "m.keras").stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]  # no temp file left behind
    restored = load_osmn(tmp_path / "m.keras")
    assert restored.model_config == model.model_config
    np.testing.assert_array_equal(restored(inputs).numpy(), expected)
    model.save_weights(tmp_path / "m.weights.h5")
    config_json = json.dumps({"model_config": model.model_config.to_dict()})
    (tmp_path / "config.json").write_text(config_json)
    np.testing.assert_array_equal(load_osmn(tmp_path / "m.weights.h5")(inputs).numpy(), expected)


def test_parameter_counts_match_vgg16():
    model = OSMN()
    counts = {name: part.count_params() for name, part in model.parts().items()}
    print("parameters per sub-network:", counts)
    vgg16_convs = 14_714_688  # keras.applications.VGG16(include_top=False).count_params()
    vgg16_fc6_fc7 = 25088 * 4096 + 4096 + 4096 * 4096 + 4096
    side = sum(3 * 3 * c * 16 + 16 for c in (128, 256, 512, 512))
    assert counts["segmentation_network"] == vgg16_convs + side + 64 + 1
    assert counts["visual_modulator"] == vgg16_convs + vgg16_fc6_fc7 + 4096 * 3840 + 3840
    assert counts["spatial_modulator"] == (768 + 1536 + 1536) * (1 + 4)


def test_weight_decay_loss_uses_the_backbones_coefficient():
    vgg = OSMN(TINY)
    randomize_weights(vgg)
    squares = sum(np.sum(np.square(np.asarray(k, np.float64))) for k in vgg.decayed_kernels())
    assert float(vgg.weight_decay_loss()) == pytest.approx(1e-4 * squares, rel=1e-5)
    lite = OSMN({**TINY, "backbone": "lite"})
    squares = sum(np.sum(np.square(np.asarray(k, np.float64))) for k in lite.decayed_kernels())
    # slim l2_regularizer(4e-5) in the original's MobileNet variant = Keras L2(2e-5).
    assert float(lite.weight_decay_loss()) == pytest.approx(2e-5 * squares, rel=1e-5)
