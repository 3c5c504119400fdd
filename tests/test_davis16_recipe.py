"""The shipped model's recipe: ImageNet MobileNet v1 of the model's width, the DAVIS 2016 split
files, random crops, the model's own working size, and a few training steps from the real
ImageNet file (no test trains for minutes)."""

import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import DATA, REPO
from layer_checks import eager_and_mapped
from osmn.config import RECIPES, ConfigError, ModelConfig
from osmn.data import augment
from osmn.data.davis import davis_source
from osmn.data.report import DataReport
from osmn.errors import UserError
from osmn.model import OSMN, load_osmn, save_osmn
from osmn.model.lite.imagenet import fold_input_convention, load_imagenet_mobilenet
from scripts import load_tool, run_tool
from tool_output import error_lines

SHARED = REPO.parent / "shared"
WEIGHTS_025 = SHARED / "weights" / "mobilenet_2_5_224_tf_no_top.h5"
DAVIS16 = SHARED / "data" / "davis2016_train"
SPLITS = DATA / "davis16_splits"


def _split(name):
    return [line for line in (SPLITS / f"{name}.txt").read_text().splitlines()
            if line and not line.startswith("#")]


def test_split_files_hold_25_and_5_disjoint_training_sequences():
    train, val = _split("train"), _split("val")
    assert len(train) == 25 and len(val) == 5 and not set(train) & set(val)
    official = {line.split()[0].split("/")[-2] for line in
                (DAVIS16 / "ImageSets/480p/train.txt").read_text().splitlines() if line.strip()}
    assert set(train) | set(val) == official  # the 30 DAVIS 2016 training sequences
    assert "car-shadow" not in official  # the demo video is a validation video: never trained on


def test_imagenet_file_of_the_models_width_loads_into_both_mobilenets():
    model = OSMN({"backbone": "lite", "width_multiplier": 0.25})
    report = load_imagenet_mobilenet(model, str(WEIGHTS_025))
    assert len(report.copied) == 2 * (27 + 27 * 4)  # 27 convs + 27 batch norms, both networks
    net = keras.applications.MobileNet(alpha=0.25, include_top=False, weights=None,
                                       input_shape=(224, 224, 3))
    net.load_weights(WEIGHTS_025)
    for part in (model.segmentation_network, model.visual_modulator):
        np.testing.assert_array_equal(part.trunk.pointwise[12].kernel.numpy(),
                                      net.get_layer("conv_pw_13").kernel.numpy())
        # conv1 takes BGR minus mean: the RGB [-1, 1] kernel reversed over its inputs / 127.5.
        np.testing.assert_allclose(part.trunk.stem.kernel.numpy(),
                                   net.get_layer("conv1").kernel.numpy()[:, :, ::-1] / 127.5,
                                   rtol=1e-6)


def test_wrong_width_is_refused_in_one_line_naming_both_widths():
    model = OSMN({"backbone": "lite", "width_multiplier": 0.5, "use_visual_modulator": False})
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(UserError) as error:
        load_imagenet_mobilenet(model, str(WEIGHTS_025))
    assert str(error.value) == (f"{WEIGHTS_025}: MobileNet v1 weights of width 0.25, but the "
                                "model has width_multiplier 0.5; pass "
                                "mobilenet_5_0_224_tf_no_top.h5")
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)  # nothing copied
    with pytest.raises(UserError, match="weights exist for width_multiplier 0.25, 0.5, 0.75, "
                                        "1.0; the model has 0.125"):
        load_imagenet_mobilenet(OSMN({"backbone": "lite", "width_multiplier": 0.125}),
                                str(WEIGHTS_025))


def test_train_tool_wrong_width_is_one_line(tmp_path):
    done = run_tool("train", "--recipe=davis16_lite", f"--data_dir={DATA / 'davis_sample'}",
                    f"--train_dir={tmp_path / 'run'}", "--width_multiplier=0.5",
                    f"--imagenet_weights={WEIGHTS_025}", "--steps=1")
    assert done.returncode == 2
    assert error_lines(done.stderr) == [
        f"error: {WEIGHTS_025}: MobileNet v1 weights of width 0.25, but the model has "
        "width_multiplier 0.5; pass mobilenet_5_0_224_tf_no_top.h5"]


