"""Learning-rate schedule and optimizer of OSMN training.

The original (`osmn.py`: `train_finetune`) uses Adam with TF's defaults and one constant
learning rate per run; the authors' stage 1 was run twice (200k steps at 1e-5, then resumed to
300k at 1e-6), which a piecewise-constant schedule over the global step reproduces in one run.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from osmn import config
from osmn.config import TrainConfig


def learning_rate_at(train_config: TrainConfig, step) -> tf.Tensor:
    """Learning rate for optimizer step `step` (0-based): `lr_values[i]` on [b[i-1], b[i]).

    Args:
        train_config: the recipe (`lr_boundaries`, `lr_values`).
        step: int or scalar integer tensor, the number of steps already taken.

    Returns:
        scalar float32.
    """
    values = [float(v) for v in train_config.lr_values]
    if not train_config.lr_boundaries:
        return tf.constant(values[0], tf.float32)
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
        [int(b) for b in train_config.lr_boundaries], values)
    # PiecewiseConstantDecay uses `step <= boundary` for the first piece; the recipes mean
    # "steps 0 .. b-1 at the first rate", so shift by one.
    return tf.cast(schedule(tf.cast(step, tf.int64) + 1), tf.float32)


def make_optimizer(train_config: TrainConfig, step: tf.Variable,
                   loss_scale: bool = False) -> keras.optimizers.Optimizer:
    """Adam with TF1's defaults (config.ADAM_*) whose learning rate follows `step`.

    Args:
        train_config: the recipe.
        step: int64 variable counting completed steps (the checkpointed global step). The
            learning rate is read from it, not from `optimizer.iterations`, so that steps a
            loss-scale optimizer skips do not shift the schedule.
        loss_scale: wrap in a `LossScaleOptimizer` (needed for mixed_float16).

    Returns:
        a Keras optimizer, not yet built.
    """
    optimizer = keras.optimizers.Adam(
        learning_rate=lambda: learning_rate_at(train_config, step),
        beta_1=config.ADAM_BETA_1, beta_2=config.ADAM_BETA_2, epsilon=config.ADAM_EPSILON)
    if loss_scale:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
