"""Segment the objects of a first-frame mask through a video with OSMN.

    python tools/infer.py --video data/davis_sample/JPEGImages/480p/car-shadow --output out --overlay

writes out/car-shadow/00000.png ... (DAVIS palette PNGs, the DAVIS results layout) and, with
--overlay, out/overlays/car-shadow/*.jpg and out/overlays/car-shadow.gif. See docs/inference.md.
"""

from __future__ import annotations

import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from osmn.cli import (SHIPPED_MODEL, define_size, model_path_or_shipped,  # noqa: E402
                      run_tool)  # (quiets TF)
from osmn.errors import UserError  # noqa: E402
from osmn.io import check_output_dir, temp_dir  # noqa: E402
from osmn.precision import INFERENCE_PRECISIONS  # noqa: E402

from absl import flags  # noqa: E402


flags.DEFINE_string("video", None, "Folder of frames (JPEG/PNG, sorted by name) or a video file.")
flags.DEFINE_string("mask", None, "First-frame mask (palette or grey PNG). Default: the DAVIS "
                    "layout's first annotation (JPEGImages/<res>/<seq> -> Annotations/<res>/<seq>).")
flags.DEFINE_string("checkpoint", None, f"OSMN model (.keras). Default: {SHIPPED_MODEL}.")
flags.DEFINE_string("output", None, "Output folder; masks go to OUTPUT/<sequence>/<frame>.png.")
flags.DEFINE_string("sequence", None, "Sequence name. Default: the video folder's/file's name.")
flags.DEFINE_bool("overlay", False, "Also write overlays and an animated GIF (and an mp4 when "
                  "imageio-ffmpeg is installed) under OUTPUT/overlays/.")
define_size("im_size", None, "Working size; default: the model's own working size (the size "
            "it was validated at), else each frame's size")
flags.DEFINE_bool("keep_last_guide", False, "An empty prediction keeps the object's last "
                  "non-empty mask as spatial guide (the original gives an all-zero guide).")
flags.DEFINE_integer("finetune_steps", 0, "Online fine-tuning steps per object on frame 0 "
                     "(the paper's Table 3 used 100).")
flags.DEFINE_bool("crf", False, "Dense-CRF post-processing (needs pydensecrf2).")
flags.DEFINE_bool("save_scores", False, "Save each object's float32 probabilities as .npy.")
flags.DEFINE_enum("precision", "auto", INFERENCE_PRECISIONS,
                  "Compute precision. auto: the fastest for this model on this CPU without "
                  "changing the masks materially: bfloat16 (mixed_bfloat16: float32 weights, "
                  "bfloat16 compute; masks at IoU 0.998 of float32) for the VGG16 model on CPUs "
                  "with AMX or AVX512-BF16, float32 otherwise (docs/performance.md).")
flags.DEFINE_integer("start_frame", 0, "Index of the first frame to segment; --mask is then "
                     "the mask of that frame. Earlier frames are neither segmented nor written.")
FLAGS = flags.FLAGS



def check_flags(output, finetune_steps=0) -> pathlib.Path:
    """Flag checks that need no TensorFlow, and the output location; returns `output` as a path.

    Raises:
        UserError: a missing or bad flag, or an output folder that cannot be written.
    """
    if output is None:
        raise UserError("--output: required")
    if finetune_steps < 0:
        raise UserError(f"--finetune_steps: must be >= 0, got {finetune_steps}")
    return check_output_dir(output, "--output")


def _load_model(path):
    from osmn.model import load_osmn  # noqa: PLC0415 (TF import after flag parsing)
    if path is not None:
        print(f"Using the model {path}.")
    return load_osmn(model_path_or_shipped(path))


