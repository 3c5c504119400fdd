"""Reporting an evaluation: CSV files, a readable table, and J over normalised time.

Files (as the official `davis2017-evaluation` names them, plus the curve):
    global_results-<set>.csv        J&F-Mean, J-Mean, J-Recall, J-Decay, F-Mean, F-Recall, F-Decay
    per-sequence_results-<set>.csv  one row per object (`<seq>_<id>`), the same columns
    j_over_time-<set>.csv / .png    mean J over normalised time (paper Fig. 4), with --plot
"""

from __future__ import annotations

import csv
import io
import pathlib
from typing import Dict, Sequence

import numpy as np
from PIL import Image, ImageDraw

from osmn.evaluation.davis import ObjectResult, overall
from osmn.io import atomic_save

COLUMNS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
TIME_POINTS = 100  # Display choice: samples of the normalised-time axis.
PLOT_SIZE = (640, 400)  # Display choice: plot width, height in pixels.


def _write_text(path: pathlib.Path, text: str) -> None:
    atomic_save(path, lambda f: f.write(text.encode()))


def _csv(rows) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def write_csv(results: Sequence[ObjectResult], out_dir, split: str) -> Dict[str, pathlib.Path]:
    """Write the global and per-object CSV files; returns their paths."""
    out_dir = pathlib.Path(out_dir)
    total = overall(results)
    paths = {"global": out_dir / f"global_results-{split}.csv",
             "per_sequence": out_dir / f"per-sequence_results-{split}.csv"}
    _write_text(paths["global"], _csv([COLUMNS, [f"{total[c]:.6f}" for c in COLUMNS]]))
    rows = [("Sequence",) + COLUMNS]
    rows += [(r.name,) + tuple(f"{r.summary()[c]:.6f}" for c in COLUMNS) for r in results]
    _write_text(paths["per_sequence"], _csv(rows))
    return paths


def table(results: Sequence[ObjectResult]) -> str:
    """A fixed-width table: one row per object, then the overall row."""
    width = max([len("Sequence"), len("Overall")] + [len(r.name) for r in results])
    header = f"{'Sequence':<{width}}  " + "  ".join(f"{c:>8}" for c in COLUMNS)
    lines = [header, "-" * len(header)]
    for r in results:
        s = r.summary()
        lines.append(f"{r.name:<{width}}  " + "  ".join(f"{s[c]:8.3f}" for c in COLUMNS))
    total = overall(results)
    lines.append("-" * len(header))
    lines.append(f"{'Overall':<{width}}  " + "  ".join(f"{total[c]:8.3f}" for c in COLUMNS))
    return "\n".join(lines)


def j_over_time(results: Sequence[ObjectResult], points: int = TIME_POINTS):
    """Mean J over normalised time: each object's per-frame J linearly interpolated onto
    `points` positions of [0, 1] (first to last evaluated frame), then averaged over objects.

    Returns:
        (times [points], mean_j [points]) float64.
    """
    times = np.linspace(0.0, 1.0, points)
    curves = []
    for r in results:
        if len(r.j) == 0:
            continue
        own = np.linspace(0.0, 1.0, len(r.j)) if len(r.j) > 1 else np.zeros(1)
        curves.append(np.interp(times, own, r.j))
    return times, (np.mean(curves, axis=0) if curves else np.full(points, np.nan))


def write_plot(results: Sequence[ObjectResult], out_dir, split: str) -> Dict[str, pathlib.Path]:
    """Write j_over_time-<set>.csv and a line plot j_over_time-<set>.png (drawn with Pillow)."""
    out_dir = pathlib.Path(out_dir)
    times, mean_j = j_over_time(results)
    paths = {"csv": out_dir / f"j_over_time-{split}.csv", "png": out_dir / f"j_over_time-{split}.png"}
    _write_text(paths["csv"], _csv([("normalised_time", "J_mean")] +
                                   [(f"{t:.4f}", f"{j:.6f}") for t, j in zip(times, mean_j)]))
    width, height = PLOT_SIZE
    left, right, top, bottom = 60, 20, 30, 50
    image = Image.new("RGB", PLOT_SIZE, "white")
    draw = ImageDraw.Draw(image)

    def xy(t, j):
        return (left + t * (width - left - right), top + (1.0 - j) * (height - top - bottom))

    for tick in np.linspace(0.0, 1.0, 6):
        draw.line([xy(0, tick), xy(1, tick)], fill=(225, 225, 225))
        draw.text((8, xy(0, tick)[1] - 6), f"{tick:.1f}", fill="black")
        draw.text((xy(tick, 0)[0] - 8, height - bottom + 8), f"{tick:.1f}", fill="black")
    draw.rectangle([xy(0, 1), xy(1, 0)], outline="black")
    valid = ~np.isnan(mean_j)
    if valid.sum() > 1:
        draw.line([xy(t, j) for t, j in zip(times[valid], mean_j[valid])], fill=(200, 0, 0), width=2)
    draw.text((left, 8), f"mean J over normalised time ({len(results)} objects)", fill="black")
    draw.text((width // 2 - 40, height - 20), "normalised time", fill="black")
    draw.text((30, top - 18), "J", fill="black")
    atomic_save(paths["png"], lambda f: image.save(f, format="PNG"))
    return paths
