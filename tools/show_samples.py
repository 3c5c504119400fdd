"""Write a PNG grid of training samples so a person can check the augmentations.

    python tools/show_samples.py --source davis --data_dir data/davis_sample --output davis.png
    python tools/show_samples.py --source coco --data_dir data/coco_sample --output coco.png

One row per sample: the image, the label over the image (red; void in blue), the visual guide
(224x224, background at the mean colour), the spatial guide over the image (green). Samples are
batch `--batch` of the recipe's pipeline (its sizes, seed, randomize_guide), with batch size
`--num_samples`. Exit code 2 with one line on stderr on bad input; the PNG is written atomically.
"""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import osmn.cli  # noqa: E402, F401 (first: quiets TensorFlow's start-up lines)

from absl import flags  # noqa: E402

from osmn.errors import UserError  # noqa: E402
from osmn.cli import no_extra_arguments, run_tool  # noqa: E402
from osmn.config import RECIPES, TRAINING_SOURCES  # noqa: E402 (no TensorFlow)
from osmn.io import atomic_save, check_output_file  # noqa: E402

flags.DEFINE_enum("source", "davis", list(TRAINING_SOURCES), "Training source.")
flags.DEFINE_string("data_dir", None, "Data set root (default: the shipped sample of --source), "
                    "or tfds:<name>.")
flags.DEFINE_enum("recipe", None, list(RECIPES), "Recipe (default: coco_stage1 for coco, "
                  "davis_stage2 otherwise); only its data settings are used.")
flags.DEFINE_string("annotation_file", None, "COCO: explicit instances JSON.")
flags.DEFINE_string("split", "train", "Data set split.")
flags.DEFINE_string("tfds_data_dir", None, "TFDS data folder for --data_dir=tfds:<name>.")
flags.DEFINE_integer("num_samples", 4, "Rows of the grid (the batch size used).")
flags.DEFINE_integer("batch", 0, "Which batch of the stream to show (start_batch).")
flags.DEFINE_integer("seed", None, "Override the recipe's seed.")
flags.DEFINE_integer("cell", 192, "Height of one grid cell in pixels.")
flags.DEFINE_string("output", "samples.png", "PNG file to write.")
FLAGS = flags.FLAGS

SAMPLE_DIRS = {"coco": "data/coco_sample", "davis": "data/davis_sample"}


def sample_grid(inputs, label, void, cell: int):
    """Batch tensors -> [rows * cell, 4 * cells, 3] uint8 grid (numpy)."""
    import numpy as np
    from PIL import Image
    from osmn.preprocessing import from_model_input

    images = from_model_input(inputs["image"]).numpy().astype(np.float32)
    guides = from_model_input(inputs["visual_guide"]).numpy()
    spatial = inputs["spatial_guide"].numpy()
    label, void = label.numpy(), void.numpy()
    rows = []
    for i in range(images.shape[0]):
        image = images[i]
        red = image * 0.5 + np.array([255, 0, 0], np.float32) * 0.5
        blue = image * 0.5 + np.array([0, 0, 255], np.float32) * 0.5
        labelled = np.where(label[i] > 0, red, np.where(void[i] > 0, blue, image))
        green = np.array([0, 255, 0], np.float32)
        guided = image * (1 - 0.6 * spatial[i]) + green * 0.6 * spatial[i]
        h, w = image.shape[:2]
        width = max(1, round(w * cell / h))
        panels = [Image.fromarray(p.astype(np.uint8)).resize((width, cell), Image.BILINEAR)
                  for p in (image, labelled)]
        panels.append(Image.fromarray(guides[i]).resize((cell, cell), Image.NEAREST))
        panels.append(Image.fromarray(guided.astype(np.uint8)).resize((width, cell),
                                                                      Image.BILINEAR))
        rows.append(np.concatenate([np.asarray(p) for p in panels], axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 2), (0, width - r.shape[1]), (0, 0)), constant_values=255)
            for r in rows]
    return np.concatenate(rows, axis=0)


def main(argv):
    no_extra_arguments(argv)
    name = FLAGS.recipe or ("coco_stage1" if FLAGS.source == "coco" else "davis_stage2")
    if FLAGS.num_samples < 1 or FLAGS.batch < 0 or FLAGS.cell < 16:
        raise UserError("--num_samples must be >= 1, --batch >= 0, --cell >= 16")
    data_dir = FLAGS.data_dir or SAMPLE_DIRS.get(FLAGS.source)
    if data_dir is None:
        raise UserError(f"--data_dir is required for --source {FLAGS.source}")
    out = pathlib.Path(FLAGS.output)
    if out.suffix.lower() != ".png":
        raise UserError(f"--output={FLAGS.output}: the picture is a PNG; give a name ending "
                        "in .png")
    check_output_file(out, "--output")

    from PIL import Image  # noqa: PLC0415
    from osmn.data import training_dataset  # noqa: PLC0415 (TensorFlow)

    changes = {"source": FLAGS.source, "batch_size": FLAGS.num_samples}
    if FLAGS.seed is not None:
        changes["seed"] = FLAGS.seed
    train_config = RECIPES[name].replace(**changes)
    ds = training_dataset(train_config, data_dir, start_batch=FLAGS.batch, with_void=True,
                          annotation_file=FLAGS.annotation_file, split=FLAGS.split,
                          tfds_data_dir=FLAGS.tfds_data_dir)
    inputs, label, void = next(iter(ds))
    grid = sample_grid(inputs, label, void, FLAGS.cell)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_save(out, lambda f: Image.fromarray(grid).save(f, format="PNG"))
    print(f"{ds.report.summary()}")
    print(f"wrote {out} ({grid.shape[1]}x{grid.shape[0]}, {FLAGS.num_samples} samples of "
          f"batch {FLAGS.batch}, size {tuple(inputs['image'].shape[1:3])})")


def entry():
    run_tool(main)


if __name__ == "__main__":
    entry()
