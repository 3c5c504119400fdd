"""Objects to analyse: (visual guide, category) pairs from COCO annotations or DAVIS masks.

Each object becomes the test-time visual guide the model would see (`osmn.guides.visual_guide`:
box + 3% per side, 224x224, background at the mean colour) and a category label used to colour
Figure 5 (paper §4.2):

* COCO (`coco_objects`): instance annotations read with pycocotools; crowd annotations are
  skipped, and so are objects of at most 3% of the image, as in training (paper §3.5). The
  category is the COCO category name.
* DAVIS (`davis_objects`): every object of a sequence's first annotated frame (or of several
  annotated frames, `frames_per_object` > 1); the category is the sequence name.

Objects are taken in a fixed order (annotation id / sequence, object id, frame) so that the same
command gives the same figure.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Iterable, List, Optional, Sequence

import numpy as np
from PIL import Image

from osmn import config
from osmn.errors import UserError
from osmn.io import read_mask


@dataclasses.dataclass(frozen=True)
class AnalysisObject:
    """One object: where it comes from and how to build its visual guide.

    Attributes:
        name: str. Unique label, e.g. "coco:123456" or "car-shadow/1@00000".
        category: str. Colour group of Figure 5.
        image_path: str. RGB image file.
        mask: [H, W] bool numpy array, the object's pixels in that image.
    """

    name: str
    category: str
    image_path: str
    mask: np.ndarray


def read_rgb(path: str) -> np.ndarray:
    """Image file -> [H, W, 3] uint8 RGB. Raises UserError naming the file."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: image file not found")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), np.uint8)
    except Exception as error:  # PIL raises several types for corrupt files.
        raise UserError(f"{path}: unreadable image ({type(error).__name__})") from error


def mask_objects(path: str) -> dict:
    """Label PNG -> {object id: [H, W] bool}. Grey 0/255 masks (DAVIS 2016) hold object 1.

    The reading rule of `osmn.io.read_mask`: palette or grey PNG values are object ids, 0 is
    background and 255 void, except that a grey mask whose only values are 0 and 255 is one
    binary object.
    """
    labels, _ = read_mask(path)
    values = set(np.unique(labels).tolist())
    return {v: labels == v for v in sorted(values - {0, config.VOID_LABEL})}


def davis_objects(root: str, split: str = "val", sequences: Optional[Sequence[str]] = None,
                  frames_per_object: int = 1) -> List[AnalysisObject]:
    """Objects of DAVIS sequences (DAVIS 2016/2017 layout, 480p), category = sequence name.

    Args:
        root: DAVIS root with `JPEGImages/480p/<seq>/` and `Annotations/480p/<seq>/`.
        split: split file used when `sequences` is not given (`osmn.data.davis.split_sequences`).
        sequences: explicit sequence names, or None.
        frames_per_object: 1 takes each object's visual guide from the first annotated frame (as
            at test time); k > 1 takes k evenly spaced annotated frames where the object is
            visible, giving k crops per object.

    Returns:
        list of AnalysisObject.

    Raises:
        UserError: missing folders, unreadable files, or no object at all.
    """
    from osmn.data.davis import RESOLUTION, split_sequences  # noqa: PLC0415
    from osmn.data.report import DataReport  # noqa: PLC0415

    if frames_per_object < 1:
        raise UserError(f"frames_per_object must be >= 1, got {frames_per_object}")
    if not os.path.isdir(root):
        raise UserError(f"{root}: DAVIS folder not found")
    if not sequences:
        sequences = split_sequences(root, split, DataReport("davis"))
    objects = []
    for sequence in sequences:
        image_dir = os.path.join(root, "JPEGImages", RESOLUTION, sequence)
        mask_dir = os.path.join(root, "Annotations", RESOLUTION, sequence)
        if not os.path.isdir(mask_dir):
            raise UserError(f"{mask_dir}: annotation folder of sequence {sequence!r} not found")
        mask_files = sorted(f for f in os.listdir(mask_dir) if f.endswith(".png"))
        if not mask_files:
            raise UserError(f"{mask_dir}: no PNG annotation")
        frames = mask_files[:1] if frames_per_object == 1 else mask_files
        visible = {}  # object id -> [(frame file, mask)]
        for frame in frames:
            for object_id, mask in mask_objects(os.path.join(mask_dir, frame)).items():
                if mask.any():
                    visible.setdefault(object_id, []).append((frame, mask))
        for object_id in sorted(visible):
            chosen = _evenly_spaced(visible[object_id], frames_per_object)
            for frame, mask in chosen:
                stem = os.path.splitext(frame)[0]
                objects.append(AnalysisObject(
                    name=f"{sequence}/{object_id}@{stem}", category=sequence,
                    image_path=_frame_image(image_dir, stem), mask=mask))
    if not objects:
        raise UserError(f"{root}: no object in the annotations of {len(sequences)} sequence(s)")
    return objects


