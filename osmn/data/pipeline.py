"""`training_dataset`: the batched, infinite, deterministic tf.data pipeline of OSMN training.

Order and randomness (all stateless, so a resumed run sees the same data):

* the sample stream is epoch after epoch of a permutation of the sample table drawn from
  (seed, epoch); stream position k = batch b * batch_size + i;
* each sample's augmentation seed comes from (seed, epoch, position in the epoch);
* each batch's working size is drawn from `train_config.image_sizes` with a seed of (seed, b);
* `start_batch=n` skips n * batch_size entries of the INDEX stream (integers, nothing decoded),
  so its first batch is batch n of a run started at 0.

Decoding and augmentation run in a parallel, deterministic `map`. Files are checked when the
index is built; a file that still fails to decode drops its whole batch (errors ignored, then
batches grouped by batch number), so a bad file never stops training and never mixes sizes.
"""

from __future__ import annotations

import logging
import sys
from typing import Optional

import tensorflow as tf

from osmn.config import TrainConfig
from osmn.data.report import DataReport

logger = logging.getLogger("osmn.data")

# Tags that make the stateless seeds of the three random streams independent.
_SHUFFLE, _SIZE, _SAMPLE = 1, 2, 3


def _seed(seed: int, tag: int) -> tf.Tensor:
    return tf.constant([seed, tag], tf.int64)


def _fold(seed: tf.Tensor, value) -> tf.Tensor:
    return tf.random.experimental.stateless_fold_in(seed, tf.cast(value, tf.int64))


def build_source(train_config: TrainConfig, data_dir: str, report: DataReport,
                 annotation_file: Optional[str] = None, split: str = "train",
                 check_images: Optional[str] = None, progress: bool = False,
                 tfds_data_dir: Optional[str] = None):
    """The sample table of `train_config.source` under `data_dir` (scans files once).

    `data_dir="tfds:<name>"` reads a locally prepared TFDS data set instead (see
    `osmn.data.tfds_sources`).
    """
    source = train_config.source
    if str(data_dir).startswith("tfds:"):
        from osmn.data import tfds_sources
        name = str(data_dir)[len("tfds:"):]
        if source == "davis":
            return tfds_sources.davis_tfds_source(name, split, tfds_data_dir,
                                                  train_config.randomize_guide, report,
                                                  check_images or "decode", progress)
        if source == "coco":
            return tfds_sources.coco_tfds_source(name, split, tfds_data_dir, report, progress)
        from osmn.errors import UserError
        raise UserError(f"source {source!r} has no TFDS reader (TFDS sources: davis, coco)")
    if source == "davis":
        from osmn.data.davis import davis_source
        return davis_source(data_dir, split, train_config.randomize_guide, report,
                            check_images or "decode", progress)
    if source == "youtube_vos":
        from osmn.data.youtube_vos import youtube_vos_source
        # ~90k annotated frames in YouTube-VOS train: header checks by default, as for COCO.
        return youtube_vos_source(data_dir, split, train_config.randomize_guide, report,
                                  check_images or "header", progress)
    from osmn.data.coco import coco_source
    return coco_source(data_dir, annotation_file, split, report, check_images or "header",
                       progress)


def sample_stream(source, train_config: TrainConfig, start_batch: int = 0,
                  num_parallel_calls=tf.data.AUTOTUNE) -> tf.data.Dataset:
    """Unbatched samples in training order: (batch number, inputs, label, void)."""
    n = source.num_samples
    batch = train_config.batch_size
    first = start_batch * batch
    start_epoch = first // n
    seed = train_config.seed
    sizes = tf.constant(train_config.image_sizes, tf.int32)  # [S, 2] (height, width)

    def epoch_order(epoch):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), _fold(_seed(seed, _SHUFFLE), epoch))
        return tf.data.Dataset.from_tensor_slices(
            (tf.fill([n], epoch), tf.range(n, dtype=tf.int64), order))

    index = (tf.data.Dataset.counter(start_epoch, dtype=tf.int64)
             .flat_map(epoch_order).skip(first - start_epoch * n))
    index = tf.data.Dataset.zip(tf.data.Dataset.counter(first, dtype=tf.int64), index)

    def make(k, entry):
        epoch, position, sample = entry
        b = k // batch
        pick = tf.random.stateless_uniform([], _fold(_seed(seed, _SIZE), b), 0,
                                           tf.shape(sizes)[0], tf.int32)
        sample_seed = _fold(_fold(_seed(seed, _SAMPLE), epoch), position)
        extra = {} if train_config.crop_size is None else {"crop": train_config.crop_size}
        inputs, label, void = source.make_sample(
            sample, sample_seed, sizes[pick, 0], sizes[pick, 1],
            perturb_guide=train_config.perturb_spatial_guide, **extra)
        return b, inputs, label, void

    return index.map(make, num_parallel_calls=num_parallel_calls, deterministic=True)


