"""The authors' TF1 variable names and this project's Keras weights, as data.

Source: spec `original_code.md`, "Checkpoint variable names" (slim scopes of `model_func.py`:
`osmn`, `visual_modulator`, `modulated_conv_block`). Everything here is derived from a
`ModelConfig`, so the same table serves the default model, `mod_early_conv` and the ablations.

TF1 layouts equal Keras ones: conv kernels are HWIO in both, the transposed-conv kernels
[k, k, out, in] in both, so no tensor is transposed.

Keras paths are relative to the OSMN model (the model's own name is dropped):
"segmentation_network/conv1_1/kernel", "spatial_modulator/conv3_bn/gamma", ...
"""

from __future__ import annotations

from typing import Dict, Mapping, Tuple

import numpy as np

from osmn import config
from osmn.config import ModelConfig
from osmn.errors import UserError
from osmn.model.upsampling import bilinear_kernel

ROOT = "osmn"  # the original's outer scope (`model_func.py`: `osmn(..., scope='osmn')`)
SEG, MODULATOR, MODULATOR_SP = f"{ROOT}/seg", f"{ROOT}/modulator", f"{ROOT}/modulator_sp"
# slim parameter names -> Keras weight names.
_CONV = (("weights", "kernel"), ("biases", "bias"))
_BATCH_NORM = (("gamma", "gamma"), ("beta", "beta"), ("moving_mean", "moving_mean"),
               ("moving_variance", "moving_variance"))
# Saved by TF1 training but not part of the model; skipped by rule (see `skip_reason`).
TRAINING_SCALARS = ("global_step", "beta1_power", "beta2_power")
ADAM_SLOTS = ("Adam", "Adam_1")


def _vgg_convs():
    """(block, "conv{b}_{i}") of the 13 VGG16 convs, in order."""
    return [(block, f"conv{block}_{i}")
            for block, depth in enumerate(config.VGG_BLOCK_DEPTHS, start=1)
            for i in range(1, depth + 1)]


def _side_conv_names():
    """"conv2_2_16", "conv3_3_16", ...: the side convs on the last conv of each side block."""
    return [f"conv{b}_{config.VGG_BLOCK_DEPTHS[b - 1]}_16" for b in config.SIDE_OUTPUT_BLOCKS]


def _spatial_blocks(cfg: ModelConfig):
    """VGG blocks that get a spatial-modulator conv: 3, 4, 5 (1..5 with `mod_early_conv`)."""
    return sorted({int(name[len("conv")]) for name, _ in cfg.modulated_layers()})


def tf1_name_map(model_config) -> Dict[str, str]:
    """TF1 checkpoint name -> Keras weight path, for every weight of the OSMN model.

    Args:
        model_config: `ModelConfig` or dict of its fields.

    Returns:
        e.g. {"osmn/seg/conv1/conv1_1/weights": "segmentation_network/conv1_1/kernel",
              "osmn/seg/upscore-fuse/biases": "segmentation_network/upscore_fuse/bias",
              "osmn/modulator/fc8/weights": "visual_modulator/fc8/kernel",
              "osmn/modulator_sp/conv3/BatchNorm/gamma": "spatial_modulator/conv3_bn/gamma",
              ...}; the fixed upsampling kernels are not in it (see `fixed_upsampling_kernels`).
    """
    cfg = ModelConfig.of(model_config)
    names = {}
    for block, conv in _vgg_convs():
        for slim, keras_name in _CONV:
            names[f"{SEG}/conv{block}/{conv}/{slim}"] = f"segmentation_network/{conv}/{keras_name}"
    for side in _side_conv_names() + ["upscore-fuse"]:
        for slim, keras_name in _CONV:
            # slim scope "upscore-fuse"; Keras layer names cannot hold "-": "upscore_fuse".
            names[f"{SEG}/{side}/{slim}"] = \
                f"segmentation_network/{side.replace('-', '_')}/{keras_name}"
    if cfg.use_visual_modulator:
        layers = [(f"conv{block}/{conv}", conv) for block, conv in _vgg_convs()]
        layers += [(fc, fc) for fc in ("fc6", "fc7", "fc8")]
        for scope, layer in layers:
            for slim, keras_name in _CONV:
                names[f"{MODULATOR}/{scope}/{slim}"] = f"visual_modulator/{layer}/{keras_name}"
    if cfg.use_spatial_modulator:
        for block in _spatial_blocks(cfg):
            # Bias-free 1x1 conv followed by slim.batch_norm (scope ".../BatchNorm").
            names[f"{MODULATOR_SP}/conv{block}/weights"] = f"spatial_modulator/conv{block}/kernel"
            for slim, keras_name in _BATCH_NORM:
                names[f"{MODULATOR_SP}/conv{block}/BatchNorm/{slim}"] = \
                    f"spatial_modulator/conv{block}_bn/{keras_name}"
    return names


