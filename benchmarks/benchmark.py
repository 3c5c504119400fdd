"""OSMN inference speed on this machine against ceilings measured in the same run.

    python benchmarks/benchmark.py            # full width, 854x480 and 400x400 (~10-15 min),
                                              # then the portable section at 448x256
    python benchmarks/benchmark.py --quick    # width 1/16, tiny sizes: a smoke test (~1-2 min)
    python benchmarks/benchmark.py --only_portable --portable_size 96x64 --runs 2
                                              # that section alone (85 s here, busy machine)

Prints a table and writes benchmarks/results/benchmark-<host tag>-<date>.json (CPU model, cores, TF version,
oneDNN setting, AMX presence, load average beside every number). Every timing is the median of
--runs interleaved runs after --warmup calls (`timing.py`); every target is a ratio against
ceilings measured in this run: a large float32 and bfloat16 matmul and the bare
`keras.applications.VGG16(include_top=False, weights=None)` trunk at the same size and
precision. Speed models have random He-scaled weights (speed does not depend on the values and
this avoids denormal activations); the bfloat16 accuracy check uses data/sample_model.keras
when it exists, else a tiny random model (the JSON says which). See docs/performance.md.

The portable section (`--portable`, on by default) adds the issue-11 rows from
`benchmarks/portable.py` (`portable_section`, not a copy): the `segment` half per frame for the
lite and VGG16 backbones in TF, LiteRT float32/float16/int8 and onnxruntime on the same inputs;
without the portable extras installed it is skipped and the reason printed and recorded.
See docs/lite_and_portable.md.
"""

from __future__ import annotations

import datetime
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from absl import flags  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from common import (QUICK_WIDTH, bare_trunk, entry, environment, frame_inputs,  # noqa: E402
                    he_randomize, host_tag, trunk_macs, write_json)
from flops import objects_macs, segmentation_macs  # noqa: E402
import portable  # noqa: E402  (benchmarks/portable.py: the portable section)
from tool_loop import sample_frames, tool_loop  # noqa: E402
from timing import paired_ratio, peak_rss_mb, stability, time_interleaved  # noqa: E402
from osmn import config  # noqa: E402
from osmn.cli import define_size, define_size_list  # noqa: E402
from osmn.errors import UserError  # noqa: E402
from osmn.evaluation.metrics import jaccard  # noqa: E402
from osmn.guides import spatial_guide, visual_guide  # noqa: E402
from osmn.model import OSMN, load_osmn  # noqa: E402
from osmn.training.step import train_step  # noqa: E402
from osmn.inference.engine import (LocalEngine, default_jit_compile,  # noqa: E402
                                   segment_objects)
from osmn.precision import CPU_PRECISIONS  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_bool("quick", False, "Smoke test: width 1/16, tiny sizes, 2 runs, 3 fine-tuning "
                  "steps, 4 frames for the accuracy check.")
define_size_list("sizes", ["854x480", "400x400"], "Frame sizes (DAVIS 480p first)")
flags.DEFINE_integer("runs", 5, "Timed runs per measurement (median reported).")
flags.DEFINE_integer("warmup", 1, "Untimed calls before timing (after tracing).")
flags.DEFINE_integer("max_objects", 4, "Objects K = 1..max_objects for the batching saving.")
flags.DEFINE_integer("finetune_steps", config.FINETUNE_STEPS,
                     "Online fine-tuning steps N timed against one modulator pass.")
flags.DEFINE_integer("matmul_size", 4096, "Side of the square matmul ceiling.")
flags.DEFINE_bool("xla", True, "Also time the per-frame function with XLA flipped from its "
                  "per-precision default (first size).")
flags.DEFINE_bool("eager", True, "Also time eager (untraced) segment_objects (first size, f32).")
flags.DEFINE_integer("loop_frames", 12, "Sample frames through tools/infer.py's whole driver "
                     "loop (the tool-loop section; 0: only its step against the bare call).")