def _evenly_spaced(items: list, k: int) -> list:
    if len(items) <= k:
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, k).round().astype(int)]


def _frame_image(image_dir: str, stem: str) -> str:
    for ext in (".jpg", ".jpeg", ".png"):
        path = os.path.join(image_dir, stem + ext)
        if os.path.isfile(path):
            return path
    raise UserError(f"{image_dir}: no image for annotated frame {stem}")


def coco_objects(annotation_file: str, image_dir: str, categories: Optional[Iterable[str]] = None,
                 per_category: Optional[int] = config.FIG5_OBJECTS_PER_CATEGORY,
                 min_area_fraction: float = config.COCO_MIN_AREA_FRACTION) -> List[AnalysisObject]:
    """Objects of a COCO-format instance annotation file, category = COCO category name.

    Args:
        annotation_file: COCO json (`instances_val2017.json` or any file in that format).
        image_dir: folder holding the images' `file_name`s.
        categories: category names to keep (e.g. `config.FIG5_COCO_CATEGORIES`); None keeps all.
        per_category: at most this many objects per category (the first by annotation id);
            None for no limit.
        min_area_fraction: keep objects whose mask covers more than this fraction of the image
            (3%, paper §3.5).

    Returns:
        list of AnalysisObject, sorted by category order of the file, then annotation id.

    Raises:
        UserError: unreadable annotation file, unknown category names, missing images, or no
            object left after the filters.
    """
    coco = _load_coco(annotation_file)
    by_name = {c["name"]: c["id"] for c in coco.loadCats(coco.getCatIds())}
    if categories is not None:
        categories = list(categories)
        unknown = [c for c in categories if c not in by_name]
        if unknown:
            raise UserError(f"{annotation_file}: unknown categor(y/ies) {', '.join(unknown)}; "
                            f"the file has {', '.join(sorted(by_name)) or 'none'}")
        cat_ids = [by_name[c] for c in categories]
    else:
        cat_ids = sorted(by_name.values())
    names = {v: k for k, v in by_name.items()}
    objects = []
    for cat_id in cat_ids:
        taken = 0
        for ann_id in sorted(coco.getAnnIds(catIds=[cat_id], iscrowd=False)):
            if per_category is not None and taken >= per_category:
                break
            ann = coco.loadAnns([ann_id])[0]
            info = coco.loadImgs([ann["image_id"]])[0]
            try:
                mask = coco.annToMask(ann).astype(bool)
            except Exception as error:  # malformed segmentation
                raise UserError(f"{annotation_file}: annotation {ann_id} has an unreadable "
                                f"segmentation ({type(error).__name__})") from error
            if mask.sum() <= min_area_fraction * mask.size:
                continue
            objects.append(AnalysisObject(
                name=f"coco:{ann_id}", category=names[cat_id],
                image_path=os.path.join(image_dir, info["file_name"]), mask=mask))
            taken += 1
    if not objects:
        raise UserError(f"{annotation_file}: no non-crowd object larger than "
                        f"{min_area_fraction:.0%} of its image in the chosen categories")
    return objects


def _load_coco(annotation_file: str):
    import contextlib  # noqa: PLC0415
    import io  # noqa: PLC0415
    from pycocotools.coco import COCO  # noqa: PLC0415

    if not os.path.isfile(annotation_file):
        raise UserError(f"{annotation_file}: COCO annotation file not found")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            return COCO(annotation_file)
    except Exception as error:
        raise UserError(f"{annotation_file}: not a readable COCO annotation file "
                        f"({type(error).__name__})") from error


def visual_guides(objects: Sequence[AnalysisObject]):
    """Yield each object's test-time visual guide: [224, 224, 3] float32, BGR minus mean.

    Raises:
        UserError: unreadable image, or a mask whose size differs from its image.
    """
    from osmn.guides import visual_guide  # noqa: PLC0415 (TensorFlow import)

    for obj in objects:
        image = read_rgb(obj.image_path)
        if image.shape[:2] != obj.mask.shape:
            raise UserError(f"{obj.image_path}: image is {image.shape[1]}x{image.shape[0]} but "
                            f"the mask of {obj.name} is {obj.mask.shape[1]}x{obj.mask.shape[0]}")
        yield visual_guide(image, obj.mask.astype(np.uint8)).numpy()
