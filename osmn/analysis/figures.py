"""Matplotlib figures 5-7 of the paper (§4.2), each written atomically.

The Agg backend is used (no display needed). Every writer renders to a temporary file in the
target folder and renames it into place, so a failed or interrupted run never leaves a partial
PNG.
"""

from __future__ import annotations

import math
import pathlib
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from osmn.io import atomic_path


def atomic_write(path, write: Callable[[str], None]) -> None:
    """Call `write(temp_path)` on a temp file beside `path`, then rename it to `path`."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        write(str(tmp))


def _pyplot():
    import matplotlib  # noqa: PLC0415 (keep the import out of library import time)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    return plt


def _save(fig, path) -> None:
    plt = _pyplot()
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    finally:
        plt.close(fig)


def mds_figure(coords: np.ndarray, categories: Sequence[str], path, title: str) -> None:
    """Figure 5: 2-D MDS embedding of gamma vectors, one colour per category.

    Args:
        coords: [N, 2] float. categories: N labels. path: PNG file. title: figure title.
    """
    plt = _pyplot()
    names = list(dict.fromkeys(categories))  # first-seen order
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    fig, ax = plt.subplots(figsize=(7, 6))
    categories = np.asarray(categories)
    for i, name in enumerate(names):
        picked = coords[categories == name]
        ax.scatter(picked[:, 0], picked[:, 1], s=22, color=cmap(i % cmap.N), label=name,
                   alpha=0.85, edgecolors="none")
    ax.set_xlabel("MDS axis 1")
    ax.set_ylabel("MDS axis 2")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="best", markerscale=1.2, frameon=False,
              ncol=1 if len(names) <= 12 else 2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


def layer_histograms(values: Dict[str, np.ndarray], bins: int, path, title: str, xlabel: str,
                     notes: Optional[Dict[str, str]] = None,
                     value_range: Optional[Tuple[float, float]] = None,
                     marker: Optional[float] = None) -> None:
    """Figures 6 and 7: one histogram per modulated layer in a grid (3 columns).

    Args:
        values: layer name -> [C] values, in layer order (conv3_1 .. conv5_3 by default).
        bins: histogram bins per layer.
        path: PNG file. title: figure title. xlabel: x axis label.
        notes: optional layer name -> text printed in the panel (e.g. the near-zero fraction).
        value_range: optional (low, high) shared by every panel, so that layers compare.
        marker: optional x drawn as a dashed line in every panel (e.g. the near-zero threshold).
    """
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415
    names = list(values)
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.7 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        data = np.asarray(values[name], np.float64)
        ax.hist(data, bins=bins, range=value_range, color="#3b75af")
        if marker is not None and marker > 0:
            ax.axvline(marker, color="#c0392b", linestyle="--", linewidth=0.8)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(name, fontsize=10)
        ax.tick_params(labelsize=7)
        ax.set_xlabel(xlabel, fontsize=8)
        if notes and name in notes:
            ax.text(0.97, 0.93, notes[name], transform=ax.transAxes, ha="right", va="top",
                    fontsize=8, bbox=dict(facecolor="white", alpha=0.8, edgecolor="none"))
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)
