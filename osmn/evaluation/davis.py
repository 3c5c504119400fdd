"""Evaluating results in the DAVIS results layout against a DAVIS data set (semi-supervised).

Follows `davis2017-evaluation` (`evaluation.py: DAVISEvaluation.evaluate`, `davis.py`,
`results.py`) for the semi-supervised task:
* sequences: `DAVIS_ROOT/ImageSets/<year>/<set>.txt`;
* ground truth: `DAVIS_ROOT/Annotations/<resolution>/<seq>/*.png`, one object per id
  1..max(first frame) (void 255 set to background first); DAVIS 2016 grey 0/255 masks are read as
  one object (`osmn.io.read_mask`);
* results: `RESULTS/<seq>/<frame>.png` for every ground-truth frame, object i = pixels == i; an
  id above the sequence's number of objects is an error, as in the official code;
* the FIRST and the LAST frame of every sequence are excluded (the official `[:, 1:-1]`): the
  first is the given mask, the last is left out by the official code for both years;
* void pixels are NOT excluded: the official semi-supervised evaluation passes no void mask
  (void pixels count as background). `exclude_void=True` excludes them instead.
* year 2016: every object id is merged into one foreground object, in the ground truth and in the
  result (DAVIS 2016 is single-object).
Statistics are per object, and the overall numbers are means over all objects of all sequences;
J&F = (J + F) / 2.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from osmn import config
from osmn.errors import UserError
from osmn.evaluation.metrics import boundary_f, jaccard, statistics
from osmn.io import read_mask

YEARS = ("2016", "2017")
STATISTICS = ("Mean", "Recall", "Decay")


@dataclasses.dataclass
class ObjectResult:
    """Per-frame J and F of one object over the evaluated frames (first and last excluded).

    Attributes:
        sequence: str. object_id: int (1-based, as the official `<seq>_<id>` names).
        frames: list of str, the evaluated frame names.
        j, f: [T] float64 per-frame values.
    """

    sequence: str
    object_id: int
    frames: List[str]
    j: np.ndarray
    f: np.ndarray

    @property
    def name(self) -> str:
        return f"{self.sequence}_{self.object_id}"

    def summary(self) -> Dict[str, float]:
        """{"J-Mean", "J-Recall", "J-Decay", "F-...", "J&F-Mean"}."""
        out = {}
        for measure, values in (("J", self.j), ("F", self.f)):
            for stat, value in zip(STATISTICS, statistics(values)):
                out[f"{measure}-{stat}"] = value
        out["J&F-Mean"] = (out["J-Mean"] + out["F-Mean"]) / 2.0
        return out


def overall(results: Sequence[ObjectResult]) -> Dict[str, float]:
    """Means over all objects of each per-object statistic (the official global results)."""
    summaries = [r.summary() for r in results]
    keys = list(summaries[0]) if summaries else []
    with np.errstate(invalid="ignore"):
        out = {k: float(np.nanmean([s[k] for s in summaries])) for k in keys}
    if out:
        out["J&F-Mean"] = (out["J-Mean"] + out["F-Mean"]) / 2.0
    return out


def list_sequences(davis_root, year: str, split: str, results_root) -> tuple:
    """Sequence names from ImageSets/<year>/<split>.txt, else every sequence in the results.

    Returns:
        (names, source): source is the ImageSets file, or None when it was missing and the
        sequences were taken from the results folder (sub-folders holding PNGs).
    """
    image_set = pathlib.Path(davis_root) / "ImageSets" / year / f"{split}.txt"
    if image_set.is_file():
        names = [line.strip() for line in image_set.read_text().splitlines() if line.strip()]
        return names, image_set
    results_root = pathlib.Path(results_root)
    names = sorted(p.name for p in results_root.iterdir()
                   if p.is_dir() and any(p.glob("*.png")))
    if not names:
        raise UserError(f"{results_root}: no sequence folders with PNG results (and no "
                        f"{image_set})")
    return names, None


def _read_labels(path: pathlib.Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise UserError(f"{path}: {what} not found")
    return read_mask(path)[0]


def evaluate_sequence(davis_root, results_root, sequence: str, year: str = "2017",
                      resolution: str = "480p",
                      exclude_void: bool = False) -> List[ObjectResult]:
    """J and F per object and frame of one sequence.

    Raises:
        UserError: missing ground truth or result files, size mismatch, an unknown result id.
    """
    if year not in YEARS:
        raise UserError(f"--year: must be one of {', '.join(YEARS)}, got {year}")
    gt_dir = pathlib.Path(davis_root) / "Annotations" / resolution / sequence
    gt_files = sorted(gt_dir.glob("*.png"))
    if not gt_files:
        raise UserError(f"{gt_dir}: no ground-truth PNGs")
    gt = np.stack([_read_labels(p, "ground truth") for p in gt_files])  # [T, H, W] uint8
    void = gt == config.VOID_LABEL
    gt = np.where(void, 0, gt)
    num_objects = 1 if year == "2016" else int(gt[0].max())
    if num_objects == 0:
        raise UserError(f"{gt_files[0]}: the first ground-truth frame holds no object")
    if year == "2016":
        gt = (gt > 0).astype(np.uint8)
    # The official semi-supervised evaluation drops the first and the last frame.
    gt_files, gt, void = gt_files[1:-1], gt[1:-1], void[1:-1]
    names = [p.stem for p in gt_files]
    result_dir = pathlib.Path(results_root) / sequence
    res = np.zeros_like(gt)
    for index, name in enumerate(names):
        path = result_dir / f"{name}.png"
        labels = _read_labels(path, "result")
        if labels.shape != gt.shape[1:]:
            raise UserError(f"{path}: size {labels.shape[1]}x{labels.shape[0]} differs from the "
                            f"ground truth's {gt.shape[2]}x{gt.shape[1]}")
        if year == "2016":
            labels = ((labels > 0) & (labels != config.VOID_LABEL)).astype(np.uint8)
        elif labels.max(initial=0) > num_objects:
            raise UserError(f"{path}: id {int(labels.max())} but the sequence has "
                            f"{num_objects} object(s)")
        res[index] = labels
    void_mask = void if exclude_void else None
    out = []
    for object_id in range(1, num_objects + 1):
        g, r = gt == object_id, res == object_id
        out.append(ObjectResult(sequence, object_id, names, jaccard(g, r, void_mask),
                                boundary_f(g, r, void_mask)))
    return out


def evaluate(davis_root, results_root, sequences: Sequence[str], year: str = "2017",
             resolution: str = "480p", exclude_void: bool = False,
             on_sequence: Optional[Callable[[str], None]] = None) -> List[ObjectResult]:
    """`evaluate_sequence` over `sequences`; returns every object's result in order."""
    results = []
    for sequence in sequences:
        results += evaluate_sequence(davis_root, results_root, sequence, year, resolution,
                                     exclude_void)
        if on_sequence is not None:
            on_sequence(sequence)
    return results
