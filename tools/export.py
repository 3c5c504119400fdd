"""Export an OSMN model as a versioned SavedModel for TF Serving.

    python tools/export.py --checkpoint data/sample_model.keras --export_dir models/osmn \
        --version 1

writes models/osmn/1/{saved_model.pb,variables/,assets.extra/osmn_export.json} atomically (a
hidden temp folder, checked by reloading it, then renamed). Serve it with TF Serving (docker):

    docker run -p 8501:8501 --mount type=bind,source=$PWD/models/osmn,target=/models/osmn \
        -e MODEL_NAME=osmn tensorflow/serving

Signatures, preprocessing and REST request bodies: docs/serving.md.

Portable formats (docs/lite_and_portable.md): the `gamma` and `segment` halves as files,

    python tools/export.py --format litert --export_dir models/osmn_litert   # phones, small devices
    python tools/export.py --format onnx --export_dir models/osmn_onnx       # other runtimes

written as one folder atomically (`--litert_quantization float16|int8|none` picks the variant
written beside float32).
"""

from __future__ import annotations

import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import osmn.cli  # noqa: E402, F401 (first: quiets TensorFlow's start-up lines)

from absl import flags, logging  # noqa: E402

from osmn.errors import UserError  # noqa: E402
from osmn.cli import SHIPPED_MODEL, model_path_or_shipped, run_tool  # noqa: E402
from osmn.export.formats import (DEFAULT_EXPORT_DIRS, FORMATS,  # noqa: E402
                                 LITERT_QUANTIZATIONS, check_options, check_target,
                                 export_model)

flags.DEFINE_string("checkpoint", None, "OSMN model to export (.keras file, .weights.h5 with "
                    "config.json beside it, or a folder holding model.keras). Default: the "
                    f"shipped sample model {SHIPPED_MODEL}.")
flags.DEFINE_enum("format", "saved_model", FORMATS, "Export format.")
flags.DEFINE_string("export_dir", None, "saved_model: model base folder (TF Serving's "
                    "--model_base_path), the export goes to EXPORT_DIR/VERSION/; litert, onnx: "
                    "the folder to write. Default: "
                    + ", ".join(f"{k}: {v}" for k, v in DEFAULT_EXPORT_DIRS.items()) + ".")
flags.DEFINE_enum("litert_quantization", "float16", LITERT_QUANTIZATIONS, "--format litert: "
                  "the variant written beside float32.")
flags.DEFINE_integer("version", None, "saved_model: version number (positive). Default: one "
                     "more than the highest version already in --export_dir (1 for a new "
                     "folder).")
flags.DEFINE_bool("overwrite", False, "Replace an existing version (or litert/onnx folder) "
                  "instead of refusing.")
flags.DEFINE_bool("verify", True, "Reload the written files and compare them with the Keras "
                  "model before publishing (saved_model: serving_default; litert, onnx: both "
                  "halves, max abs differences printed).")
FLAGS = flags.FLAGS


def _differences(diffs, verify) -> str:
    """--format litert | onnx: the max abs differences of each variant's halves to Keras."""
    if not verify:
        return "not compared (--noverify)"
    return "; ".join(f"{variant}: max abs diff vs Keras " + ", ".join(
        f"{half} {value:.2g}" for half, value in halves.items())
        for variant, halves in diffs.items())


def run(checkpoint, export_dir=None, version=None, overwrite=False, verify=True,
        export_format="saved_model", litert_quantization="float16") -> str:
    """Export one checkpoint (None: the shipped sample model); returns the summary line.

    Raises:
        UserError: bad flags, missing or unreadable checkpoint, existing version or folder.
    """
    check_options(export_format, litert_quantization, version)
    if export_dir is None:
        export_dir = DEFAULT_EXPORT_DIRS[export_format]
    checkpoint = model_path_or_shipped(checkpoint)
    check_target(export_format, export_dir, version, overwrite)  # Fail before importing TF.
    from osmn.export import existing_versions  # noqa: PLC0415 (TF import)
    from osmn.model import load_osmn  # noqa: PLC0415
    started = time.perf_counter()
    model = load_osmn(checkpoint)
    print(f"Loaded {checkpoint}: width {model.model_config.width_multiplier}, "
          f"backbone {model.model_config.backbone}, gamma size {model.gamma_size}, "
          f"{model.count_params():,} parameters.")
    path, diffs = export_model(model, export_format, export_dir, version=version,
                               overwrite=overwrite, verify=verify, source=str(checkpoint),
                               litert_quantization=litert_quantization)
    if export_format != "saved_model":
        files = ", ".join(sorted(p.name for p in path.iterdir()))
        return (f"Exported {checkpoint} -> {path} ({export_format}: {files}) in "
                f"{time.perf_counter() - started:.1f} s; {_differences(diffs, verify)}")
    versions = existing_versions(export_dir)
    checked = "checked by reloading" if verify else "not reloaded (--noverify)"
    return (f"Exported {checkpoint} -> {path} ({checked}) in "
            f"{time.perf_counter() - started:.1f} s; versions in {export_dir}: "
            f"{', '.join(map(str, versions))}")


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)  # TF's SavedModel writer logs every step at INFO.
    print(run(FLAGS.checkpoint, FLAGS.export_dir, FLAGS.version, FLAGS.overwrite, FLAGS.verify,
              FLAGS.format, FLAGS.litert_quantization))


def entry():
    run_tool(main)


if __name__ == "__main__":
    entry()
