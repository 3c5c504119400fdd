"""`tools/infer.py`'s own per-frame loop against the engine's bare call, and a long video's
memory: sections shared by benchmarks/engine.py and benchmarks/benchmark.py."""

from __future__ import annotations

import pathlib
import resource
import shutil
import tempfile
import time

import numpy as np
import tensorflow as tf

from timing import paired_ratio, time_interleaved
from osmn.guides import spatial_guide
from osmn.inference import (FrameSource, LocalEngine, ResultWriter, VideoSegmenter,
                            davis_palette, read_mask, segment_video)
from osmn.model import OSMN
from osmn.preprocessing import to_model_input

REPO = pathlib.Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "davis_sample"
SEQUENCE = "car-shadow"


def sample_frames(frames: int, size=None):
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
           # Process CPU time (all threads): steadier than wall time on a loaded host.
           "tool_step_over_bare_cpu_time": (t["tool_step"]["cpu_median_s"]
                                            / t["bare_segment"]["cpu_median_s"]),
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


def rss_mb() -> float:
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
        if done in (100, frames) or done % 250 == 0:
            marks[done] = {"rss_mb": rss_mb(), "peak_rss_mb":
                           resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                           "time_s": time.perf_counter() - started}
            print(f"  long video: {done} frames, RSS {marks[done]['rss_mb']:.0f} MiB", flush=True)

    with tempfile.TemporaryDirectory() as folder:
        with ResultWriter(pathlib.Path(folder), "long", davis_palette(), [1]) as writer:
            started = time.perf_counter()
            segment_video(segmenter, video, video.mask(0), writer, on_frame=on_frame)
    first, last = marks[100], marks[frames]
    return {"frames": frames, "size": f"{size[1]}x{size[0]}", "path": segmenter.describe(),
            "after_100": first, "at_end": last, "marks": {str(k): v for k, v in marks.items()},
            # ru_maxrss is the process's peak since it started (model building included):
            # compared with its own value after 100 frames, it shows whether frames raised it.
            "peak_rss_at_end_over_peak_after_100": last["peak_rss_mb"] / first["peak_rss_mb"],
            "rss_at_end_over_rss_after_100": last["rss_mb"] / first["rss_mb"],
            "trace_count": segmenter.trace_count}
