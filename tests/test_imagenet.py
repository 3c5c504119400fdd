"""ImageNet VGG16 initialisation (`osmn.model.imagenet`) from synthetic full-size weights.

A `keras.applications.VGG16(weights=None)` (random, full size) stands in for the ImageNet
weights: written as the legacy Keras `.h5` the application file uses, and as a TF-slim
`vgg_16` checkpoint with the model zoo's names. No network access: the download failure is
simulated. Full width means ~165M OSMN parameters, so these tests share module fixtures and
the full-width ones are marked slow.
"""

import h5py
import numpy as np
import pytest
import keras
from keras.src.legacy.saving import legacy_h5_format

from osmn.convert import write_tf1_checkpoint
from osmn.errors import UserError
from osmn.model import OSMN
from osmn.model.imagenet import load_imagenet_vgg16

CONVS = [(f"conv{b}_{i}", f"block{b}_conv{i}") for b, depth in enumerate((2, 2, 3, 3, 3), 1)
         for i in range(1, depth + 1)]


@pytest.fixture(scope="module")
def keras_vgg():
    keras.utils.set_random_seed(1)
    return keras.applications.VGG16(weights=None)


@pytest.fixture(scope="module")
def vgg_h5(keras_vgg, tmp_path_factory):
    """The Keras application weights-file format (legacy h5, one group per layer)."""
    path = tmp_path_factory.mktemp("vgg") / "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, keras_vgg)
    return path


@pytest.fixture(scope="module")
def full_osmn():
    keras.utils.set_random_seed(2)
    return OSMN()


def expected_arrays(vgg):
    """Our names -> the Keras VGG16's weights, fc1/fc2 reshaped to conv kernels."""
    arrays = {}
    for ours, theirs in CONVS + [("fc6", "fc1"), ("fc7", "fc2")]:
        kernel, bias = vgg.get_layer(theirs).get_weights()
        arrays[f"{ours}/kernel"], arrays[f"{ours}/bias"] = kernel, bias
    arrays["fc6/kernel"] = arrays["fc6/kernel"].reshape(7, 7, 512, 4096)
    arrays["fc7/kernel"] = arrays["fc7/kernel"].reshape(1, 1, 4096, 4096)
    return arrays


def slim_arrays(arrays):
    """The TF-slim vgg_16 names (the ImageNet classifier fc8 is there too and is ignored)."""
    slim = {}
    for ours, value in arrays.items():
        layer, kind = ours.split("/")
        scope = f"vgg_16/{layer}" if layer.startswith("fc") else \
            f"vgg_16/{layer.split('_')[0]}/{layer}"
        slim[f"{scope}/{'weights' if kind == 'kernel' else 'biases'}"] = value
    slim["vgg_16/fc8/weights"] = np.zeros((1, 1, 4096, 3), np.float32)
    slim["global_step"] = np.int64(0)
    return slim


def untouched(model):
    """Weights ImageNet must not change: fc8, the spatial modulator, side convs and fuse."""
    seg, vm = model.segmentation_network, model.visual_modulator
    layers = [vm.fc8, seg.fuse] + seg.side_convs + model.spatial_modulator.convs
    return {f"{layer.name}/{w.name}": w.numpy().copy() for layer in layers for w in layer.weights}


def assert_holds(model, arrays):
    seg, vm = model.segmentation_network, model.visual_modulator
    for conv in seg.trunk_layers():
        np.testing.assert_array_equal(conv.kernel.numpy(), arrays[f"{conv.name}/kernel"])
        np.testing.assert_array_equal(conv.bias.numpy(), arrays[f"{conv.name}/bias"])
    layers = [c for block in vm.conv_blocks for c in block] + [vm.fc6, vm.fc7]
    for layer in layers:
        np.testing.assert_array_equal(layer.kernel.numpy(), arrays[f"{layer.name}/kernel"])
        np.testing.assert_array_equal(layer.bias.numpy(), arrays[f"{layer.name}/bias"])


def test_narrow_model_is_refused(tiny_config):
    with pytest.raises(UserError, match="width_multiplier 1.0, the model has 0.0625"):
        load_imagenet_vgg16(OSMN(tiny_config), source="unused.h5")


