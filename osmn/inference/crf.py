"""Dense-CRF post-processing of a thresholded mask (the original's `--use_crf`, Table 3 "+ CRF").

Needs the optional package `pydensecrf2` (`pip install pydensecrf2`). Parameters are the
original's (config.CRF_*; spec "Loss, optimisation, test loop").
"""

from __future__ import annotations

import numpy as np

from osmn import config
from osmn.errors import UserError


def _densecrf():
    try:
        import pydensecrf.densecrf as dcrf  # noqa: PLC0415 (optional dependency)
        from pydensecrf.utils import unary_from_labels  # noqa: PLC0415
    except ImportError as error:
        raise UserError("--crf needs the optional package pydensecrf2: "
                        "pip install pydensecrf2") from error
    return dcrf, unary_from_labels


class DenseCrf:
    """Refine a binary mask with a fully connected CRF on the frame's colours.

    Unary: the thresholded mask with certainty 0.9; pairwise: a Gaussian (sxy 3, compat 3) and
    a bilateral kernel (sxy 40, srgb 5, compat 10); 5 mean-field iterations.

    Call args:
        frame: [H, W, 3] uint8 RGB. mask: [H, W] bool.

    Returns:
        [H, W] float32, the CRF's foreground marginal (threshold at 0.5 for the mask).

    Raises:
        UserError (on construction): pydensecrf2 is not installed.
    """

    def __init__(self):
        self._dcrf, self._unary_from_labels = _densecrf()

    def __call__(self, frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
        height, width = mask.shape
        crf = self._dcrf.DenseCRF2D(width, height, 2)
        unary = self._unary_from_labels(np.asarray(mask, np.int32), 2,
                                        gt_prob=config.CRF_UNARY_CERTAINTY, zero_unsure=False)
        crf.setUnaryEnergy(np.ascontiguousarray(unary))
        crf.addPairwiseGaussian(sxy=config.CRF_GAUSSIAN_SXY, compat=config.CRF_GAUSSIAN_COMPAT)
        crf.addPairwiseBilateral(sxy=config.CRF_BILATERAL_SXY, srgb=config.CRF_BILATERAL_SRGB,
                                 rgbim=np.ascontiguousarray(frame, np.uint8),
                                 compat=config.CRF_BILATERAL_COMPAT)
        q = np.array(crf.inference(config.CRF_ITERATIONS), np.float32).reshape(2, height, width)
        return q[1]
