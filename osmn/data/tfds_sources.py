"""TFDS as an alternative to the folder layouts: `davis` (>= 2.1.0) and COCO panoptic.

Select with `data_dir="tfds:<name>"` in `training_dataset` (e.g. "tfds:davis/480p",
"tfds:coco/2017_panoptic"); `tfds_data_dir` is TFDS's own data folder (default
~/tensorflow_datasets). Nothing is downloaded here: the data set must already be PREPARED in
that folder, in the `array_record` file format (random access is what makes the pipeline
deterministic and resumable), e.g. on a machine with the downloads:

    tfds build davis/480p --file_format=array_record --data_dir=DIR
    tfds build coco/2017_panoptic --file_format=array_record --data_dir=DIR

otherwise a one-line `UserError` says what is missing.

* `davis`: TFDS holds DAVIS 2017 only. Its version 2.0.0 reordered object ids and 2.1.0 fixed
  that, so older versions are refused. Each record is a whole video; the encoded frames and
  masks (single-channel PNGs of object ids) are read once and kept in memory (about the size of
  the prepared files, ~0.3 GB for 480p train) and go through the same `VideoSource` as folders.
* COCO: TFDS `coco/2017` has boxes but NO instance masks, which OSMN needs; `coco/2017_panoptic`
  has the same images with panoptic PNGs (segment id = R + 256 G + 256^2 B). Its "thing"
  segments (labels 0-79: the 80 thing classes come first in COCO's panoptic category list)
  are the instances; non-crowd things over 3% of the image are kept, as for the instances file.
  Records are fetched by index during training (`tf.numpy_function`, bytes only); decoding
  stays in TensorFlow.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import tensorflow as tf

from osmn import config
from osmn.data import decode
from osmn.data.coco import instance_sample
from osmn.data.images import Problem, check_image
from osmn.data.report import DataReport
from osmn.data.video_samples import VideoSequence, VideoSource
from osmn.errors import UserError
from osmn.progress import Progbar

PREFIX = "tfds:"
MIN_DAVIS_VERSION = "2.1.0"  # TFDS davis release notes: 2.0.0 reordered ids, 2.1.0 fixed it.
COCO_THING_CLASSES = 80  # the panoptic label set lists the 80 thing classes first
BUILD_HINT = "tfds build {name} --file_format=array_record --data_dir={dir}"


def _tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise UserError("TFDS sources need the tensorflow-datasets package "
                        "(pip install tensorflow-datasets)") from None
    return tfds


def prepared_builder(name: str, tfds_data_dir: Optional[str] = None):
    """The TFDS builder of `name`, which must be prepared locally (never downloads)."""
    tfds = _tfds()
    where = tfds_data_dir or "~/tensorflow_datasets"
    try:
        builder = tfds.builder(name, data_dir=tfds_data_dir)
    except Exception as e:  # unknown name, bad version string, unreadable folder
        raise UserError(f"TFDS {name}: cannot open it in {where} ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''})") from None
    if not builder.is_prepared():
        raise UserError(f"TFDS {name} is not prepared in {where} (nothing is downloaded at "
                        f"training time): run `{BUILD_HINT.format(name=name, dir=where)}` first")
    return builder


def _data_source(builder, split: str, decoders):
    try:
        return builder.as_data_source(split=split, decoders=decoders)
    except Exception as e:
        raise UserError(f"TFDS {builder.info.full_name}: no random access to split {split!r} "
                        f"(prepare it with --file_format=array_record; {type(e).__name__})"
                        ) from None


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def davis_tfds_source(name: str, split: str = "train", tfds_data_dir: Optional[str] = None,
                      randomize_guide: bool = False, report: Optional[DataReport] = None,
                      check_images: str = "decode", progress: bool = False) -> VideoSource:
    """DAVIS 2017 from TFDS (`davis/480p` or `davis/full_resolution`, version >= 2.1.0)."""
    report = report if report is not None else DataReport("davis")
    builder = prepared_builder(name, tfds_data_dir)
    if builder.version < MIN_DAVIS_VERSION:
        raise UserError(f"TFDS {name} is version {builder.version}; {MIN_DAVIS_VERSION} or later "
                        "is needed (2.0.0 reordered the object ids)")
    tfds = _tfds()
    skip = tfds.decode.SkipDecoding()
    records = _data_source(builder, split, {"video": {"frames": skip, "segmentations": skip}})
    return davis_from_records(records, f"{PREFIX}{name}/{split}", randomize_guide, report,
                              check_images, progress)


def davis_from_records(records, where: str, randomize_guide: bool, report: DataReport,
                       check_images: str = "decode", progress: bool = False) -> VideoSource:
    """`VideoSource` of TFDS davis records: {"video": {"frames": [bytes], "segmentations":
    [bytes]}, "metadata": {"video_name": str}} with encoded frames and id PNGs."""
    sequences = []
    for i in range(len(records)):
        record = records[i]
        video = _text(record["metadata"]["video_name"])
        frames = [bytes(f) for f in record["video"]["frames"]]
        masks = [bytes(m) for m in record["video"]["segmentations"]]
        if len(frames) != len(masks):
            report.skip("frames and masks differ in number", f"{where}/{video}")
            continue
        names = [(f"{where}/{video}/{j:05d}.jpg", f"{where}/{video}/{j:05d}.png")
                 for j in range(len(frames))]
        sequences.append(VideoSequence(video, list(zip(frames, masks)), f"{where}/{video}",
                                       names))
    report.note(f"{where}: {len(sequences)} videos held in memory")
    return VideoSource(sequences, report, check_images=check_images,
                       randomize_guide=randomize_guide, progress=progress, encoded=True)


class CocoPanopticSource:
    """COCO thing instances from TFDS `coco/2017_panoptic` records (random access by index).

    Args:
        records: indexable records {"image": bytes, "panoptic_image": bytes (PNG),
            "panoptic_objects": {"id", "area", "label", "is_crowd"}}.
        where: name used in reports. report: `DataReport`.

    Attributes:
        num_samples: int.
    """

    def __init__(self, records, where: str, report: DataReport, progress: bool = False):
        self.report = report
        self._records = records
        samples = []
        crowd = small = stuff = 0
        bar = Progbar(len(records), unit_name="image") if progress else None
        for i in range(len(records)):
            if bar is not None and ((i + 1) % 500 == 0 or i + 1 == len(records)):
                bar.update(i + 1)
            record = records[i]
            size = check_image(bytes(record["image"]), "header")
            if isinstance(size, Problem):
                report.skip(size.problem, f"{where}[{i}]", size.detail)
                continue
            width, height = size
            objects = record["panoptic_objects"]
            for seg_id, area, label, is_crowd in zip(objects["id"], objects["area"],
                                                      objects["label"], objects["is_crowd"]):
                if int(label) >= COCO_THING_CLASSES:
                    stuff += 1
                elif bool(is_crowd):
                    crowd += 1
                elif int(area) <= config.COCO_MIN_AREA_FRACTION * width * height:
                    small += 1
                else:
                    samples.append((i, int(seg_id)))
        report.kept["samples"] = len(samples)
        report.filtered["stuff segments"] = stuff
        report.filtered["crowd instances"] = crowd
        report.filtered[f"instances <= {config.COCO_MIN_AREA_FRACTION:.0%} of the image"] = small
        if not samples:
            raise UserError(f"{where}: no training sample ({report.summary()})")
        self.num_samples = len(samples)
        self._samples = tf.constant(np.asarray(samples, np.int64))

    def _fetch(self, index):
        record = self._records[int(index)]
        return bytes(record["image"]), bytes(record["panoptic_image"])

    def make_sample(self, index: tf.Tensor, seed: tf.Tensor, height, width,
                    perturb_guide: bool = True):
        """One training sample as TF ops; same contract as `CocoSource.make_sample`."""
        record, segment = tf.unstack(self._samples[index])
        image_bytes, panoptic_bytes = tf.numpy_function(
            self._fetch, [record], [tf.string, tf.string], stateful=False)
        image = decode.decode_image(image_bytes)
        panoptic = tf.cast(decode.decode_label_colours(panoptic_bytes), tf.int64)
        ids = panoptic[..., 0] + 256 * panoptic[..., 1] + 256 * 256 * panoptic[..., 2]
        mask = tf.cast(tf.equal(ids, segment), tf.float32)[..., None]
        return instance_sample(image, mask, seed, height, width, perturb_guide)


def coco_tfds_source(name: str, split: str = "train", tfds_data_dir: Optional[str] = None,
                     report: Optional[DataReport] = None, progress: bool = False):
    """COCO instances from TFDS; `name` must be a panoptic config (see the module docstring)."""
    report = report if report is not None else DataReport("coco")
    if "panoptic" not in name:
        raise UserError(f"TFDS {name} has boxes but no instance masks; use "
                        "tfds:coco/2017_panoptic (same images, with masks)")
    builder = prepared_builder(name, tfds_data_dir)
    tfds = _tfds()
    skip = tfds.decode.SkipDecoding()
    records = _data_source(builder, split, {"image": skip, "panoptic_image": skip})
    return CocoPanopticSource(records, f"{PREFIX}{name}/{split}", report, progress)
