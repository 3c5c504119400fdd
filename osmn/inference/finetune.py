"""Online fine-tuning on the first frame (Table 3 "+ online fine-tuning"; authors' README).

Per object, a COPY of the model is trained for N steps (batch 1, Adam, lr 1e-5) with frame 0
as visual guide, spatial guide and target: the visual guide is the test-time crop of frame 0,
the spatial guide is frame 0's mask perturbed as in training (`osmn.guides.spatial_guide(
perturb=True)`), the image is frame 0 at a random scale of config.DAVIS_TRAIN_SCALES (the
original's DAVIS augmentation), and the step is the training loop's (`osmn.training.step`:
balanced cross-entropy plus weight decay). Batch norm and dropout are in training mode, as in the
original (its fine-tuning command has no `--fix_bn`). The loaded model is not changed.
"""

from __future__ import annotations

from typing import Callable, List, Optional

import keras
import numpy as np
import tensorflow as tf

from osmn import config
from osmn.guides import spatial_guide, visual_guide
from osmn.preprocessing import resize_image, resize_mask, to_model_input
from osmn.training.step import train_step


def copy_model(model):
    """A new model of the same class and config with the same weights."""
    clone = model.__class__.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    return clone


class OnlineFinetuner:
    """Fine-tunes copies of one model, one object at a time, with ONE traced training step.

    A single training copy and optimizer are reused: before each object the copy gets the
    original weights back and the optimizer state (iteration count, Adam moments) is zeroed,
    which is the same as a fresh Adam, so the training step is traced once for all objects.

    Args:
        model: `osmn.model.OSMN`; left unchanged.
        learning_rate: float. Defaults to config.FINETUNE_LEARNING_RATE (1e-5).
    """

    def __init__(self, model, learning_rate: float = config.FINETUNE_LEARNING_RATE):
        self.model = model
        self._weights = model.get_weights()
        self._tuned = copy_model(model)
        self._optimizer = keras.optimizers.Adam(
            learning_rate, beta_1=config.ADAM_BETA_1, beta_2=config.ADAM_BETA_2,
            epsilon=config.ADAM_EPSILON)
        self._optimizer.build(self._tuned.trainable_variables)
        step = train_step(self._tuned, self._optimizer)

        @tf.function(input_signature=[  # dynamic sizes: one trace for all scales and objects
            tf.TensorSpec([1, None, None, 3], tf.float32),
            tf.TensorSpec([1, None, None, 1], tf.float32),
            tf.TensorSpec([1, config.VISUAL_GUIDE_SIZE, config.VISUAL_GUIDE_SIZE, 3], tf.float32),
            tf.TensorSpec([2], tf.int32)])
        def finetune_step(image, label, guide, step_seed):
            sp_guide = spatial_guide(label[0], perturb=True, seed=step_seed)[None]
            loss, _ = step({"image": image, "visual_guide": guide, "spatial_guide": sp_guide},
                           label)
            return loss

        self._train_step = finetune_step

    def _reset(self):
        self._tuned.set_weights(self._weights)
        for variable in self._optimizer.variables:
            if "learning_rate" not in variable.path:
                variable.assign(tf.zeros_like(variable))

    def tune(self, frame: np.ndarray, mask: np.ndarray, steps: int, seed: int = 0,
             on_step: Optional[Callable[[int, float], None]] = None):
        """Fine-tune on one object of frame 0 and return the tuned copy.

        Args:
            frame: [H, W, 3] uint8 RGB, frame 0 at the working size.
            mask: [H, W] bool, the object's mask in frame 0.
            steps: int >= 0. Optimizer steps (batch 1).
            seed: int. Seeds the guide perturbation and the scale choice.
            on_step: optional callback(step, loss).
        """
        self._reset()
        frame_f = tf.constant(frame, tf.float32)
        mask_u8 = tf.constant(np.asarray(mask, np.uint8)[..., None])
        guide = visual_guide(frame_f, mask_u8)[None]
        height, width = frame.shape[:2]
        rng = np.random.default_rng(seed)
        for step in range(steps):
            scale = config.DAVIS_TRAIN_SCALES[rng.integers(len(config.DAVIS_TRAIN_SCALES))]
            h, w = int(height * scale), int(width * scale)
            image = to_model_input(tf.round(resize_image(frame_f, h, w)))[None]
            label = tf.cast(resize_mask(mask_u8, h, w), tf.float32)[None]
            loss = self._train_step(image, label, guide, tf.constant([seed, step], tf.int32))
            if on_step is not None:
                on_step(step, float(loss))
        return copy_model(self._tuned)


def finetune_objects(model, frame: np.ndarray, masks: np.ndarray, steps: int,
                     learning_rate: float = config.FINETUNE_LEARNING_RATE, seed: int = 0,
                     on_step: Optional[Callable[[int, float], None]] = None) -> List:
    """One fine-tuned copy per object: masks [K, H, W] bool in batch order -> K models."""
    finetuner = OnlineFinetuner(model, learning_rate)
    return [finetuner.tune(frame, m, steps, seed + k, on_step) for k, m in enumerate(masks)]
