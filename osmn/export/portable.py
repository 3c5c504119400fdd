"""What the LiteRT and ONNX exports share: the two halves, test inputs, the Keras reference, and
writing an export folder atomically.

The halves are the SavedModel's `gamma` and `segment` signatures (`OSMNServingModule`), so
every format takes the same inputs (RGB float32 0..255, converted inside) and gives the same
outputs:

    gamma     visual_guide [B,224,224,3] -> gamma [B,G]
    segment   image [B|1,H,W,3], spatial_guide [B,H,W,1], gamma [B,G] -> probability [B,H,W,1]
"""

from __future__ import annotations

import json
import pathlib
from typing import Callable, Dict

import numpy as np
import tensorflow as tf

from osmn import config
from osmn.io import atomic_dir
from osmn.export.serving_module import OSMNServingModule
from osmn.preprocessing import to_model_input

HALVES = ("gamma", "segment")
# Input names of each half, in the order of its signature.
INPUTS = {"gamma": ("visual_guide",), "segment": ("image", "spatial_guide", "gamma")}
OUTPUTS = {"gamma": "gamma", "segment": "probability"}
METADATA_NAME = "osmn_export.json"


def halves(model) -> Dict[str, tf.types.experimental.ConcreteFunction]:
    """{"gamma": concrete function, "segment": ...} of `OSMNServingModule(model)`.

    The module is kept alive by the returned functions (`.module` attribute on the dict).
    """
    module = OSMNServingModule(model)
    functions = _Halves({name: getattr(module, name).get_concrete_function() for name in HALVES})
    functions.module = module
    return functions


class _Halves(dict):
    module = None


def sample_inputs(gamma_size: int, height: int = 64, width: int = 96, objects: int = 2,
                  seed: int = 0) -> Dict[str, Dict[str, np.ndarray]]:
    """Random inputs of both halves (float32, RGB 0..255; guide in [0, 1]; gamma around 1).

    The image has batch 1 (one frame shared by `objects` objects), as a video runs it.
    """
    rng = np.random.default_rng(seed)
    size = config.VISUAL_GUIDE_SIZE
    return {
        "gamma": {"visual_guide": rng.uniform(0, 255, (objects, size, size, 3))
                     .astype(np.float32)},
        "segment": {"image": rng.uniform(0, 255, (1, height, width, 3)).astype(np.float32),
                    "spatial_guide": rng.uniform(0, 1, (objects, height, width, 1))
                    .astype(np.float32),
                    "gamma": rng.uniform(0.5, 1.5, (objects, gamma_size)).astype(np.float32)},
    }


def keras_reference(model, inputs) -> Dict[str, np.ndarray]:
    """What each half must return, from the Keras model (inference mode).

    Returns:
        {"gamma": gamma [B, G], "segment": probability [B, H, W, 1]}, float32 numpy.
    """
    gamma = model.gamma(to_model_input(inputs["gamma"]["visual_guide"]), training=False)
    return {"gamma": np.asarray(tf.cast(gamma, tf.float32)),
            "segment": _segment_reference(model, inputs["segment"])}


def _segment_reference(model, seg) -> np.ndarray:
    """sigmoid(model.segment(...)) broadcast to [B, H, W, 1] (an image of batch 1 is shared)."""
    logits = model.segment(to_model_input(seg["image"]),
                           tf.convert_to_tensor(seg["spatial_guide"]),
                           tf.convert_to_tensor(seg["gamma"]), training=False)
    probability = tf.sigmoid(tf.cast(logits, tf.float32))
    shape = seg["spatial_guide"].shape
    return np.broadcast_to(probability.numpy(), shape[:3] + (1,)).astype(np.float32)


def compare(run: Callable[[str, dict], np.ndarray], model, inputs=None) -> Dict[str, float]:
    """Max abs difference of each half (`run(half, inputs) -> output`) against Keras."""
    inputs = inputs or sample_inputs(model.gamma_size)
    expected = keras_reference(model, inputs)
    return {half: float(np.max(np.abs(run(half, inputs[half]) - expected[half])))
            for half in HALVES}


def metadata(model, export_format: str, files: dict, source, differences: dict) -> dict:
    return {
        "format": export_format,
        "source_checkpoint": source,
        "model_config": model.model_config.to_dict(),
        "gamma_size": int(model.gamma_size),
        "files": files,
        "inputs": {half: list(INPUTS[half]) for half in HALVES},
        "outputs": OUTPUTS,
        "image_convention": "RGB float32 0..255; converted inside to BGR minus mean "
                            f"{list(config.MEAN_BGR)}",
        "visual_guide_size": config.VISUAL_GUIDE_SIZE,
        "mask_threshold": config.MASK_THRESHOLD,
        "max_abs_difference_vs_keras": differences,
        "tensorflow_version": tf.__version__,
    }


def write_folder(target, write: Callable[[pathlib.Path], dict], overwrite: bool = False):
    """Fill a hidden temp folder beside `target` with `write(tmp) -> metadata`, then rename it
    to `target` (the previous folder is replaced only with `overwrite`).

    Raises:
        UserError: `target` exists without `overwrite`, or its parent is not writable.
    """
    target = pathlib.Path(target)
    with atomic_dir(target, overwrite=overwrite) as tmp:
        info = write(tmp)
        (tmp / METADATA_NAME).write_text(json.dumps(info, indent=2))
    return target
