"""OSMN-lite (the original's `--base_model lite`): shapes, gammas, plain FCN, MobileNet layout,
ImageNet loading, batch norm modes, saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import TINY_WIDTH
from lite_weights import randomize
from osmn import config
from osmn.config import ConfigError, ModelConfig
from osmn.errors import UserError
from osmn.inference.engine import segment_objects
from osmn.model import OSMN, load_osmn, save_osmn
from osmn.model.lite import load_imagenet_mobilenet, resize_bilinear_tf1

LITE_TINY = {"width_multiplier": TINY_WIDTH, "backbone": "lite"}


def test_lite_config_has_the_originals_four_modulated_layers():
    cfg = ModelConfig(backbone="lite")
    assert cfg.modulated_layers() == (("conv_pw_3", 128), ("conv_pw_5", 256),
                                      ("conv_pw_11", 512), ("conv_pw_13", 1024))
    assert cfg.gamma_size == 128 + 256 + 512 + 1024 == 1920
    assert cfg.gamma_slices()["conv_pw_11"] == (384, 896)
    assert cfg.weight_decay_l2 == config.LITE_WEIGHT_DECAY_L2
    assert ModelConfig().gamma_size == 3840  # the VGG16 default is unchanged
    with pytest.raises(ConfigError, match="backbone must be one of vgg16, lite, got 'resnet'"):
        ModelConfig.from_dict({"backbone": "resnet"})
    with pytest.raises(ConfigError, match="mod_early_conv"):
        ModelConfig.from_dict({"backbone": "lite", "mod_early_conv": True})


def test_full_lite_model_parameter_count():
    model = OSMN({"backbone": "lite"})
    # Two MobileNet v1 trunks (3,206,976 each, as keras.applications.MobileNet without its
    # classifier), the 1024 -> 2048 classifier, four 2048 -> C heads, the spatial modulator,
    # the side and fusion convs.
    mobilenet = keras.applications.MobileNet(weights=None, include_top=False,
                                             input_shape=(224, 224, 3))
    trunk = mobilenet.count_params()
    assert model.segmentation_network.trunk.count_params() == trunk
    assert model.visual_modulator.trunk.count_params() == trunk
    heads = 1024 * 2048 + 2048 + 2048 * 1920 + 1920
    spatial = 1920 + 4 * 1920
    sides = sum(9 * c * 16 + 16 for c in (128, 256, 512, 1024)) + 64 + 1
    assert model.count_params() == 2 * trunk + heads + spatial + sides
    assert model.gamma_size == 1920


@pytest.mark.parametrize("height, width", [(1, 1), (33, 47), (97, 61), (64, 96)])
def test_odd_sizes_give_the_input_size(height, width):
    model = OSMN(LITE_TINY)
    gamma = model.gamma(tf.zeros((2, 224, 224, 3)))
    assert gamma.shape == (2, model.gamma_size)
    logits = model.segment(tf.random.normal((1, height, width, 3)),
                           tf.random.uniform((2, height, width, 1)), gamma)
    assert logits.shape == (2, height, width, 1) and logits.dtype == tf.float32
    betas = model.spatial_biases(tf.zeros((2, height, width, 1)))
    padded = (-(-height // 32) * 32, -(-width // 32) * 32)
    for (name, channels), stride in zip(model.model_config.modulated_layers(), (4, 8, 16, 32)):
        assert betas[name].shape == (2, padded[0] // stride, padded[1] // stride, channels)


def test_fresh_visual_modulator_gives_gamma_one():
    model = OSMN(LITE_TINY)
    gamma = model.gamma(tf.random.normal((3, 224, 224, 3)) * 50)
    np.testing.assert_array_equal(gamma.numpy(), np.ones((3, model.gamma_size)))


def test_gamma_one_and_zero_guide_give_the_plain_lite_fcn():
    """With every gamma 1 and a zero spatial guide (fresh spatial modulator: beta = relu(0)),
    the modulated network equals the same weights without any modulation."""
    model = randomize(OSMN(LITE_TINY), keep=("spatial_modulator", "visual_modulator"))
    plain = OSMN({**LITE_TINY, "use_visual_modulator": False, "use_spatial_modulator": False})
    plain.segmentation_network.set_weights(model.segmentation_network.get_weights())
    image = tf.random.normal((2, 45, 70, 3), stddev=60.0)
    gamma = model.gamma(tf.random.normal((2, 224, 224, 3)))
    modulated = model.segment(image, tf.zeros((2, 45, 70, 1)), gamma)
    expected = plain.segment(image, tf.zeros((2, 45, 70, 1)), None)
    assert float(tf.math.reduce_std(expected)) > 0.5  # not a constant map
    np.testing.assert_allclose(modulated.numpy(), expected.numpy(), atol=1e-5)
    # ... and a real guide changes it.
    guided = model.segment(image, tf.ones((2, 45, 70, 1)), gamma)
    changed = model_with_changed_bn(model)
    assert float(tf.reduce_max(tf.abs(changed.segment(image, tf.ones((2, 45, 70, 1)), gamma)
                                      - guided))) > 1e-3


def model_with_changed_bn(model):
    """A copy whose spatial-modulator batch norm shifts are positive (beta = relu(> 0))."""
    other = OSMN(LITE_TINY)
    other.set_weights(model.get_weights())
    for norm in other.spatial_modulator.norms:
        norm.beta.assign(tf.fill(norm.beta.shape, 0.5))
    return other


def test_trunk_matches_keras_mobilenet_layout():
    """Our MobileNet trunk (SAME padding) with the weights of keras.applications.MobileNet
    (its ZeroPadding + VALID) gives the same conv_pw_13 features on a 224x224 input."""
    model = randomize(OSMN(LITE_TINY))
    trunk = model.segmentation_network.trunk
    keras_net = keras.applications.MobileNet(alpha=TINY_WIDTH, weights=None, include_top=False,
                                             input_shape=(224, 224, 3))
    for layer in trunk.layers():
        keras_net.get_layer(layer.name).set_weights(layer.get_weights())
    x = tf.random.normal((1, 224, 224, 3))
    ours = trunk.stem_call(x, False)
    for i in range(1, 14):
        ours = trunk.layer_call(i, ours, False)
    np.testing.assert_allclose(ours.numpy(), keras_net(x).numpy(), atol=1e-4)


def test_resize_is_tf1_without_half_pixel_centres():
    x = tf.reshape(tf.range(4, dtype=tf.float32), (1, 2, 2, 1))
    out = resize_bilinear_tf1(x, (4, 4))[0, :, :, 0].numpy()
    # TF1 `resize_bilinear`: source = dst * (in / out), no half-pixel offset, edge clamped.
    np.testing.assert_allclose(out[0], [0.0, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(out[:, 0], [0.0, 1.0, 2.0, 2.0])


def test_batch_of_one_frame_is_shared_by_k_objects():
    model = randomize(OSMN(LITE_TINY))
    image = tf.random.normal((1, 40, 50, 3), stddev=60.0)
    guides = tf.random.uniform((3, 40, 50, 1))
    gammas = tf.random.uniform((3, model.gamma_size), 0.5, 1.5)
    shared = segment_objects(model, image, guides, gammas)
    one_by_one = [model.segment(image, guides[k:k + 1], gammas[k:k + 1]) for k in range(3)]
    np.testing.assert_allclose(shared.numpy(), tf.concat(one_by_one, 0).numpy(), atol=1e-5)


@pytest.mark.parametrize("fix_bn", [False, True])
def test_training_batch_norm_follows_fix_bn(fix_bn):
    model = OSMN({**LITE_TINY, "fix_bn": fix_bn})
    inputs = {"image": tf.random.normal((2, 64, 64, 3), stddev=50.0),
              "visual_guide": tf.random.normal((2, 224, 224, 3), stddev=50.0),
              "spatial_guide": tf.random.uniform((2, 64, 64, 1))}
    means = [n.moving_mean for n in (model.segmentation_network.trunk.stem_bn,
                                     model.visual_modulator.trunk.stem_bn,
                                     model.spatial_modulator.norms[0])]
    before = [m.numpy().copy() for m in means]
    model(inputs, training=True)
    moved = [not np.array_equal(b, m.numpy()) for b, m in zip(before, means)]
    assert moved == [not fix_bn] * 3


def test_decayed_kernels_cover_every_conv():
    model = OSMN(LITE_TINY)
    kernels = model.decayed_kernels()
    # Per MobileNet: stem + 13 depthwise + 13 pointwise; modulator: classifier + 4 heads;
    # segmentation: 4 side convs + fusion; spatial modulator: 4 convs.
    assert len(kernels) == 2 * 27 + 5 + 5 + 4
    assert len({id(k) for k in kernels}) == len(kernels)


def test_save_and_load_round_trip(tmp_path):
    model = randomize(OSMN(LITE_TINY))
    save_osmn(model, tmp_path / "lite.keras")
    loaded = load_osmn(tmp_path / "lite.keras")
    assert loaded.model_config.backbone == "lite"
    image = tf.random.normal((1, 37, 53, 3), stddev=60.0)
    guide = tf.random.uniform((1, 37, 53, 1))
    gamma = model.gamma(tf.random.normal((1, 224, 224, 3), stddev=50.0))
    np.testing.assert_array_equal(loaded.segment(image, guide, gamma).numpy(),
                                  model.segment(image, guide, gamma).numpy())


def test_imagenet_mobilenet_from_a_local_weights_file(tmp_path):
    source = keras.applications.MobileNet(alpha=1.0, weights=None, input_shape=(224, 224, 3))
    rng = np.random.default_rng(1)
    source.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32)  # > 0: variances
                        for w in source.get_weights()])
    path = tmp_path / "mobilenet.weights.h5"  # Keras 3 format; the download is legacy .h5
    source.save_weights(path)
    model = OSMN({"backbone": "lite"})
    report = load_imagenet_mobilenet(model, str(path))
    # 27 convs (1 kernel each) + 27 batch norms (4 tensors each), in both networks.
    assert len(report.copied) == 2 * (27 + 27 * 4)
    for part in (model.segmentation_network, model.visual_modulator):
        np.testing.assert_array_equal(part.trunk.pointwise[6].kernel.numpy(),
                                      source.get_layer("conv_pw_7").kernel.numpy())
    np.testing.assert_array_equal(model.gamma(tf.zeros((1, 224, 224, 3))).numpy(),
                                  np.ones((1, 1920)))  # heads keep their zero/one init


def test_imagenet_mobilenet_bad_sources(tmp_path):
    model = OSMN(LITE_TINY)
    with pytest.raises(UserError, match="weights exist for width_multiplier 0.25, 0.5, 0.75, "
                                        "1.0; the model has 0.0625"):
        load_imagenet_mobilenet(model, str(tmp_path / "x.h5"))
    full = OSMN({"backbone": "lite", "use_visual_modulator": False})
    with pytest.raises(UserError, match="x.h5: MobileNet weights file not found"):
        load_imagenet_mobilenet(full, str(tmp_path / "x.h5"))
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(UserError, match="bad.h5: not a Keras MobileNet"):
        load_imagenet_mobilenet(full, str(bad))


def test_lite_networks_pass_the_layer_checks():
    """The shared layer checks (config, eager == graph, serialization, mixed bfloat16) on the
    three lite networks, at an odd size (padded to multiples of 32 inside)."""
    from layer_checks import check_layer  # noqa: PLC0415
    from osmn.model.lite import (LiteSegmentationNetwork, LiteSpatialModulator,  # noqa
                                 LiteVisualModulator)
    rng = np.random.default_rng(0)
    image = tf.constant(rng.normal(0, 60, (1, 37, 53, 3)), tf.float32)
    guide = tf.constant(rng.uniform(0, 1, (1, 37, 53, 1)), tf.float32)
    gamma = tf.ones((1, ModelConfig(**LITE_TINY).gamma_size))
    logits = check_layer(lambda: LiteSegmentationNetwork(LITE_TINY), (image, gamma, None),
                         low_precision_output_dtype="float32")
    assert logits.shape == (1, 37, 53, 1)
    betas = check_layer(lambda: LiteSpatialModulator(LITE_TINY), (guide,))
    assert sorted(betas) == sorted(name for name, _ in ModelConfig(**LITE_TINY).modulated_layers())
    gammas = check_layer(lambda: LiteVisualModulator(LITE_TINY),
                         (tf.constant(rng.normal(0, 60, (2, 224, 224, 3)), tf.float32),))
    assert gammas.shape == (2, ModelConfig(**LITE_TINY).gamma_size)
