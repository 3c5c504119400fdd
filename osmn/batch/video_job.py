"""One video of a batch run: read it, segment it with the library's `VideoSegmenter`, publish.

The masks are exactly those of `tools/infer.py` with the same model and settings: the same
`open_video` checks, the same segmenter (built by `make_segmenter`, the one place that constructs
it), the same `ResultWriter` palette PNGs. Only the place they are written differs: a local
scratch folder first, then OUT/<sequence>/ through Beam's `FileSystems` (`osmn.batch.store`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Dict, Optional, Tuple

from osmn.batch import store
from osmn.batch.manifest import VideoTask


@dataclasses.dataclass(frozen=True)
class SegmentSettings:
    """What every video of a run is segmented with (the `tools/infer.py` flags of the same name).

    Attributes:
        checkpoint: str. The `.keras` model, a local path or a Beam filesystem URI.
        precision: "auto", "float32" or "bfloat16" (`osmn.inference.LocalEngine`). Defaults to
            "auto", as `tools/infer.py`.
        work_size: optional (width, height), `--im_size`. Defaults to None (each frame's size).
        keep_last_guide: bool. Defaults to False.
    """

    checkpoint: str
    precision: str = "auto"
    work_size: Optional[Tuple[int, int]] = None
    keep_last_guide: bool = False


def load_model(settings: SegmentSettings):
    """The model every video of one worker process shares (copied locally first if remote)."""
    from osmn.model import load_osmn  # noqa: PLC0415 (TF is imported on the worker only)
    from osmn.inference import LocalEngine  # noqa: PLC0415
    work_dir = store.make_work_dir()
    try:
        return LocalEngine(load_osmn(store.localise(settings.checkpoint, work_dir)),
                           precision=settings.precision)
    finally:
        store.remove_tree(work_dir)


def make_segmenter(model, settings: SegmentSettings):
    """The per-video inference object: the one place a batch run constructs it.

    Args:
        model: the worker's shared `osmn.inference.LocalEngine` (`load_model`).

    Without `settings.work_size`, a model whose config names its own working size
    (`ModelConfig.working_size`) is segmented at that size, as `tools/infer.py` does; else each
    frame at its own size.
    """
    from osmn.inference import VideoSegmenter  # noqa: PLC0415
    work_size = settings.work_size or model.model.model_config.working_size
    return VideoSegmenter(model, keep_last_guide=settings.keep_last_guide, work_size=work_size)


def settings_record(settings: SegmentSettings) -> Dict:
    """`settings` as the JSON the completion marker stores (what a re-run compares)."""
    return json.loads(json.dumps(dataclasses.asdict(settings)))


def segment_video(task: VideoTask, output: str, segmenter,
                  settings: Optional[SegmentSettings] = None) -> Dict:
    """Segment one video into OUT/<sequence>/ and return its results row.

    Args:
        task: the manifest row.
        output: the output folder (local path or URI).
        segmenter: from `make_segmenter`; `start` resets it for this video, so one segmenter
            (and its traced per-frame function) serves every video of a worker.
        settings: what `segmenter` was made with, stored in the completion marker.

    Returns:
        {"sequence", "video", "status": "done", "frames", "objects", "seconds", "cpu_seconds"}.

    Raises:
        UserError: bad input (unreadable frame or video, bad mask, sizes that differ).
        Any other exception: a write or model failure. Nothing of the video is published.
    """
    from osmn.inference import ResultWriter  # noqa: PLC0415
    from osmn.inference.video_input import open_video  # noqa: PLC0415

    started, cpu_started = time.perf_counter(), time.process_time()
    work_dir = store.make_work_dir()
    try:
        video = store.localise(task.video, work_dir)
        mask = store.localise(task.mask, work_dir)
        opened = open_video(video, mask, task.sequence)
        source, frame0 = opened.source, opened.frame0
        results = f"{work_dir}/results"
        with ResultWriter(results, task.sequence, opened.palette, opened.ids) as writer:
            first = segmenter.start(frame0, opened.labels)
            writer.put(source.names[0], frame0, first.labels)
            for index, frame in source.prefetched(1, frame0.shape):
                writer.put(source.names[index], frame, segmenter.step(frame).labels)
        record = {"sequence": task.sequence, "video": task.video, "status": "done",
                  "frames": len(source), "objects": len(opened.ids),
                  "seconds": round(time.perf_counter() - started, 3),
                  "cpu_seconds": round(time.process_time() - cpu_started, 3)}
        marker = dict(record, settings=None if settings is None else settings_record(settings))
        store.publish(f"{results}/{task.sequence}", output, task.sequence, marker)
        return record
    finally:
        store.remove_tree(work_dir)
