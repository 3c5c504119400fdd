"""Batch-norm statistics re-estimated after training ("precise BN", Wu & Johnson, 2021,
https://arxiv.org/abs/2105.07576). Ours, not the original's: see `TrainConfig.bn_recalibration_batches`.

Why: a batch norm's moving statistics follow its batch statistics with momentum m (0.997 for
the lite MobileNets, slim's value), so after N steps they still hold m^N of their initial value
(mean 0, variance 1). The original trains for 300k steps, where that is nothing; the lite CPU
demo trains 1000 steps from scratch, where 0.997^1000 = 5% of the initial variance 1 stayed in
layers whose real variance is ~0.02: in inference mode its activations shrank layer after
layer and it predicted no object at all (J 0 on its own training video), while the same
weights in training mode followed the car. Replacing the moving statistics by the average of
the batch statistics over a few training batches, with the weights fixed, removes that.
"""

from __future__ import annotations

import keras


def batch_norm_layers(model) -> list:
    """Every `keras.layers.BatchNormalization` inside `model`, in a fixed order."""
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, keras.layers.BatchNormalization)]


def recalibrate_batch_norm(model, batches, count: int, strategy=None) -> int:
    """Set every batch norm's moving mean and variance to the mean of its batch statistics
    over `count` batches (weights untouched; eager forward passes in training mode).

    The k-th batch (k = 1..count) is run with momentum (k-1)/k, which makes the moving value
    the running average of the k batches' statistics; the momenta are restored afterwards.
    Layers in inference mode during training (`fix_bn`) are not updated, as in training.

    Args:
        model: `OSMN`. Called as `model(inputs, training=True)`.
        batches: iterator of (inputs dict, label) batches, as the training loop draws them
            (inputs: "image" [B, H, W, 3], "visual_guide" [B, 224, 224, 3], "spatial_guide"
            [B, H, W, 1], float32); per-replica values with a distribution strategy.
        count: int >= 1, batches to average over.
        strategy: the `tf.distribute` strategy the batches come from, or None.

    Returns:
        The number of batch-norm layers found.
    """
    norms = batch_norm_layers(model)
    if not norms or count < 1:
        return len(norms)
    momenta = [norm.momentum for norm in norms]
    try:
        for k in range(count):
            for norm in norms:
                norm.momentum = k / (k + 1)
            inputs, _ = next(batches)
            if strategy is not None:
                strategy.run(lambda x: model(x, training=True), args=(inputs,))
            else:
                model(inputs, training=True)
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
    return len(norms)
