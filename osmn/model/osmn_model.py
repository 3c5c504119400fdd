"""OSMN: the segmentation network adapted by a visual and a spatial modulator (paper Fig. 2).

    visual guide [B,224,224,3] --VisualModulator--> gamma [B, 3840]   (once per object)
    spatial guide [B,H,W,1] --SpatialModulator--> betas per layer     (every frame)
    image [B,H,W,3] --SegmentationNetwork(gamma, betas)--> logits [B,H,W,1]

The two halves are exposed separately so that a video runs the visual modulator once per object
and only `segment` per frame (paper §4.1.1).
"""

from __future__ import annotations

import keras
from keras import ops

from osmn.config import ModelConfig
from osmn.model.lite.segmentation_network import LiteSegmentationNetwork
from osmn.model.lite.spatial_modulator import LiteSpatialModulator
from osmn.model.lite.visual_modulator import LiteVisualModulator
from osmn.model.segmentation_network import SegmentationNetwork
from osmn.model.spatial_modulator import SpatialModulator
from osmn.model.visual_modulator import VisualModulator

# ModelConfig.backbone -> (visual modulator, spatial modulator, segmentation network) classes.
_PARTS = {
    "vgg16": (VisualModulator, SpatialModulator, SegmentationNetwork),
    "lite": (LiteVisualModulator, LiteSpatialModulator, LiteSegmentationNetwork),
}


@keras.saving.register_keras_serializable(package="osmn")
class OSMN(keras.Model):
    """The OSMN model (Yang et al., CVPR 2018, https://arxiv.org/abs/1802.01218).

    Args:
        model_config: `ModelConfig` or dict of its fields (width multiplier, ablation switches,
            early-layer modulation, fix_seg, fix_bn). Defaults to the paper's model.

    Call args:
        inputs: dict with
            "image": [B, H, W, 3] float32, BGR minus mean (see `osmn.preprocessing`);
            "visual_guide": [B, 224, 224, 3] float32, same convention, background 0;
            "spatial_guide": [B, H, W, 1] float32 Gaussian in [0, 1].
        training: bool.

    Returns:
        logits: [B, H, W, 1] float32 (sigmoid for the foreground probability).

    Example:
    >>> model = OSMN({"width_multiplier": 0.0625})
    >>> gamma = model.gamma(keras.ops.zeros((1, 224, 224, 3)))
    >>> model.segment(keras.ops.zeros((1, 33, 47, 3)), keras.ops.zeros((1, 33, 47, 1)),
    ...               gamma).shape
    TensorShape([1, 33, 47, 1])
    """

    def __init__(self, model_config=None, **kwargs):
        super().__init__(**kwargs)
        self.model_config = ModelConfig.of(model_config)
        cfg = self.model_config
        visual, spatial, segmentation = _PARTS[cfg.backbone]
        self.visual_modulator = (visual(cfg, name="visual_modulator")
                                 if self.model_config.use_visual_modulator else None)
        self.spatial_modulator = (spatial(cfg, name="spatial_modulator")
                                  if self.model_config.use_spatial_modulator else None)
        self.segmentation_network = segmentation(cfg, name="segmentation_network")
        # Every weight's shape is known without data: build now so that weights can be loaded
        # into a fresh model and counted before any call.
        self.build()

    def build(self, input_shape=None):
        for part in self.parts().values():
            part.build()
        self.built = True

    def parts(self) -> dict:
        """The named sub-networks present in this model (ablations drop one)."""
        parts = {"segmentation_network": self.segmentation_network}
        if self.visual_modulator is not None:
            parts["visual_modulator"] = self.visual_modulator
        if self.spatial_modulator is not None:
            parts["spatial_modulator"] = self.spatial_modulator
        return parts

    @property
    def gamma_size(self) -> int:
        return self.model_config.gamma_size

    def gamma(self, visual_guide, training=False):
        """Visual guide [B, 224, 224, 3] -> gamma [B, G]; all ones without a visual modulator."""
        if self.visual_modulator is None:
            return ops.ones((ops.shape(visual_guide)[0], self.gamma_size), self.compute_dtype)
        if self.model_config.backbone == "lite":  # MobileNet batch norm follows `fix_bn`.
            training = self._bn_training(training)
        return self.visual_modulator(visual_guide, training=training)  # VGG16: dropout only.

    def _bn_training(self, training) -> bool:
        """Batch norm in training mode: when training and not `fix_bn`."""
        return bool(training) and not self.model_config.fix_bn

    def spatial_biases(self, spatial_guide, training=False):
        """Spatial guide [B, H, W, 1] -> {layer name: beta}, or None without a spatial modulator.

        Batch norm uses batch statistics only when training and not `fix_bn`.
        """
        if self.spatial_modulator is None:
            return None
        return self.spatial_modulator(spatial_guide, training=self._bn_training(training))

    def segment(self, image, spatial_guide, gamma, training=False):
        """Image [B, H, W, 3], spatial guide [B, H, W, 1], gamma [B, G] -> logits [B, H, W, 1].

        B of the image may be 1 with K guides and gammas: the frame is then shared by the K
        objects and the layers before the first modulation run once (batch broadcasting).
        """
        betas = self.spatial_biases(spatial_guide, training=training)
        gamma = gamma if self.visual_modulator is not None else None
        if self.model_config.backbone == "lite":  # MobileNet has batch norm; VGG16 has none.
            return self.segmentation_network(image, gamma, betas,
                                             training=self._bn_training(training))
        return self.segmentation_network(image, gamma, betas)

    def call(self, inputs, training=False):
        gamma = self.gamma(inputs["visual_guide"], training=training)
        return self.segment(inputs["image"], inputs["spatial_guide"], gamma, training=training)

    def decayed_kernels(self):
        """Every kernel the original decays (slim `l2_regularizer`), frozen ones included."""
        return [k for part in self.parts().values() for k in part.kernels()]

    def weight_decay_loss(self):
        """The original's weight decay on `decayed_kernels()`, with this backbone's coefficient."""
        from osmn.losses import weight_decay  # noqa: PLC0415 (losses is not part of the model)
        return weight_decay(self.decayed_kernels(), self.model_config.weight_decay_l2)

    def get_config(self):
        return {**super().get_config(), "model_config": self.model_config.to_dict()}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
