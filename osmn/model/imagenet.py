"""ImageNet VGG16 initialisation of both VGG16s of OSMN (stage 1, paper §3.5).

Spec (`original_code.md`, "Loss, optimisation, test loop"): the ImageNet VGG16 is copied into
both networks: the visual modulator gets conv1-5, fc6, fc7 (its fc8 keeps the zero-weight /
one-bias init, so every gamma still starts at 1), the segmentation network gets conv1-5. The
spatial modulator, the side convs and the fusion conv keep their random init.

Three sources give the same 13 convs + 2 fcs, converted here to one layout (HWIO kernels):

* `None`: `keras.applications.VGG16(weights="imagenet")` (downloads on first use);
* a path ending in `.h5`: the Keras application weights file
  (`vgg16_weights_tf_dim_ordering_tf_kernels.h5`), loaded into `VGG16(weights=None)`;
* anything else: a TF-slim `vgg_16` checkpoint prefix (`vgg_16.ckpt` of the TF-slim model zoo,
  the file the authors' README points to), read with `tf.train.load_checkpoint`.

Input convention: the original feeds BGR minus [104, 117, 123] to the ImageNet weights
regardless of the checkpoint's own convention (the TF-slim `vgg_16` was trained on RGB minus
[123.68, 116.78, 103.94]; the Keras weights on BGR minus [103.939, 116.779, 123.68]). We follow
the original: the model's input stays `osmn.preprocessing.to_model_input` for every source.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Dict, Tuple

import numpy as np
import keras
import tensorflow as tf

from osmn import config
from osmn.errors import UserError


@dataclasses.dataclass(frozen=True)
class ImagenetInitReport:
    """What `load_imagenet_vgg16` copied.

    Attributes:
        source: str. Where the weights came from ("keras download", a file or a prefix).
        copied: tuple of str. Paths of the OSMN variables that were overwritten, e.g.
            "segmentation_network/conv1_1/kernel", "visual_modulator/fc6/kernel".
    """

    source: str
    copied: Tuple[str, ...]

    def __str__(self) -> str:
        return f"copied {len(self.copied)} ImageNet VGG16 tensors from {self.source}"


def _vgg16_layer_names():
    """(OSMN layer name, Keras application layer name, TF-slim scope) of the 13 VGG16 convs."""
    names = []
    for block, depth in enumerate(config.VGG_BLOCK_DEPTHS, start=1):
        for i in range(1, depth + 1):
            names.append((f"conv{block}_{i}", f"block{block}_conv{i}",
                          f"vgg_16/conv{block}/conv{block}_{i}"))
    return names


def _fc_shapes(in_channels: int) -> Dict[str, Tuple[int, ...]]:
    """Conv-layout shapes of fc6 [7, 7, 512, 4096] and fc7 [1, 1, 4096, 4096] (full width)."""
    return {"fc6": (config.FC6_KERNEL, config.FC6_KERNEL, in_channels, config.FC_UNITS),
            "fc7": (1, 1, config.FC_UNITS, config.FC_UNITS)}


def _arrays_from_keras_vgg16(vgg: keras.Model) -> Dict[str, np.ndarray]:
    """Keras application VGG16 -> {"conv1_1/kernel": HWIO, ..., "fc6/kernel": [7,7,512,4096]}.

    Keras' `Flatten` on the channels-last pool5 output [B, 7, 7, 512] is a row-major reshape, so
    flat index = (h * 7 + w) * 512 + c: fc1's [25088, 4096] kernel reshaped row-major to
    [7, 7, 512, 4096] is exactly fc6 as a 7x7 VALID conv (tested numerically).
    """
    arrays = {}
    try:
        for ours, theirs, _ in _vgg16_layer_names():
            kernel, bias = vgg.get_layer(theirs).get_weights()
            arrays[f"{ours}/kernel"], arrays[f"{ours}/bias"] = kernel, bias
        last_channels = config.VGG_BLOCK_CHANNELS[-1]
        for ours, theirs in (("fc6", "fc1"), ("fc7", "fc2")):
            kernel, bias = vgg.get_layer(theirs).get_weights()
            arrays[f"{ours}/kernel"] = kernel.reshape(_fc_shapes(last_channels)[ours])
            arrays[f"{ours}/bias"] = bias
    except ValueError as error:  # a layer is missing, or a reshape does not fit
        raise UserError(f"not a full Keras VGG16 with its top layers: {error}") from error
    return arrays


def _keras_download() -> keras.Model:
    """The ImageNet VGG16 of keras.applications (downloads ~528 MB on first use)."""
    try:
        return keras.applications.VGG16(weights="imagenet")
    except Exception as error:  # Keras raises a plain Exception ("URL fetch failure ...")
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(
            f"downloading the Keras ImageNet VGG16 weights failed ({message}); pass a local "
            f"file instead: the Keras vgg16_weights_tf_dim_ordering_tf_kernels.h5 or a TF-slim "
            f"vgg_16.ckpt prefix") from error


def _keras_h5(path: pathlib.Path) -> keras.Model:
    if not path.exists():
        raise UserError(f"{path}: VGG16 weights file not found")
    vgg = keras.applications.VGG16(weights=None)
    try:
        vgg.load_weights(str(path))
    except Exception as error:  # h5py / Keras raise many types for a wrong file
        raise UserError(f"{path}: not a Keras VGG16 weights file ({type(error).__name__}: "
                        f"{str(error).splitlines()[0] if str(error) else ''})") from error
    return vgg


def _arrays_from_slim_checkpoint(prefix: str) -> Dict[str, np.ndarray]:
    """TF-slim `vgg_16` checkpoint -> the same dict as `_arrays_from_keras_vgg16`.

    slim names: `vgg_16/conv1/conv1_1/weights|biases` (HWIO), `vgg_16/fc6/weights`
    [7, 7, 512, 4096], `vgg_16/fc7/weights` [1, 1, 4096, 4096] (already conv-shaped).
    """
    try:
        reader = tf.train.load_checkpoint(prefix)
    except Exception as error:  # NotFoundError, DataLossError, ValueError
        raise UserError(f"{prefix}: not a readable TF checkpoint ({type(error).__name__})") \
            from error
    available = reader.get_variable_to_shape_map()
    scopes = [(ours, scope) for ours, _, scope in _vgg16_layer_names()]
    scopes += [("fc6", "vgg_16/fc6"), ("fc7", "vgg_16/fc7")]
    wanted = {f"{ours}/{kind}": f"{scope}/{slim}"
              for ours, scope in scopes for kind, slim in (("kernel", "weights"),
                                                           ("bias", "biases"))}
    missing = sorted(name for name in wanted.values() if name not in available)
    if missing:
        raise UserError(f"{prefix}: not a TF-slim vgg_16 checkpoint, missing "
                        f"{', '.join(missing)}")
    return {ours: reader.get_tensor(name) for ours, name in wanted.items()}


def imagenet_vgg16_arrays(source=None) -> Tuple[Dict[str, np.ndarray], str]:
    """Read ImageNet VGG16 weights from `source` (see the module docstring).

    Returns:
        ({"conv1_1/kernel": [3,3,3,64] float32, "conv1_1/bias": [64], ..., "fc6/kernel":
        [7,7,512,4096], "fc7/kernel": [1,1,4096,4096], ...}, description of the source).

    Raises:
        UserError: download failed, file missing or not VGG16 weights.
    """
    if source is None:
        return _arrays_from_keras_vgg16(_keras_download()), "keras.applications (ImageNet)"
    path = pathlib.Path(source)
    if path.suffix == ".h5":
        return _arrays_from_keras_vgg16(_keras_h5(path)), str(path)
    return _arrays_from_slim_checkpoint(str(source)), str(source)


def _targets(model) -> Dict[str, Dict[str, keras.Variable]]:
    """{OSMN part name: {"conv1_1/kernel": variable, ...}} for the tensors ImageNet provides."""
    targets = {}
    seg = model.segmentation_network
    targets["segmentation_network"] = {
        f"{conv.name}/{kind}": getattr(conv, kind)
        for conv in seg.trunk_layers() for kind in ("kernel", "bias")}
    vm = model.visual_modulator
    if vm is not None:
        layers = [conv for block in vm.conv_blocks for conv in block] + [vm.fc6, vm.fc7]
        targets["visual_modulator"] = {f"{layer.name}/{kind}": getattr(layer, kind)
                                       for layer in layers for kind in ("kernel", "bias")}
    return targets


def load_imagenet_vgg16(model, source=None) -> ImagenetInitReport:
    """Copy ImageNet VGG16 weights into both VGG16s of `model` (in place).

    Args:
        model: `osmn.model.OSMN` at width_multiplier 1.0. Without a visual modulator only the
            segmentation network is initialised.
        source: None (Keras download), a Keras `.h5` weights file, or a TF-slim `vgg_16`
            checkpoint prefix.

    Returns:
        `ImagenetInitReport` listing the copied variables (fc8 of the visual modulator, the
        spatial modulator, side convs and fusion conv are never touched).

    Raises:
        UserError: width multiplier is not 1.0, the source cannot be read (offline download,
            missing or wrong file), or a shape does not match.
    """
    width = model.model_config.width_multiplier
    if width != 1.0:
        raise UserError(f"ImageNet VGG16 weights need width_multiplier 1.0, the model has "
                        f"{width}")
    arrays, description = imagenet_vgg16_arrays(source)
    targets = _targets(model)
    # Check every shape before assigning anything, so a bad source leaves the model untouched.
    for part, variables in targets.items():
        for name, variable in variables.items():
            if tuple(arrays[name].shape) != tuple(variable.shape):
                raise UserError(f"{description}: {name} has shape {arrays[name].shape}, "
                                f"{part} needs {tuple(variable.shape)}")
    copied = []
    for part, variables in targets.items():
        for name, variable in variables.items():
            variable.assign(arrays[name].astype(variable.dtype))
            copied.append(f"{part}/{name}")
    return ImagenetInitReport(source=description, copied=tuple(copied))
