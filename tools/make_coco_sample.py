"""Write `data/coco_sample`: a tiny COCO-format instances file over shipped DAVIS frames.

    python tools/make_coco_sample.py [--data_dir data/davis_sample] [--output data/coco_sample]

The annotations come from the car-shadow ground truth (the car, category "car") on four frames,
written with pycocotools so that the COCO pipeline runs on a fresh clone:

* frame 00000: the car as a POLYGON (outline traced column by column), ~10% of the image: kept;
* frame 00010: the car as a compressed RLE (pycocotools.mask.encode), ~8%: kept;
  plus a crowd region (iscrowd=1, uncompressed RLE) on the road: skipped (crowd);
* frame 00020: the car as a polygon, ~6%: kept; plus a 30x20 polygon "region" (0.15%): filtered;
* frame 00039: the car as a compressed RLE, 2.95% of the image: filtered by the 3% rule.

So the COCO pipeline yields 3 samples. `train2017/` is a relative symlink to the DAVIS frames
(no copy). Output is written to a temporary folder and renamed into place.
"""

import json
import os
import sys

import numpy as np
from absl import flags
from PIL import Image
from pycocotools import mask as mask_utils

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import osmn.cli  # noqa: E402, F401 (first: quiets TensorFlow's start-up lines)
from osmn.errors import UserError  # noqa: E402
from osmn.cli import run_tool  # noqa: E402
from osmn.io import atomic_dir  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", "data/davis_sample", "DAVIS root holding car-shadow.")
flags.DEFINE_string("output", "data/coco_sample", "Folder to (re)write.")

SEQUENCE = "car-shadow"
COLUMN_STEP = 8  # pixels between outline points of the traced polygons


def outline_polygon(mask: np.ndarray) -> list:
    """A polygon [x0, y0, x1, y1, ...] around a mask: top edge left to right, bottom edge back,
    one point every COLUMN_STEP columns (exact for shapes that are convex along columns)."""
    columns = np.nonzero(mask.any(axis=0))[0]
    xs = list(range(columns[0], columns[-1] + 1, COLUMN_STEP)) + [int(columns[-1])]
    top, bottom = [], []
    for x in xs:
        rows = np.nonzero(mask[:, x])[0]
        if len(rows):
            top += [float(x), float(rows[0])]
            bottom = [float(x), float(rows[-1] + 1)] + bottom
    return top + bottom


def compressed_rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def uncompressed_rle(mask: np.ndarray) -> dict:
    flat = mask.astype(np.uint8).flatten(order="F")
    change = np.nonzero(np.diff(flat))[0] + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0] == 1:
        counts = [0] + counts
    return {"size": list(mask.shape), "counts": counts}


def build(data_dir: str) -> dict:
    def load(frame):
        path = os.path.join(data_dir, "Annotations", "480p", SEQUENCE, f"{frame}.png")
        if not os.path.isfile(path):
            raise UserError(f"{path}: not found (--data_dir must hold {SEQUENCE})")
        return np.asarray(Image.open(path)) > 0

    images, annotations = [], []

    def add_image(frame, mask):
        images.append({"id": len(images) + 1, "file_name": f"{frame}.jpg",
                       "height": int(mask.shape[0]), "width": int(mask.shape[1])})
        return len(images)

    def add(image_id, segmentation, category, iscrowd=0):
        rle = (mask_utils.merge(mask_utils.frPyObjects(segmentation, *size))
               if isinstance(segmentation, list) else
               mask_utils.frPyObjects(segmentation, *size)
               if isinstance(segmentation["counts"], list) else
               {"size": segmentation["size"], "counts": segmentation["counts"].encode()})
        bbox = [float(v) for v in mask_utils.toBbox(rle)]
        annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                            "category_id": category, "segmentation": segmentation,
                            "area": float(mask_utils.area(rle)), "bbox": bbox,
                            "iscrowd": iscrowd})

    car = {f: load(f) for f in ("00000", "00010", "00020", "00039")}
    size = car["00000"].shape
    add(add_image("00000", car["00000"]), [outline_polygon(car["00000"])], 1)
    i = add_image("00010", car["00010"])
    add(i, compressed_rle(car["00010"]), 1)
    road = np.zeros(size, bool)
    road[400:470, 50:300] = True
    add(i, uncompressed_rle(road), 2, iscrowd=1)
    i = add_image("00020", car["00020"])
    add(i, [outline_polygon(car["00020"])], 1)
    add(i, [[700.0, 50.0, 730.0, 50.0, 730.0, 70.0, 700.0, 70.0]], 2)
    add(add_image("00039", car["00039"]), compressed_rle(car["00039"]), 1)
    return {"info": {"description": "osmn-tf COCO-format sample over DAVIS car-shadow frames "
                                    "(tools/make_coco_sample.py)"},
            "images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": "car", "supercategory": "vehicle"},
                           {"id": 2, "name": "region", "supercategory": "other"}]}


def main(argv):
    del argv
    try:
        data = build(FLAGS.data_dir)
        out = os.path.abspath(FLAGS.output)
        with atomic_dir(out, overwrite=True) as tmp:
            os.makedirs(os.path.join(tmp, "annotations"))
            with open(os.path.join(tmp, "annotations", "instances_train2017.json"), "w") as f:
                json.dump(data, f)
            frames = os.path.abspath(os.path.join(FLAGS.data_dir, "JPEGImages", "480p", SEQUENCE))
            os.symlink(os.path.relpath(frames, out), os.path.join(tmp, "train2017"))
    except (UserError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"wrote {out}: {len(data['images'])} images, {len(data['annotations'])} annotations")


if __name__ == "__main__":
    run_tool(main)
