"""Analyse a model on a set of objects and write Figures 5-7 with the numbers behind them.

`analyze(model, objects, ...)` computes everything in memory (`Analysis`); `write_analysis`
writes it to a folder (PNGs, CSVs, `summary.json`, `gammas.npz`), every file atomically.
See docs/analysis.md for the files and what each number means.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import pathlib
import re
from typing import Dict, List, Optional, Sequence

import numpy as np

from osmn.analysis import embedding, figures, statistics
from osmn.analysis.objects import AnalysisObject, visual_guides
from osmn.io import temp_dir

SCALE_KINDS = ("raw", "effective")
# Our defaults, not the paper's (it gives no threshold): a magnitude counts as zero when it is at
# most 2% of the largest magnitude of that quantity over all modulated layers, i.e. it falls in
# the first bin of a 50-bin histogram from 0 to the maximum.
DEFAULT_NEAR_ZERO = 0.02
DEFAULT_BINS = 30
FILES = {
    "fig5": "fig5_gamma_mds.png",
    "fig5_csv": "fig5_gamma_mds.csv",
    "fig6": "fig6_gamma_std.png",
    "fig6_csv": "fig6_gamma_std.csv",
    "fig7_raw": "fig7_spatial_scale_raw.png",
    "fig7_effective": "fig7_spatial_scale_effective.png",
    "fig7_csv": "fig7_spatial_scale.csv",
    "gammas": "gammas.npz",
    "summary": "summary.json",
}


@dataclasses.dataclass
class Analysis:
    """Everything the figures show.

    Attributes:
        names, categories: N object names and category labels.
        gammas: [N, G] float32 visual-modulator outputs.
        mds: [N, 2] float64 classical-MDS coordinates of the gammas; mds_eigenvalues [2].
        gamma_std: layer -> [C] std over objects of each channel's gamma (Figure 6).
        scales: layer -> {"raw": [C], "effective": [C]} spatial scales (Figure 7), or None
            without a spatial modulator.
        near_zero: {"raw": threshold, "effective": threshold}, absolute thresholds used.
        near_zero_fraction: {"raw": {layer: f}, "effective": {layer: f}}.
        dead_fraction: {layer: fraction of channels whose bias is 0 for every guide value}.
        settings: the arguments that produced it (for summary.json).
    """

    names: List[str]
    categories: List[str]
    gammas: np.ndarray
    mds: np.ndarray
    mds_eigenvalues: np.ndarray
    gamma_std: Dict[str, np.ndarray]
    scales: Optional[Dict[str, Dict[str, np.ndarray]]]
    near_zero: Dict[str, float]
    near_zero_fraction: Dict[str, Dict[str, float]]
    dead_fraction: Dict[str, float]
    settings: dict


def analyze(model, objects: Sequence[AnalysisObject], near_zero: float = DEFAULT_NEAR_ZERO,
            near_zero_relative: bool = True, bins: int = DEFAULT_BINS, batch_size: int = 8,
            progress: bool = False, settings: Optional[dict] = None) -> Analysis:
    """Compute the numbers of Figures 5-7 for `model` on `objects`.

    Args:
        model: an `osmn.model.OSMN`.
        objects: the objects whose visual guides feed the visual modulator.
        near_zero: near-zero threshold of Figure 7 (see `statistics.near_zero_threshold`).
        near_zero_relative: `near_zero` is a fraction of the largest magnitude over all layers.
        bins: histogram bins per layer.
        batch_size: visual guides per forward pass.
        progress: show a progress bar.
        settings: extra entries for summary.json (e.g. checkpoint, data paths).

    Raises:
        UserError: unreadable images or masks (from `visual_guides`).
    """
    cfg = model.model_config
    gammas = statistics.object_gammas(model, visual_guides(objects), len(objects),
                                      batch_size=batch_size, progress=progress)
    coords, eigenvalues = embedding.classical_mds(gammas, dims=2)
    gamma_std = statistics.gamma_std_per_layer(gammas, cfg.gamma_slices())
    scales = statistics.spatial_scales(model)
    thresholds, fractions, dead = {}, {}, {}
    if scales is not None:
        dead = {layer: statistics.fraction_dead(s["effective"], s["offset"])
                for layer, s in scales.items()}
        for kind in SCALE_KINDS:
            values = {layer: s[kind] for layer, s in scales.items()}
            thresholds[kind] = statistics.near_zero_threshold(values, near_zero, near_zero_relative)
            fractions[kind] = {layer: statistics.fraction_near_zero(v, thresholds[kind])
                               for layer, v in values.items()}
    return Analysis(
        names=[o.name for o in objects], categories=[o.category for o in objects],
        gammas=gammas, mds=coords, mds_eigenvalues=eigenvalues, gamma_std=gamma_std,
        scales=scales, near_zero=thresholds, near_zero_fraction=fractions, dead_fraction=dead,
        settings={**(settings or {}), "near_zero": near_zero,
                  "near_zero_relative": near_zero_relative, "bins": bins,
                  "model_config": cfg.to_dict()})


def magnitudes(result: Analysis, kind: str) -> Dict[str, np.ndarray]:
    """Figure 7's values: layer -> |spatial scale| of `kind` ("raw" or "effective")."""
    return {layer: np.abs(s[kind]) for layer, s in result.scales.items()}