def test_folded_input_convention_gives_the_keras_features():
    """The folded MobileNet on BGR minus mean equals the original on RGB in [-1, 1] (conv1_bn in
    inference mode), away from the bottom/right border where SAME padding differs."""
    net = keras.applications.MobileNet(alpha=0.25, include_top=False, weights=None,
                                       input_shape=(224, 224, 3))
    net.load_weights(WEIGHTS_025)
    stem = keras.Model(net.input, net.get_layer("conv1_bn").output)
    rgb = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)
    expected = stem(rgb / 127.5 - 1.0, training=False).numpy()
    fold_input_convention(net)
    got = stem(rgb[..., ::-1] - np.array([104.0, 117.0, 123.0], np.float32),
               training=False).numpy()
    np.testing.assert_allclose(got[:, :-1, :-1], expected[:, :-1, :-1], atol=2e-4)


def test_davis16_lite_recipe_and_its_flag_file():
    recipe = RECIPES["davis16_lite"]
    assert recipe.model == ModelConfig(backbone="lite", width_multiplier=0.25,
                                       working_size=(512, 288))
    shipped = load_osmn(REPO / "data" / "osmn_lite_davis16.keras")
    assert shipped.model_config == recipe.model  # the shipped model is this recipe's
    assert recipe.imagenet_init and recipe.randomize_guide and recipe.perturb_spatial_guide
    assert recipe.crop_size is not None
    assert all(recipe.crop_size[0] <= h and recipe.crop_size[1] <= w
               for h, w in recipe.image_sizes)
    text = (DATA / "davis16_lite.flags").read_text()
    assert text.startswith("# davis16_lite.flags:")
    flags = dict(line.lstrip("-").split("=", 1) for line in text.splitlines()
                 if line.startswith("--") and "=" in line)
    assert flags["recipe"] == "davis16_lite"
    assert flags["split"] == "data/davis16_splits/train.txt"
    train = load_tool("train")
    train.FLAGS.unparse_flags()
    train.FLAGS(["train", f"--flagfile={DATA / 'davis16_lite.flags'}",
                 f"--data_dir={DAVIS16}"])
    try:
        assert train.config_from_flags() == recipe
    finally:
        train.FLAGS.unparse_flags()


def test_crop_size_must_fit_every_image_size():
    recipe = RECIPES["davis16_lite"]
    with pytest.raises(ConfigError, match="crop_size must be >= 32 and fit"):
        recipe.replace(crop_size=(300, 300))
    with pytest.raises(ConfigError, match="crop_size applies to the video sources"):
        RECIPES["coco_stage1"].replace(crop_size=(64, 64))