def run(video, mask, checkpoint, output, sequence=None, overlay=False, im_size=None,
        keep_last_guide=False, finetune_steps=0, crf=False, save_scores=False,
        precision="auto", start_frame=0):
    """Segment one video; returns the summary line. Raises UserError on bad input."""
    output = check_flags(output, finetune_steps)
    from osmn.progress import Progbar  # noqa: PLC0415
    from osmn.inference import (LocalEngine, ResultWriter, VideoSegmenter,  # noqa: PLC0415
                                publish_sequence, segment_video)
    from osmn.inference.video_input import open_video  # noqa: PLC0415

    opened = open_video(video, mask, sequence, start_frame)
    source, labels, palette, ids, sequence = (
        opened.source, opened.labels, opened.palette, opened.ids, opened.sequence)
    postprocess = None
    if crf:
        from osmn.inference.crf import DenseCrf  # noqa: PLC0415
        postprocess = DenseCrf()
    loaded = _load_model(checkpoint)
    # The model's own working size (the size it was validated at) unless --im_size is given.
    work_size = im_size or loaded.model_config.working_size
    engine = LocalEngine(loaded, precision=precision)

    # Everything goes into a temporary folder beside the output, published at the end; it is
    # removed on any error, Ctrl-C or SIGTERM (osmn.cli.run_tool).
    with temp_dir(output) as temp_root:
        finetune_bar = None
        if finetune_steps:
            finetune_bar = Progbar(finetune_steps * len(ids), unit_name="step")
            print(f"Fine-tuning {len(ids)} object(s) for {finetune_steps} steps each:")
        segmenter = VideoSegmenter(
            engine, keep_last_guide=keep_last_guide, work_size=work_size, postprocess=postprocess,
            finetune_steps=finetune_steps,
            on_finetune_step=(lambda step, loss: finetune_bar.add(1, [("loss", loss)]))
            if finetune_bar else None)
        started = time.perf_counter()
        with ResultWriter(temp_root, sequence, palette, ids, overlay=overlay,
                          save_scores=save_scores, fps=source.fps) as writer:
            bar = Progbar(len(source) - start_frame, unit_name="frame")
            written = segment_video(segmenter, source, labels, writer, start_frame, save_scores,
                                    on_frame=bar.update)
        total = time.perf_counter() - started
        publish_sequence(temp_root, output, sequence)
    times = segmenter.step_seconds
    frames = f"{written} frames" + (f" (from frame {start_frame})" if start_frame else "")
    parts = [frames, f"{len(ids)} object(s) (ids {', '.join(map(str, ids))})",
             segmenter.describe(), f"modulator {segmenter.modulator_seconds:.2f} s once"]
    if len(times) > 1:  # The first step includes tracing the tf.function: reported apart.
        parts.append(f"segmentation {sum(times[1:]) / (len(times) - 1):.3f} s/frame over "
                     f"{len(times) - 1} frames after a first frame of {times[0]:.2f} s (tracing)")
    elif times:
        parts.append(f"segmentation {times[0]:.2f} s for 1 frame (with tracing)")
    if finetune_steps:
        parts.append(f"fine-tuning {segmenter.finetune_seconds:.1f} s")
    if work_size is not None:
        parts.append(f"working size {work_size[0]}x{work_size[1]}")
    parts.append(f"total {total:.1f} s -> {output / sequence}")
    if overlay and not writer.mp4_written:
        parts.append("(no mp4: pip install imageio imageio-ffmpeg)")
    return "; ".join(parts)


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.video is None:
        raise UserError("--video: required (a folder of frames or a video file)")
    check_flags(FLAGS.output, FLAGS.finetune_steps)
    print(run(FLAGS.video, FLAGS.mask, FLAGS.checkpoint, FLAGS.output, FLAGS.sequence,
              FLAGS.overlay, FLAGS.im_size, FLAGS.keep_last_guide,
              FLAGS.finetune_steps, FLAGS.crf, FLAGS.save_scores, FLAGS.precision,
              FLAGS.start_frame))


def entry():
    run_tool(main)


if __name__ == "__main__":
    entry()
