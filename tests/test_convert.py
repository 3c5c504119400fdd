"""TF1 checkpoint converter: names, shapes, skips, failures, --check, and the tool end to end.

The checkpoints are written the way the authors wrote theirs (`tf.compat.v1` variables and
`tf.compat.v1.train.Saver`, `osmn.convert.write_tf1_checkpoint`) with the original's variable
names and random values, at width 1/16 so that every file is small.
"""

import os
import pathlib

import numpy as np
import pytest

from osmn.config import ModelConfig
from osmn.convert import (check_reference, convert_tf1_checkpoint, fixed_upsampling_kernels,
                          infer_model_config, load_reference, tf1_name_map, write_model,
                          write_tf1_checkpoint)
from osmn.convert.tf1_checkpoint import keras_weights
from osmn.errors import UserError
from osmn.model import OSMN, load_osmn
import scripts
from tool_output import single_error_line

REPO = pathlib.Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "convert_tf1_checkpoint.py"
TINY = 1 / 16


def random_tf1_arrays(model_config, seed=0, upsampling=True, training_state=True):
    """Random values under the original's names for every weight of `model_config`'s model.

    With `training_state`, adds `global_step`, `beta1_power`, `beta2_power` and the Adam slots
    of every trainable weight (as a checkpoint saved during training has).
    """
    rng = np.random.default_rng(seed)
    shapes = {path: tuple(v.shape) for path, v in keras_weights(OSMN(model_config)).items()}
    arrays = {}
    for name, path in tf1_name_map(model_config).items():
        shape = shapes[path]
        # Kernels scaled by 1/sqrt(fan-in) so that activations stay finite through 13 layers.
        scale = 1 / np.sqrt(np.prod(shape[:-1])) if len(shape) == 4 else 0.1
        value = (rng.standard_normal(shape) * scale).astype(np.float32)
        arrays[name] = np.abs(value) + 0.5 if name.endswith("moving_variance") else value
    if training_state:
        for name in list(arrays):
            if "moving_" not in name:
                arrays[f"{name}/Adam"] = rng.standard_normal(arrays[name].shape).astype(np.float32)
                arrays[f"{name}/Adam_1"] = np.abs(arrays[f"{name}/Adam"])
        arrays.update(global_step=np.int64(300000), beta1_power=np.float32(0.9 ** 5),
                      beta2_power=np.float32(0.999 ** 5))
    if upsampling:
        arrays.update(fixed_upsampling_kernels())
    return arrays


def assert_model_holds(model, arrays):
    """Every Keras weight equals the checkpoint value of its TF1 name (same layout, no
    transpose)."""
    weights = keras_weights(model)
    names = tf1_name_map(model.model_config)
    assert set(names.values()) == set(weights)
    for name, path in names.items():
        np.testing.assert_array_equal(weights[path].numpy(), arrays[name], err_msg=name)


@pytest.fixture
def tiny_checkpoint(tmp_path):
    cfg = ModelConfig(width_multiplier=TINY)
    arrays = random_tf1_arrays(cfg)
    prefix = write_tf1_checkpoint(tmp_path / "model.ckpt-300000", arrays)
    return prefix, arrays


@pytest.mark.parametrize("changes", [{}, {"mod_early_conv": True},
                                     {"use_visual_modulator": False},
                                     {"use_spatial_modulator": False}])
def test_name_map_covers_every_keras_weight_once(changes):
    cfg = ModelConfig(width_multiplier=TINY, **changes)
    names = tf1_name_map(cfg)
    weights = keras_weights(OSMN(cfg))
    assert sorted(names.values()) == sorted(weights)
    assert len(set(names.values())) == len(names)


