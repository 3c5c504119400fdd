"""The inference engine's choices and the tool's own loop, measured on this machine.

    python benchmarks/engine.py               # both backbones, full width, 480x854 (~10 min)
    python benchmarks/engine.py --quick       # width 1/16, 64x96, 300 frames: a smoke test

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
   writer: resident memory after 100 frames and at the end (target: within 5%).
"""

from __future__ import annotations

import datetime
import os
import pathlib
import resource
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from absl import flags  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from common import QUICK_WIDTH, entry, environment, he_randomize, host_tag, write_json  # noqa: E402
from timing import paired_ratio, time_interleaved  # noqa: E402
from osmn.inference import (FrameSource, LocalEngine, ResultWriter, VideoSegmenter,  # noqa: E402
                            davis_palette, read_mask, segment_video)
from osmn.inference.engine import choose_precision, default_jit_compile  # noqa: E402
from osmn.model import OSMN  # noqa: E402
from osmn.preprocessing import to_model_input  # noqa: E402
from osmn.guides import spatial_guide  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_bool("quick", False, "Smoke test: width 1/16, 64x96, few runs, 300 long frames.")
flags.DEFINE_integer("runs", 5, "Timed runs per candidate (median reported).")
flags.DEFINE_list("backbones", ["vgg16", "lite"], "Backbones of the precision choice.")
flags.DEFINE_list("tool_precisions", ["float32", "bfloat16"], "Precisions of the tool loop.")
flags.DEFINE_integer("loop_frames", 12, "Sample frames through the whole driver loop.")
flags.DEFINE_integer("long_frames", 5000, "Frames of the synthetic long video (0: skip).")
flags.DEFINE_string("long_size", "120x160", "HxW of the synthetic long video.")
flags.DEFINE_string("output_dir", "benchmarks/results", "Where the JSON goes.")
flags.DEFINE_string("tag", None, "Result file name; default engine-<host tag>-<date>.")

SAMPLE = REPO / "data" / "davis_sample"
SEQUENCE = "car-shadow"


def _model(backbone: str, width: float, seed: int = 0) -> OSMN:
    model = OSMN({"backbone": backbone, "width_multiplier": width})
    he_randomize(model, seed)
    return model


def _sample(frames: int, size=None):
    """The sample video's first frames [H, W, 3] uint8 and the first mask, resized to `size`
    (H, W) if given (for --quick)."""
    source = FrameSource(SAMPLE / "JPEGImages" / "480p" / SEQUENCE)
    labels, _ = read_mask(SAMPLE / "Annotations" / "480p" / SEQUENCE / "00000.png")
    rgb = [source.frame(i) for i in range(min(frames, len(source)))]
    labels = (labels > 0).astype(np.uint8)
    if size is not None:
        rgb = [tf.cast(tf.image.resize(f, size, antialias=True), tf.uint8).numpy() for f in rgb]
        labels = tf.image.resize(labels[..., None], size, "nearest").numpy()[..., 0]
    return rgb, labels


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
    print(f"timing {backbone} {height}x{wide}: {', '.join(candidates)}", flush=True)
    t = time_interleaved(candidates, runs, warmup=1)
    auto = LocalEngine(model)
    picked = f"{auto.precision}_{'xla' if auto.jit_compile else 'graph'}"
    fastest = min(t, key=lambda name: t[name]["median_s"])
    return {"size": f"{height}x{wide}", "width_multiplier": width, "times": t,
            "auto_precision": choose_precision(model), "auto_jit_compile":
            default_jit_compile(model, auto.precision), "auto_path": auto.describe(),
            "auto_candidate": picked, "fastest_candidate": fastest,
            "auto_over_fastest": t[picked]["median_s"] / t[fastest]["median_s"],
            "float32_graph_over_auto": t["float32_graph"]["median_s"] / t[picked]["median_s"]}


def tool_loop(model: OSMN, precision: str, rgb, labels, runs: int, loop_frames: int) -> dict:
    """`VideoSegmenter.step` interleaved with the engine's bare `segment`, and the driver loop."""
    engine = LocalEngine(model, precision)
    segmenter = VideoSegmenter(engine)
    segmenter.start(rgb[0], labels)
    gammas = tf.constant(segmenter.gammas)
    image = to_model_input(tf.constant(rgb[1], tf.float32))[None]
    guides = spatial_guide(tf.constant(labels))[None]
    frames = iter(range(10 ** 9))

    def step():  # the sample's frames in turn, as a video
        segmenter.step(rgb[1 + next(frames) % (len(rgb) - 1)])

    t = time_interleaved({"bare_segment": lambda: engine.segment(image, guides, gammas)[0].numpy(),
                          "tool_step": step}, runs, warmup=1)
    out = {"precision": engine.precision, "path": engine.describe(), "times": t,
           "tool_step_over_bare": t["tool_step"]["median_s"] / t["bare_segment"]["median_s"],
           "tool_step_over_bare_paired": paired_ratio(t, "tool_step", "bare_segment"),
           "trace_count": engine.trace_count}
    if loop_frames > 1:
        with tempfile.TemporaryDirectory() as folder:
            frames_dir = pathlib.Path(folder) / "frames"
            frames_dir.mkdir()
            for path in sorted((SAMPLE / "JPEGImages" / "480p" / SEQUENCE).glob("*.jpg")
                               )[:loop_frames]:
                shutil.copy(path, frames_dir / path.name)
            source = FrameSource(frames_dir)
            first, _ = read_mask(SAMPLE / "Annotations" / "480p" / SEQUENCE / "00000.png")
            loop = VideoSegmenter(engine)
            with ResultWriter(pathlib.Path(folder) / "out", "seq", davis_palette(),
                              [1]) as writer:
                started = time.perf_counter()
                segment_video(loop, source, first, writer)
                wall = time.perf_counter() - started
        out["driver_loop"] = {"frames": len(source),
                              "wall_per_step_s": (wall - loop.modulator_seconds)
                              / max(loop.frames_segmented, 1),
                              "median_step_s": float(np.median(loop.step_seconds))}
        out["driver_loop"]["wall_per_step_over_bare"] = (
            out["driver_loop"]["wall_per_step_s"] / t["bare_segment"]["median_s"])
    return out


