"""Train OSMN: the shipped model's recipe (DAVIS 2016, CPU) or the paper's two stages (COCO, then
DAVIS 2017, GPU).

    python tools/train.py --flagfile=data/davis16_lite.flags     # the shipped model, CPU
    python tools/train.py --flagfile=data/coco.flags --data_dir=/data/coco --train_dir=runs/s1
    python tools/train.py --flagfile=data/davis.flags --data_dir=/data/DAVIS
        --init_checkpoint=runs/s1 --train_dir=runs/s2      (one command line)

Every setting starts from the named recipe (`osmn.config.RECIPES`); a flag given on the command
line or in a flag file overrides the recipe's value. The final configuration is written to
TRAIN_DIR/train_config.json; a run resumes from its newest checkpoint by default.
See docs/training.md.
"""

from __future__ import annotations

import json
import logging as std_logging
import os
import pathlib
import shutil
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import osmn.cli  # noqa: E402, F401 (first: quiets TensorFlow's start-up lines)

from absl import app, flags, logging  # noqa: E402

from osmn.config import (BACKBONES, RECIPES, STRATEGIES, TRAINING_SOURCES,  # noqa: E402
                         ModelConfig, TrainConfig)
from osmn.errors import UserError  # noqa: E402
from osmn.cli import define_size, define_size_list, run_tool  # noqa: E402
from osmn.io import check_output_dir, clean_stale  # noqa: E402
from osmn.precision import TRAINING_PRECISIONS, training_auto  # noqa: E402

FLAGS = flags.FLAGS

# Flags whose default is None take the recipe's value.
flags.DEFINE_enum("recipe", None, list(RECIPES), "Named recipe to start from. Required.")
flags.DEFINE_string("data_dir", None, "Data set root (COCO folder with annotations/ and "
                    "train2017/; DAVIS folder with JPEGImages/480p, Annotations/480p, ImageSets; "
                    "YouTube-VOS folder with train/). Required.")
flags.DEFINE_string("train_dir", None, "Run directory: checkpoints, model.keras, "
                    "train_config.json, summaries/. Required.")
flags.DEFINE_enum("source", None, TRAINING_SOURCES, "Data source (default: the recipe's).")
flags.DEFINE_string("annotation_file", None, "COCO only: an instances JSON to use instead of "
                    "DATA_DIR/annotations/instances_<split>2017.json.")
flags.DEFINE_string("split", "train", "Data set split to train on.")

flags.DEFINE_integer("batch_size", None, "Samples per step (split over replicas).")
flags.DEFINE_integer("steps", None, "Total optimizer steps of the run, resumed steps included.")
flags.DEFINE_list("lr", None, "Learning rates, comma-separated: one more than --lr_boundaries.")
flags.DEFINE_list("lr_boundaries", None, "Steps where the learning rate changes, "
                  "comma-separated (empty for a constant rate).")
define_size_list("image_sizes", None, "Training sizes, one drawn per batch")
define_size("crop_size", None, "Video sources: cut a random window of this size out of each "
            "training frame after resizing it to one of --image_sizes (ours; default: the whole "
            "frame, as the original)")
flags.DEFINE_integer("seed", None, "Seed of the initialisation, data order and augmentation.")

flags.DEFINE_enum("backbone", None, BACKBONES, "Backbone of both networks (vgg16 = the "
                  "paper's model, lite = the authors' MobileNet v1 variant; default: the "
                  "recipe's).")
flags.DEFINE_float("width_multiplier", None, "Width of both backbones (VGG16s or MobileNets; "
                   "1.0 = the full-size model).")
flags.DEFINE_bool("no_visual_modulator", None, "Ablation (paper Table 3): no visual modulator, "
                  "every gamma fixed at 1.")
flags.DEFINE_bool("no_spatial_modulator", None, "Ablation (paper Table 3): no spatial "
                  "modulator, no beta.")
flags.DEFINE_bool("mod_early_conv", None, "Also modulate conv1_x and conv2_x (vgg16 only).")
flags.DEFINE_bool("fix_bn", None, "Batch norm in inference mode (moving statistics frozen): "
                  "the spatial modulator's, and lite's MobileNets'; stage 2 sets it.")
flags.DEFINE_bool("fix_seg", None, "Freeze the segmentation network's backbone (VGG16 "
                  "conv1-conv5 or lite's MobileNet) and its side convs (the fusion conv and "
                  "both modulators still train).")
