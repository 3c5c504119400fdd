"""Figures 5, 6 and 7 of the paper (what the modulators learn, §4.2) for any OSMN checkpoint.

    python tools/analyze.py --checkpoint data/sample_model.keras --source davis \
        --data_dir data/davis_sample --davis_frames 20 --output analysis_out

    python tools/analyze.py --checkpoint MODEL.keras --source coco --data_dir coco/val2017 \
        --annotation_file coco/annotations/instances_val2017.json --categories paper \
        --output analysis_coco

writes fig5_gamma_mds.png (+ .csv), fig6_gamma_std.png (+ .csv), fig7_spatial_scale_raw.png,
fig7_spatial_scale_effective.png (+ fig7_spatial_scale.csv), gammas.npz and summary.json into
--output. Figure 4 (J over time) comes from `tools/eval.py --plot`. See docs/analysis.md.
"""

from __future__ import annotations

import logging
import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import osmn.cli  # noqa: E402, F401 (first: quiets TensorFlow's start-up lines)

from absl import flags  # noqa: E402

import numpy as np  # noqa: E402

from osmn import config  # noqa: E402
# Flag defaults that are ours, not the paper's; the library holds the values.
from osmn.analysis.report import DEFAULT_BINS, DEFAULT_NEAR_ZERO  # noqa: E402
from osmn.errors import UserError  # noqa: E402
from osmn.cli import SHIPPED_MODEL, model_path_or_shipped, run_tool  # noqa: E402
from osmn.io import check_output_dir  # noqa: E402

SOURCES = ("davis", "coco")

flags.DEFINE_string("checkpoint", None, f"OSMN model (.keras, .weights.h5 + config.json, or a "
                    f"folder with model.keras). Default: {SHIPPED_MODEL}.")
flags.DEFINE_string("data_dir", None, "DAVIS root (--source davis) or COCO image folder "
                    "(--source coco).")
flags.DEFINE_enum("source", "davis", SOURCES, "Where the objects come from. Categories are "
                  "sequence names for DAVIS, COCO categories for COCO.")
flags.DEFINE_string("annotation_file", None, "COCO instance annotation json (--source coco).")
flags.DEFINE_string("output", None, "Output folder (created; existing files of the same names "
                    "are replaced).")
flags.DEFINE_integer("max_objects", None, "Use at most this many objects (the first ones in "
                     "a fixed order). Default: all. The paper's Fig. 5 used 100.")
flags.DEFINE_list("categories", None, "COCO: category names to keep, or `paper` for Fig. 5's "
                  f"ten ({','.join(config.FIG5_COCO_CATEGORIES)}). Default: all.")
flags.DEFINE_integer("per_category", config.FIG5_OBJECTS_PER_CATEGORY,
                     "COCO: at most this many objects per category (paper Fig. 5: 10); 0 = no "
                     "limit.")
flags.DEFINE_float("min_area_fraction", config.COCO_MIN_AREA_FRACTION, "COCO: keep objects "
                   "larger than this fraction of their image (3%, as in training, paper §3.5).")
flags.DEFINE_string("split", "val", "DAVIS: image set ImageSets/2017/<split>.txt (or the 2016 "
                    "one) when --sequences is not given.")
flags.DEFINE_list("sequences", None, "DAVIS: only these sequences.")
flags.DEFINE_integer("davis_frames", 1, "DAVIS: visual guides per object; 1 = the first "
                     "annotated frame (as at test time), k > 1 = k evenly spaced annotated frames.")
flags.DEFINE_float("near_zero", DEFAULT_NEAR_ZERO, "Fig. 7 near-zero threshold: a fraction of "
                   "the largest magnitude over all layers, or an absolute value with "
                   "--nonear_zero_relative.")
flags.DEFINE_bool("near_zero_relative", True, "--near_zero is relative to the largest magnitude.")
flags.DEFINE_integer("bins", DEFAULT_BINS, "Histogram bins per layer (Figs. 6 and 7).")
flags.DEFINE_integer("batch_size", 8, "Visual guides per forward pass.")
FLAGS = flags.FLAGS


def _load_model(path):
    from osmn.model import load_osmn  # noqa: PLC0415 (TF import after flag parsing)
    return load_osmn(model_path_or_shipped(path))