flags.DEFINE_integer("accuracy_frames", 40, "Frames of the sample sequence for bf16 vs f32.")
flags.DEFINE_string("checkpoint", "data/sample_model.keras",
                    "Trained model for the bfloat16 accuracy check (random tiny if missing).")
flags.DEFINE_string("output_dir", "benchmarks/results", "Where <tag>.json is written.")
flags.DEFINE_string("tag", None, "Result file name; default benchmark-<host tag>-<date>.")
flags.DEFINE_bool("portable", True, "Also the portable section: lite vs VGG16 per frame and TF vs "
                  "LiteRT vs onnxruntime on the same inputs (skipped, with the reason printed, "
                  "when ai-edge-litert / tf2onnx / onnxruntime are not installed).")
define_size("portable_size", str(portable.DEFAULT_SIZE), "Frame size of the portable section "
            "(default: the original's YouTube-VOS size; --quick uses its first size)")
flags.DEFINE_integer("portable_objects", portable.DEFAULT_OBJECTS,
                     "Objects K sharing the frame in the portable section.")
flags.DEFINE_bool("only_portable", False, "Run only the portable section (at --portable_size, "
                  "--runs): a short run of that section alone.")

SAMPLE = REPO / "data" / "davis_sample"
SAMPLE_SEQUENCE = "car-shadow"


# --- sections --------------------------------------------------------------------------------

def matmul_ceilings(size: int, runs: int, warmup: int) -> dict:
    out = {}
    for precision in CPU_PRECISIONS:
        a = tf.cast(tf.random.stateless_normal((size, size), (1, 2)), precision)
        b = tf.cast(tf.random.stateless_normal((size, size), (3, 4)), precision)
        fn = tf.function(lambda: tf.matmul(a, b)[0, 0])
        t = time_interleaved({"matmul": lambda: fn().numpy()}, runs, warmup)["matmul"]
        out[precision] = {**t, "gflops": 2 * size ** 3 / t["median_s"] / 1e9}
    return out


def target_ratios(t: dict, statistic: str) -> dict:
    """The two per-frame target ratios of one section's timings `t`, from `statistic`
    ("median_s", "min_s" or "cpu_median_s") of the OSMN K=1, plain FCN and bare trunk runs."""
    one = t["osmn_k1"][statistic]
    return {"modulated_over_plain": one / t["plain_fcn"][statistic],
            "whole_frame_over_bare_trunk": one / t["bare_trunk"][statistic]}


def paired_target_ratios(t: dict) -> dict:
    """The two target ratios as medians (and quartiles) of per-round ratios: OSMN K=1 and its
    reference run one after the other in each round (`timing.paired_ratio`)."""
    return {"modulated_over_plain": paired_ratio(t, "osmn_k1", "plain_fcn"),
            "whole_frame_over_bare_trunk": paired_ratio(t, "osmn_k1", "bare_trunk")}