def summary(result: Analysis) -> dict:
    """The JSON summary: settings, per-layer statistics and histograms of Figures 6 and 7.

    Histograms of one figure share their range (0 to the largest value over all layers), as the
    figure's panels do.
    """
    bins = result.settings["bins"]
    fig6_range = statistics.common_range(result.gamma_std)
    counts = {}
    for category in result.categories:
        counts[category] = counts.get(category, 0) + 1
    out = {
        "settings": result.settings,
        "objects": len(result.names),
        "objects_per_category": counts,
        "fig5_mds": {"eigenvalues": result.mds_eigenvalues.tolist(),
                     "gamma_distinct_rows": int(np.unique(result.gammas, axis=0).shape[0])},
        "fig6_gamma_std": {
            layer: {"channels": int(std.size), "mean": float(std.mean()),
                    "median": float(np.median(std)), "max": float(std.max()),
                    "histogram": statistics.histogram(std, bins, fig6_range)}
            for layer, std in result.gamma_std.items()},
        "fig7_spatial_scale": None,
    }
    if result.scales is not None:
        fig7 = {"near_zero_threshold": result.near_zero, "layers": {}}
        abs_values = {kind: magnitudes(result, kind) for kind in SCALE_KINDS}
        ranges = {kind: statistics.common_range(abs_values[kind]) for kind in SCALE_KINDS}
        for layer in result.scales:
            fig7["layers"][layer] = {
                kind: {"channels": int(abs_values[kind][layer].size),
                       "fraction_near_zero": result.near_zero_fraction[kind][layer],
                       "mean_abs": float(abs_values[kind][layer].mean()),
                       "max_abs": float(abs_values[kind][layer].max()),
                       "histogram_abs": statistics.histogram(abs_values[kind][layer], bins,
                                                             ranges[kind])}
                for kind in SCALE_KINDS}
            fig7["layers"][layer]["fraction_dead_after_relu"] = result.dead_fraction[layer]
        out["fig7_spatial_scale"] = fig7
    return out


def _csv_text(header: Sequence[str], rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _json_text(values: dict) -> str:
    """Indented JSON with every list of numbers on one line (histograms stay readable)."""
    text = json.dumps(values, indent=2)
    numbers = re.compile(r"\[\s*((?:-?[\d.eE+-]+|NaN|Infinity)(?:,\s*(?:-?[\d.eE+-]+|NaN|"
                         r"Infinity))*)\s*\]")
    return numbers.sub(lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]",
                       text) + "\n"


def _write_text(path: pathlib.Path, text: str) -> None:
    figures.atomic_write(path, lambda tmp: pathlib.Path(tmp).write_text(text))


def _threshold_text(result: Analysis, kind: str) -> str:
    if result.settings["near_zero_relative"]:
        return (f"|x| <= {result.settings['near_zero']:g} x max|x| = "
                f"{result.near_zero[kind]:.3g}")
    return f"|x| <= {result.near_zero[kind]:.3g}"


