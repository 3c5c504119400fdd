"""The numbers behind Figures 5-7 (paper §4.2): gammas per object, their spread, spatial scales.

* `object_gammas`: the visual modulator's output for each object, [N, G].
* `gamma_std_per_layer` (Figure 6): per modulated layer, the standard deviation over objects of
  each channel's gamma, sliced with `ModelConfig.gamma_slices()`.
* `spatial_scales` (Figure 7): per modulated layer, the spatial modulator's per-channel scale of
  the pooled guide. The paper's eq. 3 writes beta_c = gamma~_c m + beta~_c, a 1x1 conv; the
  authors' code (which we follow) makes that conv bias-free and follows it with batch norm and
  ReLU, so two scales exist:
    - "raw": the 1x1 conv weight w_c (what the code stores as `modulator_sp/conv{b}/weights`,
      the paper's gamma~_c);
    - "effective": w_c x bn_gamma_c / sqrt(moving_var_c + eps), the slope of beta_c in m before
      the ReLU at inference (batch norm with moving statistics), i.e. what actually scales the
      guide. Batch norm divides out the size of w, so the raw weight alone says little.
  With the matching "offset" bn_beta_c - bn_gamma_c x moving_mean_c / sqrt(moving_var_c + eps),
  beta_c = ReLU(effective_c x m + offset_c); a channel whose value is <= 0 for every m in [0, 1]
  (the guide's range) gets no bias at all: `fraction_dead`.
  Block b's conv has (channels x layers) outputs; layer i of the block takes [i*C:(i+1)*C], as
  the modulator slices its output.
* `near_zero_threshold` / `fraction_near_zero`: the "fraction of zero values" of Figure 7.
"""

from __future__ import annotations

from typing import Dict, Iterable, Optional, Tuple

import numpy as np


def object_gammas(model, guides: Iterable[np.ndarray], count: int, batch_size: int = 8,
                  progress: bool = False) -> np.ndarray:
    """Run the visual modulator on each visual guide.

    Args:
        model: an `osmn.model.OSMN`.
        guides: iterable of [224, 224, 3] float32 visual guides (BGR minus mean, background 0).
        count: number of guides (for the progress bar and the output size).
        batch_size: guides per forward pass.
        progress: show a progress bar (`osmn.progress`).

    Returns:
        [count, G] float32, G = `model.gamma_size` (all ones without a visual modulator).
    """
    from osmn.progress import Progbar  # noqa: PLC0415

    bar = Progbar(count, unit_name="object") if progress else None
    out, batch = [], []

    def flush():
        out.append(np.asarray(model.gamma(np.stack(batch), training=False), np.float32))
        if bar is not None:
            bar.add(len(batch))
        batch.clear()

    for guide in guides:
        batch.append(guide)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    gammas = np.concatenate(out, axis=0) if out else np.zeros((0, model.gamma_size), np.float32)
    if gammas.shape[0] != count:
        raise ValueError(f"expected {count} visual guides, got {gammas.shape[0]}")
    return gammas


def gamma_std_per_layer(gammas: np.ndarray, gamma_slices: Dict[str, tuple]) -> Dict[str, np.ndarray]:
    """Figure 6: per layer, std over objects of each channel's gamma.

    Args:
        gammas: [N, G] float, one row per object.
        gamma_slices: layer name -> (start, stop), from `ModelConfig.gamma_slices()`.

    Returns:
        layer name -> [C] float64 population std (ddof 0) over the N objects, in layer order.
    """
    gammas = np.asarray(gammas, np.float64)
    size = max(stop for _, stop in gamma_slices.values())
    if gammas.ndim != 2 or gammas.shape[1] != size:
        raise ValueError(f"gammas must be [N, {size}], got {list(gammas.shape)}")
    return {name: gammas[:, start:stop].std(axis=0) for name, (start, stop) in gamma_slices.items()}


