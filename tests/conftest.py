"""Shared fixtures: small model configurations, fixed seeds, paths to the shipped sample data."""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
DATA = REPO / "data"
DAVIS_SAMPLE = DATA / "davis_sample"
SAMPLE_SEQUENCE = "car-shadow"
# A narrow network of the real structure: 4, 8, 16, 32, 32 channels, fc 256, gamma 240.
TINY_WIDTH = 1 / 16


@pytest.fixture(autouse=True)
def _fixed_seeds():
    # Imported here, not at the top: under pytest-xdist the controller process loads this file
    # but runs no test, and TF's start-up lines would be printed after the summary line.
    import keras  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    keras.utils.set_random_seed(0)
    np.random.seed(0)
    tf.random.set_seed(0)
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture
def tiny_config():
    return {"width_multiplier": TINY_WIDTH}


@pytest.fixture
def davis_sample():
    return DAVIS_SAMPLE
