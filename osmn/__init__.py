"""osmn-tf: Efficient Video Object Segmentation via Network Modulation (Yang et al., CVPR 2018)
in TensorFlow 2 / Keras 3.

The model lives in `osmn.model`, the guides in `osmn.guides`, every number in `osmn.config`.
"""

__version__ = "0.1.0"