def spatial_scales(model) -> Optional[Dict[str, Dict[str, np.ndarray]]]:
    """Figure 7: per modulated layer, the spatial modulator's raw and effective scales.

    Args:
        model: an `osmn.model.OSMN`.

    Returns:
        layer name -> {"raw": [C] float64 conv weights, "effective": [C] float64
        w x bn_gamma / sqrt(moving_var + eps), "offset": [C] float64
        bn_beta - bn_gamma x moving_mean / sqrt(moving_var + eps)}, in layer order; None when
        the model has no spatial modulator.
    """
    modulator = model.spatial_modulator
    if modulator is None:
        return None
    result = {}
    for (_, names, channels), conv, norm in zip(modulator.blocks, modulator.convs, modulator.norms):
        weight = np.asarray(conv.kernel, np.float64).reshape(-1)  # [1, 1, 1, L*C] -> [L*C]
        bn_gamma = (np.asarray(norm.gamma, np.float64) if norm.scale
                    else np.ones_like(weight))
        bn_beta = (np.asarray(norm.beta, np.float64) if norm.center
                   else np.zeros_like(weight))
        inv_std = 1.0 / np.sqrt(np.asarray(norm.moving_variance, np.float64) + norm.epsilon)
        effective = weight * bn_gamma * inv_std
        offset = bn_beta - bn_gamma * np.asarray(norm.moving_mean, np.float64) * inv_std
        for i, name in enumerate(names):
            part = slice(i * channels, (i + 1) * channels)
            result[name] = {"raw": weight[part], "effective": effective[part],
                            "offset": offset[part]}
    return result


def near_zero_threshold(values_by_layer: Dict[str, np.ndarray], near_zero: float,
                        relative: bool) -> float:
    """The absolute magnitude below which a value counts as zero.

    Args:
        values_by_layer: layer name -> [C] values.
        near_zero: the threshold, or with `relative` the fraction of the largest magnitude over
            all layers (one common scale, like the shared axis of a figure).
        relative: see `near_zero`.

    Returns:
        float >= 0.
    """
    if near_zero < 0:
        raise ValueError(f"near_zero must be >= 0, got {near_zero}")
    if not relative:
        return float(near_zero)
    largest = max((float(np.max(np.abs(v))) for v in values_by_layer.values() if np.size(v)),
                  default=0.0)
    return near_zero * largest


def fraction_near_zero(values: np.ndarray, threshold: float) -> float:
    """Fraction of `values` with |value| <= threshold (a layer of exact zeros gives 1.0)."""
    values = np.asarray(values)
    if values.size == 0:
        return float("nan")
    return float(np.mean(np.abs(values) <= threshold))


def common_range(values_by_layer: Dict[str, np.ndarray]) -> Optional[Tuple[float, float]]:
    """(0, largest value over all layers) for histograms of non-negative values that share one
    x axis across layers; None when every value is 0 (numpy then picks (-0.5, 0.5))."""
    largest = max((float(np.max(v)) for v in values_by_layer.values() if np.size(v)),
                  default=0.0)
    return (0.0, largest) if largest > 0 else None


def fraction_dead(effective: np.ndarray, offset: np.ndarray) -> float:
    """Fraction of channels whose ReLU(effective x m + offset) is 0 for every m in [0, 1].

    The pre-activation is linear in m, so it is <= 0 on [0, 1] iff it is at both ends.
    """
    effective, offset = np.asarray(effective), np.asarray(offset)
    if effective.size == 0:
        return float("nan")
    return float(np.mean(np.maximum(offset, effective + offset) <= 0.0))


def histogram(values: np.ndarray, bins: int,
              value_range: Optional[Tuple[float, float]] = None) -> Dict[str, list]:
    """{"counts": [bins] int, "edges": [bins + 1] float} of `values` (numpy.histogram)."""
    counts, edges = np.histogram(np.asarray(values, np.float64), bins=bins, range=value_range)
    return {"counts": counts.astype(int).tolist(), "edges": edges.tolist()}
