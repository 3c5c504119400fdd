"""One optimizer step of OSMN's training loss: the step every training loop of the project runs.

The loss is the original's (`osmn.py`: `train_finetune`): class-balanced cross-entropy summed
over pixels and batch (`osmn.losses.balanced_cross_entropy`) plus the weight decay of every
kernel (`OSMN.weight_decay_loss`). The model is called with `training=True` (dropout and batch
norm in training mode, except the batch norms `ModelConfig.fix_bn` freezes). Used by the
training loop (`osmn.training.trainer.train`), online fine-tuning
(`osmn.inference.finetune.OnlineFinetuner`) and the benchmarks that time a training step.
"""

from __future__ import annotations

from typing import Callable, Optional, Tuple

import keras
import tensorflow as tf

from osmn.losses import balanced_cross_entropy

# (inputs, labels) -> (loss, logits); see `train_step`.
TrainStep = Callable[[dict, tf.Tensor], Tuple[tf.Tensor, tf.Tensor]]


def train_step(model, optimizer: keras.optimizers.Optimizer,
               strategy: Optional[tf.distribute.Strategy] = None) -> TrainStep:
    """A function that runs one optimizer step of `model` on a batch and returns its loss.

    Each replica of `strategy` computes the loss of its part of the batch, with the weight
    decay divided by the number of replicas so that it counts once; the optimizer sums the
    replicas' gradients, and the returned loss is the sum of the replicas' losses (with one
    replica: the loss of the batch). The loss goes through `optimizer.scale_loss` before the
    gradients are taken, which scales it for a `keras.optimizers.LossScaleOptimizer`
    (mixed_float16) and leaves it unchanged for any other optimizer.

    The function is not traced: call it inside a `tf.function` (which the caller gives the
    input signature it needs), or eagerly.

    Args:
        model: `osmn.model.OSMN` (either backbone), built under `strategy`'s scope.
        optimizer: a Keras optimizer of `model.trainable_variables`.
        strategy: the `tf.distribute` strategy the batches come from (default: the current
            one; with one replica `strategy.run` is a plain call).

    Returns:
        step(inputs, labels) -> (loss, logits):
            inputs: {"image": [B, H, W, 3], "visual_guide": [B, 224, 224, 3],
                "spatial_guide": [B, H, W, 1]} float32 (per-replica values with several
                replicas); labels: [B, H, W, 1] float32 in {0, 1}.
            loss: scalar float32, the unscaled loss summed over the replicas.
            logits: [B, H, W, 1] float32 (per replica with several replicas).
    """
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync

    def replica_step(inputs, labels):
        variables = model.trainable_variables
        with tf.GradientTape() as tape:
            logits = model(inputs, training=True)
            loss = balanced_cross_entropy(labels, logits) + model.weight_decay_loss() / replicas
            scaled = optimizer.scale_loss(loss)
        optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
        return loss, tf.cast(logits, tf.float32)

    def step(inputs, labels):
        loss, logits = strategy.run(replica_step, args=(inputs, labels))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None), logits

    return step
