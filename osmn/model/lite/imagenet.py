"""ImageNet initialisation of the lite model's two MobileNets (the original's `--base_model lite`
starts both from the ImageNet MobileNet v1).

Sources: `None` = `keras.applications.MobileNet(alpha=<the model's width>, include_top=False,
weights="imagenet")` (downloads on first use; a clear `UserError` offline), or a path to one of
Keras' MobileNet v1 weights files of the model's own width, with or without the classifier
(`mobilenet_2_5_224_tf_no_top.h5` for width 0.25, `mobilenet_5_0_...` for 0.5,
`mobilenet_7_5_...` for 0.75, `mobilenet_1_0_...` for 1.0). A file of another width is refused
in one line that names both widths. The stem, the 13 depthwise and pointwise convs and all
their batch norms are copied by Keras layer name into the segmentation network and the visual
modulator; the classifier, the gamma heads, the side/fusion convs and the spatial modulator keep
their init.

Input convention: the model is fed BGR minus mean like the VGG16 model (the original used one
input pipeline for every base model), while Keras' MobileNet was trained on RGB in [-1, 1].
Ours: the conversion is folded into the copied weights, so the ImageNet features see what they
were trained on. conv1's kernel takes the input channels in reverse order (BGR -> RGB), divided
by 127.5; the constant left over, conv1 applied to (mean_rgb / 127.5 - 1), is subtracted from
conv1_bn's moving mean (conv1 has no bias). This is exact away from the image border (the zero
padding of the stem's SAME conv stands for the mean colour instead of mid-grey). The original
fed BGR minus mean into the RGB [-1, 1] weights unchanged.
"""

from __future__ import annotations

import pathlib

import keras
import numpy as np

from osmn import config
from osmn.errors import UserError
from osmn.model.imagenet import ImagenetInitReport


def _keras_file_name(alpha: float) -> str:
    """Keras Applications' name of the no-top weights file of a width, e.g. 0.25 -> 2_5."""
    digits = {0.25: "2_5", 0.5: "5_0", 0.75: "7_5", 1.0: "1_0"}[alpha]
    return f"mobilenet_{digits}_{config.LITE_IMAGENET_SIZE}_tf_no_top.h5"


def _mobilenet(alpha: float, include_top: bool, weights=None) -> keras.Model:
    size = config.LITE_IMAGENET_SIZE
    return keras.applications.MobileNet(alpha=alpha, input_shape=(size, size, 3),
                                        include_top=include_top, weights=weights)


def _loads(path: pathlib.Path, alpha: float):
    """The Keras MobileNet of width `alpha` with the file's weights, or None if they don't fit."""
    for include_top in (False, True):
        net = _mobilenet(alpha, include_top)
        try:
            net.load_weights(path)
            return net
        except Exception:  # shape mismatch / layer count mismatch / not HDF5 (tried in turn)
            continue
    return None


def _keras_mobilenet(source, alpha: float) -> keras.Model:
    if source is None:
        try:
            return _mobilenet(alpha, include_top=False, weights="imagenet")
        except Exception as error:  # urllib / OSError / ValueError when offline.
            raise UserError(
                f"cannot download the Keras ImageNet MobileNet (width {alpha}) weights "
                f"({type(error).__name__}); pass the local file {_keras_file_name(alpha)}") \
                from error
    path = pathlib.Path(source)
    if not path.is_file():
        raise UserError(f"{path}: MobileNet weights file not found")
    net = _loads(path, alpha)
    if net is not None:
        return net
    for other in config.KERAS_MOBILENET_WIDTHS:
        if other != alpha and _loads(path, other) is not None:
            raise UserError(f"{path}: MobileNet v1 weights of width {other}, but the model has "
                            f"width_multiplier {alpha}; pass {_keras_file_name(alpha)}")
    raise UserError(f"{path}: not a Keras MobileNet v1 weights file")


def fold_input_convention(net: keras.Model) -> None:
    """Make a Keras MobileNet take BGR minus `config.MEAN_BGR` instead of RGB in [-1, 1] (in place).

    Args:
        net: `keras.applications.MobileNet` with layers `conv1` (bias-free) and `conv1_bn`.
    """
    conv, bn = net.get_layer("conv1"), net.get_layer("conv1_bn")
    kernel = conv.get_weights()[0]  # [3, 3, 3 (RGB), C]
    scale = config.KERAS_MOBILENET_INPUT_SCALE
    mean_rgb = np.asarray(config.MEAN_BGR[::-1], np.float32)
    offset = np.einsum("hwio,i->o", kernel, mean_rgb / scale - 1.0)  # [C]
    conv.set_weights([kernel[:, :, ::-1, :] / scale])
    gamma, beta, moving_mean, moving_variance = bn.get_weights()
    bn.set_weights([gamma, beta, moving_mean - offset, moving_variance])


def load_imagenet_mobilenet(model, source=None) -> ImagenetInitReport:
    """Copy the ImageNet MobileNet v1 of the model's width into a lite OSMN's MobileNets (in place).

    Args:
        model: `OSMN` with backbone "lite" and a width_multiplier Keras publishes weights for
            (`config.KERAS_MOBILENET_WIDTHS`).
        source: None (Keras download) or a path to the Keras weights `.h5` file of that width.

    Raises:
        UserError: wrong backbone or width, download failed, file missing, not MobileNet, or a
            MobileNet of another width (the message names both).
    """
    cfg = model.model_config
    if cfg.backbone != "lite":
        raise UserError(f"ImageNet MobileNet weights need backbone lite, the model has "
                        f"{cfg.backbone}")
    alpha = float(cfg.width_multiplier)
    if alpha not in config.KERAS_MOBILENET_WIDTHS:
        raise UserError(f"ImageNet MobileNet weights exist for width_multiplier "
                        f"{', '.join(map(str, config.KERAS_MOBILENET_WIDTHS))}; the model has "
                        f"{alpha}")
    net = _keras_mobilenet(source, alpha)
    fold_input_convention(net)
    copied = []
    for part_name in ("segmentation_network", "visual_modulator"):
        part = model.parts().get(part_name)
        if part is None:
            continue
        for layer in part.trunk.layers():
            layer.set_weights(net.get_layer(layer.name).get_weights())
            copied.extend(f"{part_name}/{layer.name}/{w.name}" for w in layer.weights)
    return ImagenetInitReport(str(source) if source else "keras download", tuple(copied))