flags.DEFINE_bool("randomize_guide", None, "Video sources: visual guide from a random frame of "
                  "the same object instead of the first; stage 2 sets it.")

flags.DEFINE_bool("imagenet_init", None, "Initialise both backbones from ImageNet (stage 1): "
                  "VGG16, or MobileNet v1 of the model's width for lite.")
flags.DEFINE_string("imagenet_weights", None, "ImageNet weights. vgg16: a Keras VGG16 .h5 file "
                    "or a TF-slim vgg_16 checkpoint prefix; lite: Keras' MobileNet v1 file of "
                    "the model's width (e.g. mobilenet_2_5_224_tf_no_top.h5 for 0.25); unset = "
                    "Keras' download (needs internet).")
flags.DEFINE_bool("he_init", None, "vgg16 only, from scratch only: He-normal VGG16 kernels "
                  "instead of N(0, 0.001) (ours, for the CPU demo; the paper starts from "
                  "ImageNet). An error with lite, whose batch-normalised convs train from "
                  "their own MobileNet init.")
flags.DEFINE_integer("bn_recalibration_batches", None, "After the last step, re-estimate every "
                     "batch norm's moving statistics over this many training batches (0: off; "
                     "ours, for short from-scratch lite runs: see docs/training.md).")
flags.DEFINE_string("init_checkpoint", None, "Start from this model (.keras file or a run "
                    "directory holding model.keras), e.g. the stage-1 run for stage 2.")

flags.DEFINE_integer("checkpoint_every", None, "Steps between checkpoints.")
flags.DEFINE_integer("keep", None, "Checkpoints kept (the oldest are deleted).")
flags.DEFINE_bool("resume", True, "Continue from TRAIN_DIR's newest checkpoint if there is "
                  "one (same step, optimizer state and data position).")
flags.DEFINE_integer("summary_every", 100, "Steps between TensorBoard summaries (0: none).")
flags.DEFINE_enum("precision", "auto", TRAINING_PRECISIONS, "Compute precision. auto: "
                  "float16 on a GPU (mixed_float16: float32 weights, float16 compute, loss "
                  "scaling), float32 on the CPU (measured faster than bfloat16 on a CPU without "
                  "AMX); bfloat16: mixed_bfloat16 (float32 weights, bfloat16 compute).")
flags.DEFINE_enum("strategy", "auto", STRATEGIES, "auto (several GPUs: mirrored; else one "
                  "device), mirrored, one_device or multi_worker (reads TF_CONFIG).")
flags.DEFINE_bool("progress", True, "Show a progress bar.")


def _parse_numbers(name, values, kind):
    try:
        return tuple(kind(v) for v in values if v != "")
    except ValueError:
        raise UserError(f"--{name}: expected comma-separated numbers, got "
                        f"{','.join(values)!r}") from None