def segmentation_speed(models: dict, sizes, precisions, max_objects, runs, warmup,
                       use_xla, use_eager, ceilings) -> dict:
    """Per size and precision: bare trunk, plain FCN, OSMN K = 1..max_objects (one batched
    pass), ratios and conv GFLOP/s. Candidates of one (size, precision) are interleaved."""
    results = {}
    gammas = tf.constant(np.random.default_rng(0).normal(1, 0.1, (
        max_objects, models["osmn"].gamma_size)), tf.float32)
    for precision in precisions:
        trunk = bare_trunk(precision)
        osmn_fns = LocalEngine(models["osmn"], precision)
        plain_fns = LocalEngine(models["plain"], precision)
        xla_default = default_jit_compile(models["osmn"], precision)
        flipped_fns = LocalEngine(models["osmn"], precision,
                                  jit_compile=not xla_default) if use_xla else None
        # With the native modulation kernel as the default, the XLA pass beside it.
        xla_pass_fns = (LocalEngine(models["osmn"], precision, modulation_kernel="xla")
                        if osmn_fns.modulation_kernel == "native" else None)
        for index, (height, width) in enumerate(sizes):
            image, guides = frame_inputs(max_objects, height, width)
            # OSMN K=1 between its two references: adjacent to both in every round.
            candidates = {
                "plain_fcn": lambda: plain_fns.segment(image, guides[:1], gammas[:1])[0].numpy(),
                "osmn_k1": lambda: osmn_fns.segment(image, guides[:1], gammas[:1])[0].numpy(),
                "bare_trunk": lambda: trunk(image).numpy(),
            }
            for k in range(2, max_objects + 1):
                candidates[f"osmn_k{k}"] = (
                    lambda k=k: osmn_fns.segment(image, guides[:k], gammas[:k])[0].numpy())
            if flipped_fns is not None and index == 0:
                candidates["osmn_k1_flipped_xla"] = (
                    lambda: flipped_fns.segment(image, guides[:1], gammas[:1])[0].numpy())
            if xla_pass_fns is not None and index == 0:
                candidates["osmn_k1_xla_modulation_pass"] = (
                    lambda: xla_pass_fns.segment(image, guides[:1], gammas[:1])[0].numpy())
            if use_eager and index == 0 and precision == "float32":
                model = models["osmn"]
                candidates["osmn_k1_eager"] = lambda: tf.sigmoid(segment_objects(
                    model, image, guides[:1], gammas[:1])).numpy()
            print(f"timing {precision} {width}x{height}: {', '.join(candidates)}", flush=True)
            t = time_interleaved(candidates, runs, warmup)
            macs = segmentation_macs(models["osmn"].model_config, height, width)
            plain_macs = objects_macs(segmentation_macs(models["plain"].model_config,
                                                        height, width), 1)
            bare_macs = trunk_macs(height, width)
            ceiling = ceilings[precision]["gflops"]
            one = t["osmn_k1"]["median_s"]
            entry = {"times": t, "conv_macs": {"osmn_k1": objects_macs(macs, 1),
                                               "plain_fcn": plain_macs, "bare_trunk": bare_macs},
                     "ratios": {
                         **target_ratios(t, "median_s"),
                         "batched_over_separate": {
                             k: t[f"osmn_k{k}"]["median_s"] / (k * one)
                             for k in range(1, max_objects + 1)}},
                     "gflops": {
                         "osmn_k1": 2 * objects_macs(macs, 1) / one / 1e9,
                         "plain_fcn": 2 * plain_macs / t["plain_fcn"]["median_s"] / 1e9,
                         "bare_trunk": 2 * bare_macs / t["bare_trunk"]["median_s"] / 1e9}}
            # The same two targets from the fastest run of each candidate (the least disturbed
            # estimate when other jobs slow some calls) and from process CPU time (all threads:
            # steadier than wall time under load, but it also counts threads' spinning).
            entry["ratios_min_time"] = target_ratios(t, "min_s")
            # And per round: on a host whose speed swings between calls, a round's two calls
            # share its state, so these stay steady where the medians above do not.
            entry["ratios_paired"] = paired_target_ratios(t)
            entry["stability"] = stability(t, ("bare_trunk", "plain_fcn", "osmn_k1"))
            entry["ratios_cpu_time"] = target_ratios(t, "cpu_median_s")
            entry["fraction_of_matmul_ceiling"] = {
                name: value / ceiling for name, value in entry["gflops"].items()}
            entry["xla_default"] = xla_default
            entry["modulation_kernel"] = osmn_fns.modulation_kernel
            if "osmn_k1_xla_modulation_pass" in t:
                entry["ratios"]["xla_modulation_pass_over_default"] = (
                    t["osmn_k1_xla_modulation_pass"]["median_s"] / one)
            if "osmn_k1_flipped_xla" in t:
                entry["ratios"]["flipped_xla_over_default"] = (
                    t["osmn_k1_flipped_xla"]["median_s"] / one)
            if "osmn_k1_eager" in t:
                entry["ratios"]["eager_over_default"] = t["osmn_k1_eager"]["median_s"] / one
            entry["trace_count"] = osmn_fns.trace_count
            results.setdefault(precision, {})[f"{width}x{height}"] = entry
            print(f"  peak RSS so far {peak_rss_mb():.0f} MiB", flush=True)
    return results