def _check_flags():
    if not FLAGS.data_dir:
        raise UserError("--data_dir: required (DAVIS root or COCO image folder)")
    if not FLAGS.output:
        raise UserError("--output: required")
    if not os.path.isdir(FLAGS.data_dir):
        raise UserError(f"--data_dir: {FLAGS.data_dir}: folder not found")
    if FLAGS.source == "coco" and not FLAGS.annotation_file:
        raise UserError("--annotation_file: required with --source coco")
    for name in ("bins", "batch_size", "davis_frames"):
        if getattr(FLAGS, name) < 1:
            raise UserError(f"--{name}: must be >= 1, got {getattr(FLAGS, name)}")
    if FLAGS.max_objects is not None and FLAGS.max_objects < 1:
        raise UserError(f"--max_objects: must be >= 1, got {FLAGS.max_objects}")
    if FLAGS.per_category < 0:
        raise UserError(f"--per_category: must be >= 0, got {FLAGS.per_category}")
    if not 0 <= FLAGS.min_area_fraction < 1:
        raise UserError(f"--min_area_fraction: must be in [0, 1), got {FLAGS.min_area_fraction}")
    if FLAGS.near_zero < 0:
        raise UserError(f"--near_zero: must be >= 0, got {FLAGS.near_zero}")
    check_output_dir(FLAGS.output, "--output")


def _objects():
    from osmn.analysis import coco_objects, davis_objects  # noqa: PLC0415
    if FLAGS.source == "coco":
        categories = FLAGS.categories
        if categories == ["paper"]:
            categories = list(config.FIG5_COCO_CATEGORIES)
        objects = coco_objects(FLAGS.annotation_file, FLAGS.data_dir, categories,
                               per_category=FLAGS.per_category or None,
                               min_area_fraction=FLAGS.min_area_fraction)
    else:
        objects = davis_objects(FLAGS.data_dir, FLAGS.split, FLAGS.sequences, FLAGS.davis_frames)
    return objects[:FLAGS.max_objects] if FLAGS.max_objects else objects


def run() -> str:
    """Check flags, analyse, write; returns the report. Raises UserError on bad input."""
    _check_flags()
    from osmn.analysis import analyze, write_analysis  # noqa: PLC0415

    # The split-file note of osmn.data is bookkeeping for training logs; errors stay one line.
    logging.getLogger("osmn.data").setLevel(logging.WARNING)
    objects = _objects()  # user data problems surface before the model is loaded
    model = _load_model(FLAGS.checkpoint)
    categories = len({o.category for o in objects})
    print(f"Analysing {len(objects)} object(s) in {categories} categor(y/ies).")
    settings = {"checkpoint": str(FLAGS.checkpoint or SHIPPED_MODEL), "source": FLAGS.source,
                "data_dir": FLAGS.data_dir, "annotation_file": FLAGS.annotation_file}
    result = analyze(model, objects, near_zero=FLAGS.near_zero,
                     near_zero_relative=FLAGS.near_zero_relative, bins=FLAGS.bins,
                     batch_size=FLAGS.batch_size, progress=True, settings=settings)
    paths = write_analysis(result, FLAGS.output)
    lines = [f"{'layer':<8} {'gamma std (mean)':>16} {'near-zero raw':>14} "
             f"{'near-zero eff.':>15} {'no bias (ReLU)':>15}"]
    for layer, std in result.gamma_std.items():
        fr = result.near_zero_fraction
        raw = f"{fr['raw'][layer]:.0%}" if fr else "-"
        eff = f"{fr['effective'][layer]:.0%}" if fr else "-"
        dead = f"{result.dead_fraction[layer]:.0%}" if fr else "-"
        lines.append(f"{layer:<8} {std.mean():>16.4g} {raw:>14} {eff:>15} {dead:>15}")
    if result.scales is None:
        lines.append("No spatial modulator in this model: Figure 7 skipped.")
    if np.unique(result.gammas, axis=0).shape[0] == 1:
        lines.append(f"All {len(objects)} objects got the same gamma: this visual modulator "
                     "ignores its input (untrained: all ones; or its kernels are zero). Figure 5 "
                     "is a single point and Figure 6 all zeros.")
    lines.append("Wrote " + ", ".join(str(p) for p in paths.values()))
    return "\n".join(lines)


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    print(run())


def entry():
    run_tool(main)


if __name__ == "__main__":
    entry()
