"""TensorBoard summaries of a training run: loss, learning rate, predictions vs labels.

View with `tensorboard --logdir RUN_DIR/summaries` (TensorBoard installed separately). The
events are written with TF's low-level `tf.summary.write` and the scalars/images plugin
metadata TensorBoard expects, so training itself does not need the `tensorboard` package
(`tf.summary.scalar`/`image` refuse to run without it).
"""

from __future__ import annotations

import pathlib

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

MAX_IMAGES = 3  # Samples of a batch shown per image summary.


def _metadata(plugin: str, data_class: int) -> summary_pb2.SummaryMetadata:
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin),
        data_class=data_class)


_SCALAR = _metadata("scalars", summary_pb2.DATA_CLASS_SCALAR)
_IMAGE = _metadata("images", summary_pb2.DATA_CLASS_BLOB_SEQUENCE)


def write_scalar(tag: str, value: float, step: int) -> None:
    """A TensorBoard scalar (same event format as `tf.summary.scalar`)."""
    tf.summary.write(tag, tf.constant(value, tf.float32), step=step, metadata=_SCALAR)


def write_images(tag: str, images: np.ndarray, step: int) -> None:
    """TensorBoard images (same format as `tf.summary.image`: [width, height, png, ...]).

    Args:
        images: [N, H, W, C] float in [0, 1].
    """
    images = np.asarray(images)
    pngs = [tf.io.encode_png(tf.image.convert_image_dtype(im, tf.uint8, saturate=True))
            for im in images]
    height, width = images.shape[1:3]
    tensor = tf.stack([tf.as_string(width), tf.as_string(height)] + pngs)
    tf.summary.write(tag, tensor, step=step, metadata=_IMAGE)


def prediction_panel(labels: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """Side-by-side [probability | label] grey images for TensorBoard.

    Args:
        labels: [B, H, W, 1], foreground where > 0.5.
        logits: [B, H, W, 1] float.

    Returns:
        [min(B, MAX_IMAGES), H, 2W, 1] float32 in [0, 1].
    """
    labels = np.asarray(labels, np.float32)[:MAX_IMAGES] > 0.5
    probs = 0.5 * (1.0 + np.tanh(0.5 * np.asarray(logits, np.float32)[:MAX_IMAGES]))  # sigmoid
    return np.concatenate([probs, labels.astype(np.float32)], axis=2)


class SummaryWriter:
    """Writes scalars and image panels under `RUN_DIR/summaries/train`.

    Args:
        run_dir: the run directory.
        every: int. Steps between summaries (0 disables them).
    """

    def __init__(self, run_dir, every: int):
        self.every = int(every)
        self.writer = (tf.summary.create_file_writer(
            str(pathlib.Path(run_dir) / "summaries" / "train")) if self.every > 0 else None)

    def due(self, step: int) -> bool:
        """True when step `step` (1-based count of completed steps) should be summarised."""
        return self.writer is not None and step % self.every == 0

    def write(self, step: int, loss: float, learning_rate: float, samples_per_second: float,
              labels=None, logits=None) -> None:
        with self.writer.as_default():
            write_scalar("loss", loss, step)
            write_scalar("learning_rate", learning_rate, step)
            write_scalar("samples_per_second", samples_per_second, step)
            if labels is not None and logits is not None:
                write_images("probability_vs_label", prediction_panel(labels, logits), step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
