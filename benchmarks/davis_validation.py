"""J and F of a training run on held-out DAVIS sequences, per checkpoint, working size and
online fine-tuning: how the shipped model's settings were chosen.

    python benchmarks/davis_validation.py --run runs/davis16_lite \
        --working_sizes 427x240,569x320,854x480 --tag davis16_lite-validation

For every checkpoint of the run (`--checkpoints all`) or its final `model.keras` (`final`), every
working size (width x height, as `tools/infer.py --im_size`) and every `--finetune_steps` value,
it segments each sequence of `--split` from its first ground-truth mask with the library's
`VideoSegmenter` (float32, as `tools/infer.py`), then measures DAVIS 2016 J and F with
`osmn.evaluation` (first and last frames excluded, as the official code). The copy-the-first-mask
baseline is measured beside it. Writes benchmarks/results/<tag>.json and .md.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from absl import flags  # noqa: E402

from osmn.cli import define_size_list, run_tool  # noqa: E402
from osmn.errors import UserError  # noqa: E402

flags.DEFINE_string("run", None, "Training run folder (checkpoints/ and model.keras), or a "
                    ".keras model file.")
flags.DEFINE_string("data_dir", str(REPO.parent / "shared/data/davis2016_train"),
                    "DAVIS root holding the sequences of --split.")
flags.DEFINE_string("split", str(REPO / "data/davis16_splits/val.txt"),
                    "Text file, one sequence per line (# comments).")
define_size_list("working_sizes", ["427x240"], "Working sizes (native: each frame's own size)",
                 special=("native",))
flags.DEFINE_enum("checkpoints", "final", ["final", "all"], "Evaluate the final model.keras "
                  "only, or every kept checkpoint of the run too.")
flags.DEFINE_list("finetune_steps", ["0"], "Online fine-tuning steps per object on frame 0 "
                  "(paper Table 3), one evaluation per value.")
flags.DEFINE_string("tag", None, "Result name: benchmarks/results/<tag>.json and .md.")
FLAGS = flags.FLAGS


def _sequences(split) -> list:
    path = pathlib.Path(split)
    if not path.is_file():
        raise UserError(f"{path}: split file not found")
    return [line.strip() for line in path.read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def _models(run, which):
    """(name, step or None, OSMN) of the run's final model and, with `all`, its checkpoints."""
    import tensorflow as tf  # noqa: PLC0415
    from osmn.model import OSMN, load_osmn  # noqa: PLC0415
    run = pathlib.Path(run)
    final = load_osmn(run)
    models = []
    if which == "all" and run.is_dir():
        for prefix in tf.train.get_checkpoint_state(str(run / "checkpoints")).all_model_checkpoint_paths:
            model = OSMN(final.model_config)
            tf.train.Checkpoint(model_variables=[v.value for v in model.variables]).restore(
                prefix).expect_partial()
            models.append((pathlib.Path(prefix).name, int(prefix.rsplit("-", 1)[1]), model))
    models.append(("final", None, final))
    return models


def segment_sequence(model, video_dir, mask_path, out_root, work_size, finetune_steps):
    """Segment one sequence into out_root/<sequence>/<frame>.png with the tools' driver loop;
    returns (frames, seconds)."""
    from osmn.inference import ResultWriter, VideoSegmenter, segment_video  # noqa: PLC0415
    from osmn.inference.video_input import open_video  # noqa: PLC0415
    opened = open_video(video_dir, mask_path)
    segmenter = VideoSegmenter(model, work_size=work_size, finetune_steps=finetune_steps)
    started = time.perf_counter()
    with ResultWriter(out_root, opened.sequence, opened.palette, opened.ids) as writer:
        frames = segment_video(segmenter, opened.source, opened.labels, writer)
    return frames, time.perf_counter() - started


def _measure(data_dir, results, sequences):
    from osmn.evaluation import evaluate  # noqa: PLC0415
    from osmn.evaluation.davis import overall  # noqa: PLC0415
    objects = evaluate(data_dir, results, sequences, "2016")
    per_sequence = {r.sequence: round(r.summary()["J-Mean"], 4) for r in objects}
    means = overall(objects)
    return {"J": round(means["J-Mean"], 4), "F": round(means["F-Mean"], 4),
            "J_per_sequence": per_sequence}


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.run or not FLAGS.tag:
        raise UserError("--run and --tag: both required")
    sizes = [None if s == "native" else s for s in FLAGS.working_sizes]
    try:
        finetune = [int(v) for v in FLAGS.finetune_steps]
    except ValueError:
        raise UserError(f"--finetune_steps: integers, got {FLAGS.finetune_steps}") from None
    sequences = _sequences(FLAGS.split)
    data = pathlib.Path(FLAGS.data_dir)
    videos = {s: (data / "JPEGImages/480p" / s, data / "Annotations/480p" / s / "00000.png")
              for s in sequences}
    from osmn.evaluation.baselines import copy_first_mask  # noqa: PLC0415 (loads TensorFlow)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        copy_first_mask(data, sequences, scratch / "copy")
        rows.append({"model": "copy first mask", **_measure(data, scratch / "copy", sequences)})
        print(rows[-1])
        for name, step, model in _models(FLAGS.run, FLAGS.checkpoints):
            for size in sizes:
                for steps in finetune:
                    out = scratch / f"{name}-{size}-{steps}"
                    frames = seconds = 0
                    for s, (video, mask) in videos.items():
                        n, t = segment_sequence(model, video, mask, out, size, steps)
                        frames, seconds = frames + n, seconds + t
                    rows.append({"model": name, "step": step,
                                 "working_size": "native" if size is None else str(size),
                                 "finetune_steps": steps, "frames": frames,
                                 "seconds": round(seconds, 1),
                                 "seconds_per_video": round(seconds / len(videos), 1),
                                 **_measure(data, out, sequences)})
                    print(rows[-1])
    record = {"run": str(FLAGS.run), "split": str(FLAGS.split), "sequences": sequences,
              "data_dir": str(FLAGS.data_dir), "rows": rows}
    out = REPO / "benchmarks" / "results"
    from osmn.io import atomic_write  # noqa: PLC0415
    atomic_write(out / f"{FLAGS.tag}.json", json.dumps(record, indent=2) + "\n")
    lines = ["| model | step | working size | fine-tuning steps | J | F | s / video |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r.get('step') or ''} | {r.get('working_size', '')} | "
                     f"{r.get('finetune_steps', '')} | {r['J']:.3f} | {r['F']:.3f} | "
                     f"{r.get('seconds_per_video', '')} |")
    atomic_write(out / f"{FLAGS.tag}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    run_tool(main)