def modulator_cost(model, runs, warmup) -> dict:
    guide = tf.constant(np.random.default_rng(1).normal(0, 60, (1, 224, 224, 3)), tf.float32)
    out = {}
    for precision in CPU_PRECISIONS:
        fns = LocalEngine(model, precision)
        out[precision] = time_interleaved({"modulator": lambda: fns.gamma(guide).numpy()},
                                          runs, warmup)["modulator"]
    return out


def finetune_cost(model, steps: int, height: int, width: int) -> dict:
    """N online fine-tuning steps as `osmn.inference.finetune` runs them (batch 1, Adam,
    `osmn.training.step.train_step`), at a fixed height x width."""
    tuned = OSMN.from_config(model.get_config())
    tuned.set_weights(model.get_weights())
    optimizer = keras.optimizers.Adam(config.FINETUNE_LEARNING_RATE, beta_1=config.ADAM_BETA_1,
                                      beta_2=config.ADAM_BETA_2, epsilon=config.ADAM_EPSILON)
    image, guides = frame_inputs(1, height, width, seed=2)
    label = tf.cast(guides > 0.5, tf.float32)
    visual = tf.constant(np.random.default_rng(3).normal(0, 60, (1, 224, 224, 3)), tf.float32)

    train = train_step(tuned, optimizer)
    step = tf.function(lambda: train(
        {"image": image, "visual_guide": visual, "spatial_guide": guides}, label)[0])

    step().numpy()  # trace + optimizer slots, not timed
    progress = keras.utils.Progbar(steps, unit_name="step")
    times = []
    for i in range(steps):
        start = time.perf_counter()
        step().numpy()
        times.append(time.perf_counter() - start)
        progress.update(i + 1)
    return {"steps": steps, "size": f"{width}x{height}", "total_s": float(sum(times)),
            "median_step_s": float(np.median(times))}


def io_cost(frames: int) -> dict:
    """Per-frame JPEG decoding and palette-PNG writing with the inference tool's own functions
    (`osmn.inference.frames.read_frame`, `osmn.inference.masks.write_mask`): the most that
    overlapping them with compute can save per frame."""
    from osmn.inference.frames import read_frame  # noqa: PLC0415
    from osmn.inference.masks import write_mask  # noqa: PLC0415
    paths = sorted((SAMPLE / "JPEGImages" / "480p" / SAMPLE_SEQUENCE).glob("*.jpg"))[:frames]
    masks = [np.array(Image.open(p)) for p in sorted(
        (SAMPLE / "Annotations" / "480p" / SAMPLE_SEQUENCE).glob("*.png"))[:frames]]
    labels = [(m > 127).astype(np.uint8) for m in masks]
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        for path in paths:
            read_frame(path)
        decode = (time.perf_counter() - start) / len(paths)
        start = time.perf_counter()
        for i, label in enumerate(labels):
            write_mask(pathlib.Path(folder) / f"{i:05d}.png", label)
        write = (time.perf_counter() - start) / len(labels)
    return {"frames": len(paths), "decode_jpeg_s": decode, "write_png_s": write}


def load_sample(frames: int):
    images = sorted((SAMPLE / "JPEGImages" / "480p" / SAMPLE_SEQUENCE).glob("*.jpg"))[:frames]
    masks = sorted((SAMPLE / "Annotations" / "480p" / SAMPLE_SEQUENCE).glob("*.png"))[:frames]
    if not images or len(images) != len(masks):
        raise UserError(f"{SAMPLE}: sample sequence {SAMPLE_SEQUENCE} missing or incomplete")
    return ([np.array(Image.open(p).convert("RGB")) for p in images],
            [np.array(Image.open(p).convert("L")) > 127 for p in masks])