@pytest.mark.slow
def test_keras_h5_copies_both_vgg16s(full_osmn, keras_vgg, vgg_h5):
    before = untouched(full_osmn)
    report = load_imagenet_vgg16(full_osmn, source=str(vgg_h5))
    assert_holds(full_osmn, expected_arrays(keras_vgg))
    assert len(report.copied) == 2 * 13 * 2 + 2 * 2  # both trunks + fc6, fc7 of the modulator
    assert "visual_modulator/fc7/kernel" in report.copied
    assert not any("fc8" in name for name in report.copied)
    for name, value in untouched(full_osmn).items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)
    # fc8 still gives gamma = 1 whatever the guide.
    gamma = full_osmn.gamma(np.random.default_rng(0).normal(0, 50, (1, 224, 224, 3)))
    np.testing.assert_array_equal(np.asarray(gamma), np.ones((1, 3840), np.float32))


@pytest.mark.slow
def test_fc6_is_the_flattened_fc1(full_osmn, keras_vgg, vgg_h5):
    """Keras flattens pool5 as (h, w, c): the reshaped fc1/fc2 reproduce VGG16's fc2 output."""
    load_imagenet_vgg16(full_osmn, source=str(vgg_h5))
    image = np.random.default_rng(3).normal(0, 50, (1, 224, 224, 3)).astype(np.float32)
    fc2 = keras.Model(keras_vgg.input, keras_vgg.get_layer("fc2").output)(image)
    vm = full_osmn.visual_modulator
    x = image
    for convs, pool in zip(vm.conv_blocks, vm.pools):
        for conv in convs:
            x = conv(x)
        x = pool(x)
    fc7 = vm.fc7(vm.fc6(x))
    assert fc7.shape == (1, 1, 1, 4096)
    np.testing.assert_allclose(np.asarray(fc7)[:, 0, 0], np.asarray(fc2), rtol=1e-4, atol=1e-4)
    assert float(np.max(np.abs(fc2))) > 1e-2  # the comparison is not between zeros


@pytest.mark.slow
def test_slim_checkpoint_copies_both_vgg16s(full_osmn, keras_vgg, tmp_path):
    arrays = {k: -v for k, v in expected_arrays(keras_vgg).items()}  # differ from the h5 test
    prefix = write_tf1_checkpoint(tmp_path / "vgg_16.ckpt", slim_arrays(arrays))
    report = load_imagenet_vgg16(full_osmn, source=prefix)
    assert report.source == prefix and len(report.copied) == 56
    assert_holds(full_osmn, arrays)


@pytest.mark.slow
def test_offline_download_is_a_user_error(full_osmn, monkeypatch):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):  # what Keras raises without network
        raise Exception("URL fetch failure on https://storage.googleapis.com/x.h5: None -- "
                        "[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(UserError) as error:
        load_imagenet_vgg16(full_osmn, source=None)
    message = str(error.value)
    assert "download" in message and "failed" in message and "pass a local file" in message
    assert "\n" not in message


@pytest.mark.slow
def test_bad_sources_are_user_errors_and_leave_the_model(full_osmn, tmp_path):
    kernel = full_osmn.segmentation_network.trunk_layers()[0].kernel.numpy().copy()
    with pytest.raises(UserError, match="not found"):
        load_imagenet_vgg16(full_osmn, source=str(tmp_path / "absent.h5"))
    (tmp_path / "junk.h5").write_bytes(b"junk")
    with pytest.raises(UserError, match="not a Keras VGG16 weights file"):
        load_imagenet_vgg16(full_osmn, source=str(tmp_path / "junk.h5"))
    with pytest.raises(UserError, match="not a readable TF checkpoint"):
        load_imagenet_vgg16(full_osmn, source=str(tmp_path / "absent.ckpt"))
    partial = write_tf1_checkpoint(tmp_path / "partial", {
        "vgg_16/conv1/conv1_1/weights": np.zeros((3, 3, 3, 64), np.float32)})
    with pytest.raises(UserError, match="missing vgg_16/conv1/conv1_1/biases"):
        load_imagenet_vgg16(full_osmn, source=partial)
    # Every name present but a narrow network's shapes: refused before anything is assigned.
    narrow = {}
    for ours, _ in CONVS + [("fc6", None), ("fc7", None)]:
        narrow[f"{ours}/kernel"] = np.zeros((1, 1, 1, 2), np.float32)
        narrow[f"{ours}/bias"] = np.zeros((2,), np.float32)
    prefix = write_tf1_checkpoint(tmp_path / "narrow", slim_arrays(narrow))
    with pytest.raises(UserError, match="conv1_1/kernel has shape"):
        load_imagenet_vgg16(full_osmn, source=prefix)
    np.testing.assert_array_equal(full_osmn.segmentation_network.trunk_layers()[0].kernel.numpy(),
                                  kernel)
