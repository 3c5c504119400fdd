"""Helpers shared by the benchmark scripts: the machine record, the ceiling models, random
weights and inputs, result files."""

from __future__ import annotations

import json
import os
import pathlib
import platform
import re
import sys
import time

import keras
import numpy as np
from absl import app, flags
import tensorflow as tf

from flops import keras_conv_macs
from osmn.errors import UserError
from osmn.io import atomic_write
from osmn.kernels.cpu import cpu_flags, cpu_model
from osmn.precision import dtype_policy


QUICK_WIDTH = 1 / 16  # --quick: the tests' tiny width.


# --- machine ---------------------------------------------------------------------------------

def cpu_info() -> dict:
    flags = cpu_flags()
    return {
        "cpu_model": cpu_model(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "amx_bf16": "amx_bf16" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "avx512f": "avx512f" in flags,
    }


def environment() -> dict:
    from tensorflow.python.util import _pywrap_util_port  # noqa: PLC0415 (TF internal)
    return {**cpu_info(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "python": platform.python_version(),
            "onednn_built": bool(_pywrap_util_port.IsMklEnabled()),
            "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset (on)"),
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
            "load_average_start": list(os.getloadavg()),
            "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def host_tag(env: dict, quick: bool) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", re.sub(r"\(R\)|\(TM\)|CPU|Processor", "",
                                              env["cpu_model"]).lower()).strip("-")
    return f"{slug}-{env['cores']}c{'-amx' if env['amx_bf16'] else ''}{'-quick' if quick else ''}"


# --- models ----------------------------------------------------------------------------------

def he_randomize(model, seed: int = 0) -> None:
    """Conv kernels ~ N(0, 2 / fan_in), biases 0.01: activations of order one at every depth."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if len(w.shape) == 4:
            fan_in = int(np.prod(w.shape[:3]))
            w.assign(rng.normal(0, np.sqrt(2.0 / fan_in), w.shape).astype(np.float32))
        elif "moving_variance" in w.path or w.path.endswith("gamma"):
            w.assign(np.ones(w.shape, np.float32))
        else:
            w.assign(np.full(w.shape, 0.01, np.float32))


def bare_trunk(precision: str):
    """keras.applications.VGG16 conv trunk at `precision`, as a traced function of the image."""
    with dtype_policy(precision):
        vgg = keras.applications.VGG16(include_top=False, weights=None,
                                       input_shape=(None, None, 3))
    return tf.function(lambda image: vgg(image),
                       input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)])


def trunk_macs(height: int, width: int) -> int:
    vgg = keras.applications.VGG16(include_top=False, weights=None,
                                   input_shape=(height, width, 3))
    return keras_conv_macs(vgg)


def frame_inputs(k: int, height: int, width: int, seed: int = 0):
    """A random image [1, H, W, 3] (std 60, like BGR minus mean) and K Gaussian guides."""
    rng = np.random.default_rng(seed)
    image = tf.constant(rng.normal(0, 60, (1, height, width, 3)), tf.float32)
    yy, xx = np.mgrid[:height, :width]
    guides = np.stack([np.exp(-((yy - height * (0.3 + 0.1 * i)) ** 2
                                + (xx - width * (0.3 + 0.1 * i)) ** 2) / (0.05 * height * width))
                       for i in range(k)])[..., None]
    return image, tf.constant(guides, tf.float32)


# --- result files -----------------------------------------------------------------------------

def write_json(result: dict, path) -> pathlib.Path:
    """Write `result` as JSON to `path` (str or path; its folder is created) atomically
    (`osmn.io.atomic_write`: readers see the old file or the new one, never half of it).
    Returns the path."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(result, indent=1, sort_keys=False))
    return path


# --- entry point ------------------------------------------------------------------------------

def _parse_flags(argv):
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        raise UserError(f"bad flag: {error}") from None


def entry(main_fn):
    """Run `main_fn` under absl; a UserError becomes one line on stderr and exit code 2."""
    try:
        app.run(main_fn, flags_parser=_parse_flags)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