def test_names_and_full_width_shapes_match_the_spec():
    """The spec's listed shapes: fc6 [7,7,512,4096], fc7, fc8 [1,1,4096,3840], spatial convs."""
    names = tf1_name_map(ModelConfig())
    weights = keras_weights(OSMN())
    expected = {
        "osmn/seg/conv1/conv1_1/weights": (3, 3, 3, 64),
        "osmn/seg/conv5/conv5_3/biases": (512,),
        "osmn/seg/conv2_2_16/weights": (3, 3, 128, 16),
        "osmn/seg/conv5_3_16/biases": (16,),
        "osmn/seg/upscore-fuse/weights": (1, 1, 64, 1),
        "osmn/modulator/conv3/conv3_2/weights": (3, 3, 256, 256),
        "osmn/modulator/fc6/weights": (7, 7, 512, 4096),
        "osmn/modulator/fc7/weights": (1, 1, 4096, 4096),
        "osmn/modulator/fc8/weights": (1, 1, 4096, 3840),
        "osmn/modulator/fc8/biases": (3840,),
        "osmn/modulator_sp/conv3/weights": (1, 1, 1, 768),
        "osmn/modulator_sp/conv4/weights": (1, 1, 1, 1536),
        "osmn/modulator_sp/conv5/weights": (1, 1, 1, 1536),
        "osmn/modulator_sp/conv5/BatchNorm/moving_variance": (1536,),
    }
    for name, shape in expected.items():
        assert tuple(weights[names[name]].shape) == shape, name
    assert "osmn/modulator_sp/conv1/weights" not in names
    assert {n: k.shape for n, k in fixed_upsampling_kernels().items()} == {
        "osmn/seg/score-multi2-up/weights": (4, 4, 16, 16),
        "osmn/seg/score-multi3-up/weights": (8, 8, 16, 16),
        "osmn/seg/score-multi4-up/weights": (16, 16, 16, 16),
        "osmn/seg/score-multi5-up/weights": (32, 32, 16, 16)}


@pytest.mark.parametrize("upsampling,training_state", [(True, True), (False, False)])
def test_convert_copies_every_weight(tmp_path, upsampling, training_state):
    cfg = ModelConfig(width_multiplier=TINY)
    arrays = random_tf1_arrays(cfg, seed=1, upsampling=upsampling, training_state=training_state)
    prefix = write_tf1_checkpoint(tmp_path / "model.ckpt-5", arrays)
    model, report = convert_tf1_checkpoint(prefix)
    assert report.model_config == cfg
    assert_model_holds(model, arrays)
    assert len(report.loaded) == len(tf1_name_map(cfg)) == len(model.weights)
    assert len(report.checked_fixed) == (4 if upsampling else 0)
    skipped = dict(report.skipped)
    if training_state:
        assert skipped["global_step"] == skipped["beta1_power"] == "training state"
        assert skipped["osmn/modulator/fc8/weights/Adam_1"] == "Adam slot"
        assert len(skipped) == 3 + 2 * sum("moving_" not in n for n in tf1_name_map(cfg))
    else:
        assert skipped == {}


def test_converted_model_uses_the_loaded_weights(tiny_checkpoint):
    """Not only stored: the forward pass reads them (gamma = fc8 applied to fc7's output)."""
    prefix, arrays = tiny_checkpoint
    model, _ = convert_tf1_checkpoint(prefix)
    fresh = OSMN(model.model_config)
    guide = np.random.default_rng(2).normal(0, 50, (1, 224, 224, 3)).astype(np.float32)
    gamma = np.asarray(model.gamma(guide))
    assert not np.allclose(gamma, np.asarray(fresh.gamma(guide)))
    # With fc8's kernel zeroed, gamma is exactly fc8's bias from the checkpoint.
    model.visual_modulator.fc8.kernel.assign(np.zeros_like(arrays["osmn/modulator/fc8/weights"]))
    np.testing.assert_array_equal(np.asarray(model.gamma(guide))[0],
                                  arrays["osmn/modulator/fc8/biases"])


def test_mod_early_conv_is_detected_from_the_checkpoint(tmp_path):
    cfg = ModelConfig(width_multiplier=TINY, mod_early_conv=True)
    arrays = random_tf1_arrays(cfg, seed=3)
    assert arrays["osmn/modulator/fc8/biases"].shape == (cfg.gamma_size,)
    model, report = convert_tf1_checkpoint(write_tf1_checkpoint(tmp_path / "early", arrays))
    assert report.model_config.mod_early_conv
    assert model.gamma_size == cfg.gamma_size == 264  # 4224 / 16
    assert_model_holds(model, arrays)
    np.testing.assert_array_equal(model.spatial_modulator.convs[0].kernel.numpy(),
                                  arrays["osmn/modulator_sp/conv1/weights"])


