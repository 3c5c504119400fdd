"""COCO instances as the stage-1 training source (paper §3.5; original `dataset_coco.py`).

One sample per non-crowd instance whose mask covers more than COCO_MIN_AREA_FRACTION (3%) of
its image. Segmentations (polygons, uncompressed or compressed RLE) are converted once, at index
build, to compressed RLE strings with pycocotools; `decode.decode_coco_rle` expands them in
TensorFlow, so the training path runs without Python.

Per sample (spec "Input conventions"): visual guide = the instance's own image and mask with the
training augmentation (`augment.train_visual_guide`); spatial guide = the perturbed Gaussian of
the same mask; image and label resized to the batch's square size (aspect ratio not kept) and
flipped left-right with p = 0.5 together with the spatial guide.
"""

from __future__ import annotations

import json
import os
from typing import Optional

import numpy as np
import tensorflow as tf
from pycocotools import mask as mask_utils

from osmn import config
from osmn.data import augment, decode
from osmn.data.images import Problem, check_image
from osmn.data.report import DataReport
from osmn.errors import UserError
from osmn.guides import spatial_guide
from osmn.preprocessing import resize_image, resize_mask, to_model_input
from osmn.progress import Progbar


def instance_rle(segmentation, height: int, width: int) -> dict:
    """COCO segmentation (polygons, uncompressed or compressed RLE) -> one compressed RLE.

    Raises:
        ValueError: the segmentation is empty or malformed.
    """
    if isinstance(segmentation, list):
        polygons = [p for p in segmentation if isinstance(p, list) and len(p) >= 6]
        if not polygons:
            raise ValueError("no polygon with 3 or more points")
        return mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    if isinstance(segmentation, dict) and "counts" in segmentation:
        if list(segmentation.get("size", [])) != [height, width]:
            raise ValueError(f"RLE size {segmentation.get('size')} != image {[height, width]}")
        if isinstance(segmentation["counts"], list):
            return mask_utils.frPyObjects(segmentation, height, width)
        counts = segmentation["counts"]
        return {"size": [height, width],
                "counts": counts.encode() if isinstance(counts, str) else counts}
    raise ValueError("segmentation is neither polygons nor RLE")


def load_annotations(path: str) -> dict:
    if not os.path.isfile(path):
        raise UserError(f"{path}: COCO annotation file not found")
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable JSON file ({e})") from None
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise UserError(f"{path}: not a COCO instances file (no 'images'/'annotations')")
    return data


