"""Segment every video of a manifest on Apache Beam (locally, or on Dataflow, Flink, Spark).

    python tools/segment_many.py --manifest videos.csv --output OUT \
        [--checkpoint MODEL] [--im_size=854x480] [--precision auto] \
        [--runner DirectRunner --direct_num_workers=2 --direct_running_mode=multi_processing]

The manifest is a CSV with the header `video,mask[,sequence]`. Writes OUT/<sequence>/<frame>.png
(the masks `tools/infer.py` writes), OUT/results.csv (one row per video) and OUT/failed.csv
(videos that failed, with the reason). Flags this tool does not know are Beam pipeline options.
Exit code: 0 every video is complete (segmented now or skipped as already complete), 1 some
videos failed (OUT/failed.csv), 2 bad flags or manifest. See docs/batch.md.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import app, flags  # noqa: E402

from osmn.cli import SHIPPED_MODEL, define_size, model_path_or_shipped  # noqa: E402
from osmn.errors import UserError  # noqa: E402
from osmn.precision import INFERENCE_PRECISIONS  # noqa: E402

flags.DEFINE_string("manifest", None, "CSV with a header video,mask[,sequence]; local or any "
                    "Beam filesystem (gs://...).")
flags.DEFINE_string("output", None, "Output folder (local or gs://...): OUTPUT/<sequence>/, "
                    "results.csv, failed.csv.")
flags.DEFINE_string("checkpoint", None, f"OSMN model (.keras, local or URI). Default: "
                    f"{SHIPPED_MODEL} (local runners only).")
define_size("im_size", None, "Working size; default: the model's own working size if its "
            "config has one, else each frame's size (as infer.py)")
flags.DEFINE_enum("precision", "auto", INFERENCE_PRECISIONS, "Compute precision, as "
                  "tools/infer.py --precision (auto: the fastest for the model on this CPU).")
flags.DEFINE_bool("keep_last_guide", False, "As tools/infer.py --keep_last_guide.")
flags.DEFINE_bool("force", False, "Segment again the videos whose results are already complete "
                  "(default: skip them).")
FLAGS = flags.FLAGS



def _beam():
    try:
        import apache_beam  # noqa: F401, PLC0415
    except ImportError:
        raise UserError('tools/segment_many.py needs Apache Beam: pip install -e ".[beam]"') \
            from None


def run(manifest, output, checkpoint=None, im_size=None, precision="auto",
        keep_last_guide=False, force=False, beam_args=()):
    """Run the pipeline; returns (exit code, summary line). Raises UserError on bad input."""
    if not manifest:
        raise UserError("--manifest: required (a CSV with the header video,mask[,sequence])")
    if not output:
        raise UserError("--output: required")
    _beam()
    from apache_beam.options.pipeline_options import PipelineOptions  # noqa: PLC0415
    import apache_beam as beam  # noqa: PLC0415
    from osmn.batch import store  # noqa: PLC0415
    from osmn.batch.manifest import read_manifest  # noqa: PLC0415
    from osmn.batch.pipeline import FAILED_NAME, RESULTS_NAME, build_pipeline  # noqa: PLC0415
    from osmn.batch.video_job import SegmentSettings  # noqa: PLC0415

    # Relative local paths are relative to the current folder, as for tools/infer.py; workers
    # may run elsewhere, so they get absolute ones.
    def absolute(path):
        return os.path.abspath(path) if store.FileSystems.get_scheme(path) is None else path

    tasks = [dataclasses.replace(t, video=absolute(t.video), mask=absolute(t.mask))
             for t in read_manifest(manifest)]
    if checkpoint is None:
        checkpoint = str(model_path_or_shipped(None))
    elif store.is_local(checkpoint):
        if not os.path.exists(checkpoint):
            raise UserError(f"--checkpoint={checkpoint}: model file not found")
        checkpoint = os.path.abspath(checkpoint)
    if store.is_local(output):
        output = os.path.abspath(output)
        store.ensure_folder(output)
    settings = SegmentSettings(checkpoint=checkpoint, precision=precision, work_size=im_size,
                               keep_last_guide=keep_last_guide)
    started = time.perf_counter()
    beam_args = list(beam_args)
    if not any(a.startswith("--default_sdk_harness_log_level") for a in beam_args):
        beam_args.append("--default_sdk_harness_log_level=WARNING")  # workers: no INFO chatter
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    options = PipelineOptions(beam_args)
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, tasks, output, settings, force=force)
    result = pipeline.run()
    result.wait_until_finish()
    seconds = time.perf_counter() - started
    failed = store.count_rows(store.join(output, FAILED_NAME))
    counts = _status_counts(store.join(output, RESULTS_NAME))
    frames = _counter(result, "frames")
    line = (f"{len(tasks)} videos: {counts.get('done', 0)} segmented"
            f"{'' if frames is None else f' ({frames} frames)'}, "
            f"{counts.get('skipped', 0)} already complete (skipped), {failed} failed; "
            f"{seconds:.1f} s -> {output}")
    if failed:
        line += f" (reasons: {store.join(output, FAILED_NAME)})"
    return (1 if failed else 0), line


def _counter(result, name):
    """The committed value of the pipeline's counter `osmn/<name>`, or None if the runner
    does not report it."""
    from apache_beam.metrics.metric import MetricsFilter  # noqa: PLC0415
    from osmn.batch.pipeline import METRICS_NAMESPACE  # noqa: PLC0415
    try:
        counters = result.metrics().query(
            MetricsFilter().with_namespace(METRICS_NAMESPACE).with_name(name))["counters"]
    except Exception:  # noqa: BLE001 (some runners do not report metrics)
        return None
    return sum(c.committed or 0 for c in counters) if counters else 0


def _status_counts(path):
    import csv  # noqa: PLC0415
    from osmn.batch import store  # noqa: PLC0415
    if not store.FileSystems.exists(path):
        return {}
    counts = {}
    for row in csv.DictReader(store.read_bytes(path).decode("utf-8").splitlines()):
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts


def main(argv):
    code, line = run(FLAGS.manifest, FLAGS.output, FLAGS.checkpoint,
                     FLAGS.im_size, FLAGS.precision, FLAGS.keep_last_guide,
                     FLAGS.force, beam_args=argv[1:])
    print(line)
    return code


def _parse_known_flags(argv):
    """This tool's flags; everything else (e.g. --runner) is left for Beam's PipelineOptions."""
    try:
        return FLAGS(argv, known_only=True)
    except flags.Error as error:
        raise UserError(f"bad flag: {error}") from None


def entry():
    """As `osmn.cli.run_tool`, but unknown flags go to Beam instead of being an error."""
    try:
        app.run(main, flags_parser=_parse_known_flags)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    entry()
