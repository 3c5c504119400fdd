"""Segment a video through a TF Serving REST endpoint serving an OSMN export.

    python tools/serve_client.py --server http://localhost:8501 --model_name osmn \
        --video data/davis_sample/JPEGImages/480p/car-shadow --output out_served

writes out_served/car-shadow/00000.png ... exactly as tools/infer.py does (DAVIS palette PNGs in
the DAVIS results layout). Requests: `visual_guide` and `gamma` once for all objects, then per
frame `spatial_guide` (from the previous masks) and `segment`. Frames are segmented at their own
size. The export comes from tools/export.py; see docs/serving.md.
"""

from __future__ import annotations

import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import osmn.cli  # noqa: E402, F401 (first: quiets TensorFlow's start-up lines)

from absl import flags  # noqa: E402

from osmn.errors import UserError  # noqa: E402
from osmn.cli import run_tool  # noqa: E402
from osmn.io import check_output_dir, temp_dir  # noqa: E402

flags.DEFINE_string("server", "http://localhost:8501", "TF Serving REST address.")
flags.DEFINE_string("model_name", "osmn", "Model name on the server (docker: MODEL_NAME).")
flags.DEFINE_integer("version", None, "Model version; default: the server's choice (highest).")
flags.DEFINE_string("video", None, "Folder of frames (JPEG/PNG, sorted by name) or a video file.")
flags.DEFINE_string("mask", None, "First-frame mask (palette or grey PNG). Default: the DAVIS "
                    "layout's first annotation (JPEGImages/<res>/<seq> -> "
                    "Annotations/<res>/<seq>).")
flags.DEFINE_string("output", None, "Output folder; masks go to OUTPUT/<sequence>/<frame>.png.")
flags.DEFINE_string("sequence", None, "Sequence name. Default: the video folder's/file's name.")
flags.DEFINE_bool("overlay", False, "Also write overlays and an animated GIF under "
                  "OUTPUT/overlays/ (as tools/infer.py).")
flags.DEFINE_bool("keep_last_guide", False, "An empty prediction keeps the object's last "
                  "non-empty mask as spatial guide (the original gives an all-zero guide).")
flags.DEFINE_bool("save_scores", False, "Save each object's float32 probabilities as .npy.")
flags.DEFINE_float("timeout", 120.0, "Seconds to wait for one server answer.")
FLAGS = flags.FLAGS


def run(server, model, video, output, mask=None, version=None, sequence=None, overlay=False,
        keep_last_guide=False, save_scores=False, timeout=120.0) -> str:
    """Segment one video through the server; returns the summary line. Raises UserError."""
    from osmn.export.rest_client import ServingClient  # noqa: PLC0415
    from osmn.export.serving_backend import ServingBackend  # noqa: PLC0415
    from osmn.inference.driver import segment_video  # noqa: PLC0415
    from osmn.inference.video_input import open_video  # noqa: PLC0415
    from osmn.inference.video_segmenter import VideoSegmenter  # noqa: PLC0415
    from osmn.inference.writer import ResultWriter, publish_sequence  # noqa: PLC0415

    output = check_flags(output, timeout)
    client = ServingClient(server, model, version, timeout)
    opened = open_video(video, mask, sequence)
    source, labels, palette, ids, sequence = (
        opened.source, opened.labels, opened.palette, opened.ids, opened.sequence)

    segmenter = VideoSegmenter(ServingBackend(client), keep_last_guide=keep_last_guide)
    started = time.perf_counter()
    # Everything goes into a temporary folder beside the output, published at the end; it is
    # removed on any error, Ctrl-C or SIGTERM (osmn.cli.run_tool).
    with temp_dir(output) as temp_root:
        with ResultWriter(temp_root, sequence, palette, ids, overlay=overlay,
                          save_scores=save_scores, fps=source.fps) as writer:
            segment_video(segmenter, source, labels, writer, save_scores=save_scores,
                          on_frame=lambda done: _progress(done, len(source)))
        total = time.perf_counter() - started
        publish_sequence(temp_root, output, sequence)
    frames = max(segmenter.frames_segmented, 1)
    return "; ".join([
        f"{len(source)} frames", f"{len(ids)} object(s) (ids {', '.join(map(str, ids))})",
        f"{client.requests} requests to {client.predict_url}",
        f"modulator {segmenter.modulator_seconds:.2f} s once",
        f"segmentation {segmenter.segmentation_seconds / frames:.3f} s/frame",
        f"{client.bytes_sent / 1e6:.1f} MB sent, {client.bytes_received / 1e6:.1f} MB received",
        f"total {total:.1f} s -> {output / sequence}"])


def check_flags(output, timeout=120.0) -> pathlib.Path:
    """Flag checks and the output location, before any request; returns `output` as a path.

    Raises:
        UserError: a missing or bad flag, or an output folder that cannot be written.
    """
    if output is None:
        raise UserError("--output: required")
    if not timeout > 0:
        raise UserError(f"--timeout: must be > 0, got {timeout}")
    return check_output_dir(output, "--output")


def _progress(done: int, total: int, width: int = 30):
    """A text bar on stdout (no TF/Keras import in this client): redrawn in place on a terminal;
    otherwise a plain line every 10% (logs stay readable). Errors go to stderr, never onto it."""
    filled = width * done // total
    bar = f"{done}/{total} [{'=' * filled}{'.' * (width - filled)}]"
    if sys.stdout.isatty():
        print(f"\r{bar}", end="\n" if done == total else "", flush=True)
    elif done == total or done * 10 // total != (done - 1) * 10 // total:
        print(bar, flush=True)


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.video is None:
        raise UserError("--video: required (a folder of frames or a video file)")
    check_flags(FLAGS.output, FLAGS.timeout)
    print(run(FLAGS.server, FLAGS.model_name, FLAGS.video, FLAGS.output, FLAGS.mask, FLAGS.version,
              FLAGS.sequence, FLAGS.overlay, FLAGS.keep_last_guide, FLAGS.save_scores,
              FLAGS.timeout))


def entry():
    run_tool(main)


if __name__ == "__main__":
    entry()