def bfloat16_accuracy(model, source: str, frames: int) -> dict:
    """bf16 vs f32 on the sample sequence, frame t guided by the ground-truth mask of t-1 in
    both precisions (the same inputs, so differences are the precision's alone). Mask IoUs are
    DAVIS J (`osmn.evaluation.metrics.jaccard`: 1 when both masks are empty)."""
    from osmn.preprocessing import to_model_input  # noqa: PLC0415
    rgb, masks = load_sample(frames)
    f32, bf16 = LocalEngine(model, "float32"), LocalEngine(model, "bfloat16")
    first_guide = visual_guide(tf.constant(rgb[0], tf.float32),
                               tf.constant(masks[0][..., None], tf.uint8))[None]
    gamma32, gamma16 = f32.gamma(first_guide), bf16.gamma(first_guide)
    max_diff, ious, iou_gt = 0.0, [], {"float32": [], "bfloat16": []}
    progress = keras.utils.Progbar(len(rgb) - 1, unit_name="frame")
    for t in range(1, len(rgb)):
        image = to_model_input(tf.constant(rgb[t], tf.float32))[None]
        guide = spatial_guide(tf.constant(masks[t - 1], tf.uint8))[None]
        p32, m32 = (x.numpy()[0, ..., 0] for x in f32.segment(image, guide, gamma32))
        p16, m16 = (x.numpy()[0, ..., 0] for x in bf16.segment(image, guide, gamma16))
        max_diff = max(max_diff, float(np.abs(p32 - p16).max()))
        ious.append(float(jaccard(m32, m16)))
        for name, m in (("float32", m32), ("bfloat16", m16)):
            iou_gt[name].append(float(jaccard(masks[t], m)))
        progress.update(t)
    return {"model": source, "frames": len(rgb) - 1, "max_abs_prob_diff": max_diff,
            "mask_iou_bf16_vs_f32_mean": float(np.mean(ious)),
            "mask_iou_bf16_vs_f32_min": float(np.min(ious)),
            "mean_iou_vs_ground_truth": {k: float(np.mean(v)) for k, v in iou_gt.items()},
            "foreground_fraction_f32_last": float(m32.mean())}


def accuracy_model(checkpoint: str, quick: bool):
    path = REPO / checkpoint if not os.path.isabs(checkpoint) else pathlib.Path(checkpoint)
    if path.exists() and not quick:
        return load_osmn(path), str(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
    model = OSMN({"width_multiplier": QUICK_WIDTH})
    he_randomize(model, seed=7)
    return model, f"random He-init model, width {QUICK_WIDTH} ({checkpoint} not used)"


# --- report ----------------------------------------------------------------------------------

def table(result: dict) -> str:
    rows = [("section", "item", "value")]
    env = result["environment"]
    rows.append(("machine", "cpu", f"{env['cpu_model']}, {env['cores']} cores, "
                 f"AMX-BF16 {env['amx_bf16']}, oneDNN {env['TF_ENABLE_ONEDNN_OPTS']}"))
    rows.append(("machine", "load avg start/end", f"{env['load_average_start'][0]:.2f} / "
                 f"{env['load_average_end'][0]:.2f}"))
    if "matmul_ceiling" in result:  # not with --only_portable
        rows += _main_rows(result)
    if "portable" in result:
        rows += _portable_rows(result["portable"])
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]}" for r in rows)


