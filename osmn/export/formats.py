"""The export formats of OSMN and one call that writes any of them.

* saved_model: a versioned SavedModel for TF Serving, EXPORT_DIR/<version>/
  (`osmn.export.saved_model`, docs/serving.md).
* litert: the `gamma` and `segment` halves as `.tflite` files, float32 and one smaller
  variant beside it (`osmn.export.litert`, docs/lite_and_portable.md).
* onnx: the two halves as `.onnx` files (`osmn.export.onnx_export`).

The checks (`check_options`, `check_target`) do not import TensorFlow, so that a tool can refuse
bad options before loading anything.
"""

from __future__ import annotations

import pathlib
from typing import Dict, Optional, Tuple

from osmn.errors import UserError
from osmn.io import check_output_dir

FORMATS = ("saved_model", "litert", "onnx")
# The export folder of each format when none is given.
DEFAULT_EXPORT_DIRS = {"saved_model": "models/osmn", "litert": "models/osmn_litert",
                       "onnx": "models/osmn_onnx"}
# litert: the variant written beside float32 ("none": float32 only).
LITERT_QUANTIZATIONS = ("float16", "int8", "none")


def check_options(export_format: str, litert_quantization: str = "float16",
                  version: Optional[int] = None) -> None:
    """Refuse an unknown format or LiteRT variant, and a version that is not a positive
    integer or is given for a format without versions.

    Raises:
        UserError: naming the flag (--format, --litert_quantization, --version).
    """
    if export_format not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {export_format!r}")
    if litert_quantization not in LITERT_QUANTIZATIONS:
        raise UserError(f"--litert_quantization must be one of "
                        f"{', '.join(LITERT_QUANTIZATIONS)}, got {litert_quantization!r}")
    if version is not None and export_format != "saved_model":
        raise UserError(f"--version applies to --format saved_model only, not {export_format}")
    if version is not None and version < 1:
        raise UserError(f"--version must be a positive integer, got {version}")


def target_folder(export_format: str, export_dir, version: Optional[int] = None
                  ) -> Optional[pathlib.Path]:
    """The folder an export creates: `export_dir` for litert and onnx, `export_dir/version`
    for saved_model, None for saved_model without a version (the next one, found when
    writing)."""
    if export_format != "saved_model":
        return pathlib.Path(export_dir)
    return pathlib.Path(export_dir) / str(version) if version is not None else None


def check_target(export_format: str, export_dir, version: Optional[int] = None,
                 overwrite: bool = False) -> None:
    """Refuse an export whose folder exists (without `overwrite`) or cannot be written.

    Raises:
        UserError: the existing folder or version, or an unwritable --export_dir.
    """
    target = target_folder(export_format, export_dir, version)
    if target is not None and target.exists() and not overwrite:
        if export_format != "saved_model":
            raise UserError(f"{target}: already exists (pass --overwrite to replace it)")
        raise UserError(f"{target}: version {version} already exists (pass --overwrite to "
                        "replace it, or another --version)")
    check_output_dir(export_dir, "--export_dir")
    if export_format == "saved_model":  # the version is staged beside the watched folder
        check_output_dir(pathlib.Path(export_dir).resolve().parent, "--export_dir")


def export_model(model, export_format: str, export_dir, version: Optional[int] = None,
                 overwrite: bool = False, verify: bool = True, source: Optional[str] = None,
                 litert_quantization: str = "float16"
                 ) -> Tuple[pathlib.Path, Optional[Dict[str, Dict[str, float]]]]:
    """Write `model` in `export_format` (atomically, as one folder).

    Args:
        model: `osmn.model.OSMN` (either backbone).
        export_format: one of `FORMATS`.
        export_dir: saved_model: the model's base folder (TF Serving's --model_base_path);
            litert, onnx: the folder to write.
        version: saved_model only: positive int, or None for the next version.
        overwrite: replace an existing version or folder.
        verify: compare the written files with the Keras model before publishing.
        source: optional description of the checkpoint, stored in the metadata.
        litert_quantization: litert only: one of `LITERT_QUANTIZATIONS`.

    Returns:
        (folder written, differences): for litert and onnx {variant: {half: max abs
        difference to Keras}} ("float32" for onnx; empty without `verify`); None for
        saved_model, which checks its reloaded signature instead.

    Raises:
        UserError: bad options, an existing folder, a missing export package.
    """
    check_options(export_format, litert_quantization, version)
    # Imported here: each format pulls in TensorFlow and its own converter.
    if export_format == "saved_model":
        from osmn.export.saved_model import export_saved_model  # noqa: PLC0415
        return export_saved_model(model, export_dir, version=version, overwrite=overwrite,
                                  verify=verify, source=source), None
    if export_format == "litert":
        from osmn.export.litert import export_litert  # noqa: PLC0415
        variants = () if litert_quantization == "none" else (litert_quantization,)
        differences = export_litert(model, export_dir, variants, overwrite=overwrite,
                                    verify=verify, source=source)
    else:
        from osmn.export.onnx_export import export_onnx  # noqa: PLC0415
        differences = {"float32": export_onnx(model, export_dir, overwrite=overwrite,
                                              verify=verify, source=source)}
    return pathlib.Path(export_dir), differences
