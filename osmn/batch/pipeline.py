"""The Beam pipeline of a batch run: one element per video, segmented by a stateful DoFn.

    manifest rows -> Create -> Reshuffle -> ParDo(SegmentVideosFn) -+-> results.csv (every video)
                                                                   +-> failed.csv  (dead letter)

Why a DoFn and not Beam's `RunInference`: the stock `TFModelHandlerNumpy/Tensor` load a model
with `tf.keras.models.load_model` (this project's `.keras` files need `osmn.model.load_osmn`,
which registers the custom layers), and its SavedModel path imports `tensorflow_hub`; above all
`RunInference` is stateless per element, while a video is a sequence whose frame t needs the
masks of frame t-1 and the gammas of frame 0. So the element is a whole video and one DoFn runs
the library's per-video `VideoSegmenter` over its frames in order. The model is loaded once per
worker process (`apache_beam.utils.shared.Shared`, shared by the DoFn instances of the process's
threads; on the first video that needs it) and each DoFn instance keeps one segmenter, whose
per-frame function is traced once.
`Reshuffle` keeps Beam from running the segmentation in `Create`'s stage (one worker), so the
videos are spread over the workers.
"""

from __future__ import annotations

import csv
import io
from typing import Dict, Iterable, List

import apache_beam as beam
from apache_beam.utils import shared

from osmn.batch import store
from osmn.batch.manifest import VideoTask
from osmn.batch.video_job import (SegmentSettings, load_model, make_segmenter, segment_video,
                                  settings_record)

RESULTS_NAME = "results.csv"
FAILED_NAME = "failed.csv"
RESULT_COLUMNS = ("sequence", "video", "status", "frames", "objects", "seconds", "cpu_seconds")
FAILED_COLUMNS = ("sequence", "video", "mask", "reason")
FAILED_TAG = "failed"
METRICS_NAMESPACE = "osmn"


def csv_line(values: Iterable) -> str:
    """One CSV line (quoted as needed, no line end)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(["" if v is None else v for v in values])
    return out.getvalue()


def one_line(error: BaseException) -> str:
    """The reason of a failure on one line: a UserError's message, else type and message."""
    from osmn.errors import UserError  # noqa: PLC0415
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, UserError):
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class SegmentVideosFn(beam.DoFn):
    """VideoTask -> results row; failures also go to the `failed` output with their reason.

    Args:
        output: the output folder (local path or Beam filesystem URI).
        settings: `SegmentSettings` of every video.
        force: re-segment videos whose results are already complete.
    """

    def __init__(self, output: str, settings: SegmentSettings, force: bool = False):
        self.output = output
        self.settings = settings
        self.force = force
        self._shared = shared.Shared()
        self._videos = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "videos_done")
        self._skipped = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "videos_skipped")
        self._failures = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "videos_failed")
        self._frames = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "frames")
        self._seconds = beam.metrics.Metrics.distribution(METRICS_NAMESPACE, "video_ms")

    def setup(self):
        self._holder = None
        self._segmenter = None

    def _get_segmenter(self):
        """The model is loaded on the first video to segment, so a re-run that only skips
        complete videos never imports TensorFlow on the workers."""
        if self._segmenter is None:
            settings = self.settings

            def load():
                return _Holder(load_model(settings))

            self._holder = self._shared.acquire(load, tag=repr(settings))
            self._segmenter = make_segmenter(self._holder.model, settings)
        return self._segmenter

    def process(self, task: VideoTask):
        try:
            store.remove_stale_staging(self.output, task.sequence)
            done = None if self.force else store.completed(self.output, task.sequence)
            if done is not None and done.get("settings") == settings_record(self.settings):
                self._skipped.inc()
                yield {**done, "sequence": task.sequence, "video": task.video,
                       "status": "skipped"}
                return
            row = segment_video(task, self.output, self._get_segmenter(), self.settings)
        except Exception as error:  # noqa: BLE001 (dead letter: one video must not stop others)
            self._failures.inc()
            reason = one_line(error)
            yield beam.pvalue.TaggedOutput(FAILED_TAG, {
                "sequence": task.sequence, "video": task.video, "mask": task.mask,
                "reason": reason})
            yield {"sequence": task.sequence, "video": task.video, "status": "failed"}
            return
        self._videos.inc()
        self._frames.inc(row["frames"])
        self._seconds.update(int(row["seconds"] * 1000))
        yield row


class _Holder:
    """A weak-referenceable box for the shared model (what `Shared.acquire` needs)."""

    def __init__(self, model):
        self.model = model


def _sorted_lines(rows: List[Dict], columns) -> List[str]:
    rows = sorted(rows, key=lambda r: r["sequence"])
    return [csv_line(row.get(c) for c in columns) for row in rows]


def _write_table(rows, output: str, name: str, columns, label: str):
    return (rows
            | f"Gather{label}" >> beam.combiners.ToList()
            | f"Sort{label}" >> beam.FlatMap(_sorted_lines, columns)
            | f"Write{label}" >> beam.io.WriteToText(
                store.join(output, name), shard_name_template="", num_shards=1,
                header=csv_line(columns)))


def build_pipeline(pipeline: beam.Pipeline, tasks: List[VideoTask], output: str,
                   settings: SegmentSettings, force: bool = False) -> None:
    """Add the batch segmentation of `tasks` to `pipeline`.

    Writes OUT/<sequence>/<frame>.png per video, OUT/results.csv (one row per video, sorted by
    sequence: status done, skipped or failed) and OUT/failed.csv (the dead letter: sequence,
    video, mask and the one-line reason of each failed video; only the header when none failed).
    """
    outputs = (pipeline
               | "Videos" >> beam.Create(tasks)
               | "Spread" >> beam.Reshuffle()
               | "Segment" >> beam.ParDo(SegmentVideosFn(output, settings, force))
               .with_outputs(FAILED_TAG, main="results"))
    _write_table(outputs.results, output, RESULTS_NAME, RESULT_COLUMNS, "Results")
    _write_table(outputs[FAILED_TAG], output, FAILED_NAME, FAILED_COLUMNS, "Failed")
