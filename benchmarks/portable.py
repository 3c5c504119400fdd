"""Per-frame speed of the `segment` half: lite vs VGG16, and TF vs LiteRT vs onnxruntime.

    python benchmarks/portable.py                       # full width, 448x256, 2 objects
    python benchmarks/portable.py --quick               # width 1/16, a smoke test

`benchmarks/benchmark.py` runs the same section (`portable_section`) as part of its one run.

For each backbone the SAME random inputs (one RGB frame shared by K objects, their guides and
gammas) go through: the TF SavedModel signature function (`OSMNServingModule.segment`, graph
mode), the LiteRT float32 / float16 / int8 `.tflite` of that function (ai-edge-litert
interpreter), and the ONNX export (onnxruntime, CPU). Every timing is the median of --runs
interleaved runs after one warm-up (`timing.py`); the max abs difference of each runtime's
probability to the TF one is printed beside it. Models have random He-scaled weights (speed
does not depend on the values). Prints a table; writes benchmarks/results/portable-<host>.json.
See docs/lite_and_portable.md.
"""

from __future__ import annotations

import os
import pathlib
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from absl import flags, logging  # noqa: E402
import numpy as np  # noqa: E402

from common import QUICK_WIDTH, entry, environment, he_randomize, host_tag, write_json  # noqa: E402
from timing import time_interleaved  # noqa: E402
from osmn import config  # noqa: E402
from osmn.cli import FrameSize, define_enum_list, define_size  # noqa: E402
from osmn.errors import UserError  # noqa: E402

FLAGS = flags.FLAGS
BACKBONES = ("lite", "vgg16")
# The runtimes' Python packages (optional extras, docs/lite_and_portable.md).
EXTRAS = ("ai_edge_litert", "tf2onnx", "onnxruntime")
# The frame of the section: the original's YouTube-VOS working size; DEFAULT_FRAME is (H, W).
DEFAULT_SIZE = FrameSize(*config.YOUTUBE_VOS_IM_SIZE)
DEFAULT_FRAME = DEFAULT_SIZE.hw
DEFAULT_OBJECTS = 2


def _define_flags() -> None:
    """This script's flags; only when run as a script (benchmark.py imports the functions)."""
    flags.DEFINE_bool("quick", False, f"Width {QUICK_WIDTH}, 2 runs: a smoke test.")
    define_size("size", str(DEFAULT_SIZE), "Frame size (default: the original's YouTube-VOS "
                "size)")
    flags.DEFINE_integer("objects", DEFAULT_OBJECTS, "Objects per frame (K).")
    flags.DEFINE_integer("runs", 5, "Timed runs per candidate.")
    define_enum_list("backbones", list(BACKBONES), BACKBONES, "Backbones to measure")
    flags.DEFINE_string("output_dir", str(REPO / "benchmarks" / "results"), "Where the JSON goes.")


