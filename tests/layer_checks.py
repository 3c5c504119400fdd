"""The shared checks: one every Keras layer of the project goes through (STYLE.md habit 4), and
one for the TF ops the input pipeline runs.

`check_layer(make_layer, args)`:
* config round trip: `from_config(get_config())` has the same config;
* eager call == `tf.function` call;
* serialization round trip with copied weights gives identical outputs;
* under the `mixed_bfloat16` policy the layer runs, keeps float32 variables and returns the
  expected dtype (bfloat16 compute, or float32 where the layer promises float32 outputs).

`eager_and_mapped(fn, *args)`: fn run eagerly and inside `tf.data.Dataset.map` (graph mode, as
the input pipeline runs it) gives exactly the same outputs; `in_dataset_map` runs the second.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def _as_list(outputs):
    if isinstance(outputs, dict):
        return [outputs[k] for k in sorted(outputs)]
    if isinstance(outputs, (list, tuple)):
        return list(outputs)
    return [outputs]


def _assert_close(a, b, atol=1e-6):
    for x, y in zip(_as_list(a), _as_list(b)):
        np.testing.assert_allclose(np.asarray(x, np.float32), np.asarray(y, np.float32),
                                   atol=atol, rtol=1e-5)


def check_layer(make_layer, args, kwargs=None, low_precision_output_dtype="bfloat16"):
    """Run the shared layer checks. Returns the float32 layer's outputs.

    Args:
        make_layer: callable returning a fresh layer (called under different dtype policies).
        args: positional call arguments (tensors).
        kwargs: keyword call arguments.
        low_precision_output_dtype: dtype expected from the layer under mixed_bfloat16.
    """
    kwargs = kwargs or {}
    layer = make_layer()
    eager = layer(*args, **kwargs)

    # Config round trip.
    clone = layer.__class__.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()

    # Graph == eager.
    graph = tf.function(lambda *a: layer(*a, **kwargs))(*args)
    _assert_close(eager, graph)

    # Serialization round trip with copied weights gives identical outputs.
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    restored(*args, **kwargs)
    restored.set_weights(layer.get_weights())
    _assert_close(eager, restored(*args, **kwargs), atol=0)

    # Mixed bfloat16: float32 variables, low-precision compute.
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        low = make_layer()
        low_out = low(*args, **kwargs)
        assert all(v.dtype == "float32" for v in low.weights)
        for tensor in _as_list(low_out):
            assert tensor.dtype == low_precision_output_dtype, tensor.dtype
    finally:
        keras.config.set_dtype_policy("float32")
    return eager


def in_dataset_map(fn, *args):
    """fn(*args) run as a `tf.data.Dataset.map` function on one element; returns its output."""
    ds = tf.data.Dataset.from_tensors(tuple(tf.convert_to_tensor(a) for a in args))
    return next(iter(ds.map(lambda *a: fn(*a))))


def eager_and_mapped(fn, *args):
    """fn(*args) run eagerly and inside `Dataset.map`; asserts both agree exactly and returns
    the eager output."""
    eager = fn(*args)
    mapped = in_dataset_map(fn, *args)
    tf.nest.map_structure(lambda a, b: np.testing.assert_array_equal(a.numpy(), b.numpy()),
                          eager, mapped)
    return eager


def randomize_weights(model, seed=0, scale=0.05):
    """Give every weight a non-trivial value so that tests can see each path."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if "moving_variance" in w.path:
            w.assign(rng.uniform(0.5, 1.5, w.shape).astype(np.float32))
        else:
            w.assign(rng.normal(0, scale, w.shape).astype(np.float32))
