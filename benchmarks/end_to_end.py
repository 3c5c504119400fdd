"""Frames per second of `tools/infer.py` itself with the shipped defaults: decoding, segmenting,
merging and writing the palette PNGs, as a user runs it.

    python benchmarks/end_to_end.py --video ../shared/data/davis2016_train/JPEGImages/480p/stroller

Runs the command `python tools/infer.py --video V --output TMP` `--runs` times on one video
(default: the shipped sample) and reports, per run, the whole command's wall time and the
steady rate: the frames after the first divided by the time of the tool's loop after the first
frame (TensorFlow's start-up, the model load, the visual modulator and the first frame's
tracing are paid once per video and reported apart). Writes
benchmarks/results/end_to_end-<machine>-<date>.json and prints one line per run.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from absl import flags  # noqa: E402

from osmn.cli import run_tool  # noqa: E402
from osmn.errors import UserError  # noqa: E402

flags.DEFINE_string("video", str(REPO / "data/davis_sample/JPEGImages/480p/car-shadow"),
                    "Folder of frames in the DAVIS layout (its first annotation is the mask).")
flags.DEFINE_string("checkpoint", None, "Model (default: the shipped one).")
flags.DEFINE_bool("overlay", False, "Also write the overlays (JPEG, GIF, mp4), as --overlay.")
flags.DEFINE_integer("runs", 3, "Runs of the whole tool call.")
flags.DEFINE_string("tag", None, "Result name (default: machine and date).")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.runs < 1:
        raise UserError(f"--runs: must be >= 1, got {FLAGS.runs}")
    from common import environment, host_tag, write_json  # noqa: PLC0415
    command = [sys.executable, str(REPO / "tools" / "infer.py"), "--video", FLAGS.video]
    if FLAGS.checkpoint:
        command += ["--checkpoint", FLAGS.checkpoint]
    if FLAGS.overlay:
        command.append("--overlay")
    rows = []
    for run in range(FLAGS.runs):
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            done = subprocess.run(command + ["--output", str(pathlib.Path(out) / "o")],
                                  capture_output=True, text=True)
            seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise UserError(f"tools/infer.py failed: {done.stderr.strip().splitlines()[-1:]}")
        summary = done.stdout.strip().splitlines()[-1]
        frames = int(summary.split(" frames")[0])
        first = float(summary.split("after a first frame of ")[1].split(" s")[0])
        per_frame = float(summary.split("segmentation ")[1].split(" s/frame")[0])
        total = float(summary.split("; total ")[1].split(" s")[0])
        modulator = float(summary.split("modulator ")[1].split(" s")[0])
        steady = (total - first - modulator) / (frames - 1)
        rows.append({"run": run, "frames": frames, "call_seconds": round(seconds, 2),
                     "loop_seconds": total, "first_frame_seconds": first,
                     "modulator_seconds": modulator, "step_seconds_per_frame": per_frame,
                     "steady_seconds_per_frame": round(steady, 4),
                     "steady_frames_per_second": round(1 / steady, 1), "summary": summary})
        print(f"run {run}: {frames} frames, call {seconds:.1f} s, steady {steady * 1000:.1f} "
              f"ms/frame = {1 / steady:.1f} frames/s (step alone {per_frame * 1000:.1f} ms)")
    env = environment()
    result = {"video": FLAGS.video, "overlay": FLAGS.overlay, "environment": env, "rows": rows}
    tag = FLAGS.tag or f"end_to_end-{host_tag(env, quick=False)}-{time.strftime('%Y-%m-%d')}"
    print(f"wrote {write_json(result, REPO / 'benchmarks' / 'results' / f'{tag}.json')}")


if __name__ == "__main__":
    run_tool(main)
