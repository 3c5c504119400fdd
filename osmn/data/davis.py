"""DAVIS (2016 and 2017 layouts) as a training source for stage 2.

Layout: `<root>/JPEGImages/480p/<seq>/<frame>.jpg`, `<root>/Annotations/480p/<seq>/<frame>.png`
and a split file: DAVIS 2017 `ImageSets/2017/<split>.txt` (one sequence per line) or DAVIS 2016
`ImageSets/480p/<split>.txt` (lines "/JPEGImages/480p/<seq>/<frame>.jpg /Annotations/..."). When
no split file exists every sequence under `Annotations/480p` is used and a log line says so.
"""

from __future__ import annotations

import os
from typing import List, Optional

from osmn.data.report import DataReport
from osmn.data.video_samples import VideoSource, sequence_from_dirs
from osmn.errors import UserError

RESOLUTION = "480p"


def split_sequences(root: str, split: str, report: DataReport) -> List[str]:
    """Sequence names of a split: a split file of ours (`split` is the path of a text file, one
    sequence per line, e.g. `data/davis16_splits/train.txt`), else the DAVIS 2017 or 2016 split
    file of that name under `root`, else every sequence."""
    if split.endswith(".txt"):
        if not os.path.isfile(split):
            raise UserError(f"{split}: split file not found")
        with open(split) as f:
            names = [line.strip() for line in f if line.strip() and not line.startswith("#")]
        if not names:
            raise UserError(f"{split}: split file lists no sequence")
        report.note(f"split from {split}: {len(names)} sequences")
        return names
    path17 = os.path.join(root, "ImageSets", "2017", f"{split}.txt")
    path16 = os.path.join(root, "ImageSets", RESOLUTION, f"{split}.txt")
    if os.path.isfile(path17):
        with open(path17) as f:
            names = [line.strip() for line in f if line.strip()]
        report.note(f"split {split!r} from {path17}: {len(names)} sequences")
        return names
    if os.path.isfile(path16):
        names = []
        with open(path16) as f:
            for line in f:
                parts = line.split()
                if parts:
                    name = parts[0].strip("/").split("/")[-2]
                    if name not in names:
                        names.append(name)
        report.note(f"split {split!r} from {path16}: {len(names)} sequences")
        return names
    annotations = os.path.join(root, "Annotations", RESOLUTION)
    if not os.path.isdir(annotations):
        raise UserError(f"{annotations}: not found; expected a DAVIS root with "
                        f"JPEGImages/{RESOLUTION} and Annotations/{RESOLUTION}")
    names = sorted(d for d in os.listdir(annotations)
                   if os.path.isdir(os.path.join(annotations, d)))
    report.note(f"no split file {path17} or {path16}: using all {len(names)} sequences "
                f"under {annotations}")
    return names


def davis_source(root: str, split: str = "train", randomize_guide: bool = False,
                 report: Optional[DataReport] = None, check_images: str = "decode",
                 progress: bool = False) -> VideoSource:
    """Scan a DAVIS root into a `VideoSource` (see `osmn.data.video_samples`).

    Raises:
        UserError: the root is not a DAVIS folder or holds no usable sample.
    """
    if not os.path.isdir(root):
        raise UserError(f"{root}: DAVIS root not found")
    report = report if report is not None else DataReport("davis")
    sequences = []
    for name in split_sequences(root, split, report):
        seq = sequence_from_dirs(
            name, os.path.join(root, "JPEGImages", RESOLUTION, name),
            os.path.join(root, "Annotations", RESOLUTION, name), report)
        if seq is not None:
            sequences.append(seq)
    return VideoSource(sequences, report, check_images=check_images,
                       randomize_guide=randomize_guide, progress=progress)
