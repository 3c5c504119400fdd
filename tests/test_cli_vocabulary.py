"""The shared vocabulary of the tools' flags: sizes (osmn.cli) and precisions (osmn.precision)."""

import keras
import pytest
from absl import flags

from osmn import precision
from osmn.cli import FrameSize, define_enum_list, define_size, define_size_list, parse_size
from osmn.errors import UserError


# --- sizes ------------------------------------------------------------------------------------

def test_a_size_is_width_then_height():
    size = parse_size("854x480")
    assert size == (854, 480) and (size.width, size.height) == (854, 480)
    assert size.hw == (480, 854)  # the (height, width) order of TrainConfig and tensors
    assert str(size) == "854x480"


@pytest.mark.parametrize("text, problem", [
    ("854,480", "expected WIDTHxHEIGHT, e.g. 854x480, got '854,480'"),
    ("854", "expected WIDTHxHEIGHT"),
    ("854x480x3", "expected WIDTHxHEIGHT"),
    ("-854x480", "expected WIDTHxHEIGHT"),
    ("31x480", "width and height must be in 32..4096, got 31x480"),
    ("854x4097", "width and height must be in 32..4096"),
])
def test_a_size_in_another_form_or_out_of_bounds_is_refused_naming_the_flag(text, problem):
    flag_values = flags.FlagValues()
    define_size("im_size", None, "Working size", flag_values=flag_values)
    with pytest.raises(flags.IllegalFlagValueError) as error:
        flag_values(["tool", f"--im_size={text}"])
    assert "--im_size" in str(error.value) and problem in str(error.value)


@pytest.fixture
def flag_values():
    """A private flag set: the tools' flags live on the global one."""
    return flags.FlagValues()


def test_size_flags_parse_to_frame_sizes_and_refuse_other_forms(flag_values):
    define_size("size", "96x64", "Frame size", flag_values=flag_values)
    define_size_list("sizes", ["427x240"], "Sizes", special=("native",), flag_values=flag_values)
    flag_values(["tool"])
    assert flag_values.size == FrameSize(96, 64) and flag_values.sizes == [FrameSize(427, 240)]
    flag_values(["tool", "--size=854x480", "--sizes=native,640x360"])
    assert flag_values.size.hw == (480, 854)
    assert flag_values.sizes == ["native", FrameSize(640, 360)]
    assert "WIDTHxHEIGHT, e.g. 854x480" in flag_values["size"].help
    with pytest.raises(flags.IllegalFlagValueError, match=r"--size=854,480: expected WIDTHxHEIGHT"):
        flag_values(["tool", "--size=854,480"])


def test_enum_list_flags_refuse_an_unknown_word(flag_values):
    define_enum_list("backbones", ["vgg16"], ("vgg16", "lite"), "Backbones",
                     flag_values=flag_values)
    flag_values(["tool", "--backbones=lite,vgg16"])
    assert flag_values.backbones == ["lite", "vgg16"]
    with pytest.raises(flags.IllegalFlagValueError, match=r"'resnet' is not one of <vgg16\|lite>"):
        flag_values(["tool", "--backbones=lite,resnet"])


# --- precisions -------------------------------------------------------------------------------

def test_each_precision_name_has_one_keras_policy():
    assert [precision.policy(p) for p in ("float32", "bfloat16", "float16")] == \
        ["float32", "mixed_bfloat16", "mixed_float16"]
    assert set(precision.INFERENCE_PRECISIONS) < set(precision.TRAINING_PRECISIONS)
    assert precision.loss_scaling("float16") and not precision.loss_scaling("bfloat16")
    with pytest.raises(UserError, match="precision must be one of"):
        precision.policy("auto")  # resolved by the caller first


def test_auto_rules():
    amx, plain_cpu = frozenset({"amx_bf16"}), frozenset({"avx2"})
    assert precision.inference_auto("vgg16", amx) == "bfloat16"
    assert precision.inference_auto("vgg16", plain_cpu) == "float32"
    assert precision.inference_auto("lite", amx) == "float32"
    assert precision.training_auto(gpu=True) == "float16"
    assert precision.training_auto(gpu=False) == "float32"


def test_dtype_policy_is_restored_even_on_error():
    assert keras.config.dtype_policy().name == "float32"
    with precision.dtype_policy("bfloat16"):
        assert keras.layers.Dense(2).dtype_policy.name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"
    with pytest.raises(RuntimeError):
        with precision.dtype_policy("float16"):
            raise RuntimeError("while building")
    assert keras.config.dtype_policy().name == "float32"
