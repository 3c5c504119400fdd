"""The balanced loss against a numpy reference, and the config's rules."""

import numpy as np
import pytest
import tensorflow as tf

from osmn import config
from osmn.config import RECIPES, ConfigError, ModelConfig, TrainConfig
from osmn.errors import UserError
from osmn.losses import balanced_cross_entropy


def numpy_balanced_loss(labels, logits):
    labels = (labels > 0.5).astype(np.float64)
    logits = logits.astype(np.float64)
    pos, neg = labels.sum(), (1 - labels).sum()
    p = 1 / (1 + np.exp(-logits))
    loss_pos = -(labels * np.log(p)).sum()
    loss_neg = -((1 - labels) * np.log(1 - p)).sum()
    return neg / (pos + neg) * loss_pos + pos / (pos + neg) * loss_neg


@pytest.mark.parametrize("seed", range(4))
def test_loss_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    labels = (rng.uniform(size=(2, 9, 11, 1)) < rng.uniform(0.05, 0.6)).astype(np.float32)
    logits = rng.normal(0, 3, size=labels.shape).astype(np.float32)
    assert float(balanced_cross_entropy(labels, logits)) == pytest.approx(
        numpy_balanced_loss(labels, logits), rel=1e-5)


def test_loss_is_summed_not_averaged():
    labels = np.zeros((1, 4, 4, 1), np.float32)
    labels[0, 0, 0] = 1
    logits = np.zeros_like(labels)
    # Every pixel costs log 2; weights 15/16 on the 1 foreground, 1/16 on the 15 background.
    expected = (15 / 16) * np.log(2) + (1 / 16) * 15 * np.log(2)
    assert float(balanced_cross_entropy(labels, logits)) == pytest.approx(expected, rel=1e-6)
    doubled = np.concatenate([labels, labels])
    assert float(balanced_cross_entropy(doubled, np.zeros_like(doubled))) == pytest.approx(
        2 * expected, rel=1e-6)


def test_single_class_batches_give_zero_loss():
    logits = np.random.default_rng(0).normal(0, 3, (2, 5, 5, 1)).astype(np.float32)
    assert float(balanced_cross_entropy(np.zeros_like(logits), logits)) == 0.0
    assert float(balanced_cross_entropy(np.ones_like(logits), logits)) == 0.0


def test_loss_is_stable_for_large_logits():
    labels = np.array([1, 0], np.float32).reshape(1, 1, 2, 1)
    logits = np.array([-200, 200], np.float32).reshape(1, 1, 2, 1)
    value = float(balanced_cross_entropy(labels, logits))
    assert np.isfinite(value) and value == pytest.approx(200.0, rel=1e-5)
    grad = None
    with tf.GradientTape() as tape:
        z = tf.constant(logits)
        tape.watch(z)
        loss = balanced_cross_entropy(labels, z)
    grad = tape.gradient(loss, z)
    assert np.isfinite(grad.numpy()).all()


def test_recipes_are_valid_and_follow_the_authors_runs():
    for recipe in RECIPES.values():
        recipe.validate()
    stage1, stage2 = RECIPES["coco_stage1"], RECIPES["davis_stage2"]
    assert (stage1.batch_size, stage1.steps, stage1.lr_boundaries, stage1.lr_values) == (
        8, 300_000, (200_000,), (1e-5, 1e-6))
    assert stage1.image_sizes == ((320, 320), (400, 400), (480, 480))
    assert stage2.model.fix_bn and stage2.randomize_guide and stage2.batch_size == 4
    assert stage2.image_sizes == ((240, 427), (384, 683), (480, 854))


def test_train_config_json_round_trip():
    recipe = RECIPES["davis_stage2"].replace(seed=3)
    assert TrainConfig.from_json(recipe.to_json()) == recipe


@pytest.mark.parametrize("change,word", [
    ({"source": "imagenet"}, "source"),
    ({"batch_size": 0}, "batch_size"),
    ({"lr_values": (-1.0,), "lr_boundaries": ()}, "learning rates"),
    ({"lr_values": (1e-5,), "lr_boundaries": (10,)}, "lr_values"),
    ({"image_sizes": ((8, 8),)}, "image_sizes"),
])
def test_bad_train_settings_raise_user_errors(change, word):
    with pytest.raises(UserError, match=word):
        RECIPES["coco_stage1"].replace(**change)


def test_bad_model_settings_raise_user_errors():
    with pytest.raises(ConfigError, match="width_multiplier"):
        ModelConfig(width_multiplier=0).validate()
    with pytest.raises(ConfigError, match="unknown"):
        ModelConfig.from_dict({"widht_multiplier": 0.5})


def test_model_config_of_a_dict_a_config_or_none():
    # A saved model's `model_config` names only the fields it changes; a JSON list is a size.
    assert ModelConfig.of(None) == ModelConfig()
    assert ModelConfig.of({"width_multiplier": 0.5, "working_size": [64, 48]}) == ModelConfig(
        width_multiplier=0.5, working_size=(64, 48))
    narrow = ModelConfig(width_multiplier=0.25)
    assert ModelConfig.of(narrow) == narrow
    assert ModelConfig.of(narrow, backbone="lite") == ModelConfig(width_multiplier=0.25,
                                                                  backbone="lite")
    with pytest.raises(ConfigError, match="mod_early_conv"):
        ModelConfig.of({"mod_early_conv": True}, backbone="lite")


def test_scaled_widths():
    cfg = ModelConfig(width_multiplier=1 / 16)
    assert cfg.block_channels() == (4, 8, 16, 32, 32)
    assert cfg.fc_units() == 256
    assert cfg.gamma_size == 3 * 16 + 6 * 32
    assert config.scaled_width(3, 0.01) == 1
