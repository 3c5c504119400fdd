"""Export an OSMN model as a versioned SavedModel for TF Serving.

    python tools/export.py --checkpoint data/sample_model.keras --export_dir models/osmn \
        --version 1

writes models/osmn/1/{saved_model.pb,variables/,assets.extra/osmn_export.json} atomically (a
hidden temp folder, checked by reloading it, then renamed). Serve it with TF Serving (docker):

    docker run -p 8501:8501 --mount type=bind,source=$PWD/models/osmn,target=/models/osmn \
        -e MODEL_NAME=osmn tensorflow/serving

Signatures, preprocessing and REST request bodies: docs/serving.md.
"""

from __future__ import annotations

import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import app, flags, logging  # noqa: E402

from osmn.errors import UserError  # noqa: E402

DEFAULT_CHECKPOINT = "data/sample_model.keras"

flags.DEFINE_string("checkpoint", None, "OSMN model to export (.keras file, .weights.h5 with "
                    "config.json beside it, or a folder holding model.keras). Default: the "
                    f"shipped sample model {DEFAULT_CHECKPOINT}.")
flags.DEFINE_string("export_dir", "models/osmn", "Model base folder (TF Serving's "
                    "--model_base_path); the export goes to EXPORT_DIR/VERSION/.")
flags.DEFINE_integer("version", None, "Version number (positive). Default: one more than the "
                     "highest version already in --export_dir (1 for a new folder).")
flags.DEFINE_bool("overwrite", False, "Replace an existing version instead of refusing.")
flags.DEFINE_bool("verify", True, "Reload the written SavedModel and compare serving_default "
                  "with the Keras model before publishing it.")
FLAGS = flags.FLAGS


def run(checkpoint, export_dir, version=None, overwrite=False, verify=True) -> str:
    """Export one checkpoint (None: the shipped sample model); returns the summary line.

    Raises:
        UserError: bad flags, missing or unreadable checkpoint, existing version.
    """
    if version is not None and version < 1:
        raise UserError(f"--version must be a positive integer, got {version}")
    if checkpoint is None:
        checkpoint = pathlib.Path(__file__).resolve().parents[1] / DEFAULT_CHECKPOINT
        if not checkpoint.exists():
            raise UserError(f"{DEFAULT_CHECKPOINT}: the shipped sample model is missing; run "
                            "`python tools/train.py --flagfile=data/sample.flags` first or pass "
                            "--checkpoint")
    target = pathlib.Path(export_dir) / str(version) if version is not None else None
    if target is not None and target.exists() and not overwrite:  # Fail before importing TF.
        raise UserError(f"{target}: version {version} already exists (pass --overwrite to "
                        "replace it, or another --version)")
    from osmn.export import existing_versions, export_saved_model  # noqa: PLC0415 (TF import)
    from osmn.model import load_osmn  # noqa: PLC0415
    started = time.perf_counter()
    model = load_osmn(checkpoint)
    print(f"Loaded {checkpoint}: width {model.config_.width_multiplier}, "
          f"gamma size {model.gamma_size}, {model.count_params():,} parameters.")
    path = export_saved_model(model, export_dir, version=version, overwrite=overwrite,
                              verify=verify, source=str(checkpoint))
    versions = existing_versions(export_dir)
    checked = "checked by reloading" if verify else "not reloaded (--noverify)"
    return (f"Exported {checkpoint} -> {path} ({checked}) in "
            f"{time.perf_counter() - started:.1f} s; versions in {export_dir}: "
            f"{', '.join(map(str, versions))}")


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)  # TF's SavedModel writer logs every step at INFO.
    print(run(FLAGS.checkpoint, FLAGS.export_dir, FLAGS.version, FLAGS.overwrite, FLAGS.verify))


def entry():
    try:
        app.run(main)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    entry()