def test_mod_early_conv_is_detected_from_fc8_alone():
    """Without a spatial modulator, fc8's size (4224 at full width) tells."""
    shapes = {"osmn/seg/conv1/conv1_1/weights": (3, 3, 3, 64),
              "osmn/modulator/fc8/biases": (4224,)}
    cfg = infer_model_config(shapes)
    assert cfg.mod_early_conv and cfg.width_multiplier == 1.0
    assert not cfg.use_spatial_modulator and cfg.use_visual_modulator
    shapes["osmn/modulator/fc8/biases"] = (3840,)
    assert not infer_model_config(shapes).mod_early_conv
    assert infer_model_config(shapes, fix_bn=True).fix_bn


def test_ablation_checkpoint_without_spatial_modulator(tmp_path):
    cfg = ModelConfig(width_multiplier=TINY, use_spatial_modulator=False)
    arrays = random_tf1_arrays(cfg, seed=4)
    model, report = convert_tf1_checkpoint(write_tf1_checkpoint(tmp_path / "ablation", arrays))
    assert report.model_config == cfg and model.spatial_modulator is None
    assert_model_holds(model, arrays)


@pytest.mark.parametrize("extra", ["osmn/seg/conv6/conv6_1/weights", "osmn/seg/conv9/weights/Adam",
                                   "beta3_power", "osmn/modulator/fc9/biases"])
def test_unexpected_variable_fails_naming_it(tmp_path, extra):
    arrays = random_tf1_arrays(ModelConfig(width_multiplier=TINY), training_state=False)
    arrays[extra] = np.zeros((2,), np.float32)
    prefix = write_tf1_checkpoint(tmp_path / "extra", arrays)
    with pytest.raises(UserError, match=r"unexpected \(1\): " + extra):
        convert_tf1_checkpoint(prefix)


@pytest.mark.parametrize("dropped", ["osmn/modulator_sp/conv4/BatchNorm/moving_mean",
                                     "osmn/seg/upscore-fuse/biases",
                                     "osmn/modulator/fc7/weights"])
def test_missing_variable_fails_naming_it(tmp_path, dropped):
    arrays = random_tf1_arrays(ModelConfig(width_multiplier=TINY))
    del arrays[dropped]
    prefix = write_tf1_checkpoint(tmp_path / "missing", arrays)
    with pytest.raises(UserError, match=r"missing \(1\): " + dropped):
        convert_tf1_checkpoint(prefix)


def test_missing_and_unexpected_are_listed_together(tmp_path):
    """A checkpoint of the Caffe-style layout (e.g. a typo in a scope) lists both sides."""
    arrays = random_tf1_arrays(ModelConfig(width_multiplier=TINY), training_state=False)
    arrays["osmn/seg/upscore_fuse/weights"] = arrays.pop("osmn/seg/upscore-fuse/weights")
    prefix = write_tf1_checkpoint(tmp_path / "typo", arrays)
    with pytest.raises(UserError) as error:
        convert_tf1_checkpoint(prefix)
    message = str(error.value)
    assert "missing (1): osmn/seg/upscore-fuse/weights" in message
    assert "unexpected (1): osmn/seg/upscore_fuse/weights" in message
    assert "\n" not in message


def test_wrong_shape_fails_naming_it(tmp_path):
    arrays = random_tf1_arrays(ModelConfig(width_multiplier=TINY), training_state=False)
    arrays["osmn/seg/conv3_3_16/weights"] = np.zeros((3, 3, 16, 8), np.float32)
    prefix = write_tf1_checkpoint(tmp_path / "shape", arrays)
    with pytest.raises(UserError, match=r"wrong shape \(1\): osmn/seg/conv3_3_16/weights "
                                        r"\[3, 3, 16, 8\] \(model needs \[3, 3, 16, 16\]\)"):
        convert_tf1_checkpoint(prefix)


def test_width_is_read_from_shapes_only(tmp_path):
    """A 1/8-width checkpoint converts to a 1/8-width model; a forced width fails on shapes."""
    cfg = ModelConfig(width_multiplier=1 / 8, use_visual_modulator=False)
    arrays = random_tf1_arrays(cfg, training_state=False)
    prefix = write_tf1_checkpoint(tmp_path / "eighth", arrays)
    model, report = convert_tf1_checkpoint(prefix)
    assert report.model_config.width_multiplier == 1 / 8
    assert_model_holds(model, arrays)
    with pytest.raises(UserError, match="wrong shape"):
        convert_tf1_checkpoint(prefix, {"width_multiplier": TINY})


