"""Random weights of a realistic scale, for comparing exports and variants of a model.

A fresh OSMN is a poor test subject: its gammas are all exactly 1 (zero-weight heads) and its
N(0, 0.001) convs give logits of ~0, so every runtime returns probability 0.5 and any two
exports agree. These weights make gamma vary around 1 and spread the probabilities over (0, 1).
"""

import numpy as np
import tensorflow as tf

from osmn.export import portable


def randomize(model, seed: int = 0, keep=()):
    """Kernels ~ N(0, 1/fan_in), biases ~ N(0, 0.1) (gamma heads 1 + that), batch norm moving
    variance U(0.5, 1.5), gamma U(0.5, 1.5); parts named in `keep` are left alone. Then the
    fusion conv is rescaled so the logits on `portable.sample_inputs` have std 2."""
    rng = np.random.default_rng(seed)
    for name, part in model.parts().items():
        if name in keep:
            continue
        for v in part.weights:
            shape, path = tuple(v.shape), v.path
            if path.endswith(("kernel", "depthwise_kernel")):
                fan_in = int(np.prod(shape[:-1])) if "depthwise" not in path else 9
                value = rng.normal(0, 1 / np.sqrt(fan_in), shape)
            elif path.endswith(("moving_variance", "gamma")):
                value = rng.uniform(0.5, 1.5, shape)
            else:
                value = rng.normal(0, 0.1, shape)
                if name == "visual_modulator" and path.endswith("bias"):
                    value += 1.0
            v.assign(value.astype(np.float32))
    first = model.parts()["segmentation_network"].trunk.stem if hasattr(
        model.parts()["segmentation_network"], "trunk") else None
    if first is not None:  # inputs are ~+-100 (BGR minus mean): keep the first layer sane.
        first.kernel.assign(first.kernel / 100.0)
    inputs = portable.sample_inputs(model.gamma_size, seed=seed)["segment"]
    seg = model.parts()["segmentation_network"]
    logits = model.segment(tf.constant(inputs["image"]) - 120.0, inputs["spatial_guide"],
                           inputs["gamma"])
    scale = 2.0 / max(float(tf.math.reduce_std(logits)), 1e-6)
    seg.fuse.kernel.assign(seg.fuse.kernel * scale)
    seg.fuse.bias.assign(seg.fuse.bias * scale)
    return model