def fixed_upsampling_kernels() -> Dict[str, np.ndarray]:
    """TF1 name -> the bilinear kernel the original sets with `interp_surgery`.

    `osmn/seg/score-multi{2..5}-up/weights`: [2s, 2s, 16, 16] for strides s = 2, 4, 8, 16.
    They are present in some of the authors' checkpoints and absent in others; ours are
    constants of `BilinearUpsampling`, so they are checked, never loaded.
    """
    return {f"{SEG}/score-multi{b}-up/weights":
            bilinear_kernel(2 * 2 ** (b - 1), config.SIDE_OUTPUT_CHANNELS)
            for b in config.SIDE_OUTPUT_BLOCKS}


def skip_reason(name: str, model_names) -> str:
    """Why a checkpoint variable that is not a model weight may be skipped, or "" if not.

    Only training state is skipped: `global_step`, Adam's `beta1_power`/`beta2_power`, and the
    Adam slots `<var>/Adam`, `<var>/Adam_1` of a variable the model has.
    """
    if name in TRAINING_SCALARS:
        return "training state"
    base, _, slot = name.rpartition("/")
    if slot in ADAM_SLOTS and base in model_names:
        return "Adam slot"
    return ""


def infer_model_config(shapes: Mapping[str, Tuple[int, ...]], **overrides) -> ModelConfig:
    """Architecture of a TF1 checkpoint, read from its variable names and shapes.

    * width multiplier: channels of `osmn/seg/conv1/conv1_1/weights` / 64 (1.0 for the
      authors' files; only shapes are used, then every shape is checked by the converter);
    * `use_visual_modulator` / `use_spatial_modulator`: whether any `osmn/modulator/` /
      `osmn/modulator_sp/` variable exists;
    * `mod_early_conv`: a spatial `conv1` exists, or fc8 has the early-layer gamma size
      (4224 instead of 3840 at full width).

    Args:
        shapes: checkpoint name -> shape (`CheckpointReader.get_variable_to_shape_map()`).
        **overrides: `ModelConfig` fields that win over the inference (e.g. train_seg, fix_bn,
            which a checkpoint does not record).

    Raises:
        UserError: the checkpoint has no `osmn/seg/conv1/conv1_1/weights` of rank 4.
    """
    first = f"{SEG}/conv1/conv1_1/weights"
    if first not in shapes or len(shapes[first]) != 4:
        raise UserError(f"not an OSMN checkpoint: no 4-D variable {first}")
    values = {"width_multiplier": shapes[first][-1] / config.VGG_BLOCK_CHANNELS[0],
              "use_visual_modulator": any(n.startswith(MODULATOR + "/") for n in shapes),
              "use_spatial_modulator": any(n.startswith(MODULATOR_SP + "/") for n in shapes)}
    early = f"{MODULATOR_SP}/conv1/weights" in shapes
    fc8 = shapes.get(f"{MODULATOR}/fc8/biases")
    if fc8:
        early_size = ModelConfig(width_multiplier=values["width_multiplier"],
                                 mod_early_conv=True).gamma_size
        early = early or tuple(fc8) == (early_size,)
    values["mod_early_conv"] = early
    values.update(overrides)
    return ModelConfig.from_dict(values)