def test_upsampling_kernel_that_is_not_bilinear_fails(tmp_path):
    arrays = random_tf1_arrays(ModelConfig(width_multiplier=TINY), training_state=False)
    arrays["osmn/seg/score-multi3-up/weights"] = arrays["osmn/seg/score-multi3-up/weights"] * 1.01
    prefix = write_tf1_checkpoint(tmp_path / "upsampling", arrays)
    with pytest.raises(UserError, match="not the bilinear kernel .1.: "
                                        "osmn/seg/score-multi3-up/weights"):
        convert_tf1_checkpoint(prefix)


def test_unreadable_checkpoint_fails(tmp_path):
    with pytest.raises(UserError, match="not a readable TF checkpoint"):
        convert_tf1_checkpoint(tmp_path / "nothing-here")
    (tmp_path / "bad.index").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not a readable TF checkpoint"):
        convert_tf1_checkpoint(tmp_path / "bad")


def test_other_model_is_not_an_osmn_checkpoint(tmp_path):
    prefix = write_tf1_checkpoint(tmp_path / "vgg", {
        "vgg_16/conv1/conv1_1/weights": np.zeros((3, 3, 3, 4), np.float32)})
    with pytest.raises(UserError, match="not an OSMN checkpoint"):
        convert_tf1_checkpoint(prefix)


# ---------------------------------------------------------------------------------------------
# --check REF.npz
# ---------------------------------------------------------------------------------------------
def reference_inputs(height=37, width=53, seed=5):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    guide = np.exp(-((yy - height / 2) ** 2 + (xx - width / 3) ** 2) / (2 * 8.0 ** 2))
    return {"visual_guide": rng.normal(0, 60, (1, 224, 224, 3)).astype(np.float32),
            "image": rng.normal(0, 60, (1, height, width, 3)).astype(np.float32),
            "spatial_guide": guide[None, :, :, None].astype(np.float32)}


def write_reference(path, model, inputs):
    """What a user holding the original graph would save (here: from a Keras model)."""
    gamma = np.asarray(model.gamma(inputs["visual_guide"]), np.float32)
    logits = np.asarray(model.segment(inputs["image"], inputs["spatial_guide"], gamma),
                        np.float32)
    np.savez(path, gamma=gamma, logits=logits, **inputs)
    return path


def perturbed(model, scale=1.05):
    """A copy of `model` with upscore-fuse's kernel scaled: its logits move, gamma does not."""
    other = OSMN(model.model_config)
    other.set_weights(model.get_weights())
    other.segmentation_network.fuse.kernel.assign(
        other.segmentation_network.fuse.kernel.numpy() * scale)
    return other


def test_reference_check_round_trip(tiny_checkpoint, tmp_path):
    prefix, _ = tiny_checkpoint
    model, _ = convert_tf1_checkpoint(prefix)
    inputs = reference_inputs()
    same = check_reference(model, write_reference(tmp_path / "same.npz", model, inputs))
    assert same.gamma_max_abs_diff == 0.0 and same.logits_max_abs_diff == 0.0
    assert same.passed(1e-3)
    other = check_reference(model, write_reference(tmp_path / "other.npz", perturbed(model),
                                                   inputs))
    assert other.gamma_max_abs_diff == 0.0
    assert other.logits_max_abs_diff > 1e-3 and not other.passed(1e-3)
    assert other.passed(other.logits_max_abs_diff)


def test_reference_file_is_validated(tmp_path):
    inputs = reference_inputs(height=20, width=30)
    good = {**inputs, "gamma": np.ones((1, 240), np.float32),
            "logits": np.zeros((1, 20, 30, 1), np.float32)}
    np.savez(tmp_path / "good.npz", **good)
    assert load_reference(tmp_path / "good.npz", 240)["logits"].shape == (1, 20, 30, 1)
    cases = {
        "no_logits": ({k: v for k, v in good.items() if k != "logits"}, "missing arrays logits"),
        "int_image": ({**good, "image": good["image"].astype(np.int32)}, "image has dtype int32"),
        "small_guide": ({**good, "visual_guide": np.zeros((1, 112, 112, 3), np.float32)},
                        "visual_guide has shape"),
        "mask_size": ({**good, "spatial_guide": np.zeros((1, 20, 31, 1), np.float32)},
                      "spatial_guide has shape"),
        "gamma_size": ({**good, "gamma": np.ones((1, 3840), np.float32)}, "gamma has shape"),
    }
    for name, (arrays, message) in cases.items():
        np.savez(tmp_path / f"{name}.npz", **arrays)
        with pytest.raises(UserError, match=message):
            load_reference(tmp_path / f"{name}.npz", 240)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(UserError, match="not a readable .npz"):
        load_reference(tmp_path / "junk.npz", 240)
    with pytest.raises(UserError, match="not found"):
        load_reference(tmp_path / "absent.npz", 240)


