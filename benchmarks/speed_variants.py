"""Each choice of the inference formulation timed against its alternative (docs/performance.md).

    python benchmarks/speed_variants.py                       # 854x480, full width, f32 and bf16
    TF_ENABLE_ONEDNN_OPTS=0 python benchmarks/speed_variants.py --only_trunk_and_frame
    python benchmarks/speed_variants.py --only_frames --precisions bfloat16 --runs 41

Times, interleaved in one process (`timing.py`), per precision:
* bare VGG16 trunk (the ceiling the targets use);
* the whole frame (K = 1) with the current network, traced (oneDNN graph, XLA off);
* the same in the original's formulation (`reference.py`: 16-channel transposed-conv upsampling,
  64-channel concat, 1x1 fusion) and, for K objects, the frame repeated K times;
* the side output as a 3x3 conv to 16 channels + 16 -> 1 fusion vs folded into one 3x3 conv to
  1 channel (the folded form is not faster; docs/performance.md);
* a side block's last modulated layer at conv3_3/conv4_3/conv5_3's sizes: pass, pool and side
  taps as three ops vs the one native op that does all three;
* one modulated layer at conv3's size: its conv + ReLU, the one-pass modulation with each
  kernel (`modulation_pass`: XLA, native) alone and right after the conv, and a bare `x * 2`
  pass over the same map (is the modulation memory-bound?);
* the whole frame with the XLA modulation pass instead of the native one, with the native pass
  but the block ends as separate ops (`LocalEngine(single_op_block_ends=False)`), and the plain FCN
  with the training formulation of the side-output head instead of the inference one
  (`inference_head`): what each of the two changes gains inside a frame;
* the inference tool's frame loop on the sample video with the shipped demo model: frames
  decoded in turn vs decoded ahead on a thread (`FrameSource.prefetched`).
Prints one line per candidate and writes benchmarks/results/speed_variants-<tag>.json.
"""

from __future__ import annotations

import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from absl import flags  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from common import (bare_trunk, entry, environment, frame_inputs,  # noqa: E402
                    he_randomize, host_tag, write_json)
from reference import original_segment  # noqa: E402
from timing import fastest_mean, time_interleaved  # noqa: E402
from osmn.cli import define_enum_list, define_size  # noqa: E402
from osmn.errors import UserError  # noqa: E402
from osmn.model import OSMN  # noqa: E402
from osmn.inference.engine import LocalEngine, segment_objects  # noqa: E402
from osmn.inference.engine.modulation_pass import (modulate_native,  # noqa: E402
                                        modulate_pool_taps_native, modulate_xla,
                                        native_status)
from osmn.precision import CPU_PRECISIONS  # noqa: E402

FLAGS = flags.FLAGS
define_size("size", "854x480", "Frame size")
flags.DEFINE_integer("runs", 5, "Timed runs (median reported).")
flags.DEFINE_integer("max_objects", 4, "K = 1..max_objects for old vs new multi-object.")
flags.DEFINE_bool("only_trunk_and_frame", False, "Only the bare trunk and the current frame "
                  "(for a second run under another oneDNN setting).")
flags.DEFINE_bool("only_frames", False, "Only whole frames (K = 1): bare trunk, the current "
                  "frame, the plain FCN and the frame variants of head_and_kernel_variants; "
                  "with many --runs, for an unsteady machine (compare the fastest runs).")
define_enum_list("precisions", list(CPU_PRECISIONS), CPU_PRECISIONS, "Precisions to time")
flags.DEFINE_string("output_dir", "benchmarks/results", "Where the JSON goes.")


def original_frame_fn(fns):
    """The original's formulation as a traced per-frame function (frame repeated per object)."""
    model = fns.model

    @tf.function(input_signature=[
        tf.TensorSpec([1, None, None, 3], tf.float32),
        tf.TensorSpec([None, None, None, 1], tf.float32),
        tf.TensorSpec([None, model.gamma_size], tf.float32)])
    def segment(image, guides, gammas):
        images = tf.repeat(image, tf.shape(guides)[0], axis=0)
        betas = model.spatial_biases(guides)
        logits = original_segment(model.segmentation_network, images, gammas, betas)
        probabilities = tf.sigmoid(tf.cast(logits, tf.float32))
        return probabilities, probabilities > 0.5

    return segment


def side_output_variants(channels: int, height: int, width: int, precision: str):
    """3x3 conv C->16 then 16->1, vs the product kernel as one 3x3 conv C->1."""
    dtype = tf.bfloat16 if precision == "bfloat16" else tf.float32
    rng = np.random.default_rng(0)
    x = tf.cast(rng.normal(size=(1, height, width, channels)), dtype)
    k16 = tf.cast(rng.normal(size=(3, 3, channels, 16)) / 30, dtype)
    w = tf.cast(rng.normal(size=(16, 1)), dtype)
    k1 = tf.einsum("hwcd,do->hwco", k16, w)
    two_step = tf.function(lambda: tf.einsum(
        "bhwc,co->bhwo", tf.nn.conv2d(x, k16, 1, "SAME"), w)[0, 0, 0, 0])
    folded = tf.function(lambda: tf.nn.conv2d(x, k1, 1, "SAME")[0, 0, 0, 0])
    return {"side_16ch_then_fuse": lambda: two_step().numpy(),
            "side_folded_1ch": lambda: folded().numpy()}