def training_dataset(train_config: TrainConfig, data_dir: str, start_batch: int = 0, *,
                     annotation_file: Optional[str] = None, split: str = "train",
                     with_void: bool = False, report: Optional[DataReport] = None,
                     check_images: Optional[str] = None, progress: bool = False,
                     tfds_data_dir: Optional[str] = None,
                     num_parallel_calls=tf.data.AUTOTUNE, prefetch: int = 2) -> tf.data.Dataset:
    """Batched, infinite training data of `train_config.source`.

    Args:
        train_config: `osmn.config.TrainConfig` (source, batch_size, image_sizes, seed,
            randomize_guide).
        data_dir: data set root. COCO: folder with `annotations/instances_<split>2017.json` and
            `<split>2017/`; DAVIS: folder with `JPEGImages/480p`, `Annotations/480p`, `ImageSets`;
            YouTube-VOS: folder with `<split>/JPEGImages`, `<split>/Annotations`,
            `<split>/meta.json`. "tfds:<name>" (e.g. "tfds:davis/480p",
            "tfds:coco/2017_panoptic") reads a TFDS data set prepared in `tfds_data_dir`.
        start_batch: int >= 0. The first batch yielded is batch `start_batch` of a run from 0.
        annotation_file: COCO only: an explicit instances JSON (images under `data_dir`).
        split: "train" (default) or another split name of the data set.
        with_void: also yield the void mask: (inputs, label, void).
        report: optional `DataReport` to fill (one is created otherwise); the dataset also
            carries it as `.report`.
        check_images: "decode" or "header" check of every image while indexing (default:
            decode for DAVIS, header for COCO and YouTube-VOS).
        progress: progress bar while indexing.
        tfds_data_dir: TFDS data folder for "tfds:" sources (default ~/tensorflow_datasets).

    Returns:
        `tf.data.Dataset` of (inputs, label) [or (inputs, label, void)]:
            inputs["image"]: [B, H, W, 3] float32, BGR minus mean;
            inputs["visual_guide"]: [B, 224, 224, 3] float32, background 0;
            inputs["spatial_guide"]: [B, H, W, 1] float32 in [0, 1];
            label: [B, H, W, 1] float32 in {0, 1} (void pixels 0); void: [B, H, W, 1] float32.
        H, W are one of `train_config.image_sizes` per batch; B = batch_size always.

    Raises:
        UserError: missing data set, bad annotation file, no usable sample, offline TFDS.
    """
    if start_batch < 0:
        from osmn.errors import UserError
        raise UserError(f"start_batch must be >= 0, got {start_batch}")
    report = report if report is not None else DataReport(train_config.source)
    source = build_source(train_config, data_dir, report, annotation_file, split,
                          check_images, progress, tfds_data_dir)
    logger.info("%s", report.summary())
    ds = sample_stream(source, train_config, start_batch, num_parallel_calls)
    # A sample whose file fails to decode despite the index checks is dropped; its batch then
    # never fills and is skipped whole, so every batch has one size and batch_size samples.
    ds = ds.ignore_errors(log_warning=True)
    batch = train_config.batch_size
    ds = ds.group_by_window(key_func=lambda b, *_: b,
                            reduce_func=lambda _, window: window.batch(batch),
                            window_size=batch)

    # Number each batch's gap to the previous one (stateless for tf.data: a scan), so that a
    # dropped batch is reported even when TensorFlow's own C++ warnings are silenced.
    ds = ds.scan(tf.constant(start_batch, tf.int64),
                 lambda expected, element: (element[0][0] + 1,
                                            (element, element[0][0] - expected)))

    def finish(element, gap):
        b, inputs, label, void = element
        report_gap = tf.cond(
            gap > 0,
            lambda: tf.print("osmn.data: WARNING:", gap, "batch(es) before batch", b[0],
                             "dropped: a sample failed to decode at run time (set "
                             "TF_CPP_MIN_LOG_LEVEL=0 to see the file)", output_stream=sys.stderr),
            tf.no_op)
        with tf.control_dependencies([report_gap]):
            inputs = {
                "image": tf.ensure_shape(inputs["image"], [batch, None, None, 3]),
                "visual_guide": tf.ensure_shape(inputs["visual_guide"], [batch, 224, 224, 3]),
                "spatial_guide": tf.ensure_shape(inputs["spatial_guide"],
                                                 [batch, None, None, 1]),
            }
            label = tf.ensure_shape(label, [batch, None, None, 1])
            void = tf.ensure_shape(void, [batch, None, None, 1])
        if with_void:
            return inputs, label, void
        return inputs, label

    ds = ds.map(finish).prefetch(prefetch)
    options = tf.data.Options()
    options.deterministic = True
    ds = ds.with_options(options)
    ds.report = report
    return ds
