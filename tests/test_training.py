"""Training loop: schedule, loss going down, non-finite loss, precision, summaries, resume."""

import json
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from osmn import config
from osmn.config import RECIPES, ModelConfig
from osmn.data import training_dataset
from osmn.model import load_osmn
from osmn.training import TrainingDiverged, learning_rate_at, train
from osmn.training.checkpoints import CONFIG_NAME, MODEL_NAME
from osmn.training.summaries import prediction_panel
from scripts import load_tool, run_tool
from tool_output import own_lines

REPO = pathlib.Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "train.py"
SAMPLE = REPO / "data" / "davis_sample"
SIZE = (64, 96)


def tiny_recipe(**changes):
    base = RECIPES["sample"].replace(
        batch_size=2, steps=4, image_sizes=(SIZE,), checkpoint_every=2, lr_boundaries=(),
        lr_values=(1e-3,), model=ModelConfig(width_multiplier=1 / 16))
    return base.replace(**changes)


def fixed_batch_fn(recipe, batch):
    """A dataset repeating one batch (inputs, label), whatever the start."""
    return lambda start: tf.data.Dataset.from_tensors(batch).repeat()


@pytest.fixture(scope="module")
def sample_batch():
    recipe = tiny_recipe()
    return next(iter(training_dataset(recipe, str(SAMPLE), start_batch=0)))


def test_learning_rate_is_piecewise_constant_over_steps():
    recipe = RECIPES["coco_stage1"]  # 1e-5 for steps 0..199999, then 1e-6.
    assert float(learning_rate_at(recipe, 0)) == pytest.approx(1e-5)
    assert float(learning_rate_at(recipe, 199_999)) == pytest.approx(1e-5)
    assert float(learning_rate_at(recipe, 200_000)) == pytest.approx(1e-6)
    assert float(learning_rate_at(RECIPES["davis_stage2"], 10)) == pytest.approx(1e-6)


def test_a_few_steps_lower_the_loss_on_a_fixed_batch(tmp_path, sample_batch):
    recipe = tiny_recipe(steps=25, lr_values=(1e-3,), checkpoint_every=25, he_init=False)
    result = train(recipe, tmp_path, fixed_batch_fn(recipe, sample_batch), summary_every=0,
                   progress=False)
    assert len(result.losses) == 25 and all(np.isfinite(result.losses))
    assert np.mean(result.losses[-3:]) < 0.8 * result.losses[0], result.losses
    # The run directory holds the config, the checkpoint and a loadable model.
    assert json.loads((tmp_path / CONFIG_NAME).read_text())["steps"] == 25
    assert result.checkpoint.endswith("ckpt-25")
    model = load_osmn(tmp_path / MODEL_NAME)
    assert model.model_config.width_multiplier == pytest.approx(1 / 16)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, sample_batch):
    # Step 4 runs at an absurd learning rate: its weights blow up and step 5's loss overflows.
    recipe = tiny_recipe(steps=8, checkpoint_every=2, lr_boundaries=(3,),
                         lr_values=(1e-4, 1e30))
    with pytest.raises(TrainingDiverged, match=r"loss is (nan|inf) at step 5.*ckpt-4"):
        train(recipe, tmp_path, fixed_batch_fn(recipe, sample_batch), summary_every=0,
              progress=False)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert "ckpt-4.index" in names and not any(n.startswith("ckpt-6") for n in names)
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-4")
    weights = load_osmn(tmp_path / MODEL_NAME).get_weights()
    assert all(np.isfinite(w).all() for w in weights)


def test_refuses_to_overwrite_a_run_without_resume(tmp_path, sample_batch):
    recipe = tiny_recipe(steps=2)
    train(recipe, tmp_path, fixed_batch_fn(recipe, sample_batch), summary_every=0,
          progress=False)
    from osmn.errors import UserError
    with pytest.raises(UserError, match="already holds checkpoints"):
        train(recipe, tmp_path, fixed_batch_fn(recipe, sample_batch), resume=False,
              summary_every=0, progress=False)
    other = recipe.replace(model=ModelConfig(width_multiplier=1 / 8), steps=3)
    with pytest.raises(UserError, match="another model"):
        train(other, tmp_path, fixed_batch_fn(other, sample_batch), summary_every=0,
              progress=False)


def test_a_finished_run_resumes_to_nothing_without_building_its_input(tmp_path, sample_batch):
    recipe = tiny_recipe(steps=2)
    first = train(recipe, tmp_path, fixed_batch_fn(recipe, sample_batch), summary_every=0,
                  progress=False)

    def no_input(start):
        raise AssertionError(f"input pipeline built for a finished run (start {start})")

    messages = []
    again = train(recipe, tmp_path, no_input, summary_every=0, progress=False,
                  log=messages.append)
    assert (again.first_step, again.step, again.losses) == (2, 2, [])
    assert again.checkpoint == first.checkpoint
    assert any(m.startswith("nothing to do") and "step 2 of 2" in m for m in messages)


@pytest.mark.parametrize("precision, policy", [("bfloat16", "mixed_bfloat16"),
                                               ("float16", "mixed_float16")])