def missing_extras():
    """None when the portable runtimes import, else a one-line reason naming what is missing."""
    import importlib.util  # noqa: PLC0415
    missing = [name for name in EXTRAS if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    return (f"not installed: {', '.join(missing)} (pip install ai-edge-litert tf2onnx "
            "onnxruntime; docs/lite_and_portable.md)")


def measure(backbone: str, width_multiplier: float, height: int, width: int, objects: int,
            runs: int, scratch: pathlib.Path) -> dict:
    """Rows of one backbone: runtime -> {median_s, ..., max_abs_diff_vs_tf, file_mb}."""
    import tensorflow as tf  # noqa: PLC0415
    from osmn.export import portable  # noqa: PLC0415
    from osmn.export.litert import LiteRTHalf, convert_half  # noqa: PLC0415
    from osmn.export.onnx_export import convert_half as onnx_half, session_feed  # noqa: PLC0415
    from osmn.model import OSMN  # noqa: PLC0415
    import onnxruntime  # noqa: PLC0415

    model = OSMN({"width_multiplier": width_multiplier, "backbone": backbone})
    he_randomize(model)
    functions = portable.halves(model)
    module = functions.module
    inputs = portable.sample_inputs(model.gamma_size, height, width, objects)["segment"]
    tensors = {k: tf.constant(v) for k, v in inputs.items()}
    candidates = {"tf": lambda: module.segment(**tensors)["probability"].numpy()}
    sizes = {}
    for quantization in ("float32", "float16", "int8"):
        path = scratch / f"{backbone}_segment_{quantization}.tflite"
        path.write_bytes(convert_half(functions["segment"], module, quantization))
        sizes[f"litert_{quantization}"] = path.stat().st_size / 1e6
        half = LiteRTHalf(path)
        candidates[f"litert_{quantization}"] = lambda half=half: half(**inputs)
    path = scratch / f"{backbone}_segment.onnx"
    path.write_bytes(onnx_half(module.segment))
    sizes["onnxruntime"] = path.stat().st_size / 1e6
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = session_feed(session, inputs)
    candidates["onnxruntime"] = lambda: session.run(None, feed)[0]
    reference = candidates["tf"]()
    rows = time_interleaved(candidates, runs=runs, warmup=1)
    for name, row in rows.items():
        row["max_abs_diff_vs_tf"] = float(np.max(np.abs(candidates[name]() - reference)))
        row["file_mb"] = sizes.get(name)
        row["parameters"] = int(model.count_params())
    return rows


def portable_section(width_multiplier: float, height: int, width: int, objects: int,
                     runs: int, backbones=BACKBONES, report=print) -> dict:
    """Every backbone's rows (`measure`) on the same frame size, K and runs; `report` gets one
    table line per row as it is measured.

    Returns:
        {"width_multiplier", "frame": [H, W], "objects", "runs", "half", "backbones":
        {backbone: {runtime: row}}, "lite_over_vgg16_tf": lite's TF time / VGG16's (when both
        are measured)}.

    Raises:
        UserError: an unknown backbone, or the portable extras are not installed.
    """
    for name in backbones:
        if name not in BACKBONES:
            raise UserError(f"--backbones: unknown backbone {name!r} ({', '.join(BACKBONES)})")
    reason = missing_extras()
    if reason:
        raise UserError(f"portable runtimes {reason}")
    logging.set_verbosity(logging.WARNING)  # tf2onnx logs every graph rewrite at INFO.
    result = {"width_multiplier": width_multiplier, "frame": [height, width],
              "objects": objects, "runs": runs, "half": "segment (per frame)", "backbones": {}}
    report(f"segment half, {width}x{height}, {objects} objects, width {width_multiplier}, "
           f"median of {runs} runs")
    report(f"{'backbone':8} {'runtime':16} {'ms/frame':>9} {'file MB':>8} "
           f"{'max|diff| vs TF':>16}")
    with tempfile.TemporaryDirectory() as scratch:
        for backbone in backbones:
            rows = measure(backbone, width_multiplier, height, width, objects, runs,
                           pathlib.Path(scratch))
            result["backbones"][backbone] = rows
            for line in table_lines(backbone, rows):
                report(line)
    measured = result["backbones"]
    if "lite" in measured and "vgg16" in measured:
        result["lite_over_vgg16_tf"] = (measured["lite"]["tf"]["median_s"]
                                        / measured["vgg16"]["tf"]["median_s"])
    return result


def table_lines(backbone: str, rows: dict):
    """One line per runtime: backbone, runtime, ms/frame, file MB, max |diff| vs TF."""
    for name, row in rows.items():
        size = f"{row['file_mb']:.1f}" if row["file_mb"] else "-"
        yield (f"{backbone:8} {name:16} {row['median_s'] * 1e3:9.1f} {size:>8} "
               f"{row['max_abs_diff_vs_tf']:16.2g}")


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    width_multiplier = QUICK_WIDTH if FLAGS.quick else 1.0
    runs = 2 if FLAGS.quick else FLAGS.runs
    env = environment()
    result = {"environment": env, **portable_section(
        width_multiplier, FLAGS.size.height, FLAGS.size.width, FLAGS.objects, runs, FLAGS.backbones)}
    result["load_average_end"] = list(os.getloadavg())
    path = write_json(result, pathlib.Path(FLAGS.output_dir)
                      / f"portable-{host_tag(env, FLAGS.quick)}.json")
    print(f"wrote {path}")


if __name__ == "__main__":
    _define_flags()
    entry(main)
