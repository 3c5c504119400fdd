"""YouTube-VOS as a training source, read by the same video-sample code as DAVIS.

Layout: `<root>/<split>/meta.json` ({"videos": {<video>: {"objects": {<id>: {"category": ...,
"frames": [<frame>, ...]}}}}}), `<root>/<split>/JPEGImages/<video>/<frame>.jpg`,
`<root>/<split>/Annotations/<video>/<frame>.png` (palette PNGs, annotated every 5th frame).
Samples pair each annotated frame with the previous ANNOTATED frame (5 frames earlier) for the
spatial guide; objects start at their first annotated frame, as in the original's YouTube-VOS
code. `meta.json` gives the video list; an object it lists that no mask contains is reported.
"""

from __future__ import annotations

import json
import os
from typing import Optional

from osmn.data.report import DataReport
from osmn.data.video_samples import VideoSource, sequence_from_dirs
from osmn.errors import UserError


def youtube_vos_source(root: str, split: str = "train", randomize_guide: bool = False,
                       report: Optional[DataReport] = None, check_images: str = "header",
                       progress: bool = False) -> VideoSource:
    """Scan `<root>/<split>` into a `VideoSource`.

    Raises:
        UserError: missing or unreadable meta.json, or no usable sample.
    """
    report = report if report is not None else DataReport("youtube_vos")
    base = os.path.join(root, split)
    meta_path = os.path.join(base, "meta.json")
    if not os.path.isfile(meta_path):
        raise UserError(f"{meta_path}: not found; expected a YouTube-VOS root with "
                        f"{split}/meta.json, {split}/JPEGImages, {split}/Annotations")
    try:
        with open(meta_path) as f:
            videos = json.load(f)["videos"]
        listed = {name: sorted(int(k) for k in video.get("objects", {}))
                  for name, video in videos.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise UserError(f"{meta_path}: not a YouTube-VOS meta.json ({e})") from None
    sequences = []
    for name in sorted(listed):
        seq = sequence_from_dirs(name, os.path.join(base, "JPEGImages", name),
                                 os.path.join(base, "Annotations", name), report)
        if seq is not None:
            sequences.append(seq)
    source = VideoSource(sequences, report, check_images=check_images,
                         randomize_guide=randomize_guide, progress=progress)
    for name, ids in listed.items():
        missing = sorted(set(ids) - set(source.objects.get(name, ())))
        if missing and name in source.objects:
            report.note(f"{name}: objects {missing} of meta.json appear in no mask")
    return source