def write_analysis(result: Analysis, output_dir) -> Dict[str, pathlib.Path]:
    """Write every figure and table of `result` into `output_dir`.

    The files are first written into a temporary folder beside `output_dir`; then the folder is
    renamed into place (or, if it already exists, each file is renamed into it), so an error
    leaves no partial output.

    Returns:
        key of `FILES` -> path written.
    """
    output_dir = pathlib.Path(output_dir)
    with temp_dir(output_dir) as tmp:
        written = _write_all(result, tmp)
        if not output_dir.exists():
            os.replace(tmp, output_dir)
        else:
            for name in written.values():
                os.replace(tmp / name, output_dir / name)
    return {key: output_dir / name for key, name in written.items()}


def _write_all(result: Analysis, folder: pathlib.Path) -> Dict[str, str]:
    written = {}
    n = len(result.names)
    cats = len(set(result.categories))
    title = (f"Fig. 5: classical MDS of visual-modulator gammas "
             f"({n} objects, {cats} {'category' if cats == 1 else 'categories'})")
    if n > 1 and np.unique(result.gammas, axis=0).shape[0] == 1:
        title += "\nall gammas identical: the visual modulator ignores its input"
    figures.mds_figure(result.mds, result.categories, folder / FILES["fig5"], title)
    _write_text(folder / FILES["fig5_csv"], _csv_text(
        ["object", "category", "x", "y"],
        [(name, cat, f"{x:.6g}", f"{y:.6g}")
         for name, cat, (x, y) in zip(result.names, result.categories, result.mds)]))
    figures.layer_histograms(result.gamma_std, result.settings["bins"], folder / FILES["fig6"],
                             f"Fig. 6: std of gamma_c over {n} objects, per modulated layer",
                             "std of gamma_c",
                             value_range=statistics.common_range(result.gamma_std))
    _write_text(folder / FILES["fig6_csv"], _csv_text(
        ["layer", "channel", "gamma_std"],
        [(layer, c, f"{v:.6g}") for layer, std in result.gamma_std.items()
         for c, v in enumerate(std)]))
    written.update({k: FILES[k] for k in ("fig5", "fig5_csv", "fig6", "fig6_csv")})
    if result.scales is not None:
        labels = {"raw": "|1x1 conv weight| (paper's gamma~_c)",
                  "effective": "|w x bn_gamma / sqrt(var + eps)|"}
        for kind in SCALE_KINDS:
            values = magnitudes(result, kind)
            notes = {layer: f"near zero: {result.near_zero_fraction[kind][layer]:.0%}"
                     for layer in values}
            if kind == "effective":
                notes = {layer: f"{note}\nno bias (ReLU): {result.dead_fraction[layer]:.0%}"
                         for layer, note in notes.items()}
            figures.layer_histograms(
                values, result.settings["bins"], folder / FILES[f"fig7_{kind}"],
                f"Fig. 7 ({kind}): spatial-modulator scale magnitude per layer; near zero "
                f"(dashed): {_threshold_text(result, kind)}", labels[kind], notes,
                value_range=statistics.common_range(values), marker=result.near_zero[kind])
            written[f"fig7_{kind}"] = FILES[f"fig7_{kind}"]
        _write_text(folder / FILES["fig7_csv"], _csv_text(
            ["layer", "channel", "raw", "effective", "offset"],
            [(layer, c, f"{r:.6g}", f"{e:.6g}", f"{o:.6g}") for layer, s in result.scales.items()
             for c, (r, e, o) in enumerate(zip(s["raw"], s["effective"], s["offset"]))]))
        written["fig7_csv"] = FILES["fig7_csv"]
    figures.atomic_write(folder / FILES["gammas"], lambda tmp: np.savez(
        tmp, gammas=result.gammas, names=np.asarray(result.names),
        categories=np.asarray(result.categories)))
    _write_text(folder / FILES["summary"], _json_text(summary(result)))
    written.update({"gammas": FILES["gammas"], "summary": FILES["summary"]})
    return written
