"""Samples per second of the COCO and DAVIS training pipelines, and one CPU training step.

    python benchmarks/data_pipeline.py [--batches 10] [--widths 0.0625,0.125]

Runs `osmn.data.training_dataset` on the shipped samples (data/coco_sample, data/davis_sample)
with the paper's recipes (coco_stage1: batch 8, 320/400/480 square; davis_stage2: batch 4,
427x240 / 683x384 / 854x480), times `--batches` batches after `--warmup`, then times one
training step (forward, class-balanced loss + weight decay, gradients, Adam) of OSMN at each
width in `--widths` on a COCO-sized batch (8 x 400 x 400, the middle scale) and on a DAVIS-sized
batch (4 x 480 x 854) in the same process. The issue's target: the COCO pipeline must produce a
batch faster than one training step consumes it. Prints a table and writes JSON (atomically) to
`--output`. The machine is shared, so the load average is recorded with the numbers.
"""

from __future__ import annotations

import os
import pathlib
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import app, flags  # noqa: E402

flags.DEFINE_integer("batches", 10, "Timed batches per pipeline.")
flags.DEFINE_integer("warmup", 2, "Untimed batches first (tracing, iterator start).")
flags.DEFINE_list("widths", ["0.0625", "0.125"], "Model width multipliers for the step time.")
flags.DEFINE_integer("steps", 3, "Timed training steps per width and batch shape.")
flags.DEFINE_string("coco_data_dir", "data/coco_sample", "COCO root.")
flags.DEFINE_string("davis_data_dir", "data/davis_sample", "DAVIS root.")
flags.DEFINE_string("output", "benchmarks/results/data_pipeline.json", "JSON result file.")
FLAGS = flags.FLAGS


def time_pipeline(train_config, data_dir, batches, warmup):
    from osmn.data import training_dataset
    start = time.perf_counter()
    ds = training_dataset(train_config, data_dir)
    iterator = iter(ds)
    for _ in range(warmup):
        next(iterator)
    ready = time.perf_counter()
    sizes = []
    for _ in range(batches):
        inputs, _ = next(iterator)
        sizes.append(tuple(inputs["image"].shape[1:3]))
    seconds = time.perf_counter() - ready
    samples = batches * train_config.batch_size
    return {"source": train_config.source, "batch_size": train_config.batch_size,
            "batches": batches, "seconds": round(seconds, 3),
            "samples_per_s": round(samples / seconds, 2),
            "seconds_per_batch": round(seconds / batches, 4),
            "setup_and_warmup_s": round(ready - start, 2),
            "sizes_seen": sorted(set(sizes)), "report": ds.report.summary()}


def time_train_step(width, batch, height, image_width, steps):
    import keras
    import tensorflow as tf
    from osmn.model import OSMN
    from osmn.training.step import train_step

    keras.utils.set_random_seed(0)
    model = OSMN({"width_multiplier": width})
    optimizer = keras.optimizers.Adam(1e-5)
    inputs = {"image": tf.random.normal([batch, height, image_width, 3]) * 50,
              "visual_guide": tf.random.normal([batch, 224, 224, 3]) * 50,
              "spatial_guide": tf.random.uniform([batch, height, image_width, 1])}
    labels = tf.cast(tf.random.uniform([batch, height, image_width, 1]) > 0.9, tf.float32)

    train = train_step(model, optimizer)
    step = tf.function(lambda inputs, labels: train(inputs, labels)[0])

    step(inputs, labels)  # trace and build the optimizer
    start = time.perf_counter()
    for _ in range(steps):
        float(step(inputs, labels))
    seconds = (time.perf_counter() - start) / steps
    return {"width_multiplier": width, "batch": [batch, height, image_width],
            "seconds_per_step": round(seconds, 4)}


def main(argv):
    del argv
    import tensorflow as tf
    from common import write_json  # benchmarks/common.py
    from osmn.config import RECIPES
    from osmn.errors import UserError

    try:
        widths = [float(w) for w in FLAGS.widths]
    except ValueError:
        print(f"error: --widths: expected numbers, got {FLAGS.widths}", file=sys.stderr)
        sys.exit(2)
    load_before = os.getloadavg()
    try:
        pipelines = [
            time_pipeline(RECIPES["coco_stage1"], FLAGS.coco_data_dir, FLAGS.batches, FLAGS.warmup),
            time_pipeline(RECIPES["davis_stage2"], FLAGS.davis_data_dir, FLAGS.batches, FLAGS.warmup),
        ]
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    coco_batch = RECIPES["coco_stage1"].batch_size
    davis_batch = RECIPES["davis_stage2"].batch_size
    steps = []
    for width in widths:
        steps.append(dict(time_train_step(width, coco_batch, 400, 400, FLAGS.steps),
                          shape_of="coco_stage1"))
        steps.append(dict(time_train_step(width, davis_batch, 480, 854, FLAGS.steps),
                          shape_of="davis_stage2"))
    by_source = {p["source"]: p for p in pipelines}
    for s in steps:
        source = "coco" if s["shape_of"] == "coco_stage1" else "davis"
        s["pipeline_seconds_per_batch"] = by_source[source]["seconds_per_batch"]
        s["pipeline_faster_than_step"] = (by_source[source]["seconds_per_batch"]
                                          < s["seconds_per_step"])

    print(f"{'pipeline':10s} {'batch':>5s} {'samples/s':>10s} {'s/batch':>8s}  sizes")
    for p in pipelines:
        print(f"{p['source']:10s} {p['batch_size']:5d} {p['samples_per_s']:10.2f} "
              f"{p['seconds_per_batch']:8.3f}  {p['sizes_seen']}")
    print(f"\n{'train step':12s} {'width':>7s} {'batch':>16s} {'s/step':>8s} "
          f"{'pipeline s/batch':>17s}  pipeline faster")
    for s in steps:
        print(f"{s['shape_of']:12s} {s['width_multiplier']:7.4f} {str(s['batch']):>16s} "
              f"{s['seconds_per_step']:8.3f} {s['pipeline_seconds_per_batch']:17.3f}  "
              f"{s['pipeline_faster_than_step']}")
    result = {
        "command": "python benchmarks/data_pipeline.py " + " ".join(sys.argv[1:]),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cores": len(os.sched_getaffinity(0)), "platform": platform.platform(),
                    "tensorflow": tf.__version__,
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "pipelines": pipelines, "train_steps": steps,
    }
    write_json(result, FLAGS.output)
    print(f"\nwrote {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)