def _portable_rows(section: dict) -> list:
    if "skipped" in section:
        return [("portable", "skipped", section["skipped"])]
    height, width = section["frame"]
    name = f"portable {width}x{height} K={section['objects']}"
    rows = []
    for backbone, per_runtime in section["backbones"].items():
        for runtime, row in per_runtime.items():
            size = f", {row['file_mb']:.1f} MB" if row["file_mb"] else ""
            rows.append((name, f"{backbone} {runtime}",
                         f"{row['median_s'] * 1e3:.1f} ms/frame{size}, max |dp| vs TF "
                         f"{row['max_abs_diff_vs_tf']:.2g}"))
    if "lite_over_vgg16_tf" in section:
        rows.append((name, "lite / VGG16 (TF)", f"{section['lite_over_vgg16_tf']:.3f}"))
    return rows


def _main_rows(result: dict) -> list:
    rows = []
    for precision, c in result["matmul_ceiling"].items():
        rows.append(("ceiling", f"matmul {precision}", f"{c['gflops']:.0f} GFLOP/s"))
    for precision, per_size in result["segmentation"].items():
        for size, e in per_size.items():
            t, r = e["times"], e["ratios"]
            p = f"{precision} {size}"
            rows.append((p, "bare VGG16 trunk", f"{t['bare_trunk']['median_s']:.3f} s "
                         f"({e['fraction_of_matmul_ceiling']['bare_trunk']:.0%} of matmul)"))
            rows.append((p, "plain FCN frame", f"{t['plain_fcn']['median_s']:.3f} s"))
            rows.append((p, "OSMN frame K=1", f"{t['osmn_k1']['median_s']:.3f} s "
                         f"({e['fraction_of_matmul_ceiling']['osmn_k1']:.0%} of matmul, "
                         f"{e['gflops']['osmn_k1']:.0f} GFLOP/s)"))
            c = e["ratios_cpu_time"]
            rows.append((p, "modulated / plain", f"{r['modulated_over_plain']:.3f} "
                         f"(target <= 1.05; CPU time {c['modulated_over_plain']:.3f})"))
            rows.append((p, "whole frame / bare trunk",
                         f"{r['whole_frame_over_bare_trunk']:.3f} "
                         f"(target <= 1.15; CPU time {c['whole_frame_over_bare_trunk']:.3f})"))
            mins, st = e["ratios_min_time"], e["stability"]
            rows.append((p, "same, fastest runs", f"modulated / plain "
                         f"{mins['modulated_over_plain']:.3f}, frame / trunk "
                         f"{mins['whole_frame_over_bare_trunk']:.3f}"))
            pr = {name: f"{v['median']:.3f} ({v['q1']:.3f}-{v['q3']:.3f})"
                  for name, v in e["ratios_paired"].items()}
            rows.append((p, "same, per round (quartiles)", f"modulated / plain "
                         f"{pr['modulated_over_plain']}, frame / trunk "
                         f"{pr['whole_frame_over_bare_trunk']}"))
            rows.append((p, "per-call spread (max / min)", f"{st['max_spread']:.2f}" + (
                "" if st["stable"] else f" > {st['stable_spread_limit']}: UNSTABLE machine, "
                "the medians cannot resolve 5%; read the per-round ratios or rerun")))
            rows.append((p, "K batched / K x single", ", ".join(
                f"K={k}: {v:.2f}" for k, v in r["batched_over_separate"].items())))
            xla = "on" if e["xla_default"] else "off"
            if "flipped_xla_over_default" in r:
                rows.append((p, f"XLA {'off' if e['xla_default'] else 'on'} / XLA {xla} "
                             "(default)", f"{r['flipped_xla_over_default']:.3f}"))
            if "eager_over_default" in r:
                rows.append((p, f"eager / traced (XLA {xla})", f"{r['eager_over_default']:.3f}"))
            rows.append((p, "modulation kernel", e["modulation_kernel"]))
            if "xla_modulation_pass_over_default" in r:
                rows.append((p, "XLA pass / native pass (frame)",
                             f"{r['xla_modulation_pass_over_default']:.3f}"))
    for precision, loop in result.get("tool_loop", {}).items():
        paired = loop["tool_step_over_bare_paired"]
        rows.append((f"tool loop {precision}", "VideoSegmenter.step / bare segment",
                     f"{loop['tool_step_over_bare']:.3f}; per round {paired['median']:.3f} "
                     f"({paired['q1']:.3f}-{paired['q3']:.3f}); CPU time "
                     f"{loop['tool_step_over_bare_cpu_time']:.3f} (target <= 1.05; "
                     f"{loop['path']})"))
        if "driver_loop" in loop:
            d = loop["driver_loop"]
            rows.append((f"tool loop {precision}", f"driver loop, {d['frames']} frames",
                         f"{d['wall_per_step_s']:.3f} s/frame wall, "
                         f"{d['wall_per_step_over_bare']:.3f} x the bare call"))
    for precision, m in result["modulator"].items():
        rows.append(("modulator", f"one object {precision}", f"{m['median_s']:.3f} s"))
    if "finetune" in result:
        f = result["finetune"]
        rows.append(("fine-tuning", f"{f['steps']} steps {f['size']} f32",
                     f"{f['total_s']:.1f} s ({f['median_step_s']:.3f} s/step)"))
        rows.append(("fine-tuning", "N steps / modulator pass", f"{f['over_modulator']:.0f}x"))
    io = result["io"]
    rows.append(("I/O per frame", "decode JPEG + write PNG",
                 f"{io['decode_jpeg_s'] * 1e3:.1f} + {io['write_png_s'] * 1e3:.1f} ms "
                 f"({io['over_float32_frame']:.1%} of a f32 frame at the first size)"))
    a = result["bfloat16_accuracy"]
    rows.append(("bf16 accuracy", a["model"][:40], f"max |dp| {a['max_abs_prob_diff']:.4f}, "
                 f"IoU mean {a['mask_iou_bf16_vs_f32_mean']:.4f} "
                 f"min {a['mask_iou_bf16_vs_f32_min']:.4f} (target >= 0.99)"))
    rows.append(("memory", "peak RSS", f"{result['peak_rss_mib']:.0f} MiB (after inference "
                 f"sections {result['peak_rss_mib_after']['segmentation']:.0f} MiB)"))
    return rows