def _rss_mb() -> float:
    """Current resident set size (VmRSS) in MiB."""
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


class SyntheticVideo:
    """A square moving across a noisy background: `FrameSource`'s interface, made on demand."""

    def __init__(self, frames: int, height: int, width: int):
        self.names = [f"{i:05d}" for i in range(frames)]
        self.height, self.width = height, width
        self.rng = np.random.default_rng(0)
        self.background = self.rng.integers(0, 256, (height, width, 3), dtype=np.uint8)

    def __len__(self):
        return len(self.names)

    def frame(self, index: int) -> np.ndarray:
        frame = self.background.copy()
        side = self.height // 3
        x = (index * 2) % (self.width - side)
        frame[side:2 * side, x:x + side] = (250, 40, 40)
        return frame

    def mask(self, index: int) -> np.ndarray:
        mask = np.zeros((self.height, self.width), np.uint8)
        side = self.height // 3
        x = (index * 2) % (self.width - side)
        mask[side:2 * side, x:x + side] = 1
        return mask

    def prefetched(self, start: int = 0, shape=None):
        for index in range(start, len(self)):
            yield index, self.frame(index)


def long_video(model: OSMN, frames: int, size) -> dict:
    """The driver loop over a synthetic video with the writer; RSS after 100 frames and after
    all of them (the writer's output goes to a temporary folder)."""
    video = SyntheticVideo(frames, *size)
    segmenter = VideoSegmenter(LocalEngine(model))
    marks = {}

    def on_frame(done):
        if done in (100, frames):
            marks[done] = {"rss_mb": _rss_mb(), "peak_rss_mb":
                           resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                           "time_s": time.perf_counter() - started}
            print(f"  long video: {done} frames, RSS {marks[done]['rss_mb']:.0f} MiB", flush=True)

    with tempfile.TemporaryDirectory() as folder:
        with ResultWriter(pathlib.Path(folder), "long", davis_palette(), [1]) as writer:
            started = time.perf_counter()
            segment_video(segmenter, video, video.mask(0), writer, on_frame=on_frame)
    first, last = marks[100], marks[frames]
    return {"frames": frames, "size": f"{size[0]}x{size[1]}", "path": segmenter.describe(),
            "after_100": first, "at_end": last,
            "peak_rss_at_end_over_rss_after_100": last["peak_rss_mb"] / first["rss_mb"],
            "rss_at_end_over_rss_after_100": last["rss_mb"] / first["rss_mb"],
            "trace_count": segmenter.trace_count}


def main(argv):
    quick = FLAGS.quick
    width = QUICK_WIDTH if quick else 1.0
    size = (64, 96) if quick else (480, 854)
    runs = 2 if quick else FLAGS.runs
    env = environment()
    result = {"environment": env, "command": " ".join(sys.argv),
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes"),
              "precision_choice": {}, "tool_loop": {}}
    for backbone in FLAGS.backbones:
        result["precision_choice"][backbone] = precision_choice(backbone, width, size, runs)
        print(result["precision_choice"][backbone]["auto_candidate"], "auto;",
              result["precision_choice"][backbone]["fastest_candidate"], "fastest", flush=True)
    rgb, labels = _sample(max(FLAGS.loop_frames, 4), size if quick else None)
    vgg = _model("vgg16", width, seed=1)
    for precision in FLAGS.tool_precisions:
        print(f"tool loop {precision}", flush=True)
        result["tool_loop"][precision] = tool_loop(vgg, precision, rgb, labels, runs,
                                                   0 if quick else FLAGS.loop_frames)
        print(f"  step / bare {result['tool_loop'][precision]['tool_step_over_bare']:.3f}",
              flush=True)
    long_frames = min(FLAGS.long_frames, 300) if quick else FLAGS.long_frames
    if long_frames > 100:
        height, wide = (int(v) for v in FLAGS.long_size.split("x"))
        result["long_video"] = long_video(vgg, long_frames, (height, wide))
    tag = FLAGS.tag or (f"engine-{host_tag(env, quick)}-"
                        f"{datetime.date.today().isoformat()}")
    path = write_json(result, REPO / FLAGS.output_dir, tag)
    print(f"wrote {path}")


if __name__ == "__main__":
    entry(main)