def test_mixed_precision_trains(tmp_path, sample_batch, precision, policy):
    recipe = tiny_recipe(steps=2)
    result = train(recipe, tmp_path, fixed_batch_fn(recipe, sample_batch), precision=precision,
                   summary_every=0, progress=False)
    assert all(np.isfinite(result.losses))
    model = load_osmn(tmp_path / MODEL_NAME)
    assert model.dtype_policy.name == policy
    assert keras.config.dtype_policy().name == "float32"  # the global policy restored
    if precision == "float16":  # loss scaling is part of the checkpoint
        reader = tf.train.load_checkpoint(result.checkpoint)
        assert any("dynamic_scale" in k for k in reader.get_variable_to_shape_map())


def test_summaries_hold_loss_learning_rate_and_images(tmp_path, sample_batch):
    recipe = tiny_recipe(steps=2)
    train(recipe, tmp_path, fixed_batch_fn(recipe, sample_batch), summary_every=1,
          progress=False)
    events = list((tmp_path / "summaries" / "train").glob("events.out.tfevents.*"))
    tags = {}
    for record in tf.data.TFRecordDataset([str(e) for e in events]):
        event = tf.compat.v1.Event.FromString(record.numpy())
        for value in event.summary.value:
            tags.setdefault(value.tag, []).append(event.step)
            if value.tag == "probability_vs_label":
                # [width, height, png, png]: the probability | label panel of 2 samples.
                tensor = tf.make_ndarray(value.tensor)
                assert tensor[:2].tolist() == [str(2 * SIZE[1]).encode(), str(SIZE[0]).encode()]
                assert len(tensor) == 2 + 2
    assert tags["loss"] == [1, 2] and tags["learning_rate"] == [1, 2]
    assert tags["probability_vs_label"] == [1, 2]


def test_prediction_panel_puts_probability_beside_label():
    labels = np.zeros((1, 2, 3, 1)); labels[0, 0, 0] = 1
    panel = prediction_panel(labels, np.zeros((1, 2, 3, 1)))
    assert panel.shape == (1, 2, 6, 1)
    np.testing.assert_allclose(panel[0, :, :3, 0], 0.5)
    assert panel[0, 0, 3, 0] == 1 and panel[0, :, 4:, 0].sum() == 0


def _run_tool(*args):
    return run_tool("train", *args)


TOOL_ARGS = ["--recipe=sample", f"--data_dir={SAMPLE}", "--width_multiplier=0.0625",
             f"--image_sizes={SIZE[1]}x{SIZE[0]}", "--batch_size=2", "--checkpoint_every=2",
             "--summary_every=0", "--noprogress", "--lr=1e-3", "--lr_boundaries=", "--seed=3"]


@pytest.mark.slow
def test_killed_run_resumes_to_identical_weights(tmp_path):
    """6 steps in one process == 3 steps, then a new process resuming to 6 (bit for bit)."""
    whole, split = tmp_path / "whole", tmp_path / "split"
    done = _run_tool(*TOOL_ARGS, f"--train_dir={whole}", "--steps=6")
    assert done.returncode == 0, done.stderr
    first = _run_tool(*TOOL_ARGS, f"--train_dir={split}", "--steps=3")
    assert first.returncode == 0, first.stderr
    second = _run_tool(*TOOL_ARGS, f"--train_dir={split}", "--steps=6")
    assert second.returncode == 0, second.stderr
    assert "resumed from" in second.stderr and "at step 3" in second.stderr
    assert "trained 3 steps (to step 6)" in second.stdout
    saved = json.loads((split / CONFIG_NAME).read_text())
    assert saved["steps"] == 6 and saved["seed"] == 3 and saved["image_sizes"] == [list(SIZE)]
    a = tf.train.load_checkpoint(str(whole / "checkpoints" / "ckpt-6"))
    b = tf.train.load_checkpoint(str(split / "checkpoints" / "ckpt-6"))
    names = [n for n in a.get_variable_to_shape_map() if n != "_CHECKPOINTABLE_OBJECT_GRAPH"]
    assert sorted(names) == sorted(n for n in b.get_variable_to_shape_map()
                                   if n != "_CHECKPOINTABLE_OBJECT_GRAPH")
    # Model variables (batch-norm statistics and dropout RNG states included), Adam slots,
    # iteration counters and the step: all equal. Only `save_counter` (how many saves this run
    # directory has seen: 3 vs 4, the split run also saved at its end, step 3) may differ.
    assert any("model_variables" in n for n in names) and any("optimizer" in n for n in names)
    assert int(a.get_tensor("save_counter/.ATTRIBUTES/VARIABLE_VALUE")) == 3
    assert int(b.get_tensor("save_counter/.ATTRIBUTES/VARIABLE_VALUE")) == 4
    for name in (n for n in names if not n.startswith("save_counter")):
        np.testing.assert_array_equal(a.get_tensor(name), b.get_tensor(name), err_msg=name)


