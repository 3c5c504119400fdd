"""Training samples from annotated videos, shared by DAVIS (2016 and 2017) and YouTube-VOS.

A data set module (`davis.py`, `youtube_vos.py`) only lists its sequences as `VideoSequence`s
(annotated frames in order, each an image path and a mask path); this module scans the masks
once in Python and builds the sample table, and `VideoSource.make_sample` turns a sample index
into tensors with TensorFlow ops.

Samples (original `dataset_davis.py`, spec "Input conventions"): one per object and annotated
frame t after the object's first annotated frame, with the spatial guide from the object's
ground truth in the PREVIOUS annotated frame (t - 1 on DAVIS, t - 5 frames on YouTube-VOS where
every 5th frame is annotated), so frame 0 never is a target, as in the original. A sample needs
the object in frame t or in its previous frame (an object absent from both teaches nothing).
Images are resized to the batch's size with no flip or crop (as the original does on DAVIS).
The visual guide comes from the object's first annotated frame, or with `randomize_guide` from
a frame drawn per epoch among the object's frames whose mask covers more than
GUIDE_FRAME_MIN_AREA_FRACTION of the image and more than GUIDE_FRAME_MIN_BOX_FILL of its box
(the original draws that pairing once per run, unseeded).

Masks: an indexed (palette) PNG holds object ids (DAVIS 2017, YouTube-VOS), 255 is void
(ignored: label 0, reported in `void`); a grey PNG with only 0 and 255 is one object (DAVIS
2016); a grey PNG with other values holds ids like a palette PNG.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf

from osmn import config
from osmn.data import augment, decode
from osmn.data.images import Problem, check_image, read_mask
from osmn.data.report import DataReport
from osmn.guides import spatial_guide
from osmn.preprocessing import resize_image, resize_mask, to_model_input
from osmn.progress import Progbar

VOID = config.VOID_LABEL


@dataclasses.dataclass
class VideoSequence:
    """An annotated video: `frames` = [(image, mask)] of its annotated frames, in order, each a
    file path, or encoded bytes for in-memory sources (TFDS); `frame_names` = [(image name,
    mask name)] used in reports (default: the paths)."""
    name: str
    frames: List[tuple]
    mask_dir: str = ""
    frame_names: Optional[List[tuple]] = None


@dataclasses.dataclass
class _FrameInfo:
    ok: bool
    ids: Dict[int, tuple] = dataclasses.field(default_factory=dict)  # id -> (area, box area)
    size: Optional[tuple] = None  # (width, height)
    palette: Optional[np.ndarray] = None
    grey: bool = False


def _scan_frame(image, mask, names, check_images: str, report: DataReport):
    image_size = check_image(image, check_images)
    if isinstance(image_size, Problem):
        report.skip(image_size.problem, names[0], image_size.detail)
        return _FrameInfo(False)
    loaded = read_mask(mask)
    if isinstance(loaded, Problem):
        report.skip(loaded.problem, names[1], loaded.detail)
        return _FrameInfo(False)
    mode, array, palette = loaded
    if (array.shape[1], array.shape[0]) != tuple(image_size):
        report.skip("mask size differs from image size", names[1],
                    f"mask {array.shape[1]}x{array.shape[0]}, image {image_size[0]}x{image_size[1]}")
        return _FrameInfo(False)
    ids = {}
    for value in np.unique(array):
        value = int(value)
        if value == 0:
            continue
        ys, xs = np.nonzero(array == value)
        box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
        ids[value] = (len(ys), int(box))
    if palette is not None:
        present = [0] + sorted(ids)
        colours = {tuple(palette[v]) for v in present}
        if len(colours) != len(present):
            report.skip("palette gives two labels the same colour", names[1])
            return _FrameInfo(False)
    return _FrameInfo(True, ids, tuple(image_size), palette, mode == "L")


def _progress(iterable, total, enabled):
    bar = Progbar(total, unit_name="frame") if enabled and total else None
    for i, item in enumerate(iterable):
        yield item
        if bar is not None and (i + 1 == total or (i + 1) % 50 == 0):
            bar.update(i + 1)


_CROP_TAG = 7  # fold-in tag of the crop window's seed (any constant not used for another draw)


class VideoSource:
    """Sample table of annotated videos and the TF op that builds one training sample.

    Args:
        sequences: list of `VideoSequence`.
        report: `DataReport` filled with skipped files and counts.
        check_images: "decode" (default) or "header", see `osmn.data.images.check_image`.
        randomize_guide: visual guide from a random eligible frame of the object (per epoch).
        progress: show a progress bar while scanning.
        encoded: the frames are encoded bytes held in memory, not file paths (TFDS).

    Attributes:
        num_samples: int.
    """

    def __init__(self, sequences: List[VideoSequence], report: DataReport,
                 check_images: str = "decode", randomize_guide: bool = False,
                 progress: bool = False, workers: int = 4, encoded: bool = False):
        self.report = report
        self._read = (lambda x: x) if encoded else tf.io.read_file
        self.randomize_guide = randomize_guide
        frame_images, frame_masks = [], []
        palettes, has_void = [], []
        samples = []  # (frame t, previous frame, sequence row, object id, object row)
        obj_first, obj_candidates = [], []
        self.objects: Dict[str, List[int]] = {}  # sequence name -> object ids with samples
        jobs = [(f, n) for s in sequences for f, n in zip(s.frames, s.frame_names or s.frames)]
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            infos = list(_progress(
                pool.map(lambda j: _scan_frame(j[0][0], j[0][1], j[1], check_images, report),
                         jobs),
                len(jobs), progress))
        cursor = 0
        for seq in sequences:
            infos_seq = infos[cursor:cursor + len(seq.frames)]
            cursor += len(seq.frames)
            base = len(frame_images)
            for image_path, mask_path in seq.frames:
                frame_images.append(image_path)
                frame_masks.append(mask_path)
            valid = [i for i, info in enumerate(infos_seq) if info.ok]
            if not valid:
                report.skip("no readable annotated frame", seq.mask_dir or seq.name)
                continue
            # One colour table per sequence: index -> colour as tf.io.decode_png will return it.
            palette = next((infos_seq[i].palette for i in valid
                            if infos_seq[i].palette is not None), None)
            values = set().union(*(infos_seq[i].ids for i in valid))
            grey = palette is None
            binary = grey and values <= {VOID}
            if grey:
                table = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
                if binary:  # DAVIS 2016: 255 is the object, id 1; no void.
                    table[1] = VOID
            else:
                table = palette.copy()
            names = seq.frame_names or seq.frames
            for i in valid:  # a frame whose palette disagrees on a present id is unusable
                info = infos_seq[i]
                if info.palette is None and not grey:
                    report.skip("grey mask in a sequence of palette masks", names[i][1])
                    info.ok = False
                elif info.palette is not None and any(
                        tuple(info.palette[v]) != tuple(table[v]) for v in [0, *info.ids]):
                    report.skip("palette differs from the sequence's first mask", names[i][1])
                    info.ok = False
            valid = [i for i in valid if infos_seq[i].ok]
            if binary:
                for i in valid:
                    info = infos_seq[i]
                    info.ids = {1: info.ids[VOID]} if VOID in info.ids else {}
            object_ids = sorted(set().union(*(infos_seq[i].ids for i in valid)) - {VOID})
            if not object_ids:
                report.skip("no valid object", seq.mask_dir or seq.name)
                continue
            self.objects[seq.name] = object_ids
            seq_row = len(palettes)
            palettes.append(table)
            has_void.append(not binary)
            annotated = range(len(seq.frames))
            for obj in object_ids:
                present = [i for i in valid if obj in infos_seq[i].ids]
                first = present[0]
                candidates = []
                for i in present:
                    area, box = infos_seq[i].ids[obj]
                    width, height = infos_seq[i].size
                    if (area > config.GUIDE_FRAME_MIN_AREA_FRACTION * width * height
                            and area > config.GUIDE_FRAME_MIN_BOX_FILL * box):
                        candidates.append(base + i)
                obj_row = len(obj_first)
                obj_first.append(base + first)
                obj_candidates.append(candidates or [base + first])
                for t in annotated:
                    prev = t - 1
                    if t <= first or not (infos_seq[t].ok and infos_seq[prev].ok):
                        continue
                    if obj in infos_seq[t].ids or obj in infos_seq[prev].ids:
                        samples.append((base + t, base + prev, seq_row, obj, obj_row))
            report.kept["sequences"] = report.kept.get("sequences", 0) + 1
            report.kept["objects"] = report.kept.get("objects", 0) + len(object_ids)
        report.kept["samples"] = len(samples)
        if not samples:
            from osmn.errors import UserError
            raise UserError(f"no training sample found ({report.summary()})")
        self.num_samples = len(samples)
        samples = np.asarray(samples, np.int64)
        self._frame_images = tf.constant(frame_images)
        self._frame_masks = tf.constant(frame_masks)
        self._palettes = tf.constant(np.stack(palettes), tf.uint8)  # [S, 256, 3]
        self._has_void = tf.constant(has_void)
        self._samples = tf.constant(samples)  # [N, 5]
        self._obj_first = tf.constant(obj_first, tf.int64)
        self._candidates = tf.RaggedTensor.from_row_lengths(
            np.concatenate(obj_candidates).astype(np.int64),
            np.asarray([len(c) for c in obj_candidates], np.int64))

    def guide_frame(self, obj_row: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """Frame index of the visual guide: first frame, or a random eligible one (seeded)."""
        if not self.randomize_guide:
            return self._obj_first[obj_row]
        candidates = self._candidates[obj_row]
        pick = tf.random.stateless_uniform(
            [], tf.cast(seed, tf.int64), 0, tf.size(candidates, out_type=tf.int64), tf.int64)
        return candidates[pick]

    def _object_mask(self, frame, seq, obj):
        colours = decode.decode_label_colours(self._read(self._frame_masks[frame]))
        return colours, decode.colour_mask(colours, self._palettes[seq, obj])

    def make_sample(self, index: tf.Tensor, seed: tf.Tensor, height, width,
                    perturb_guide: bool = True, crop=None):
        """One training sample as TF ops.

        Args:
            index: int64 scalar sample index in [0, num_samples).
            seed: [2] stateless seed of (training seed, epoch, position).
            height, width: int32 scalars, the batch's working size.
            perturb_guide: bool. Perturb the spatial guide (training augmentation; the
                original always does, `TrainConfig.perturb_spatial_guide`).
            crop: optional (crop_height, crop_width), at most (height, width). The frame, its
                label and the previous frame's mask are resized to (height, width), then one
                window of this size at a random (seeded) place is cut from all three, and the
                spatial guide is computed from the cut mask (`TrainConfig.crop_size`). Defaults
                to None: the whole frame (the original).

        Returns:
            inputs: {"image": [h, w, 3] float32 BGR minus mean, "visual_guide": [224, 224, 3]
                float32, "spatial_guide": [h, w, 1] float32}; label: [h, w, 1] float32 in {0, 1};
            void: [h, w, 1] float32, 1 on void (255) pixels (their label is 0). [h, w] is
            `crop` when given, else (height, width).
        """
        t, prev, seq, obj, obj_row = tf.unstack(self._samples[index])
        seeds = augment.split_seed(seed, 3)
        image = decode.decode_image(self._read(self._frame_images[t]))
        colours, label = self._object_mask(t, seq, obj)
        void = decode.colour_mask(colours, self._palettes[seq, VOID]) * tf.cast(
            self._has_void[seq], tf.float32)
        _, prev_mask = self._object_mask(prev, seq, obj)
        g = self.guide_frame(obj_row, seeds[0])
        _, guide_mask = self._object_mask(g, seq, obj)
        visual, _ = augment.train_visual_guide(
            decode.decode_image(self._read(self._frame_images[g])), guide_mask, seeds[1])
        image = to_model_input(resize_image(image, height, width))
        label = resize_mask(label, height, width)
        void = resize_mask(void, height, width)
        prev_mask = resize_mask(prev_mask, height, width)
        if crop is not None:
            # Its own seed, folded from the sample's, so that samples without a crop keep theirs.
            image, label, void, prev_mask = augment.random_crop(
                tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), _CROP_TAG),
                crop, image, label, void, prev_mask)
        spatial = spatial_guide(prev_mask, perturb=perturb_guide, seed=seeds[2])
        inputs = {"image": image, "visual_guide": visual, "spatial_guide": spatial}
        return inputs, label, void


def sequence_from_dirs(name: str, image_dir: str, mask_dir: str, report: DataReport,
                       image_ext: str = ".jpg") -> Optional[VideoSequence]:
    """Annotated frames of one sequence: every mask PNG in `mask_dir`, paired by file stem with
    `image_dir/<stem><image_ext>` (a missing image is reported when scanned)."""
    if not os.path.isdir(mask_dir):
        report.skip("missing annotation folder", mask_dir)
        return None
    stems = sorted(os.path.splitext(f)[0] for f in os.listdir(mask_dir) if f.endswith(".png"))
    if not stems:
        report.skip("no mask PNG", mask_dir)
        return None
    frames = [(os.path.join(image_dir, s + image_ext), os.path.join(mask_dir, s + ".png"))
              for s in stems]
    return VideoSequence(name, frames, mask_dir)
