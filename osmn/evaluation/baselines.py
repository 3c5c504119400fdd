"""The no-model reference of a DAVIS evaluation: every frame's result is its first frame's mask.

What a method must beat: J and F of a mask that never moves (`benchmarks/ablation.py`,
`benchmarks/davis_validation.py`).
"""

from __future__ import annotations

import pathlib
from typing import Sequence


def copy_first_mask(data_dir, sequences: Sequence[str], results_dir,
                    resolution: str = "480p") -> None:
    """Write RESULTS_DIR/<sequence>/<frame>.png, the first annotation of the sequence, for every
    frame of DATA_DIR/JPEGImages/<resolution>/<sequence> (a DAVIS-layout root).

    Raises:
        UserError: a missing or unreadable video or first mask (as `tools/infer.py`).
    """
    from osmn.inference.masks import write_mask  # noqa: PLC0415 (loads TensorFlow)
    from osmn.inference.video_input import open_video  # noqa: PLC0415
    data_dir, results_dir = pathlib.Path(data_dir), pathlib.Path(results_dir)
    for name in sequences:
        masks = sorted((data_dir / "Annotations" / resolution / name).glob("*.png"))
        opened = open_video(data_dir / "JPEGImages" / resolution / name,
                            masks[0] if masks else data_dir / "Annotations" / resolution / name)
        out = results_dir / name
        out.mkdir(parents=True, exist_ok=True)
        for frame in opened.source.names:
            write_mask(out / f"{frame}.png", opened.labels, opened.palette)