@pytest.mark.parametrize("args, message", [
    (["--data_dir=/nonexistent/davis"], "--data_dir=/nonexistent/davis: no such directory"),
    (["--source=imagenet"], "--source=imagenet: value should be one of <coco|davis|youtube_vos>"),
    (["--lr=-1e-4"], "--lr: learning rates must be positive"),
    (["--steps=many"], "--steps"),
    (["--recipe=stage3"], "--recipe=stage3: value should be one of"),
    (["--image_sizes=64by96"], "--image_sizes=64by96: expected WIDTHxHEIGHT, e.g. 854x480"),
    (["--image_sizes=96x64,8x8"], "--image_sizes=96x64,8x8: width and height must be in 32..4096"),
    (["--precision=half"], "--precision=half: value should be one of <auto|float32|bfloat16|float16>"),
])
def test_bad_flags_fail_at_start_with_one_line(tmp_path, args, message):
    result = _run_tool(*TOOL_ARGS, f"--train_dir={tmp_path / 'run'}", *args)
    assert result.returncode == 2
    lines = own_lines(result.stderr)
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "run").exists()


def test_train_step_returns_the_loss_and_unscales_a_loss_scale_optimizer(sample_batch):
    """One step: the loss is the balanced cross-entropy of the logits it returns plus weight
    decay; a LossScaleOptimizer's scaling (by a power of two) leaves the update as plain Adam's."""
    import keras  # noqa: PLC0415
    from osmn.losses import balanced_cross_entropy  # noqa: PLC0415
    from osmn.model import OSMN  # noqa: PLC0415
    from osmn.training import train_step  # noqa: PLC0415
    inputs, labels = sample_batch
    results = {}
    for scaled in (False, True):
        keras.utils.set_random_seed(0)  # same initial weights and dropout masks in both runs
        model = OSMN({"width_multiplier": 1 / 16})
        optimizer = keras.optimizers.Adam(1e-3)
        if scaled:
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        decay = float(model.weight_decay_loss())  # of the weights before the update
        before = [w.copy() for w in model.get_weights()]
        loss, logits = train_step(model, optimizer)(inputs, labels)
        assert logits.shape == labels.shape and logits.dtype == tf.float32
        assert float(loss) == pytest.approx(
            float(balanced_cross_entropy(labels, logits)) + decay, rel=1e-6)
        assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
        results[scaled] = (float(loss), model.get_weights())
    assert results[True][0] == results[False][0]
    for a, b in zip(results[True][1], results[False][1]):
        np.testing.assert_array_equal(a, b)


def test_he_init_redraws_only_the_vgg_kernels():
    from osmn.model import OSMN
    from osmn.training.trainer import initialise
    model = OSMN({"width_multiplier": 1 / 16})
    before = {v.path: np.asarray(v) for v in model.weights}
    initialise(model, tiny_recipe(he_init=True), log=lambda line: None)
    seg, vm = model.segmentation_network, model.visual_modulator
    firsts = (seg.trunk_layers()[0], vm.conv_blocks[0][0])
    for layer in seg.trunk_layers() + [conv for b in vm.conv_blocks for conv in b] + [vm.fc6,
                                                                                     vm.fc7]:
        kernel = np.asarray(layer.kernel)
        fan_in = np.prod(kernel.shape[:-1])
        expected = np.sqrt(2 / fan_in) / (config.HE_INIT_INPUT_STD if layer in firsts else 1)
        assert kernel.std() == pytest.approx(expected, rel=0.35), layer.name
    # Unit-scale activations from pixel-scale input: fc7 of a real frame's crop stays O(1).
    from osmn.guides import visual_guide
    from conftest import DATA
    from PIL import Image
    folder = DATA / "davis_sample"
    frame = np.asarray(Image.open(folder / "JPEGImages/480p/car-shadow/00000.jpg"))
    mask = np.asarray(Image.open(folder / "Annotations/480p/car-shadow/00000.png")) > 0
    x = visual_guide(tf.constant(frame), tf.constant(mask.astype(np.float32)))[None]
    for block, convs in enumerate(vm.conv_blocks):
        for conv in convs:
            x = conv(x)
        x = vm.pools[block](x)
    assert 0.01 < float(tf.reduce_mean(vm.fc7(vm.fc6(x)))) < 5.0
    assert not np.asarray(vm.fc8.kernel).any()  # gamma still starts at exactly 1
    for layer in seg.side_convs + [seg.fuse]:  # the original's N(0, 0.001) kept
        np.testing.assert_array_equal(np.asarray(layer.kernel), before[layer.kernel.path])


@pytest.mark.parametrize("flag_file", ["coco.flags", "davis.flags", "sample.flags"])
def test_flag_files_give_their_recipes_sizes(flag_file, tmp_path):
    """The flag files write sizes as WIDTHxHEIGHT; the recipes hold (height, width)."""
    train_tool = load_tool("train")
    train_tool.FLAGS.unparse_flags()
    train_tool.FLAGS(["train", f"--flagfile={REPO / 'data' / flag_file}", f"--data_dir={SAMPLE}",
                      f"--train_dir={tmp_path / 'run'}"])
    try:
        made = train_tool.config_from_flags()
    finally:
        train_tool.FLAGS.unparse_flags()
    assert made.image_sizes == RECIPES[made.name].image_sizes
    assert made == RECIPES[made.name]
