"""Multiply-add counts of the convolutions, counted from the layer sizes (no profiler).

A k x k conv from C_in to C_out channels producing an h x w map costs h * w * k * k * C_in *
C_out multiply-adds (MACs); 1 MAC = 2 FLOPs. Pools, element-wise ops, the modulation and the
(separable) bilinear upsampling are not counted: "conv GFLOP/s" is conv work per second.
"""

from __future__ import annotations

import math

import keras

from osmn import config
from osmn.config import ModelConfig
from osmn.inference.engine import inference_head


def conv_macs(height: int, width: int, kernel: int, channels_in: int, channels_out: int) -> int:
    return height * width * kernel * kernel * channels_in * channels_out


def segmentation_macs(model_config, height: int, width: int) -> dict:
    """Conv MACs of one segmentation pass of OSMN at height x width.

    Args:
        model_config: `ModelConfig` or dict of its fields.

    Returns:
        {"shared": MACs computed once per frame (every conv before the first modulation, as
         `OSMN.segment_objects` runs them), "per_object": MACs computed once per object
         (the modulated layers, their side outputs, the spatial modulator's 1x1 convs)}.
        K objects cost shared + K * per_object; the plain FCN (no modulation) is all shared.
    """
    cfg = ModelConfig.of(model_config)
    modulated = dict(cfg.modulated_layers()) if (
        cfg.use_visual_modulator or cfg.use_spatial_modulator) else {}
    counts = {"shared": 0, "per_object": 0}
    channels_in, seen_modulation = 3, False
    for block, (depth, channels) in enumerate(
            zip(config.VGG_BLOCK_DEPTHS, cfg.block_channels()), start=1):
        h = math.ceil(height / 2 ** (block - 1))  # SAME pools: ceil.
        w = math.ceil(width / 2 ** (block - 1))
        for i in range(1, depth + 1):
            # A conv is per object once its input depends on the object.
            counts["per_object" if seen_modulation else "shared"] += conv_macs(
                h, w, 3, channels_in, channels)
            channels_in = channels
            if f"conv{block}_{i}" in modulated:
                seen_modulation = True
                if cfg.use_spatial_modulator:
                    counts["per_object"] += conv_macs(h, w, 1, 1, channels)
        if block in config.SIDE_OUTPUT_BLOCKS:
            # Inference computes the side conv and its 16 -> 1 fusion rows folded into a 1x1
            # product to the 9 kernel taps (osmn/inference/engine/inference_head.py); the shifted
            # sum of the taps is additions only.
            side = conv_macs(h, w, 1, channels, inference_head.TAPS)
            counts["per_object" if seen_modulation else "shared"] += side
    return counts


def objects_macs(counts: dict, objects: int) -> int:
    return counts["shared"] + objects * counts["per_object"]


def keras_conv_macs(model: keras.Model) -> int:
    """Conv MACs of a built functional Keras model with a fully known input shape."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            k_h, k_w, c_in, _ = layer.kernel.shape
            total += h * w * k_h * k_w * c_in * c_out
    return total
