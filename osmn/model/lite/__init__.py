"""The lite variant of OSMN (the original's `--base_model lite`): MobileNet v1 parts.

Chosen with `ModelConfig(backbone="lite")`; `osmn.model.OSMN` builds these instead of the VGG16
parts. See docs/lite_and_portable.md.
"""

from osmn.model.lite.imagenet import load_imagenet_mobilenet
from osmn.model.lite.mobilenet import MobileNetTrunk, pad_to_multiple, resize_bilinear_tf1
from osmn.model.lite.segmentation_network import LiteSegmentationNetwork
from osmn.model.lite.spatial_modulator import LiteSpatialModulator
from osmn.model.lite.visual_modulator import LiteVisualModulator

__all__ = ["LiteSegmentationNetwork", "LiteSpatialModulator", "LiteVisualModulator",
           "MobileNetTrunk", "load_imagenet_mobilenet", "pad_to_multiple", "resize_bilinear_tf1"]
