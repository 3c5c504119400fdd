"""Write a set of synthetic videos (osmn.data.synthetic) as a DAVIS 2017 root.

    python tools/make_synthetic.py --output /tmp/syn_train --family twin --num_videos 20 \
        --frames 16 --size 224x128 --seed 0
    python tools/make_synthetic.py --output /tmp/syn_val --family distractor --num_videos 10 \
        --seed 1 --split val --annotate target

writes OUTPUT/JPEGImages/480p/<seq>/00000.jpg..., OUTPUT/Annotations/480p/<seq>/00000.png...
(DAVIS palette, the target is id 1) and OUTPUT/ImageSets/2017/<split>.txt. Sets made with
different --seed share no video. The output folder must not exist; it appears only when complete.
See docs/ablation.md.
"""

from __future__ import annotations

import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import osmn.cli  # noqa: E402, F401 (first: quiets TensorFlow's start-up lines)

from absl import flags  # noqa: E402

from osmn.errors import UserError  # noqa: E402
from osmn.cli import define_size, run_tool  # noqa: E402

from osmn.config import SYNTHETIC_ANNOTATE, SYNTHETIC_FAMILIES  # noqa: E402 (no TensorFlow)

flags.DEFINE_string("output", None, "New DAVIS root to write (must not exist). Required.")
flags.DEFINE_enum("family", None, SYNTHETIC_FAMILIES, "distractor (target + objects of other "
                  "appearance) or twin (target + a pixel-identical twin). Required.")
flags.DEFINE_integer("num_videos", 10, "Number of videos.")
flags.DEFINE_integer("frames", 16, "Frames per video.")
define_size("size", "224x128", "Frame size")
flags.DEFINE_integer("seed", 0, "Seed; sets with different seeds are disjoint.")
flags.DEFINE_string("split", "train", "Split file written: ImageSets/2017/<split>.txt.")
flags.DEFINE_enum("annotate", "all", SYNTHETIC_ANNOTATE, "all: every object annotated (ids "
                  "1..K, for training); target: only the target, id 1 (for evaluation).")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.output:
        raise UserError("--output: required")
    if not FLAGS.family:
        raise UserError(f"--family: required ({' or '.join(SYNTHETIC_FAMILIES)})")
    if not FLAGS.split or "/" in FLAGS.split:
        raise UserError(f"--split: must be a plain name, got {FLAGS.split!r}")
    width, height = FLAGS.size
    from osmn.data import synthetic  # noqa: PLC0415 (after the flag checks)
    if pathlib.Path(FLAGS.output).exists():
        raise UserError(f"--output={FLAGS.output}: already exists; choose a new folder")
    started = time.perf_counter()
    videos = synthetic.generate_videos(FLAGS.family, FLAGS.num_videos, FLAGS.seed, FLAGS.frames,
                                       height, width, progress=True)
    root = synthetic.write_davis(FLAGS.output, {FLAGS.split: videos}, FLAGS.annotate)
    objects = sum(v.num_objects for v in videos)
    print(f"wrote {len(videos)} {FLAGS.family} videos ({objects} objects, {FLAGS.frames} frames "
          f"of {width}x{height}, seed {FLAGS.seed}, annotate {FLAGS.annotate}) to {root} in "
          f"{time.perf_counter() - started:.1f} s")


def entry():
    run_tool(main)


if __name__ == "__main__":
    entry()
