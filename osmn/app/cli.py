"""The flags of `osmn-app` / `python tools/app.py` (the web app, docs/app.md).

Kept in the package rather than in tools/ because an installed console script must import it;
`tools/app.py` is a shim that calls `entry()`.
"""

from __future__ import annotations

import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Gradio must not phone home: no analytics, no update check (the app runs offline).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from absl import flags  # noqa: E402

from osmn.cli import (SHIPPED_MODEL, define_size, model_path_or_shipped,  # noqa: E402
                      no_extra_arguments, run_tool)
from osmn.errors import UserError  # noqa: E402
from osmn.config import MAX_VIDEO_FRAMES  # noqa: E402 (no TensorFlow before the flags are checked)
from osmn.precision import INFERENCE_PRECISIONS  # noqa: E402

flags.DEFINE_integer("port", 7860, "Port on 127.0.0.1.")
flags.DEFINE_string("checkpoint", None, f"OSMN model (.keras). Default: {SHIPPED_MODEL}.")
flags.DEFINE_enum("precision", "auto", INFERENCE_PRECISIONS,
                  "Compute precision (as tools/infer.py --precision; auto: the fastest for the "
                  "model on this CPU).")
define_size("im_size", None, "Working size (as tools/infer.py --im_size); default: the "
            "model's own working size, else each frame at its own size")
flags.DEFINE_integer("max_frames", MAX_VIDEO_FRAMES, "Longer videos are refused (memory and disk).")
FLAGS = flags.FLAGS



def main(argv):
    no_extra_arguments(argv)
    if not 1 <= FLAGS.port <= 65535:
        raise UserError(f"--port: must be in 1..65535, got {FLAGS.port}")
    if FLAGS.max_frames < 1:
        raise UserError(f"--max_frames: must be >= 1, got {FLAGS.max_frames}")
    try:
        import gradio  # noqa: F401, PLC0415
    except ImportError:
        raise UserError('the app needs its optional packages: pip install -e ".[app]"') from None
    from osmn.app.ui import build_app, launch  # noqa: PLC0415
    from osmn.inference import LocalEngine  # noqa: PLC0415
    from osmn.model import load_osmn  # noqa: PLC0415
    model = load_osmn(model_path_or_shipped(FLAGS.checkpoint))
    # The model's own working size (the size it was validated at) unless --im_size is given.
    work_size = FLAGS.im_size or model.model_config.working_size
    engine = LocalEngine(model, precision=FLAGS.precision)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not one line per request
    print(f"Serving on http://127.0.0.1:{FLAGS.port} (Ctrl-C stops).", flush=True)
    launch(build_app(engine, work_size=work_size, max_frames=FLAGS.max_frames), FLAGS.port)


def entry():
    run_tool(main)