# ---------------------------------------------------------------------------------------------
# The tool, end to end (subprocesses: exit codes and stderr as a user sees them).
# ---------------------------------------------------------------------------------------------
def run_tool(*args):
    return scripts.run_tool("convert_tf1_checkpoint", *args, tf_log_level="2")


def error_line(result):
    return single_error_line(result.stderr)


def test_tool_converts_checks_and_writes_keras(tiny_checkpoint, tmp_path):
    prefix, arrays = tiny_checkpoint
    reference_model, _ = convert_tf1_checkpoint(prefix)
    inputs = reference_inputs()
    good = write_reference(tmp_path / "good.npz", reference_model, inputs)
    bad = write_reference(tmp_path / "bad.npz", perturbed(reference_model), inputs)
    output = tmp_path / "out" / "osmn.keras"

    result = run_tool(f"--tf1_checkpoint={prefix}", f"--output={output}", f"--check={bad}")
    assert result.returncode == 1, result.stderr
    assert "max |logits - reference|" in result.stdout and "nothing written" in result.stderr
    assert not output.exists()

    result = run_tool(f"--tf1_checkpoint={prefix}", f"--output={output}", f"--check={good}")
    assert result.returncode == 0, result.stderr
    assert "loaded 83 weights" in result.stdout
    assert "max |gamma - reference| = 0, max |logits - reference| = 0" in result.stdout
    assert_model_holds(load_osmn(output), arrays)
    assert [p.name for p in output.parent.iterdir()] == ["osmn.keras"]  # no temp files left

    result = run_tool(f"--checkpoint={output}", f"--check={bad}")
    assert result.returncode == 1, result.stderr


def test_tool_bad_input_is_one_line_and_exit_2(tmp_path):
    arrays = random_tf1_arrays(ModelConfig(width_multiplier=TINY), training_state=False)
    arrays["osmn/seg/conv1/conv1_1/weights/Momentum"] = arrays["osmn/seg/conv1/conv1_1/weights"]
    prefix = write_tf1_checkpoint(tmp_path / "momentum", arrays)
    output = tmp_path / "never.keras"
    result = run_tool(f"--tf1_checkpoint={prefix}", f"--output={output}")
    assert result.returncode == 2
    assert "unexpected (1): osmn/seg/conv1/conv1_1/weights/Momentum" in error_line(result)
    # Stage-1 init needs the full-width VGG16.
    result = run_tool("--vgg16_slim=/no/such/vgg_16.ckpt", f"--output={output}",
                      '--model_config={"width_multiplier": 0.0625}')
    assert result.returncode == 2 and "width_multiplier 1.0" in error_line(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == [  # nothing written, no temp files
        "momentum.data-00000-of-00001", "momentum.index"]


def test_weights_h5_output_with_config_json(tmp_path):
    cfg = ModelConfig(width_multiplier=TINY, mod_early_conv=True)
    arrays = random_tf1_arrays(cfg, seed=6, training_state=False)
    model, _ = convert_tf1_checkpoint(write_tf1_checkpoint(tmp_path / "early.ckpt", arrays),
                                      {"fix_bn": True})
    output = tmp_path / "out" / "early.weights.h5"
    assert write_model(model, output) == [output, output.parent / "config.json"]
    loaded = load_osmn(output)
    assert loaded.model_config.mod_early_conv and loaded.model_config.fix_bn
    assert_model_holds(loaded, arrays)
    assert sorted(p.name for p in output.parent.iterdir()) == ["config.json", "early.weights.h5"]
    umask = os.umask(0)
    os.umask(umask)
    assert output.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600
    with pytest.raises(UserError, match="must end in .keras or .weights.h5"):
        write_model(model, tmp_path / "model.h5")
