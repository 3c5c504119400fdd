"""Every number of OSMN in one place, each with its source.

Sources are cited as `paper §x` (Yang et al., CVPR 2018, `shared/paper/osmn_paper.md`) or as the
original file and function of the authors' TF1 code (`linjieyangsc/video_seg`, described in
`shared/spec/original_code.md`). Where the two disagree the code wins (it produced the paper's
numbers) and the comment says so.

Two kinds of things live here:

* module-level constants that are facts of the method (layer sizes, guide statistics,
  augmentation ranges, ...);
* frozen dataclasses that users choose: `ModelConfig` (architecture switches) and
  `TrainConfig` (a training recipe), with named recipes in `RECIPES`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Optional, Tuple


from osmn.errors import UserError


class ConfigError(UserError, ValueError):
    """A user-supplied setting is invalid. The message names the setting and the value."""


# ---------------------------------------------------------------------------------------------
# Input conventions (`dataset_davis.py`, `dataset_coco.py`, `util.py` of the original).
# ---------------------------------------------------------------------------------------------
# Images are fed as BGR minus this per-channel mean, scale 1.0 (the Caffe VGG16 convention).
MEAN_BGR: Tuple[float, float, float] = (104.0, 117.0, 123.0)
# Ours, for `TrainConfig.he_init` only: the pixel std of ImageNet in these 0..255 units
# (0.229, 0.224, 0.225 x 255 = 58.4, 57.1, 57.4: the "torch" mode of
# keras.applications.imagenet_utils). He-normal keeps each layer's output at its input's scale;
# dividing conv1_1 by this std starts every layer at unit scale, as a trained VGG16 roughly is.
HE_INIT_INPUT_STD = 58.0
# Test-time working sizes (width, height) used by the original per data set.
DAVIS_IM_SIZE: Tuple[int, int] = (854, 480)
YOUTUBE_VOS_IM_SIZE: Tuple[int, int] = (448, 256)

# ---------------------------------------------------------------------------------------------
# Segmentation network (`model_func.py`: `osmn`, `modulated_conv_block`; paper §3.5).
# ---------------------------------------------------------------------------------------------
VGG_BLOCK_DEPTHS: Tuple[int, ...] = (2, 2, 3, 3, 3)  # VGG16 conv layers per block.
VGG_BLOCK_CHANNELS: Tuple[int, ...] = (64, 128, 256, 512, 512)  # VGG16 channels per block.
# Blocks whose last conv feeds a hyper-column side output (conv2_2, conv3_3, conv4_3, conv5_3),
# as OSVOS does; 1-based block numbers.
SIDE_OUTPUT_BLOCKS: Tuple[int, ...] = (2, 3, 4, 5)
SIDE_OUTPUT_CHANNELS: int = 16  # 3x3 conv to 16 channels per side output (`conv2_2_16`, ...).
# First modulated block: paper §3.5 "all convolution layers ... except the first four", i.e.
# conv3_1 onwards; `mod_early_conv` in the original moves it to block 1.
FIRST_MODULATED_BLOCK: int = 3
CONV_INIT_STDDEV: float = 1e-3  # All conv weights ~ N(0, 0.001) (slim `trunc_normal` is NOT used).
# slim `l2_regularizer(2e-4)` computes 2e-4 * sum(w^2) / 2, i.e. Keras L2(1e-4): on every conv,
# fc and transposed-conv kernel of all three networks, never on biases or batch norm.
WEIGHT_DECAY_L2: float = 1e-4

# ---------------------------------------------------------------------------------------------
# Visual modulator (`model_func.py`: `visual_modulator`; paper §3.3).
# ---------------------------------------------------------------------------------------------
VISUAL_GUIDE_SIZE: int = 224  # The object crop is resized to 224x224 (paper §3.5).
FC_UNITS: int = 4096  # fc6 (7x7 VALID conv) and fc7 (1x1 conv), as in VGG16.
FC6_KERNEL: int = 7
DROPOUT_RATE: float = 0.5  # After fc6 and fc7, active in every training run.
# fc8 starts with zero weights and unit biases so every gamma is exactly 1 (paper §3.5).
FC8_BIAS_INIT: float = 1.0

# ---------------------------------------------------------------------------------------------
# Spatial modulator (`model_func.py`: `osmn`, scope `modulator_sp`; paper §3.4).
# The paper describes a per-channel scale and shift of the pooled guide; the code adds batch norm
# and ReLU after a bias-free 1x1 conv. We follow the code.
# ---------------------------------------------------------------------------------------------
BN_MOMENTUM: float = 0.99  # slim batch_norm decay.
BN_EPSILON: float = 1e-3

# ---------------------------------------------------------------------------------------------
# The lite variant (`--base_model lite`; `model_func.py`: `osmn_lite`, `visual_modulator_lite`;
# `mobilenet_v1.py`; spec "The lite variant"). MobileNet v1, width 1.0, output stride 32.
# ---------------------------------------------------------------------------------------------
BACKBONES: Tuple[str, ...] = ("vgg16", "lite")
# MobileNet v1 (`mobilenet_v1.py` `MOBILENETV1_CONV_DEFS`, = keras.applications.MobileNet):
# a 3x3 stride-2 conv to 32 channels, then 13 depthwise-separable layers (pointwise channels,
# depthwise stride).
MOBILENET_STEM_CHANNELS: int = 32
MOBILENET_LAYERS: Tuple[Tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))
MOBILENET_OUTPUT_STRIDE: int = 32  # product of the strides above and the stem's 2.
# Pointwise layers (1-based) modulated after their BN + ReLU6, and the side outputs read:
# 128, 256, 512, 1024 channels at 1/4, 1/8, 1/16, 1/32 (`osmn_lite`).
LITE_MODULATED_LAYERS: Tuple[int, ...] = (3, 5, 11, 13)
# The lite spatial modulator pools the guide by 4, then 2, 2, 2 (VALID average pools).
LITE_GUIDE_POOLS: Tuple[int, ...] = (4, 2, 2, 2)
LITE_VISUAL_CLASSES: int = 2048  # the visual modulator's MobileNet classifier outputs (ReLU'd).
LITE_BN_MOMENTUM: float = 0.997  # slim `mobilenet_v1_arg_scope` batch_norm_decay.
LITE_BN_EPSILON: float = 1e-3  # slim `mobilenet_v1_arg_scope` batch_norm_epsilon.
LITE_INIT_STDDEV: float = 0.09  # slim `mobilenet_v1_arg_scope` truncated_normal stddev.
# slim `l2_regularizer(4e-5)` = 4e-5 * sum(w^2) / 2, i.e. Keras L2(2e-5) (as WEIGHT_DECAY_L2).
LITE_WEIGHT_DECAY_L2: float = 2e-5
LITE_IMAGENET_SIZE: int = 224  # keras.applications.MobileNet(alpha, input 224) weights.
# The widths (alpha) Keras Applications publishes ImageNet MobileNet v1 weights for
# (`keras.applications.mobilenet`, files `mobilenet_<alpha>_224_tf[_no_top].h5`).
KERAS_MOBILENET_WIDTHS: Tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
# Keras' MobileNet v1 input convention (`keras.applications.mobilenet.preprocess_input`, "tf"
# mode): RGB scaled to [-1, 1], i.e. rgb / 127.5 - 1.
KERAS_MOBILENET_INPUT_SCALE: float = 127.5

# ---------------------------------------------------------------------------------------------
# Guides (`util.py`: `compute_robust_moments`, `get_gb_image`; `dataset_*.py`).
# ---------------------------------------------------------------------------------------------
MAD_TO_STD: float = 1.4826  # std = 1.4826 x median absolute deviation (Gaussian consistency).
MIN_GUIDE_STD: float = 5.0  # pixels, per axis.
GUIDE_CENTER_SHIFT: float = 0.2  # training: centre += U(-0.2, 0.2) x std (paper: "20% shift").
GUIDE_STD_SCALE: float = 1.4  # training: std *= U(1/1.4, 1.4) (paper: "40% scaling").
VISUAL_GUIDE_TEST_PAD: float = 0.03  # test: each box side extended by int(0.03 x box size).
VISUAL_GUIDE_BOX_JITTER: float = 0.1  # training: each side moved by U(-0.1, 0.1) x box size.
VISUAL_GUIDE_MAX_ROTATION_DEG: float = 10.0  # training: rotation U(-10, 10) degrees, nearest.
VISUAL_GUIDE_FLIP_PROB: float = 0.5

# ---------------------------------------------------------------------------------------------
# Training data (`dataset_coco.py`, `dataset_davis.py`; paper §3.5).
# ---------------------------------------------------------------------------------------------
COCO_MIN_AREA_FRACTION: float = 0.03  # objects larger than 3% of the image (paper §3.5).
COCO_BASE_SIZE: int = 400  # COCO images resized to 400x400 times a scale (aspect not kept).
COCO_SCALES: Tuple[float, ...] = (0.8, 1.0, 1.2)  # -> 320, 400, 480 square, one per batch.
DAVIS_TRAIN_SCALES: Tuple[float, ...] = (0.5, 0.8, 1.0)  # of 854x480, no flip or crop.
# `--randomize_guide`: a visual-guide frame must have mask area > 0.3% of the image and > 20% of
# its bounding box.
GUIDE_FRAME_MIN_AREA_FRACTION: float = 0.003
GUIDE_FRAME_MIN_BOX_FILL: float = 0.2

# ---------------------------------------------------------------------------------------------
# Inference (`osmn.py`: `test`; `davis_eval.py`).
# ---------------------------------------------------------------------------------------------
MASK_THRESHOLD: float = 0.5  # mask = probability > 0.5 (strict).
BACKGROUND_SCORE: float = 0.5  # constant background score stacked before the per-pixel argmax.
VOID_LABEL: int = 255  # DAVIS void pixels.
# Dense CRF on the thresholded mask (the original's `--use_crf`).
CRF_UNARY_CERTAINTY: float = 0.9
CRF_GAUSSIAN_SXY: float = 3.0
CRF_GAUSSIAN_COMPAT: float = 3.0
CRF_BILATERAL_SXY: float = 40.0
CRF_BILATERAL_SRGB: float = 5.0
CRF_BILATERAL_COMPAT: float = 10.0
CRF_ITERATIONS: int = 5

# ---------------------------------------------------------------------------------------------
# Analysis of the modulators (paper §4.2, Figures 5-7).
# ---------------------------------------------------------------------------------------------
# Figure 5: "100 objects from 10 categories" of MS-COCO, i.e. 10 objects per category.
FIG5_COCO_CATEGORIES: Tuple[str, ...] = (
    "bicycle", "motorcycle", "car", "bus", "truck", "dog", "cat", "horse", "cow", "person")
FIG5_OBJECTS_PER_CATEGORY: int = 10

# Adam with TF1 defaults (`osmn.py`: `train_finetune`; paper §3.5 quotes beta1/beta2).
ADAM_BETA_1: float = 0.9
ADAM_BETA_2: float = 0.999
ADAM_EPSILON: float = 1e-8
# Online fine-tuning on the first frame (authors' README, Table 3 "+ online fine-tuning"): per
# object, 100 iterations, batch 1, lr 1e-5, frame 0 as visual guide, spatial guide and target.
FINETUNE_STEPS: int = 100
FINETUNE_LEARNING_RATE: float = 1e-5


def scaled_width(channels: int, width_multiplier: float) -> int:
    """Channels of a layer in a network narrowed by `width_multiplier` (at least 1)."""
    return max(1, int(round(channels * width_multiplier)))


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture switches of OSMN.

    Args:
        width_multiplier: float. Scales every conv and fc width of both VGG16s; 1.0 is the real
            VGG16 of the paper. Smaller values give a network of the same structure for tests
            and CPU demos. Defaults to 1.0.
        mod_early_conv: bool. Also modulate conv1_x and conv2_x (the original's
            `--mod_early_conv`; the paper found it hurts, §3.5). Defaults to False.
        use_visual_modulator: bool. False is Table 3's "no visual modulator" (gamma fixed at 1;
            the original's `--no_visual_modulator`). Defaults to True.
        use_spatial_modulator: bool. False is Table 3's "no spatial modulator" (no beta; the
            original's `--no_spatial_modulator`). Defaults to True.
        train_seg: bool. False freezes conv1-conv5 and the four side convs of the segmentation
            network (the original's `fix_seg`); the fusion conv and both modulators still train.
            Defaults to True.
        fix_bn: bool. Batch norm of the spatial modulator in inference mode during training
            (moving statistics used, not updated; its gamma/beta still train). The stage-2
            recipe sets it (the original's `--fix_bn`). Defaults to False.
        working_size: optional (width, height). The size the model segments frames at unless
            a tool is told otherwise (`tools/infer.py --im_size`): the size it was validated
            at. Not an architecture switch (the weights fit any size). Defaults to None: each
            frame at its own size.
    """

    width_multiplier: float = 1.0
    mod_early_conv: bool = False
    use_visual_modulator: bool = True
    use_spatial_modulator: bool = True
    train_seg: bool = True
    fix_bn: bool = False
    backbone: str = "vgg16"
    working_size: Optional[Tuple[int, int]] = None

    def validate(self) -> "ModelConfig":
        if self.working_size is not None and not (
                len(self.working_size) == 2 and all(isinstance(v, int) and v >= 32
                                                    for v in self.working_size)):
            raise ConfigError(f"working_size must be (width, height), integers >= 32, got "
                              f"{self.working_size!r}")
        if self.backbone not in BACKBONES:
            raise ConfigError(f"backbone must be one of {', '.join(BACKBONES)}, "
                              f"got {self.backbone!r}")
        if self.backbone == "lite" and self.mod_early_conv:
            raise ConfigError("mod_early_conv applies to the vgg16 backbone only")
        if not (isinstance(self.width_multiplier, (int, float)) and 0 < self.width_multiplier <= 1.0):
            raise ConfigError(
                f"width_multiplier must be in (0, 1], got {self.width_multiplier!r}")
        return self

    @property
    def first_modulated_block(self) -> int:
        return 1 if self.mod_early_conv else FIRST_MODULATED_BLOCK

    def block_channels(self) -> Tuple[int, ...]:
        return tuple(scaled_width(c, self.width_multiplier) for c in VGG_BLOCK_CHANNELS)

    def fc_units(self) -> int:
        return scaled_width(FC_UNITS, self.width_multiplier)

    def mobilenet_channels(self) -> Tuple[int, ...]:
        """Pointwise channels of the 13 MobileNet v1 layers at this width (lite backbone)."""
        return tuple(scaled_width(c, self.width_multiplier) for c, _ in MOBILENET_LAYERS)

    def modulated_layers(self) -> Tuple[Tuple[str, int], ...]:
        """(layer name, channels) of every modulated conv, in gamma order (conv3_1 first).

        Lite: conv_pw_3, conv_pw_5, conv_pw_11, conv_pw_13 (128 + 256 + 512 + 1024 = 1920).
        """
        if self.backbone == "lite":
            channels = self.mobilenet_channels()
            return tuple((f"conv_pw_{i}", channels[i - 1]) for i in LITE_MODULATED_LAYERS)
        layers = []
        for block, (depth, channels) in enumerate(
                zip(VGG_BLOCK_DEPTHS, self.block_channels()), start=1):
            if block < self.first_modulated_block:
                continue
            for i in range(1, depth + 1):
                layers.append((f"conv{block}_{i}", channels))
        return tuple(layers)

    def gamma_slices(self) -> dict:
        """Layer name -> (start, stop) in the gamma vector, in the original's order.

        With the defaults: conv3_1 = [0:256], conv3_2 = [256:512], ..., conv5_3 = [3328:3840].
        """
        slices, start = {}, 0
        for name, channels in self.modulated_layers():
            slices[name] = (start, start + channels)
            start += channels
        return slices

    @property
    def gamma_size(self) -> int:
        """Length of the visual modulator's output: 3840 for the default VGG16 (4224 early),
        1920 for lite."""
        return sum(c for _, c in self.modulated_layers())

    @property
    def weight_decay_l2(self) -> float:
        """Keras L2 coefficient of the decayed kernels: WEIGHT_DECAY_L2 or LITE_WEIGHT_DECAY_L2."""
        return LITE_WEIGHT_DECAY_L2 if self.backbone == "lite" else WEIGHT_DECAY_L2

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def of(cls, values=None, **changes) -> "ModelConfig":
        """`values` as a validated ModelConfig, with `changes` applied.

        Args:
            values: a ModelConfig, a dict of its fields (a saved model's `model_config`, which
                may name only the fields that differ from the defaults) or None (the defaults).
            **changes: fields to set on top (the lite parts set backbone="lite").
        """
        values = values.to_dict() if isinstance(values, ModelConfig) else dict(values or {})
        return cls.from_dict({**values, **changes})

    @classmethod
    def from_dict(cls, values: dict) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown model setting(s): {', '.join(unknown)}")
        if values.get("working_size") is not None:  # a JSON list in a saved model
            values = {**values, "working_size": tuple(values["working_size"])}
        return cls(**values).validate()


