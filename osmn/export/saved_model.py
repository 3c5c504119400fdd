"""Write an OSMN model as a versioned SavedModel in the layout TF Serving loads.

    export_dir/
      1/                       <- one version; TF Serving serves the highest number by default
        saved_model.pb
        variables/variables.{index,data-00000-of-00001}
        assets.extra/osmn_export.json   <- what this export is (TF Serving ignores assets.extra)
      2/ ...

A version is written to a hidden temporary folder BESIDE `export_dir` (`osmn.io.atomic_dir`), so
the folder TF Serving watches never holds anything but complete versions; it is checked, then
renamed into place. A killed export's temporary folder is removed by the next export.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Optional

import numpy as np
import tensorflow as tf

from osmn import config
from osmn.errors import UserError
from osmn.io import atomic_dir
from osmn.export.serving_module import SIGNATURES, OSMNServingModule
from osmn.preprocessing import to_model_input

METADATA_PATH = os.path.join("assets.extra", "osmn_export.json")
# Largest max-abs difference of probabilities (in [0, 1]) between the reloaded export and the
# Keras model that `verify_export` accepts; float32 reordering gives ~1e-6 (docs/serving.md).
VERIFY_TOLERANCE = 1e-4


def existing_versions(export_dir) -> list:
    """Sorted version numbers (all-digit folder names) under `export_dir`; [] if it is absent."""
    export_dir = pathlib.Path(export_dir)
    if not export_dir.is_dir():
        return []
    return sorted(int(p.name) for p in export_dir.iterdir() if p.is_dir() and p.name.isdigit())


def next_version(export_dir) -> int:
    """One more than the highest existing version, 1 for a new `export_dir`."""
    versions = existing_versions(export_dir)
    return versions[-1] + 1 if versions else 1


def reference_probability(model, image, visual_guide, spatial_guide) -> np.ndarray:
    """What `serving_default` must return, computed with the Keras model directly.

    Args:
        model: `OSMN`.
        image: [B, H, W, 3] RGB 0..255. visual_guide: [B, 224, 224, 3] RGB 0..255.
        spatial_guide: [B, H, W, 1] float32.

    Returns:
        [B, H, W, 1] float32 numpy, sigmoid of the logits.
    """
    gamma = model.gamma(to_model_input(visual_guide), training=False)
    logits = model.segment(to_model_input(image), tf.convert_to_tensor(spatial_guide, tf.float32),
                           gamma, training=False)
    return tf.sigmoid(tf.cast(logits, tf.float32)).numpy()


def verify_export(path, model, seed: int = 0) -> float:
    """Reload the SavedModel at `path` and compare `serving_default` with the Keras model.

    Uses a random 2-object input of 40x56 pixels (small: this is a smoke check of the written
    files; the tests compare every signature in a process without osmn).

    Returns:
        The max abs difference of the probabilities.

    Raises:
        RuntimeError: a signature is missing or the difference exceeds VERIFY_TOLERANCE.
    """
    rng = np.random.default_rng(seed)
    size = config.VISUAL_GUIDE_SIZE
    image = rng.uniform(0, 255, (1, 40, 56, 3)).astype(np.float32)
    visual = rng.uniform(0, 255, (2, size, size, 3)).astype(np.float32)
    spatial = rng.uniform(0, 1, (2, 40, 56, 1)).astype(np.float32)
    loaded = tf.saved_model.load(str(path))
    missing = sorted(set(SIGNATURES) - set(loaded.signatures))
    if missing:
        raise RuntimeError(f"{path}: export lacks signature(s) {', '.join(missing)}")
    served = loaded.signatures["serving_default"](
        image=tf.constant(image), visual_guide=tf.constant(visual),
        spatial_guide=tf.constant(spatial))["probability"].numpy()
    expected = reference_probability(model, np.repeat(image, 2, axis=0), visual, spatial)
    diff = float(np.max(np.abs(served - expected)))
    if not diff <= VERIFY_TOLERANCE:
        raise RuntimeError(f"{path}: reloaded export differs from the Keras model by {diff:.3g} "
                           f"(tolerance {VERIFY_TOLERANCE})")
    return diff


def _metadata(model, version: int, source: Optional[str]) -> dict:
    return {
        "format": "osmn-tf SavedModel for TF Serving",
        "version": version,
        "source_checkpoint": source,
        "model_config": model.model_config.to_dict(),
        "gamma_size": int(model.gamma_size),
        "signatures": list(SIGNATURES),
        "image_convention": "RGB float32 0..255; converted inside to BGR minus mean "
                            f"{list(config.MEAN_BGR)}",
        "visual_guide_size": config.VISUAL_GUIDE_SIZE,
        "mask_threshold": config.MASK_THRESHOLD,
        "tensorflow_version": tf.__version__,
    }


def export_saved_model(model, export_dir, version: Optional[int] = None, overwrite: bool = False,
                       verify: bool = True, source: Optional[str] = None) -> pathlib.Path:
    """Export `model` to `export_dir/<version>/` atomically.

    Args:
        model: `osmn.model.OSMN`.
        export_dir: str or path, the model's base folder (TF Serving's `--model_base_path`).
        version: positive int; None picks `next_version(export_dir)`.
        overwrite: replace an existing version (renamed aside, then deleted after the new one is
            in place). Without it an existing version is a `UserError`.
        verify: reload the written files and compare with the Keras model before publishing.
        source: optional description of the checkpoint, stored in the metadata.

    Returns:
        The path of the new version folder.

    Raises:
        UserError: bad version, version exists without `overwrite`, `export_dir` not writable.
    """
    export_dir = pathlib.Path(export_dir)
    if version is None:
        version = next_version(export_dir)
    if isinstance(version, bool) or not isinstance(version, (int, np.integer)) or version < 1:
        raise UserError(f"--version must be a positive integer, got {version!r}")
    version = int(version)
    target = export_dir / str(version)
    if target.exists() and not overwrite:
        raise UserError(f"{target}: version {version} already exists (pass --overwrite to "
                        "replace it, or another --version)")
    if export_dir.exists() and not export_dir.is_dir():
        raise UserError(f"{export_dir}: --export_dir exists and is not a folder")
    try:
        export_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"{export_dir}: cannot write the export ({error.strerror})") from error
    # Staged beside export_dir, not in it: TF Serving watches export_dir and must see only
    # complete versions.
    with atomic_dir(target, overwrite=overwrite, stage_in=export_dir.parent) as tmp:
        module = OSMNServingModule(model)
        tf.saved_model.save(module, str(tmp), signatures=module.signatures())
        (tmp / METADATA_PATH).parent.mkdir(exist_ok=True)
        (tmp / METADATA_PATH).write_text(json.dumps(_metadata(model, version, source), indent=2))
        if verify:
            verify_export(tmp, model)
    return target
