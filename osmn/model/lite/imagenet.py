"""ImageNet initialisation of the lite model's two MobileNets (the original's `--base_model lite`
starts both from the ImageNet MobileNet v1, width 1.0, 224).

Sources: `None` = `keras.applications.MobileNet(alpha=1.0, input 224, weights="imagenet")`
(downloads on first use; a clear `UserError` offline), or a path to that model's weights file
(`mobilenet_1_0_224_tf.h5`). The stem, the 13 depthwise and pointwise convs and all their batch
norms are copied by Keras layer name into the segmentation network and the visual modulator;
the classifier, the gamma heads, the side/fusion convs and the spatial modulator keep their
init. Input convention: the model is fed BGR minus mean like the VGG16 model (as the original,
which used one input pipeline for every base model), not Keras MobileNet's RGB in [-1, 1].
"""

from __future__ import annotations

import pathlib

import keras

from osmn import config
from osmn.errors import UserError
from osmn.model.imagenet import ImagenetInitReport


def _keras_mobilenet(source) -> keras.Model:
    size = config.LITE_IMAGENET_SIZE
    if source is None:
        try:
            return keras.applications.MobileNet(
                alpha=1.0, input_shape=(size, size, 3), weights="imagenet")
        except Exception as error:  # urllib / OSError / ValueError when offline.
            raise UserError(
                "cannot download the Keras ImageNet MobileNet weights "
                f"({type(error).__name__}); pass the local mobilenet_1_0_224_tf.h5 file") \
                from error
    path = pathlib.Path(source)
    if not path.exists():
        raise UserError(f"{path}: MobileNet weights file not found")
    net = keras.applications.MobileNet(alpha=1.0, input_shape=(size, size, 3), weights=None)
    try:
        net.load_weights(path)
    except Exception as error:
        raise UserError(f"{path}: not a Keras MobileNet (alpha 1.0) weights file "
                        f"({type(error).__name__})") from error
    return net


def load_imagenet_mobilenet(model, source=None) -> ImagenetInitReport:
    """Copy the ImageNet MobileNet v1 into a lite OSMN's MobileNets (in place).

    Args:
        model: `OSMN` with backbone "lite" and width_multiplier 1.0.
        source: None (Keras download) or a path to the Keras weights `.h5` file.

    Raises:
        UserError: wrong backbone or width, download failed, file missing or not MobileNet.
    """
    cfg = model.config_
    if cfg.backbone != "lite" or cfg.width_multiplier != 1.0:
        raise UserError("ImageNet MobileNet weights need backbone lite and width_multiplier "
                        f"1.0, the model has {cfg.backbone} at {cfg.width_multiplier}")
    net = _keras_mobilenet(source)
    copied = []
    for part_name in ("segmentation_network", "visual_modulator"):
        part = model.parts().get(part_name)
        if part is None:
            continue
        for layer in part.trunk.layers():
            layer.set_weights(net.get_layer(layer.name).get_weights())
            copied.extend(f"{part_name}/{layer.name}/{w.name}" for w in layer.weights)
    return ImagenetInitReport(str(source) if source else "keras download", tuple(copied))