# ---------------------------------------------------------------------------------------------
# The choices of the training setup and the synthetic data (ours). Here, not in the modules that
# use them, because those load TensorFlow and the tools check their flags before it loads.
# ---------------------------------------------------------------------------------------------
TRAINING_SOURCES: Tuple[str, ...] = ("coco", "davis", "youtube_vos")
VIDEO_SOURCES: Tuple[str, ...] = ("davis", "youtube_vos")
# tf.distribute strategies of `osmn.training.make_strategy`.
STRATEGIES: Tuple[str, ...] = ("auto", "mirrored", "one_device", "multi_worker")
# Synthetic video families (`osmn.data.synthetic`): the target among objects of other appearance
# (distractor) or beside a pixel-identical twin (twin); which objects are annotated.
SYNTHETIC_FAMILIES: Tuple[str, ...] = ("distractor", "twin")
SYNTHETIC_ANNOTATE: Tuple[str, ...] = ("all", "target")
# The longest video the web app and `osmn.inference.session` open by default: 2000 frames of
# 854x480 are 2.5 GB of decoded pixels.
MAX_VIDEO_FRAMES: int = 2000


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A training recipe: data, schedule and model switches.

    `lr_boundaries` and `lr_values` give a piecewise-constant learning rate: `lr_values[i]` is
    used from step `lr_boundaries[i-1]` (0 for i = 0) up to `lr_boundaries[i]`.

    Args:
        name: str. Recipe name, written beside the checkpoints.
        source: str. "coco", "davis" or "youtube_vos".
        batch_size: int. Samples per step.
        steps: int. Total optimizer steps.
        lr_boundaries: tuple of int. Steps where the learning rate changes.
        lr_values: tuple of float. One more value than boundaries.
        image_sizes: tuple of (height, width). Training sizes, one drawn per batch.
        randomize_guide: bool. Visual guide from a random frame of the same object (DAVIS).
        imagenet_init: bool. Initialise both backbones from ImageNet (stage 1): VGG16, or
            MobileNet v1 of the model's width for the lite backbone.
        init_checkpoint: optional str. Weights to start from (stage 2 starts from stage 1).
        he_init: bool. For runs from scratch (no ImageNet, no init checkpoint): draw the VGG16
            conv and fc6/fc7 kernels of both networks from He-normal instead of N(0, 0.001).
            Ours, for the CPU demo: the original always starts those layers from ImageNet, and
            N(0, 0.001) through 13 narrow layers leaves almost no image signal (a demo trained
            that way learned to paint the spatial guide and ignore the image).
            VGG16 backbone only (a `ConfigError` for lite, whose convs are batch-normalised).
        bn_recalibration_batches: int. Ours, for short from-scratch runs of the lite backbone:
            after the last step, every batch norm's moving statistics are replaced by the mean
            of its batch statistics over this many training batches (weights unchanged;
            `osmn.training.batch_norm`). 0 (default, the original): no recalibration. Needed
            because slim's momentum 0.997 leaves 0.997^N of the initial statistics after N steps.
        crop_size: optional (height, width). Video sources only (DAVIS, YouTube-VOS). Ours,
            for training on few videos: each sample is resized to the batch's size from
            `image_sizes`, then a window of this size at a random place is cut from the frame,
            its label and the previous frame's mask (the spatial guide's source), so the
            sizes act as random scales and the window as a random crop. None (default, the
            original): the whole frame.
        perturb_spatial_guide: bool. Training augmentation of the spatial guide (centre shift
            and std scale, `osmn.guides.spatial_guide(perturb=True)`), as the original always
            does. False only for the ablation of paper Table 3 ("- spatial guide augmentation").
        model: ModelConfig. Architecture switches.
        checkpoint_every: int. Steps between checkpoints (original: 1000).
        keep_checkpoints: int. Checkpoints kept (original: 2).
        seed: int. Seed of data order and augmentation.
    """

    name: str
    source: str
    batch_size: int
    steps: int
    lr_boundaries: Tuple[int, ...]
    lr_values: Tuple[float, ...]
    image_sizes: Tuple[Tuple[int, int], ...]
    randomize_guide: bool = False
    imagenet_init: bool = False
    init_checkpoint: Optional[str] = None
    he_init: bool = False
    bn_recalibration_batches: int = 0
    perturb_spatial_guide: bool = True
    crop_size: Optional[Tuple[int, int]] = None
    model: ModelConfig = ModelConfig()
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    seed: int = 0

    def validate(self) -> "TrainConfig":
        if self.source not in TRAINING_SOURCES:
            raise ConfigError(f"source must be one of {', '.join(TRAINING_SOURCES)}, "
                              f"got {self.source!r}")
        for field in ("batch_size", "steps", "checkpoint_every", "keep_checkpoints"):
            value = getattr(self, field)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{field} must be a positive integer, got {value!r}")
        if not isinstance(self.bn_recalibration_batches, int) or self.bn_recalibration_batches < 0:
            raise ConfigError(f"bn_recalibration_batches must be an integer >= 0, got "
                              f"{self.bn_recalibration_batches!r}")
        if len(self.lr_values) != len(self.lr_boundaries) + 1:
            raise ConfigError(
                f"lr_values needs one more entry than lr_boundaries, got {self.lr_values!r} "
                f"and {self.lr_boundaries!r}")
        if any(v <= 0 or not math.isfinite(v) for v in self.lr_values):
            raise ConfigError(f"learning rates must be positive, got {self.lr_values!r}")
        if list(self.lr_boundaries) != sorted(set(self.lr_boundaries)):
            raise ConfigError(f"lr_boundaries must increase, got {self.lr_boundaries!r}")
        if not self.image_sizes or any(h < 32 or w < 32 for h, w in self.image_sizes):
            raise ConfigError(f"image_sizes must be (height, width) >= 32, got {self.image_sizes!r}")
        if self.crop_size is not None:
            crop_h, crop_w = self.crop_size
            if self.source not in VIDEO_SOURCES:
                raise ConfigError(f"crop_size applies to the video sources (davis, "
                                  f"youtube_vos), not {self.source!r}")
            if crop_h < 32 or crop_w < 32 or any(crop_h > h or crop_w > w
                                                 for h, w in self.image_sizes):
                raise ConfigError(f"crop_size must be >= 32 and fit in every image size, got "
                                  f"{self.crop_size!r} for {self.image_sizes!r}")
        self.model.validate()
        if self.he_init and self.model.backbone == "lite":
            # Ours: every MobileNet conv is followed by batch norm, so the scale of its initial
            # kernels hardly matters and the slim init (LITE_INIT_STDDEV) trains from scratch;
            # He init is the VGG16 demo's fix for 13 un-normalised narrow layers.
            raise ConfigError("he_init applies to the vgg16 backbone only; the lite backbone "
                              "trains from scratch from its own MobileNet init (batch norm)")
        return self

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes).validate()

    def he_init_for(self, backbone: str) -> bool:
        """This recipe's `he_init` for a model of `backbone`: He init redraws VGG16 kernels,
        so a recipe's he_init (the VGG16 CPU demo's) is off for lite. Asking for he_init with
        lite explicitly stays an error (`validate`)."""
        return self.he_init and backbone == "vgg16"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "TrainConfig":
        values = json.loads(text)
        values["model"] = ModelConfig.from_dict(values.get("model", {}))
        for key in ("lr_boundaries", "lr_values"):
            values[key] = tuple(values[key])
        values["image_sizes"] = tuple(tuple(s) for s in values["image_sizes"])
        if values.get("crop_size") is not None:
            values["crop_size"] = tuple(values["crop_size"])
        return cls(**values).validate()


def _square_sizes(base: int, scales) -> Tuple[Tuple[int, int], ...]:
    return tuple((int(base * s), int(base * s)) for s in scales)


def _davis_sizes(scales) -> Tuple[Tuple[int, int], ...]:
    width, height = DAVIS_IM_SIZE
    return tuple((int(height * s), int(width * s)) for s in scales)


RECIPES = {
    # Stage 1 as the authors ran it (their README): batch 8, 200k steps at 1e-5, resumed to 300k
    # at 1e-6. The paper (§3.5) says 10 epochs at 1e-5 then 5 at 1e-6 over 217,516 objects,
    # i.e. about 272k + 136k steps at batch 8: the code's schedule is shorter.
    "coco_stage1": TrainConfig(
        name="coco_stage1", source="coco", batch_size=8, steps=300_000,
        lr_boundaries=(200_000,), lr_values=(1e-5, 1e-6),
        image_sizes=_square_sizes(COCO_BASE_SIZE, COCO_SCALES), imagenet_init=True),
    # Stage 2 as the authors ran it: DAVIS 2017 train from stage 1, batch 4, fix_bn,
    # randomize_guide, 50k steps at 1e-6 (the paper, §3.5: 20 epochs at 1e-6).
    "davis_stage2": TrainConfig(
        name="davis_stage2", source="davis", batch_size=4, steps=50_000,
        lr_boundaries=(), lr_values=(1e-6,), image_sizes=_davis_sizes(DAVIS_TRAIN_SCALES),
        randomize_guide=True, model=ModelConfig(fix_bn=True)),
    # A narrow model trained on the shipped sample sequence in about 10 CPU minutes: a demo of
    # the machinery, not of the paper's accuracy (ours, not the authors': no ImageNet init,
    # trained from scratch with He init, hence a learning rate far above the paper's). Width
    # 1/16 gives 0.66M parameters (2.8 MB); the full-size 480x854 keeps it working at the
    # sample video's own size, which tools/infer.py segments at by default. `data/sample.flags`.
    "sample": TrainConfig(
        name="sample", source="davis", batch_size=2, steps=1200,
        lr_boundaries=(900,), lr_values=(5e-4, 1e-4), image_sizes=((240, 427), (480, 854)),
        randomize_guide=True, he_init=True, model=ModelConfig(width_multiplier=0.0625),
        checkpoint_every=200, keep_checkpoints=2),
    # The same small run with the lite backbone (ours; the tests' lite recipe): MobileNet v1 at
    # width 1/4 (0.89M parameters, ~3.9 MB) from the slim MobileNet init (no he_init: its
    # convs are batch-normalised); its batch-norm statistics are re-estimated over 50 batches
    # at the end (1000 steps leave 5% of the initial ones at momentum 0.997, which made a
    # model trained from scratch predict nothing in inference mode).
    "sample_lite": TrainConfig(
        name="sample_lite", source="davis", batch_size=2, steps=1000,
        lr_boundaries=(750,), lr_values=(1e-3, 1e-4), image_sizes=((240, 427), (480, 854)),
        randomize_guide=True, model=ModelConfig(backbone="lite", width_multiplier=0.25),
        bn_recalibration_batches=50, checkpoint_every=200, keep_checkpoints=2),
    # The shipped model (ours, `data/davis16_lite.flags`): lite OSMN at width 1/4 from the
    # ImageNet MobileNet v1 of that width, trained on 25 of the 30 DAVIS 2016 training
    # sequences with the paper's video training (visual guide from a random frame of the
    # object, spatial guide from the previous frame's mask, perturbed), plus random scales
    # (0.53-0.8 of 854x480) and 256x256 random crops. Adam at 1e-3, 3e-4 from step 4500, 1e-4
    # from 6000 (ours: the paper's 1e-5/1e-6 are for a COCO-pretrained VGG16), batch 8, 7000
    # steps; batch-norm statistics re-estimated over 50 batches at the end.
    "davis16_lite": TrainConfig(
        name="davis16_lite", source="davis", batch_size=8, steps=7000,
        lr_boundaries=(4500, 6000), lr_values=(1e-3, 3e-4, 1e-4),
        image_sizes=((256, 455), (320, 569), (384, 683)), crop_size=(256, 256),
        randomize_guide=True, imagenet_init=True,
        # working_size: chosen on the held-out sequences, the smallest on the plateau of J
        # (512x288 to 640x360; benchmarks/results/davis16_lite-validation-sizes.md).
        model=ModelConfig(backbone="lite", width_multiplier=0.25, working_size=(512, 288)),
        bn_recalibration_batches=50, checkpoint_every=1000, keep_checkpoints=10),
}
