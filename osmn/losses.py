"""Losses of OSMN: the class-balanced cross-entropy of OSVOS and the original's weight decay.

Source: `osmn.py`: `class_balanced_cross_entropy_loss` of the original (inherited from OSVOS).
"""

from __future__ import annotations

import tensorflow as tf

from osmn import config


def balanced_cross_entropy(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Class-balanced sigmoid cross-entropy, SUMMED over pixels and batch (not averaged).

    With N+ foreground and N- background pixels in the whole batch and N = N+ + N-:
    loss = (N-/N) * sum_fg softplus(-z) + (N+/N) * sum_bg softplus(z), where softplus(-z) is
    -log sigmoid(z). A batch with no foreground (or no background) pixel gives exactly 0, as in
    the original. Pixels labelled 255 (void) count as foreground only if the caller leaves them:
    the original thresholds labels at 0.5, so callers should zero void pixels first.

    Args:
        labels: [B, H, W, 1], foreground where > 0.5.
        logits: [B, H, W, 1] float, any float dtype (computed in float32).

    Returns:
        scalar float32.
    """
    logits = tf.cast(logits, tf.float32)
    labels = tf.cast(tf.cast(labels, tf.float32) > 0.5, tf.float32)
    num_pos = tf.reduce_sum(labels)
    num_neg = tf.reduce_sum(1.0 - labels)
    total = num_pos + num_neg
    loss_pos = tf.reduce_sum(labels * tf.nn.softplus(-logits))
    loss_neg = tf.reduce_sum((1.0 - labels) * tf.nn.softplus(logits))
    return (num_neg / total) * loss_pos + (num_pos / total) * loss_neg


def weight_decay(kernels, l2: float = config.WEIGHT_DECAY_L2) -> tf.Tensor:
    """slim `l2_regularizer(2e-4)` summed over kernels: 2e-4 * sum(w^2) / 2 = 1e-4 * sum(w^2).

    `l2` is the Keras coefficient (half slim's): 1e-4 for the VGG16 model, 2e-5 for the lite
    model (slim 4e-5); `OSMN.weight_decay_loss()` picks the model's own.

    Applied, as in the original, to every conv/fc/transposed-conv kernel of all three networks,
    frozen ones included (a constant then), never to biases or batch norm.
    Use `OSMN.decayed_kernels()` for the list.

    Args:
        kernels: iterable of variables or tensors.

    Returns:
        scalar float32.
    """
    terms = [tf.reduce_sum(tf.square(tf.cast(k, tf.float32))) for k in kernels]
    if not terms:
        return tf.constant(0.0)
    return l2 * tf.add_n(terms)
