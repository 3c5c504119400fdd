"""The inference engine's choices and the tool's own loop, measured on this machine.

    python benchmarks/engine.py               # both backbones, full width, 854x480 (~10 min)
    python benchmarks/engine.py --quick       # width 1/16, 96x64, 300 frames: a smoke test

Three sections, written to benchmarks/results/engine-<host tag>-<date>.json:

1. `precision_choice`: per backbone (VGG16, lite; random He weights: speed does not depend on
   the values), the engine's bare per-frame call (`LocalEngine.segment`, K = 1) in float32 and
   bfloat16, each with XLA on and off, interleaved; beside it what `precision="auto"` and the
   XLA default pick on this CPU (`choose_precision`, `default_jit_compile`), and whether that
   pick is the fastest measured. The choices in `osmn/inference/engine/local_engine.py` cite
   these files.
2. `tool_loop`: `tools/infer.py`'s per-frame call (`VideoSegmenter.step` on the sample video's
   frames: resize check, spatial guides, the engine's `segment_frame`, threshold, merge)
   interleaved with the engine's bare `segment` on the same frame, per precision (target:
   step / bare <= 1.05), and the whole driver loop (`osmn.inference.segment_video` with the
   result writer, as the tool runs it) as wall time per frame.
3. `long_video`: a synthetic video of --long_frames frames through the same driver loop and
   writer, with a narrow VGG16 (--long_width; memory, not speed, is measured): resident memory
   after 100 frames and at the end (target: within 5%).
"""

from __future__ import annotations

import datetime
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from absl import flags  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from common import QUICK_WIDTH, entry, environment, he_randomize, host_tag, write_json  # noqa: E402
from timing import time_interleaved  # noqa: E402
from tool_loop import long_video, sample_frames, tool_loop  # noqa: E402
from osmn.cli import define_enum_list, define_size  # noqa: E402
from osmn.config import BACKBONES  # noqa: E402
from osmn.inference import LocalEngine  # noqa: E402
from osmn.inference.engine import choose_precision, default_jit_compile  # noqa: E402
from osmn.model import OSMN  # noqa: E402
from osmn.precision import CPU_PRECISIONS  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_bool("quick", False, "Smoke test: width 1/16, 64x96, few runs, 300 long frames.")
flags.DEFINE_integer("runs", 5, "Timed runs per candidate (median reported).")
define_enum_list("backbones", ["vgg16", "lite"], BACKBONES, "Backbones of the precision choice")
define_enum_list("tool_precisions", list(CPU_PRECISIONS), CPU_PRECISIONS,
                 "Precisions of the tool loop")
flags.DEFINE_integer("loop_frames", 12, "Sample frames through the whole driver loop.")
flags.DEFINE_integer("long_frames", 5000, "Frames of the synthetic long video (0: skip).")
define_size("long_size", "96x64", "Frame size of the synthetic long video")
flags.DEFINE_float("long_width", 1 / 16, "Width multiplier of the long video's VGG16 model "
                   "(memory, not speed, is measured there: a narrow model keeps 5,000 frames "
                   "short).")
flags.DEFINE_string("output_dir", "benchmarks/results", "Where the JSON goes.")
flags.DEFINE_string("tag", None, "Result file name; default engine-<host tag>-<date>.")

def _model(backbone: str, width: float, seed: int = 0) -> OSMN:
    model = OSMN({"backbone": backbone, "width_multiplier": width})
    he_randomize(model, seed)
    return model


def precision_choice(backbone: str, width: float, size, runs: int) -> dict:
    """The bare per-frame call in each precision, XLA on and off, interleaved."""
    model = _model(backbone, width)
    height, wide = size
    rng = np.random.default_rng(0)
    image = tf.constant(rng.normal(0, 60, (1, height, wide, 3)), tf.float32)
    yy, xx = np.mgrid[:height, :wide]
    guide = np.exp(-((yy - height / 2) ** 2 + (xx - wide / 2) ** 2) / (0.05 * height * wide))
    guides = tf.constant(guide[None, ..., None], tf.float32)
    engines = {f"{p}_{'xla' if jit else 'graph'}": LocalEngine(model, p, jit_compile=jit)
               for p in ("float32", "bfloat16") for jit in (False, True)}
    gammas = tf.ones((1, model.gamma_size))
    candidates = {name: (lambda e=e: e.segment(image, guides, gammas)[0].numpy())
                  for name, e in engines.items()}
    print(f"timing {backbone} {wide}x{height}: {', '.join(candidates)}", flush=True)
    t = time_interleaved(candidates, runs, warmup=1)
    auto = LocalEngine(model)
    picked = f"{auto.precision}_{'xla' if auto.jit_compile else 'graph'}"
    fastest = min(t, key=lambda name: t[name]["median_s"])
    return {"size": f"{wide}x{height}", "width_multiplier": width, "times": t,
            "auto_precision": choose_precision(model), "auto_jit_compile":
            default_jit_compile(model, auto.precision), "auto_path": auto.describe(),
            "auto_candidate": picked, "fastest_candidate": fastest,
            "auto_over_fastest": t[picked]["median_s"] / t[fastest]["median_s"],
            "float32_graph_over_auto": t["float32_graph"]["median_s"] / t[picked]["median_s"]}


def main(argv):
    quick = FLAGS.quick
    width = QUICK_WIDTH if quick else 1.0
    size = (64, 96) if quick else (480, 854)
    runs = 2 if quick else FLAGS.runs
    env = environment()
    result = {"environment": env, "command": " ".join(sys.argv),
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes"),
              "tool_loop": {}, "precision_choice": {}}
    tag = FLAGS.tag or (f"engine-{host_tag(env, quick)}-"
                        f"{datetime.date.today().isoformat()}")
    output = REPO / FLAGS.output_dir

    def save():  # after every section: a run stopped half-way keeps what it measured
        env["load_average_end"] = list(os.getloadavg())
        return write_json(result, output / f"{tag}.json")

    rgb, labels = sample_frames(max(FLAGS.loop_frames, 4), size if quick else None)
    vgg = _model("vgg16", width, seed=1) if FLAGS.tool_precisions else None
    for precision in FLAGS.tool_precisions:
        print(f"tool loop {precision}", flush=True)
        result["tool_loop"][precision] = tool_loop(vgg, precision, rgb, labels, runs,
                                                   0 if quick else FLAGS.loop_frames)
        print(f"  step / bare {result['tool_loop'][precision]['tool_step_over_bare']:.3f}",
              flush=True)
        save()
    long_frames = min(FLAGS.long_frames, 300) if quick else FLAGS.long_frames
    if long_frames > 100:
        narrow = _model("vgg16", QUICK_WIDTH if quick else FLAGS.long_width, seed=2)
        result["long_video"] = long_video(narrow, long_frames, FLAGS.long_size.hw)
        result["long_video"]["width_multiplier"] = narrow.model_config.width_multiplier
        save()
    for backbone in FLAGS.backbones:
        result["precision_choice"][backbone] = precision_choice(backbone, width, size, runs)
        print(result["precision_choice"][backbone]["auto_candidate"], "auto;",
              result["precision_choice"][backbone]["fastest_candidate"], "fastest", flush=True)
        save()
    print(f"wrote {save()}")


if __name__ == "__main__":
    entry(main)