def portable_result(quick: bool, size, objects: int, runs: int) -> dict:
    """The portable section (benchmarks/portable.py), or {"skipped": reason} without extras."""
    reason = portable.missing_extras()
    if reason:
        print(f"portable section skipped: {reason}", flush=True)
        return {"skipped": reason}
    width = QUICK_WIDTH if quick else 1.0
    return portable.portable_section(width, size[0], size[1], objects, runs,
                                     report=lambda line: print(line, flush=True))


def run(quick: bool, sizes, runs: int, warmup: int, max_objects: int, finetune_steps: int,
        matmul_size: int, use_xla: bool, use_eager: bool, accuracy_frames: int,
        checkpoint: str, output_dir, tag=None, with_portable: bool = True,
        portable_size=portable.DEFAULT_FRAME, portable_objects: int = portable.DEFAULT_OBJECTS,
        only_portable: bool = False, loop_frames: int = 12) -> dict:
    if quick:
        sizes, runs, finetune_steps = [(65, 97), (64, 64)], min(runs, 2), min(finetune_steps, 3)
        matmul_size, accuracy_frames = min(matmul_size, 512), min(accuracy_frames, 4)
        portable_size = sizes[0]
    if runs < 1 or max_objects < 1 or finetune_steps < 0 or accuracy_frames < 2 \
            or portable_objects < 1:
        raise UserError("--runs, --max_objects and --portable_objects must be >= 1, "
                        "--finetune_steps >= 0, --accuracy_frames >= 2")
    env = environment()
    if only_portable:
        result = {"environment": env, "runs": runs,
                  "portable": portable_result(quick, portable_size, portable_objects, runs)}
        # Its own file name: a section alone must not replace the full run's JSON.
        return _finish(result, env, output_dir, tag or default_tag(env, quick, "-portable-only"),
                       quick)
    width = QUICK_WIDTH if quick else 1.0
    osmn = OSMN({"width_multiplier": width})
    he_randomize(osmn)
    plain = OSMN({"width_multiplier": width, "use_visual_modulator": False,
                  "use_spatial_modulator": False})
    plain.segmentation_network.set_weights(osmn.segmentation_network.get_weights())
    result = {"environment": env, "width_multiplier": width, "runs": runs, "warmup": warmup}
    result["matmul_ceiling"] = matmul_ceilings(matmul_size, runs, warmup)
    result["segmentation"] = segmentation_speed(
        {"osmn": osmn, "plain": plain}, sizes, list(CPU_PRECISIONS), max_objects, runs,
        warmup, use_xla, use_eager, result["matmul_ceiling"])
    # The tool's own per-frame call against the engine's bare call, at the sample's size.
    rgb, labels = sample_frames(max(loop_frames, 4), sizes[0] if quick else None)
    result["tool_loop"] = {}
    for precision in CPU_PRECISIONS:
        print(f"timing the tool loop, {precision}", flush=True)
        result["tool_loop"][precision] = tool_loop(osmn, precision, rgb, labels, runs,
                                                   0 if quick else loop_frames)
    # ru_maxrss only grows: each value is the peak up to the end of that section.
    result["peak_rss_mib_after"] = {"segmentation": peak_rss_mb()}
    result["modulator"] = modulator_cost(osmn, runs, warmup)
    if finetune_steps:
        ft = finetune_cost(osmn, finetune_steps, *sizes[0])
        ft["over_modulator"] = ft["total_s"] / result["modulator"]["float32"]["median_s"]
        result["finetune"] = ft
        result["peak_rss_mib_after"]["finetune"] = peak_rss_mb()
    result["io"] = io_cost(accuracy_frames)
    frame_s = result["segmentation"]["float32"][f"{sizes[0][1]}x{sizes[0][0]}"]["times"][
        "osmn_k1"]["median_s"]
    result["io"]["over_float32_frame"] = (
        result["io"]["decode_jpeg_s"] + result["io"]["write_png_s"]) / frame_s
    result["peak_rss_mib_before_accuracy"] = peak_rss_mb()
    result["bfloat16_accuracy"] = bfloat16_accuracy(*accuracy_model(checkpoint, quick),
                                                    accuracy_frames)
    result["peak_rss_mib"] = peak_rss_mb()
    if with_portable:
        result["portable"] = portable_result(quick, portable_size, portable_objects, runs)
    return _finish(result, env, output_dir, tag, quick)


def default_tag(env: dict, quick: bool, variant: str = "") -> str:
    """The result file's name: benchmark-<host tag>-<date>[<variant>] (benchmarks/README.md)."""
    return f"benchmark-{host_tag(env, quick)}-{datetime.date.today().isoformat()}{variant}"


def _finish(result: dict, env: dict, output_dir, tag, quick: bool) -> dict:
    env["load_average_end"] = list(os.getloadavg())
    tag = tag or default_tag(env, quick)
    path = write_json(result, pathlib.Path(output_dir) / f"{tag}.json")
    print(table(result))
    print(f"wrote {path}")
    return result


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    run(FLAGS.quick, [size.hw for size in FLAGS.sizes], FLAGS.runs, FLAGS.warmup, FLAGS.max_objects,
        FLAGS.finetune_steps, FLAGS.matmul_size, FLAGS.xla, FLAGS.eager, FLAGS.accuracy_frames,
        FLAGS.checkpoint, FLAGS.output_dir, FLAGS.tag, FLAGS.portable or FLAGS.only_portable,
        FLAGS.portable_size.hw, FLAGS.portable_objects, FLAGS.only_portable, FLAGS.loop_frames)


if __name__ == "__main__":
    entry(main)
