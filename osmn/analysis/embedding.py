"""Classical (Torgerson) multi-dimensional scaling in numpy, for Figure 5 (paper §4.2).

Given points x_1..x_N (here gamma vectors), classical MDS finds y_i in R^k whose Euclidean
distances best match those of the x_i: double-centre the squared distance matrix,
B = -1/2 J D^2 J with J = I - 11^T/N, and take the top-k eigenvectors scaled by the square roots
of their eigenvalues. For Euclidean input this equals PCA of the centred points.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np


def classical_mds(points: np.ndarray, dims: int = 2) -> Tuple[np.ndarray, np.ndarray]:
    """Embed points in `dims` dimensions with classical MDS.

    Args:
        points: [N, D] float, N >= 1.
        dims: output dimensions.

    Returns:
        coords: [N, dims] float64, centred at the origin. Each axis' sign is fixed so that its
            largest-magnitude coordinate is positive (deterministic output). Axes beyond the
            rank of the data are 0: identical points all land on the origin.
        eigenvalues: [dims] float64, the variance along each axis times N (>= 0).
    """
    points = np.asarray(points, np.float64)
    if points.ndim != 2 or points.shape[0] < 1:
        raise ValueError(f"points must be [N >= 1, D], got {list(points.shape)}")
    # Centring first keeps B exact for identical points (D^2 = 0 -> B = 0).
    centred = points - points.mean(axis=0, keepdims=True)
    b = centred @ centred.T  # = -1/2 J D^2 J for Euclidean distances
    eigenvalues, eigenvectors = np.linalg.eigh(b)
    order = np.argsort(eigenvalues)[::-1][:dims]
    values = np.maximum(eigenvalues[order], 0.0)
    vectors = eigenvectors[:, order]
    # Rounding noise (e.g. of the mean of identical points) must not create spread: drop
    # eigenvalues that are tiny relative to the points' own size.
    scale = float(np.sum(points * points))
    values[values <= 1e-12 * scale] = 0.0
    coords = vectors * np.sqrt(values)[None, :]
    for axis in range(coords.shape[1]):
        if coords[np.argmax(np.abs(coords[:, axis])), axis] < 0:
            coords[:, axis] *= -1.0
    if coords.shape[1] < dims:  # fewer points than dims
        coords = np.pad(coords, ((0, 0), (0, dims - coords.shape[1])))
        values = np.pad(values, (0, dims - values.shape[0]))
    return coords, values
