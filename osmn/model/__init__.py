"""The OSMN network: modulation layers, the two modulators, the segmentation network."""

from osmn.model.loading import load_osmn, save_osmn
from osmn.model.modulation import ChannelScale, SpatialBias
from osmn.model.osmn_model import OSMN
from osmn.model.segmentation_network import SegmentationNetwork
from osmn.model.spatial_modulator import SpatialModulator
from osmn.model.upsampling import BilinearUpsampling, bilinear_kernel, crop_offset
from osmn.model.visual_modulator import VisualModulator

__all__ = ["OSMN", "load_osmn", "save_osmn", "ChannelScale", "SpatialBias", "SegmentationNetwork", "SpatialModulator",
           "VisualModulator", "BilinearUpsampling", "bilinear_kernel", "crop_offset"]
