"""Convert the authors' TF1 OSMN checkpoints (or the TF-slim ImageNet vgg_16) to this project.

Usage (see docs/convert.md):

    # A released OSMN checkpoint -> a .keras model (or .weights.h5 + config.json):
    python tools/convert_tf1_checkpoint.py --tf1_checkpoint PATH/model.ckpt-300000 \
        --output osmn_stage1.keras [--check REF.npz --tolerance 1e-3]

    # Stage-1 initialisation from the TF-slim ImageNet vgg_16 checkpoint:
    python tools/convert_tf1_checkpoint.py --vgg16_slim PATH/vgg_16.ckpt --output init.keras

    # Re-check an already converted model:
    python tools/convert_tf1_checkpoint.py --checkpoint osmn_stage1.keras --check REF.npz

Exit codes: 0 success; 1 the --check difference on logits is above --tolerance (nothing is
written); 2 bad input (one line on stderr naming the file or flag, nothing written).
"""

from __future__ import annotations

import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import osmn.cli  # noqa: E402, F401 (first: quiets TensorFlow's start-up lines)

from absl import flags  # noqa: E402

from osmn.errors import UserError  # noqa: E402
from osmn.cli import no_extra_arguments, run_tool  # noqa: E402
from osmn.io import check_output_file  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("tf1_checkpoint", None, "Prefix of an OSMN TF1 checkpoint to convert.")
flags.DEFINE_string("vgg16_slim", None,
                    "Prefix of the TF-slim vgg_16.ckpt (or a Keras VGG16 .h5): writes a stage-1 "
                    "initialisation (both VGG16s from ImageNet, the rest randomly initialised).")
flags.DEFINE_string("checkpoint", None, "An already converted model (.keras, or .weights.h5 with "
                    "config.json beside it) to --check.")
flags.DEFINE_string("output", None, "Where to write the model: *.keras or *.weights.h5.")
flags.DEFINE_string("model_config", None,
                    "JSON dict of ModelConfig fields. With --tf1_checkpoint they override what is "
                    "inferred from the checkpoint (train_seg and fix_bn are not stored in it); "
                    "with --vgg16_slim they define the model (width_multiplier must be 1).")
flags.DEFINE_string("check", None, "Reference .npz (visual_guide, image, spatial_guide, gamma, "
                    "logits) to compare the model's outputs with.")
flags.DEFINE_float("tolerance", 1e-3, "Largest accepted |logits - reference| for --check.")
flags.DEFINE_integer("seed", 0, "Seed of the random init of the non-VGG16 layers "
                     "(--vgg16_slim).")


def _model_config():
    if FLAGS.model_config is None:
        return {}
    try:
        values = json.loads(FLAGS.model_config)
    except json.JSONDecodeError as error:
        raise UserError(f"--model_config is not valid JSON ({error.msg})") from error
    if not isinstance(values, dict):
        raise UserError(f"--model_config must be a JSON object, got {FLAGS.model_config!r}")
    return values


def _validate_flags():
    sources = [name for name in ("tf1_checkpoint", "vgg16_slim", "checkpoint")
               if getattr(FLAGS, name)]
    if len(sources) != 1:
        raise UserError("give exactly one of --tf1_checkpoint, --vgg16_slim, --checkpoint "
                        f"(got {', '.join('--' + s for s in sources) or 'none'})")
    if FLAGS.checkpoint and FLAGS.output:
        raise UserError("--output is not used with --checkpoint (the model is only checked)")
    if FLAGS.checkpoint and not FLAGS.check:
        raise UserError("--checkpoint needs --check REF.npz")
    if not FLAGS.checkpoint and not FLAGS.output:
        raise UserError(f"--output is required with --{sources[0]}")
    if FLAGS.output and not (FLAGS.output.endswith(".keras")
                             or FLAGS.output.endswith(".weights.h5")):
        raise UserError(f"--output {FLAGS.output}: must end in .keras or .weights.h5")
    if not FLAGS.tolerance >= 0:
        raise UserError(f"--tolerance must be >= 0, got {FLAGS.tolerance}")
    if FLAGS.output:
        check_output_file(FLAGS.output, "--output")


def _build_model():
    """The model to check and/or write, per the source flag."""
    import keras  # noqa: PLC0415 (TensorFlow is imported once the flags are checked)
    from osmn.convert import convert_tf1_checkpoint  # noqa: PLC0415
    from osmn.model import OSMN, load_osmn  # noqa: PLC0415
    from osmn.model.imagenet import load_imagenet_vgg16  # noqa: PLC0415
    if FLAGS.tf1_checkpoint:
        model, report = convert_tf1_checkpoint(FLAGS.tf1_checkpoint, _model_config(),
                                               verbose=True)
        print(report)
        return model
    if FLAGS.vgg16_slim:
        keras.utils.set_random_seed(FLAGS.seed)
        model = OSMN(_model_config())
        print(load_imagenet_vgg16(model, source=FLAGS.vgg16_slim))
        return model
    return load_osmn(FLAGS.checkpoint)


def run() -> int:
    """Convert / check per the flags; returns the exit code (raises UserError on bad input)."""
    _validate_flags()
    model = _build_model()
    from osmn.convert import check_reference, write_model  # noqa: PLC0415
    if FLAGS.check:
        result = check_reference(model, FLAGS.check)
        print(f"{FLAGS.check}: {result} (tolerance {FLAGS.tolerance:g} on logits)")
        if not result.passed(FLAGS.tolerance):
            print(f"{FLAGS.check}: logits differ by more than {FLAGS.tolerance:g}"
                  + ("; nothing written" if FLAGS.output else ""), file=sys.stderr)
            return 1
    if FLAGS.output:
        for path in write_model(model, FLAGS.output):
            print(f"wrote {path}")
    return 0


def main(argv):
    no_extra_arguments(argv)
    return run()


def entry():
    run_tool(main)


if __name__ == "__main__":
    entry()