def modulation_pass_variants(height: int, width: int, precision: str, channels: int = 256):
    """conv3_x at 1/4 of the frame: the conv + ReLU, each modulation pass alone and after the
    conv (a fresh output, as in a frame), and a bare element-wise pass over the same
    [1, H/4, W/4, 256] map (memory traffic only)."""
    dtype = tf.bfloat16 if precision == "bfloat16" else tf.float32
    rng = np.random.default_rng(0)
    h, w = (height + 3) // 4, (width + 3) // 4
    x = tf.cast(rng.normal(size=(1, h, w, channels)), dtype)
    kernel = tf.cast(rng.normal(size=(3, 3, channels, channels)) * np.sqrt(2 / 9 / channels),
                     dtype)
    gamma = tf.cast(rng.normal(1, 0.1, (1, channels)), dtype)
    guide = tf.cast(rng.uniform(size=(1, h, w, 1)), dtype)
    scale, shift = (tf.constant(rng.normal(size=channels), tf.float32) for _ in range(2))
    conv = tf.function(lambda: tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME")))
    twice = tf.function(lambda: x * tf.constant(2, dtype), jit_compile=True)
    passes = {"xla": modulate_xla}
    if native_status()[0]:
        passes["native"] = modulate_native
    out = {"conv3_conv_relu": lambda: conv().numpy(),
           "conv3_bare_x2_pass": lambda: twice().numpy()}
    for name, modulate in passes.items():
        after = tf.function(lambda modulate=modulate: modulate(
            tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME")), gamma, guide, scale, shift))
        out[f"conv3_{name}_pass"] = (
            lambda modulate=modulate: modulate(x, gamma, guide, scale, shift).numpy())
        out[f"conv3_conv_then_{name}_pass"] = lambda after=after: after().numpy()
    return out


def block_end_variants(height: int, width: int, precision: str):
    """A side block's last modulated layer at conv3_3, conv4_3 and conv5_3's sizes: the native
    pass, then the max pool (not after conv5_3) and the 9-tap side product as separate ops, vs
    the single op (`modulate_pool_taps_native`) that never writes the modulated map."""
    if not native_status()[0]:
        return {}
    dtype = tf.bfloat16 if precision == "bfloat16" else tf.float32
    rng = np.random.default_rng(0)
    out = {}
    for block, channels, pool in ((3, 256, True), (4, 512, True), (5, 512, False)):
        stride = 2 ** (block - 1)
        h, w = -(-height // stride), -(-width // stride)
        x = tf.cast(rng.normal(size=(1, h, w, channels)), dtype)
        gamma = tf.constant(rng.normal(1, 0.1, (1, channels)), tf.float32)
        guide = tf.constant(rng.uniform(size=(1, h, w, 1)), tf.float32)
        scale, shift = (tf.constant(rng.normal(size=channels), tf.float32) for _ in range(2))
        kernel = tf.constant(rng.normal(size=(channels, 9)) / channels, tf.float32)

        def separate(x=x, gamma=gamma, guide=guide, scale=scale, shift=shift, kernel=kernel,
                     pool=pool):
            m = modulate_native(x, gamma, guide, scale, shift)
            taps = tf.einsum("bhwc,ct->bhwt", m, tf.cast(kernel, m.dtype))
            pooled = tf.nn.max_pool2d(m, 2, 2, "SAME") if pool else taps
            return pooled[0, 0, 0, 0], taps[0, 0, 0, 0]

        def single_op(x=x, gamma=gamma, guide=guide, scale=scale, shift=shift, kernel=kernel,
                      pool=pool):
            pooled, taps = modulate_pool_taps_native(x, gamma, guide, scale, shift, kernel,
                                                     pool=pool)
            return (pooled if pool else taps)[0, 0, 0, 0], taps[0, 0, 0, 0]

        for name, fn in (("separate", separate), ("single_op", single_op)):
            graph = tf.function(fn)
            out[f"conv{block}_3_block_end_{name}"] = lambda graph=graph: [
                v.numpy() for v in graph()]
    return out


def head_and_kernel_variants(model, plain, image, guides, gammas, precision: str):
    """The frame with the XLA modulation pass and with the native pass but the block ends as
    separate ops (if the default is native), and the plain FCN with the training formulation of the
    side-output head beside the inference one."""
    out = {}
    fns = LocalEngine(model, precision, jit_compile=False)
    if fns.modulation_kernel == "native":
        xla = LocalEngine(model, precision, jit_compile=False, modulation_kernel="xla")
        out["frame_k1_xla_modulation_pass"] = (
            lambda: xla.segment(image, guides[:1], gammas[:1])[0].numpy())
        separate = LocalEngine(model, precision, jit_compile=False, modulation_kernel="native",
                               single_op_block_ends=False)
        out["frame_k1_native_block_ends_separate"] = (
            lambda: separate.segment(image, guides[:1], gammas[:1])[0].numpy())
    run_plain = LocalEngine(plain, precision, jit_compile=False).model

    for head in ("inference", "training"):
        fn = tf.function(lambda image_, head=head: segment_objects(
            run_plain, image_, guides[:1], gammas[:1], head=head))
        out[f"plain_fcn_{head}_head"] = lambda fn=fn: fn(image).numpy()
    return out


def frame_loop_variants(frames: int = 12):
    """tools/infer.py's loop over `frames` sample frames, decoding in turn vs ahead."""
    from osmn.cli import SHIPPED_MODEL  # noqa: PLC0415
    from osmn.inference import (FrameSource, LocalEngine, VideoSegmenter,  # noqa: PLC0415
                                read_mask)
    from osmn.model import load_osmn  # noqa: PLC0415
    sample = REPO / "data" / "davis_sample"
    source = FrameSource(sample / "JPEGImages" / "480p" / "car-shadow")
    labels, _ = read_mask(sample / "Annotations" / "480p" / "car-shadow" / "00000.png")
    segmenter = VideoSegmenter(LocalEngine(load_osmn(REPO / SHIPPED_MODEL)))
    count = min(frames, len(source) - 1)

    def in_turn():
        segmenter.start(source.frame(0), labels)
        for index in range(1, count + 1):
            segmenter.step(source.frame(index))

    def ahead():
        segmenter.start(source.frame(0), labels)
        for index, frame in source.prefetched(1):
            if index > count:
                break
            segmenter.step(frame)

    return {f"loop_{count}_frames_decode_in_turn": in_turn,
            f"loop_{count}_frames_decode_ahead": ahead}


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    width, height = FLAGS.size
    env = environment()
    model = OSMN({})
    he_randomize(model)
    plain = OSMN({"use_visual_modulator": False, "use_spatial_modulator": False})
    plain.segmentation_network.set_weights(model.segmentation_network.get_weights())
    k_max = FLAGS.max_objects
    image, guides = frame_inputs(k_max, height, width)
    gammas = tf.constant(np.random.default_rng(0).normal(1, 0.1, (k_max, model.gamma_size)),
                         tf.float32)
    results = {"environment": env, "size": str(FLAGS.size)}
    sections = not (FLAGS.only_trunk_and_frame or FLAGS.only_frames)
    for precision in FLAGS.precisions:
        trunk = bare_trunk(precision)
        fns = LocalEngine(model, precision, jit_compile=False)
        candidates = {"bare_trunk": lambda: trunk(image).numpy(),
                      "frame_k1": lambda: fns.segment(image, guides[:1], gammas[:1])[0].numpy()}
        if FLAGS.only_frames:
            plain_fns = LocalEngine(plain, precision, jit_compile=False)
            candidates["plain_fcn"] = (
                lambda: plain_fns.segment(image, guides[:1], gammas[:1])[0].numpy())
            candidates.update(head_and_kernel_variants(model, plain, image, guides, gammas,
                                                       precision))
        if sections:
            original = original_frame_fn(fns)
            for k in range(1, k_max + 1):
                if k > 1:
                    candidates[f"frame_k{k}"] = (lambda k=k: fns.segment(
                        image, guides[:k], gammas[:k])[0].numpy())
                candidates[f"original_k{k}"] = (lambda k=k: original(
                    image, guides[:k], gammas[:k])[0].numpy())
            candidates.update(side_output_variants(128, (height + 1) // 2, (width + 1) // 2,
                                                   precision))
            candidates.update(modulation_pass_variants(height, width, precision))
            candidates.update(block_end_variants(height, width, precision))
            candidates.update(head_and_kernel_variants(model, plain, image, guides, gammas,
                                                       precision))
        timed = time_interleaved(candidates, FLAGS.runs, warmup=1)
        results[precision] = timed
        for name, t in timed.items():
            print(f"{precision:9s} {name:30s} median {t['median_s']:.4f} s  "
                  f"min {t['min_s']:.4f} s  fastest-3 {fastest_mean(t):.4f} s  "
                  f"cpu {t['cpu_median_s']:.4f} s", flush=True)
    if sections:
        timed = time_interleaved(frame_loop_variants(), FLAGS.runs, warmup=1)
        results["frame_loop"] = timed
        for name, t in timed.items():
            print(f"{'float32':9s} {name:34s} median {t['median_s']:.4f} s  "
                  f"min {t['min_s']:.4f} s  cpu {t['cpu_median_s']:.4f} s", flush=True)
    env["load_average_end"] = list(os.getloadavg())
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "on")
    tag = f"speed_variants-{host_tag(env, False)}-onednn-{onednn}" + (
        "-trunk-frame" if FLAGS.only_trunk_and_frame else "") + (
        "-frames" if FLAGS.only_frames else "")
    print(f"load average start {env['load_average_start']} end {env['load_average_end']}")
    print("wrote", write_json(results, pathlib.Path(FLAGS.output_dir) / f"{tag}.json"))


if __name__ == "__main__":
    entry(main)
