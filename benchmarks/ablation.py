"""Table 3 of the paper at CPU scale: does each modulator do what the paper says?

The paper (Table 3, DAVIS 2017 mean IoU): OSMN 52.5, no visual modulator 33.0, no spatial
modulator 40.1. Here the full model and the two ablations are trained with the project's own
training code (`osmn.training.train` on `osmn.data.training_dataset`) on synthetic videos built to
need each modulator (`osmn.data.synthetic`: *distractor* and *twin* families), at a reduced width,
for the same number of steps, then segmented with `osmn.inference.VideoSegmenter` and scored with
the project's DAVIS evaluation (`osmn.evaluation`) on held-out videos of both families.

    python benchmarks/ablation.py                          # 3 variants x 20 min + data + eval
    python benchmarks/ablation.py --minutes_per_variant=4  # a short real run
    python benchmarks/ablation.py --quick                  # seconds: the pipeline end to end

Budget: the full model (the costliest per step) is trained for --minutes_per_variant in four
resumed chunks (5 steps untimed, 10 and 30 timed, then as many as the measured step time
allows); the ablations are then trained for the same number of steps (each takes at most as
long).
--steps=N skips the timing and trains every variant N steps.

Writes benchmarks/results/ablation.json (settings, machine load, per variant: steps, seconds,
start/end loss, J per family) and ablation.md (the table), atomically; prints the table. Beside J it
reports the share of the OTHER objects' pixels (distractors, twin) labelled as the target: the
failure each ablation is expected to cause. Reference row: the first-frame mask copied to every
frame (no model). See docs/ablation.md for what a run shows and does not show.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import platform
import shutil
import sys
import tempfile
import time
from typing import Callable, Dict, Optional, Sequence, Tuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from osmn.errors import UserError  # noqa: E402

# Variant -> (row label, ModelConfig switches, TrainConfig switches). Table 3's "Model" rows
# and its "- spatial guide augmentation" row. In Table 3 the augmentation rows are cumulative
# (random crop, then visual-guide and then spatial-guide augmentation removed: 49.5 -> 35.6);
# here only the spatial-guide perturbation is removed from the full model.
VARIANTS: Dict[str, Tuple[str, dict, dict]] = {
    "full": ("OSMN (both modulators)", {}, {}),
    "no_visual": ("no visual modulator", {"use_visual_modulator": False}, {}),
    "no_spatial": ("no spatial modulator", {"use_spatial_modulator": False}, {}),
    "no_guide_aug": ("no spatial-guide augmentation", {}, {"perturb_spatial_guide": False}),
}
# Paper Table 3 (DAVIS 2017 mean IoU, x100), for the reader's comparison only.
PAPER_TABLE3 = {"full": 52.5, "no_visual": 33.0, "no_spatial": 40.1, "no_guide_aug": 35.6}
FAMILIES = ("distractor", "twin")
BASELINE = "copy_first_mask"
# The full model's first chunks: an untimed warm-up (the first call pays one-time tracing and
# data-pipeline costs that later calls do not), then two timed ones that size the last chunk.
CALIBRATION_STEPS = (5, 10, 30)
LOSS_WINDOW = 50  # steps averaged for the reported start and end losses


@dataclasses.dataclass(frozen=True)
class AblationSettings:
    """Everything a run depends on (written into the JSON).

    Args:
        train_videos: int. Training videos per family (all objects annotated). Defaults to 40.
        eval_videos: int. Evaluation videos per family (only the target annotated). Defaults to 10.
        frames: int. Frames per video. Defaults to 16.
        height, width: int. Frame size. Defaults to 128x224.
        width_multiplier: float. Width of both VGG16s. Defaults to 1/8 (the project's `sample`
            recipe).
        batch_size: int. Defaults to 4.
        learning_rates: (float, float). Adam, the first until `decay_fraction` of the steps,
            then the second. Defaults to (1e-3, 1e-4) at 0.75, as `data/sample.flags` (900 of
            1200 steps): a from-scratch narrow model needs the large first rate.
        minutes_per_variant: float. Training budget of the full model. Defaults to 20.
        steps: optional int. Fixed steps per variant instead of the time budget.
        train_seed, eval_seed: int. Data seeds; must differ (disjoint sets). Model init and
            augmentation use train_seed too.
        variants: tuple of VARIANTS keys, "full" first.
    """

    train_videos: int = 40
    eval_videos: int = 10
    frames: int = 16
    height: int = 128
    width: int = 224
    width_multiplier: float = 0.125
    batch_size: int = 4
    learning_rates: Tuple[float, float] = (1e-3, 1e-4)
    decay_fraction: float = 0.75
    minutes_per_variant: float = 20.0
    steps: Optional[int] = None
    train_seed: int = 0
    eval_seed: int = 1
    variants: Tuple[str, ...] = ("full", "no_visual", "no_spatial", "no_guide_aug")

    def validate(self) -> "AblationSettings":
        if self.train_seed == self.eval_seed:
            raise UserError(f"train_seed and eval_seed must differ (disjoint sets), both "
                            f"{self.train_seed}")
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown or not self.variants or self.variants[0] != "full":
            raise UserError(f"--variants: must start with full and name only "
                            f"{', '.join(VARIANTS)}, got {','.join(self.variants)}")
        for name in ("train_videos", "eval_videos", "batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name}: must be >= 1, got {getattr(self, name)}")
        if self.frames < 3:
            raise UserError(f"--frames: must be >= 3 (the evaluation drops the first and last "
                            f"frame), got {self.frames}")
        if self.steps is not None and self.steps < 1:
            raise UserError(f"--steps: must be >= 1, got {self.steps}")
        if len(self.learning_rates) != 2 or not all(r > 0 for r in self.learning_rates):
            raise UserError(f"--lr: expected two positive rates, got {self.learning_rates}")
        if not 0 < self.decay_fraction <= 1:
            raise UserError(f"--decay_fraction: must be in (0, 1], got {self.decay_fraction}")
        if self.steps is None and not self.minutes_per_variant > 0:
            raise UserError(f"--minutes_per_variant: must be > 0, got {self.minutes_per_variant}")
        return self


# A test-sized run: 1 tiny video per family and split, 2 steps at width 1/16.
QUICK = AblationSettings(train_videos=1, eval_videos=1, frames=4, height=64, width=96,
                         width_multiplier=1 / 16, batch_size=2, steps=2)


def make_data(work_dir: pathlib.Path, s: AblationSettings, log=print):
    """Training root (both families) and one evaluation root per family, in the DAVIS layout.

    Returns:
        (train_root, {family: eval_root}).
    """
    from osmn.data import synthetic  # noqa: PLC0415

    def videos(family, n, seed):
        return synthetic.generate_videos(family, n, seed, s.frames, s.height, s.width)

    started = time.perf_counter()
    train = [v for f in FAMILIES for v in videos(f, s.train_videos, s.train_seed)]
    train_root = synthetic.write_davis(work_dir / "data" / "train", {"train": train}, "all")
    eval_roots = {}
    for family in FAMILIES:
        eval_roots[family] = synthetic.write_davis(
            work_dir / "data" / f"eval_{family}",
            {"val": videos(family, s.eval_videos, s.eval_seed)}, "target")
    log(f"data: {len(train)} training videos, {s.eval_videos} evaluation videos per family, "
        f"{s.frames} frames of {s.width}x{s.height} "
        f"({time.perf_counter() - started:.1f} s)")
    return train_root, eval_roots


def train_config(s: AblationSettings, variant: str, steps: int, decay_at: Optional[int] = None):
    """The TrainConfig of one variant (DAVIS-layout source, one size, two-step rate).

    `decay_at`: step of the rate drop; default `decay_fraction` x steps. The timed chunks of
    the full model pass a step beyond their end (the final step count is not known yet).
    """
    from osmn.config import ModelConfig, TrainConfig  # noqa: PLC0415
    _, model_changes, train_changes = VARIANTS[variant]
    model = ModelConfig(width_multiplier=s.width_multiplier, **model_changes)
    if decay_at is None:
        decay_at = max(1, int(round(s.decay_fraction * steps)))
    return TrainConfig(
        name=f"ablation_{variant}", source="davis", batch_size=s.batch_size, steps=steps,
        lr_boundaries=(decay_at,), lr_values=tuple(s.learning_rates),
        image_sizes=((s.height, s.width),),
        randomize_guide=True, he_init=True, model=model, checkpoint_every=10 ** 9,
        keep_checkpoints=1,
        seed=s.train_seed, **train_changes).validate()


def train_variant(s: AblationSettings, variant: str, train_root, run_dir,
                  steps: Optional[int], budget_seconds: float, progress: bool, log=print):
    """Train one variant with `osmn.training.train`; `steps=None` fills `budget_seconds`.

    Returns:
        dict: steps, train_seconds, loss_start / loss_end (mean total loss, summed over pixels,
        of the first and the last LOSS_WINDOW steps), model path.
    """
    from osmn.data import training_dataset  # noqa: PLC0415
    from osmn.training import train  # noqa: PLC0415

    history = []

    def run(total, decay_at=None):
        config = train_config(s, variant, total, decay_at)
        result = train(config, run_dir, lambda start: training_dataset(
            config, str(train_root), start_batch=start), summary_every=0, progress=progress,
            log=log)
        history.extend(result.losses)
        return result

    started = time.perf_counter()
    if steps is not None:
        result = run(steps)
    else:
        warm, first, second = CALIBRATION_STEPS
        never = 10 ** 9  # no rate drop during the calibration chunks
        run(warm, never)
        t0 = time.perf_counter()
        run(warm + first, never)
        t1 = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = run(warm + first + second, never)
        t2 = time.perf_counter() - t0
        # A resumed call costs overhead + steps x step time (model build, restore, tracing).
        per_step = max((t2 - t1) / max(second - first, 1), 1e-3)
        overhead = max(t1 - first * per_step, 0.0)
        remaining = budget_seconds - (time.perf_counter() - started) - overhead
        extra = int(remaining / per_step)
        done = warm + first + second
        log(f"{variant}: {per_step:.3f} s/step, {overhead:.0f} s overhead per call -> "
            f"{max(extra, 0)} more steps")
        if extra > 0:
            total = done + extra
            result = run(total, max(done + 1, int(round(s.decay_fraction * total))))
    seconds = time.perf_counter() - started
    def mean(values):  # None when a resumed run had nothing left to train
        return round(float(np.mean(values)), 1) if values else None

    return {"steps": int(result.step), "train_seconds": round(seconds, 1),
            "loss_start": mean(history[:LOSS_WINDOW]), "loss_end": mean(history[-LOSS_WINDOW:]),
            "model": str(pathlib.Path(run_dir) / "model.keras")}


def segment_set(segmenter, eval_root, sequences: Sequence[str], results_dir, progress: bool):
    """Segment every evaluation video from its first-frame mask with `segmenter` (an
    `osmn.inference.VideoSegmenter`, one per model: its traced step serves every video of
    every family) through the tools' driver loop (`osmn.inference.segment_video`); DAVIS
    results layout."""
    import keras  # noqa: PLC0415
    from osmn.inference import ResultWriter, segment_video  # noqa: PLC0415
    from osmn.inference.video_input import open_video  # noqa: PLC0415

    bar = keras.utils.Progbar(len(sequences), unit_name="video", verbose=1 if progress else 0)
    for i, name in enumerate(sequences):
        opened = open_video(pathlib.Path(eval_root) / "JPEGImages" / "480p" / name)
        with ResultWriter(results_dir, opened.sequence, opened.palette, opened.ids) as writer:
            segment_video(segmenter, opened.source, opened.labels, writer)
        bar.update(i + 1)


def other_objects_hit(s: AblationSettings, family: str, results_dir,
                      sequences: Sequence[str]) -> float:
    """% of the other objects' pixels (distractors or twin) labelled as the target.

    Over the evaluated frames (first and last excluded, as the DAVIS evaluation); the full
    labels come from regenerating the evaluation videos (the generator is deterministic).
    """
    from osmn.data import synthetic  # noqa: PLC0415
    from osmn.inference import read_mask  # noqa: PLC0415
    hit = total = 0
    for index, name in enumerate(sequences):
        video = synthetic.generate_video(family, s.eval_seed, index, s.frames, s.height, s.width)
        if video.name != name:
            raise RuntimeError(f"evaluation set order changed: {name} vs {video.name}")
        for t in range(1, s.frames - 1):
            result, _ = read_mask(pathlib.Path(results_dir) / name / f"{t:05d}.png")
            others = video.labels[t] > synthetic.TARGET_ID
            hit += int(np.sum(others & (result == synthetic.TARGET_ID)))
            total += int(np.sum(others))
    return 100.0 * hit / max(total, 1)


def evaluate_results(s: AblationSettings, family: str, eval_root, results_dir) -> dict:
    """J (and F) mean/recall of the target with `osmn.evaluation`, plus `other_objects_hit`."""
    from osmn.evaluation import evaluate, list_sequences, overall  # noqa: PLC0415
    sequences, _ = list_sequences(eval_root, "2017", "val", results_dir)
    scores = overall(evaluate(eval_root, results_dir, sequences, year="2017"))
    return {"J_mean": round(100 * scores["J-Mean"], 1),
            "J_recall": round(100 * scores["J-Recall"], 1),
            "F_mean": round(100 * scores["F-Mean"], 1),
            "others_hit_pct": round(other_objects_hit(s, family, results_dir, sequences), 1)}


def markdown_table(report: dict) -> str:
    """The Table-3-like table: J mean per variant and family, and the other-object hits."""
    rows = ["| Variant | steps | J distractor | J twin | others hit, distractor | "
            "others hit, twin | paper (DAVIS 2017 J) |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for name, entry in report["variants"].items():
        label = VARIANTS[name][0] if name in VARIANTS else "first-frame mask copied (no model)"
        steps = entry.get("steps", "-")
        paper = PAPER_TABLE3.get(name, "-")
        fam = entry["families"]
        rows.append(f"| {label} | {steps} | {fam['distractor']['J_mean']:.1f} | "
                    f"{fam['twin']['J_mean']:.1f} | {fam['distractor']['others_hit_pct']:.1f}% | "
                    f"{fam['twin']['others_hit_pct']:.1f}% | {paper} |")
    return "\n".join(rows) + "\n"


def _write_atomically(path: pathlib.Path, text: str) -> None:
    from osmn.io import atomic_write  # noqa: PLC0415
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text)


def run_ablation(s: AblationSettings, work_dir, json_path=None, markdown_path=None,
                 progress: bool = True, log: Callable[[str], None] = print) -> dict:
    """Generate the data, train and evaluate every variant, write JSON and markdown.

    Args:
        s: settings (validated here).
        work_dir: folder for data, runs and results. If it holds an interrupted run with the
            same settings (`settings.json`), its data are reused and its training runs resume
            (`osmn.training.train` resumes from the newest checkpoint).
        json_path, markdown_path: optional outputs, written atomically at the end.

    Returns:
        The report dict (what the JSON holds).
    """
    s.validate()
    from osmn.evaluation.baselines import copy_first_mask  # noqa: PLC0415
    from osmn.inference import LocalEngine, VideoSegmenter  # noqa: PLC0415
    from osmn.model import load_osmn  # noqa: PLC0415
    work_dir = pathlib.Path(work_dir)
    started = time.perf_counter()
    load_start = os.getloadavg()
    saved = work_dir / "settings.json"
    settings_text = json.dumps(dataclasses.asdict(s), sort_keys=True)
    if saved.exists():
        if saved.read_text() != settings_text:
            raise UserError(f"{work_dir}: holds a run with other settings ({saved})")
        train_root = work_dir / "data" / "train"
        eval_roots = {f: work_dir / "data" / f"eval_{f}" for f in FAMILIES}
        log(f"resuming the run in {work_dir} (same settings)")
    else:
        if (work_dir / "data").exists():
            raise UserError(f"{work_dir}: holds data of an unknown run; choose a new folder")
        train_root, eval_roots = make_data(work_dir, s, log)
        _write_atomically(saved, settings_text)
    settings = dict(dataclasses.asdict(s), variants=list(s.variants),
                    learning_rates=list(s.learning_rates))  # as JSON reads it back
    report = {"settings": settings, "machine": {
        "cpus": os.cpu_count(), "load_average_at_start": [round(x, 2) for x in load_start],
        "python": platform.python_version()}, "variants": {}}
    sequences = {f: (pathlib.Path(r) / "ImageSets/2017/val.txt").read_text().split()
                 for f, r in eval_roots.items()}

    baseline = {"families": {}}
    for family, root in eval_roots.items():
        results = work_dir / "results" / BASELINE / family
        copy_first_mask(root, sequences[family], results)
        baseline["families"][family] = evaluate_results(s, family, root, results)
    report["variants"][BASELINE] = baseline

    steps = s.steps
    for variant in s.variants:
        log(f"training {variant} ({VARIANTS[variant][0]}) ...")
        entry = train_variant(s, variant, train_root, work_dir / "runs" / variant, steps,
                              s.minutes_per_variant * 60.0, progress, log)
        steps = entry["steps"]  # the ablations get the full model's step count
        # float32: the recorded results were computed in float32 (not the per-host "auto").
        segmenter = VideoSegmenter(LocalEngine(load_osmn(entry.pop("model")),
                                               precision="float32"))
        entry["families"] = {}
        eval_started = time.perf_counter()
        for family, root in eval_roots.items():
            results = work_dir / "results" / variant / family
            segment_set(segmenter, root, sequences[family], results, progress)
            entry["families"][family] = evaluate_results(s, family, root, results)
        entry["eval_seconds"] = round(time.perf_counter() - eval_started, 1)
        report["variants"][variant] = entry
        log(f"{variant}: {entry}")
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    table = markdown_table(report)
    if json_path is not None:
        _write_atomically(pathlib.Path(json_path), json.dumps(report, indent=2) + "\n")
    if markdown_path is not None:
        _write_atomically(pathlib.Path(markdown_path), table)
    log(table)
    return report


def _flags():
    from absl import flags  # noqa: PLC0415
    from osmn.cli import FrameSize, define_enum_list, define_size  # noqa: PLC0415
    d = AblationSettings()
    flags.DEFINE_float("minutes_per_variant", d.minutes_per_variant, "Training budget of the "
                       "full model; the ablations train the same number of steps.")
    flags.DEFINE_integer("steps", None, "Fixed steps per variant (overrides the time budget).")
    flags.DEFINE_bool("quick", False, "Tiny end-to-end run (2 steps, width 1/16, 1 tiny video "
                      "per family): checks the pipeline, measures nothing.")
    flags.DEFINE_integer("train_videos", d.train_videos, "Training videos per family.")
    flags.DEFINE_integer("eval_videos", d.eval_videos, "Evaluation videos per family.")
    flags.DEFINE_integer("frames", d.frames, "Frames per video.")
    define_size("size", str(FrameSize(d.width, d.height)), "Frame size")
    flags.DEFINE_float("width_multiplier", d.width_multiplier, "Width of both VGG16s.")
    flags.DEFINE_integer("batch_size", d.batch_size, "Samples per step.")
    flags.DEFINE_list("lr", [str(r) for r in d.learning_rates], "Two learning rates (Adam): "
                      "before and after --decay_fraction of the steps.")
    flags.DEFINE_float("decay_fraction", d.decay_fraction, "Where the rate drops.")
    flags.DEFINE_integer("train_seed", d.train_seed, "Seed of the training videos and run.")
    flags.DEFINE_integer("eval_seed", d.eval_seed, "Seed of the evaluation videos.")
    define_enum_list("variants", list(d.variants), VARIANTS, "Variants, full first")
    flags.DEFINE_string("work_dir", None, "Keep data, runs and results here; a folder of an "
                        "interrupted run with the same settings is resumed. Default: a temp "
                        "folder, deleted at the end.")
    flags.DEFINE_string("output", str(REPO / "benchmarks" / "results" / "ablation.json"),
                        "JSON output; the markdown table goes beside it (.md).")
    return flags.FLAGS


def _rates(values) -> Tuple[float, ...]:
    try:
        return tuple(float(v) for v in values)
    except ValueError:
        raise UserError(f"--lr: expected numbers, got {','.join(values)!r}") from None


def _settings_from_flags(FLAGS) -> AblationSettings:
    if FLAGS.quick:
        return QUICK
    width, height = FLAGS.size
    return AblationSettings(
        train_videos=FLAGS.train_videos, eval_videos=FLAGS.eval_videos, frames=FLAGS.frames,
        height=height, width=width, width_multiplier=FLAGS.width_multiplier,
        batch_size=FLAGS.batch_size, learning_rates=_rates(FLAGS.lr),
        decay_fraction=FLAGS.decay_fraction,
        minutes_per_variant=FLAGS.minutes_per_variant, steps=FLAGS.steps,
        train_seed=FLAGS.train_seed, eval_seed=FLAGS.eval_seed,
        variants=tuple(FLAGS.variants)).validate()


def main():
    from absl import app, flags  # noqa: PLC0415
    FLAGS = _flags()

    def parse(argv):
        try:
            return FLAGS(argv)
        except flags.Error as error:
            print(f"ablation.py: {error}", file=sys.stderr)
            sys.exit(2)

    def body(argv):
        if len(argv) > 1:
            raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
        settings = _settings_from_flags(FLAGS)
        output = pathlib.Path(FLAGS.output)
        if FLAGS.quick and not FLAGS["output"].present:  # never overwrite a real run's table
            output = output.with_name("ablation_quick.json")
        if FLAGS.work_dir:
            work_dir = pathlib.Path(FLAGS.work_dir)
            run_ablation(settings, work_dir, output, output.with_suffix(".md"))
            return
        work_dir = pathlib.Path(tempfile.mkdtemp(prefix="osmn_ablation_"))
        try:
            run_ablation(settings, work_dir, output, output.with_suffix(".md"))
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)

    try:
        app.run(body, flags_parser=parse)
    except UserError as error:
        print(f"ablation.py: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