def test_random_crop_cuts_one_window_eagerly_and_in_a_dataset():
    image = tf.reshape(tf.range(12 * 20 * 3, dtype=tf.float32), (12, 20, 3))
    mask = image[..., :1] * 2
    seed = tf.constant([3, 4], tf.int64)
    eager = eager_and_mapped(lambda i, m: augment.random_crop(seed, (5, 7), i, m), image, mask)
    crop, crop_mask = (t.numpy() for t in eager)
    assert crop.shape == (5, 7, 3) and crop_mask.shape == (5, 7, 1)
    np.testing.assert_array_equal(crop_mask, crop[..., :1] * 2)  # the same window in both
    top, left = divmod(int(crop[0, 0, 0]) // 3, 20)
    np.testing.assert_array_equal(crop, image.numpy()[top:top + 5, left:left + 7])
    corners = {tuple(augment.random_crop(tf.constant([s, 0], tf.int64), (5, 7), image)[0]
                     .numpy()[0, 0, :1]) for s in range(20)}
    assert len(corners) > 5  # the window moves with the seed


def _tiny_davis16(root, sequences=("dog-agility", "motorbike"), frames=4):
    """A DAVIS 2016 root with the first frames of real training sequences (grey 0/255 masks)."""
    for name in sequences:
        for kind, ext in (("JPEGImages", ".jpg"), ("Annotations", ".png")):
            (root / kind / "480p" / name).mkdir(parents=True)
            for i in range(frames):
                shutil.copy(DAVIS16 / kind / "480p" / name / f"{i:05d}{ext}",
                            root / kind / "480p" / name)
    return root


def test_split_file_path_selects_sequences(tmp_path):
    root = _tiny_davis16(tmp_path / "davis")
    split = tmp_path / "mine.txt"
    split.write_text("# ours\nmotorbike\n")
    report = DataReport("davis")
    source = davis_source(str(root), str(split), report=report)
    assert list(source.objects) == ["motorbike"] and source.num_samples == 3
    assert any("split from" in note and "1 sequences" in note for note in report.notes)
    with pytest.raises(UserError, match="no_such.txt: split file not found"):
        davis_source(str(root), str(tmp_path / "no_such.txt"))


def test_grey_alpha_mask_is_read_as_its_grey_values(tmp_path):
    root = _tiny_davis16(tmp_path / "davis", ("motorbike",), 3)
    path = root / "Annotations/480p/motorbike/00001.png"
    grey = np.asarray(Image.open(path).convert("L"))
    Image.fromarray(np.stack([grey, np.full_like(grey, 255)], -1), mode="LA").save(path)
    report = DataReport("davis")
    source = davis_source(str(root), "train", report=report)
    assert source.num_samples == 2 and not report.skipped


def test_cropped_samples_have_the_crop_size_and_aligned_labels(tmp_path):
    root = _tiny_davis16(tmp_path / "davis", ("motorbike",), 3)
    source = davis_source(str(root), "train")
    seed = tf.constant([1, 2], tf.int64)
    full, label_full, _ = source.make_sample(tf.constant(0, tf.int64), seed, 96, 171,
                                             perturb_guide=False)
    inputs, label, void = source.make_sample(tf.constant(0, tf.int64), seed, 96, 171,
                                             perturb_guide=False, crop=(64, 64))
    assert inputs["image"].shape == (64, 64, 3) and label.shape == (64, 64, 1)
    assert inputs["spatial_guide"].shape == (64, 64, 1) and void.shape == (64, 64, 1)
    # The window is a window of the uncropped sample: find it by the image, check the label.
    image, whole = inputs["image"].numpy(), full["image"].numpy()
    hits = [(t, l) for t in range(96 - 63) for l in range(171 - 63)
            if np.array_equal(whole[t:t + 64, l:l + 64], image)]
    assert len(hits) == 1
    t, l = hits[0]
    np.testing.assert_array_equal(label.numpy(), label_full.numpy()[t:t + 64, l:l + 64])


def test_a_few_training_steps_from_the_imagenet_file(tmp_path):
    root = _tiny_davis16(tmp_path / "davis")
    run = tmp_path / "run"
    done = run_tool("train", f"--flagfile={DATA / 'davis16_lite.flags'}", f"--data_dir={root}",
                    "--split=train", f"--train_dir={run}", "--steps=2", "--batch_size=2",
                    "--image_sizes=171x96", "--crop_size=96x64", "--bn_recalibration_batches=1",
                    "--checkpoint_every=2", "--noprogress", "--summary_every=0")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "initialised both MobileNets from ImageNet" in done.stderr
    model = load_osmn(run / "model.keras")
    assert model.model_config.width_multiplier == 0.25 and model.model_config.backbone == "lite"
    loss = float(done.stdout.split("last loss ")[1].split(";")[0])
    assert np.isfinite(loss)


def test_working_size_travels_with_the_model_file(tmp_path):
    model = OSMN({"backbone": "lite", "width_multiplier": 0.0625, "working_size": (427, 240)})
    save_osmn(model, tmp_path / "m.keras")
    loaded = load_osmn(tmp_path / "m.keras")
    assert loaded.model_config.working_size == (427, 240)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ConfigError, match="working_size must be"):
        ModelConfig(working_size=(10, 240)).validate()