class CocoSource:
    """Sample table of COCO instances and the TF op that builds one training sample.

    Args:
        annotation_file: COCO instances JSON.
        image_dir: folder of the images named by the JSON's `file_name`.
        report: `DataReport` filled with skipped items and counts.
        check_images: "header" (default) or "decode", see `osmn.data.images.check_image`.
        progress: progress bar while checking images.

    Attributes:
        num_samples: int.
    """

    def __init__(self, annotation_file: str, image_dir: str, report: DataReport,
                 check_images: str = "header", progress: bool = False):
        self.report = report
        data = load_annotations(annotation_file)
        images = {}
        for im in data["images"]:
            try:
                images[im["id"]] = (os.path.join(image_dir, im["file_name"]),
                                    int(im["height"]), int(im["width"]))
            except (KeyError, TypeError, ValueError):
                report.skip("image entry without id/file_name/height/width", annotation_file,
                            str(im)[:80])
        image_ok = {}
        paths, rles, sample_image = [], [], []
        image_rows = {}
        small = crowd = 0
        annotations = data["annotations"]
        bar = Progbar(len(annotations), unit_name="annotation") if progress else None
        for n, ann in enumerate(annotations):
            if bar is not None and ((n + 1) % 1000 == 0 or n + 1 == len(annotations)):
                bar.update(n + 1)
            if ann.get("iscrowd", 0):
                crowd += 1
                continue
            entry = images.get(ann.get("image_id"))
            if entry is None:
                report.skip("annotation of an unknown image", annotation_file,
                            f"annotation {ann.get('id')}")
                continue
            path, height, width = entry
            try:
                rle = instance_rle(ann.get("segmentation"), height, width)
            except (ValueError, TypeError) as e:
                report.skip("annotation with no valid object", annotation_file,
                            f"annotation {ann.get('id')}: {e}")
                continue
            area = float(mask_utils.area(rle))
            if area <= 0:
                report.skip("annotation with no valid object", annotation_file,
                            f"annotation {ann.get('id')}: empty mask")
                continue
            if area <= config.COCO_MIN_AREA_FRACTION * height * width:
                small += 1
                continue
            if path not in image_ok:
                size = check_image(path, check_images)
                if isinstance(size, Problem):
                    report.skip(size.problem, path, size.detail)
                    image_ok[path] = False
                elif tuple(size) != (width, height):
                    report.skip("mask size differs from image size", path,
                                f"annotation {width}x{height}, image {size[0]}x{size[1]}")
                    image_ok[path] = False
                else:
                    image_ok[path] = True
            if not image_ok[path]:
                continue
            if path not in image_rows:
                image_rows[path] = len(paths)
                paths.append((path, height, width))
            sample_image.append(image_rows[path])
            rles.append(rle["counts"])
        report.kept["samples"] = len(rles)
        report.kept["images"] = len(paths)
        report.filtered["crowd instances"] = crowd
        report.filtered[f"instances <= {config.COCO_MIN_AREA_FRACTION:.0%} of the image"] = small
        if not rles:
            raise UserError(f"{annotation_file}: no training sample ({report.summary()})")
        self.num_samples = len(rles)
        self._paths = tf.constant([p for p, _, _ in paths])
        self._sizes = tf.constant(np.asarray([(h, w) for _, h, w in paths], np.int32))
        self._sample_image = tf.constant(np.asarray(sample_image, np.int64))
        self._rles = tf.constant(rles)

    def instance_mask(self, index: tf.Tensor) -> tf.Tensor:
        """[h, w, 1] float32 mask of sample `index` at its image's size."""
        size = self._sizes[self._sample_image[index]]
        mask = decode.decode_coco_rle(self._rles[index], size[0], size[1])
        return tf.cast(mask[:, :, None], tf.float32)

    def make_sample(self, index: tf.Tensor, seed: tf.Tensor, height, width,
                    perturb_guide: bool = True):
        """One training sample as TF ops; same contract as `VideoSource.make_sample`."""
        image = decode.read_image(self._paths[self._sample_image[index]])
        return instance_sample(image, self.instance_mask(index), seed, height, width,
                               perturb_guide)


def instance_sample(image: tf.Tensor, mask: tf.Tensor, seed: tf.Tensor, height, width,
                    perturb_guide: bool = True):
    """A COCO training sample from an image and one instance's mask (TF ops).

    Args:
        image: [H, W, 3] uint8 RGB. mask: [H, W, 1] float32 in {0, 1}.
        seed: [2] stateless seed. height, width: the batch's working size.
        perturb_guide: bool. Perturb the spatial guide (`TrainConfig.perturb_spatial_guide`).

    Returns:
        inputs: {"image": [h, w, 3], "visual_guide": [224, 224, 3], "spatial_guide":
            [h, w, 1]} float32; label: [h, w, 1] float32 in {0, 1}; void: [h, w, 1] zeros.
    """
    seeds = augment.split_seed(seed, 3)
    visual, _ = augment.train_visual_guide(image, mask, seeds[0])
    image = to_model_input(resize_image(image, height, width))
    label = resize_mask(mask, height, width)
    spatial = spatial_guide(label, perturb=perturb_guide, seed=seeds[1])
    image, label, spatial = augment.flip_left_right_if(
        augment.random_flip(seeds[2]), image, label, spatial)
    inputs = {"image": image, "visual_guide": visual, "spatial_guide": spatial}
    return inputs, label, tf.zeros_like(label)


def coco_source(data_dir: str, annotation_file: Optional[str] = None, split: str = "train",
                report: Optional[DataReport] = None, check_images: str = "header",
                progress: bool = False) -> CocoSource:
    """COCO in its standard layout: `<data_dir>/annotations/instances_<split>2017.json` and
    `<data_dir>/<split>2017/`; with `annotation_file` the images are looked up in
    `<data_dir>/<split>2017/` if it exists, else in `data_dir` itself."""
    report = report if report is not None else DataReport("coco")
    if not os.path.isdir(data_dir):
        raise UserError(f"{data_dir}: COCO folder not found")
    image_dir = os.path.join(data_dir, f"{split}2017")
    if annotation_file is None:
        annotation_file = os.path.join(data_dir, "annotations", f"instances_{split}2017.json")
    elif not os.path.isdir(image_dir):
        image_dir = data_dir
    return CocoSource(annotation_file, image_dir, report, check_images, progress)
