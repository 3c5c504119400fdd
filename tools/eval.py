"""Evaluate segmentation results against DAVIS ground truth (J, F, J&F as the DAVIS benchmark).

    python tools/eval.py --results out --data_dir data/davis_sample --year 2016 --split val --plot

Prints a table (one row per object, then the overall means) and writes
global_results-<split>.csv and per-sequence_results-<split>.csv (and, with --plot,
j_over_time-<split>.png/.csv) into --output (default: the results folder).
Definitions: docs/evaluation.md.
"""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import osmn.cli  # noqa: E402, F401 (first: quiets TensorFlow's start-up lines)

from absl import flags  # noqa: E402

from osmn.errors import UserError  # noqa: E402
from osmn.cli import run_tool  # noqa: E402
from osmn.io import check_output_dir  # noqa: E402

flags.DEFINE_string("results", None, "Results folder in the DAVIS layout: RESULTS/<seq>/<frame>.png.")
flags.DEFINE_string("data_dir", None, "DAVIS root (holding Annotations/ and ImageSets/).")
flags.DEFINE_enum("year", "2017", ["2016", "2017"], "2016: single object (all ids merged); "
                  "2017: one object per id.")
flags.DEFINE_string("split", "val", "Image set: ImageSets/<year>/<split>.txt.")
flags.DEFINE_string("resolution", "480p", "Annotations/<resolution>/.")
flags.DEFINE_list("sequences", None, "Only these sequences (default: the image set).")
flags.DEFINE_bool("exclude_void", False, "Exclude void (255) pixels from J and F (the official "
                  "semi-supervised evaluation does not: void counts as background).")
flags.DEFINE_bool("plot", False, "Also write mean J over normalised time (paper Fig. 4).")
flags.DEFINE_string("output", None, "Folder to write the CSV/plot files to (default: "
                    "--results).")
FLAGS = flags.FLAGS


def run(results, davis, year="2017", split="val", resolution="480p", sequences=None,
        exclude_void=False, plot=False, output=None) -> str:
    """Evaluate and write the files; returns the table. Raises UserError on bad input."""
    if results is None or davis is None:
        raise UserError("--results and --data_dir: both required")
    results, davis = pathlib.Path(results), pathlib.Path(davis)
    if not results.is_dir():
        raise UserError(f"{results}: results folder not found")
    if not (davis / "Annotations").is_dir():
        raise UserError(f"{davis}: not a DAVIS root (no Annotations/ folder)")
    out_dir = check_output_dir(output, "--output") if output else check_output_dir(
        results, "--results")
    from osmn.progress import Progbar  # noqa: PLC0415
    from osmn.evaluation import evaluate, list_sequences, table, write_csv, write_plot  # noqa
    if sequences:
        source = "--sequences"
    else:
        sequences, image_set = list_sequences(davis, year, split, results)
        source = str(image_set) if image_set else None
        if image_set is None:
            print(f"{davis / 'ImageSets' / year / (split + '.txt')} not found: evaluating every "
                  f"sequence in {results} ({', '.join(sequences)}).")
    print(f"Evaluating {len(sequences)} sequence(s) from {source or results}, DAVIS {year} "
          f"semi-supervised (first and last frames excluded"
          f"{', void excluded' if exclude_void else ''}).")
    bar = Progbar(len(sequences), unit_name="sequence")
    object_results = evaluate(davis, results, sequences, year, resolution, exclude_void,
                              on_sequence=lambda _: bar.add(1))
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = list(write_csv(object_results, out_dir, split).values())
    if plot:
        paths += list(write_plot(object_results, out_dir, split).values())
    return table(object_results) + "\nWrote " + ", ".join(str(p) for p in paths)


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    print(run(FLAGS.results, FLAGS.data_dir, FLAGS.year, FLAGS.split, FLAGS.resolution,
              FLAGS.sequences, FLAGS.exclude_void, FLAGS.plot, FLAGS.output))


def entry():
    run_tool(main)


if __name__ == "__main__":
    entry()