def config_from_flags() -> TrainConfig:
    """The recipe named by --recipe with every given flag applied, validated.

    Raises:
        UserError: a missing required flag or a bad value.
    """
    for name in ("recipe", "data_dir", "train_dir"):
        if not getattr(FLAGS, name):
            raise UserError(f"--{name}: required")
    if not os.path.isdir(FLAGS.data_dir):
        raise UserError(f"--data_dir={FLAGS.data_dir}: no such directory")
    check_output_dir(FLAGS.train_dir, "--train_dir")
    if FLAGS.summary_every < 0:
        raise UserError(f"--summary_every: must be >= 0, got {FLAGS.summary_every}")
    recipe = RECIPES[FLAGS.recipe]
    changes = {}
    for flag, field in (("source", "source"), ("batch_size", "batch_size"), ("steps", "steps"),
                        ("seed", "seed"), ("randomize_guide", "randomize_guide"),
                        ("imagenet_init", "imagenet_init"), ("he_init", "he_init"),
                        ("init_checkpoint", "init_checkpoint"),
                        ("bn_recalibration_batches", "bn_recalibration_batches"),
                        ("checkpoint_every", "checkpoint_every"), ("keep", "keep_checkpoints")):
        if getattr(FLAGS, flag) is not None:
            changes[field] = getattr(FLAGS, flag)
    if FLAGS.lr is not None:
        changes["lr_values"] = _parse_numbers("lr", FLAGS.lr, float)
        bad = [v for v in changes["lr_values"] if not v > 0]
        if bad or not changes["lr_values"]:
            raise UserError(f"--lr: learning rates must be positive, got {','.join(FLAGS.lr)}")
    if FLAGS.lr_boundaries is not None:
        changes["lr_boundaries"] = _parse_numbers("lr_boundaries", FLAGS.lr_boundaries, int)
    if FLAGS.image_sizes is not None:
        changes["image_sizes"] = tuple(size.hw for size in FLAGS.image_sizes)
    if FLAGS.crop_size is not None:
        changes["crop_size"] = FLAGS.crop_size.hw
    model = {}
    for flag, field, invert in (("backbone", "backbone", False),
                                ("width_multiplier", "width_multiplier", False),
                                ("no_visual_modulator", "use_visual_modulator", True),
                                ("no_spatial_modulator", "use_spatial_modulator", True),
                                ("mod_early_conv", "mod_early_conv", False),
                                ("fix_bn", "fix_bn", False), ("fix_seg", "train_seg", True)):
        value = getattr(FLAGS, flag)
        if value is not None:
            model[field] = (not value) if invert else value
    if model:
        changes["model"] = ModelConfig.of(recipe.model, **model)
    if FLAGS.backbone is not None and FLAGS.he_init is None \
            and recipe.he_init_for(FLAGS.backbone) != recipe.he_init:
        changes["he_init"] = recipe.he_init_for(FLAGS.backbone)
        logging.info("--backbone=%s: the %s recipe's he_init is turned off (VGG16 only)",
                     FLAGS.backbone, recipe.name)
    if changes.get("init_checkpoint") and not os.path.exists(changes["init_checkpoint"]):
        raise UserError(f"--init_checkpoint={changes['init_checkpoint']}: not found")
    try:
        return recipe.replace(**changes)
    except TypeError as error:  # e.g. a wrong type reaching the dataclass
        raise UserError(f"bad flag value: {error}") from error


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    # TF's own INFO lines (one per checkpoint saved) are not this tool's log.
    std_logging.getLogger("tensorflow").setLevel(std_logging.WARNING)
    created = None
    try:
        train_config = config_from_flags()
        created = not os.path.exists(FLAGS.train_dir)
        clean_stale(FLAGS.train_dir)  # what a run killed mid-save (SIGKILL) left in it
        # Heavy imports after the flag checks, so that bad flags fail at once.
        from osmn.data import training_dataset
        from osmn.training import make_strategy, train
        from osmn.training.checkpoints import MODEL_NAME
        from osmn.training.trainer import TrainingDiverged

        if FLAGS.recipe == "davis_stage2" and not train_config.init_checkpoint:
            logging.warning("stage 2 without --init_checkpoint starts from random weights "
                            "(the recipe starts from the stage-1 run)")
        strategy, description = make_strategy(FLAGS.strategy)
        logging.info(description)
        precision = training_auto() if FLAGS.precision == "auto" else FLAGS.precision
        logging.info("recipe %s, precision %s, config: %s", FLAGS.recipe, precision,
                     json.dumps(json.loads(train_config.to_json()), separators=(",", ":")))

        def dataset_fn(start_batch):
            return training_dataset(train_config, FLAGS.data_dir, start_batch=start_batch,
                                    annotation_file=FLAGS.annotation_file, split=FLAGS.split)

        try:
            result = train(train_config, FLAGS.train_dir, dataset_fn, strategy=strategy,
                           precision=precision, summary_every=FLAGS.summary_every,
                           resume=FLAGS.resume, imagenet_weights=FLAGS.imagenet_weights,
                           progress=FLAGS.progress, log=logging.info)
        except TrainingDiverged as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    except UserError as error:
        train_dir = pathlib.Path(FLAGS.train_dir or "")
        if created and train_dir.is_dir() and not (train_dir / "checkpoints").exists():
            shutil.rmtree(train_dir, ignore_errors=True)  # made by this failed start: nothing in it
        print(f"error: {error}", file=sys.stderr)
        return 2
    model_path = pathlib.Path(FLAGS.train_dir) / MODEL_NAME
    if result.step == result.first_step:
        print(f"nothing to train: already at step {result.step}; model: {model_path}")
    else:
        print(f"trained {result.step - result.first_step} steps (to step {result.step}), "
              f"last loss {result.loss:.1f}; model: {model_path}")
    return 0


def entry():
    run_tool(main)


if __name__ == "__main__":
    entry()
