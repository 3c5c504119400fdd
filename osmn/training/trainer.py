"""The training loop of OSMN (original `osmn.py`: `train_finetune`), in TF2 with tf.distribute.

One step (`osmn.training.step.train_step`): logits = OSMN(inputs, training=True); loss =
class-balanced cross-entropy (summed over pixels and batch) + weight decay of every kernel; Adam
with TF1's defaults and a piecewise-constant learning rate. The loop checkpoints every
`checkpoint_every` steps and at the end, resumes from the newest checkpoint by default (same
step, optimizer state, dropout RNG state and data position), writes TensorBoard summaries and
shows a progress bar.

Distribution: the batch is split over replicas and each replica computes the loss of its part;
the optimizer sums the replicas' gradients. Because the loss is a sum (not a mean), the sum of
the replicas' losses equals the single-device loss except for the class-balancing weights, which
each replica computes from its own part of the batch (N+/N, N-/N per replica instead of per
batch). Weight decay is divided by the number of replicas so that it counts once.

Several workers (`MultiWorkerMirroredStrategy`, TF_CONFIG): every worker builds the same data
stream and `tf.data`'s DATA auto-sharding gives each worker its replicas' slices of every global
batch, so the run computes what `MirroredStrategy` with as many replicas computes (tested to
float tolerance). Only the chief writes to the run directory (checkpoints, `model.keras`, config,
summaries); every worker resumes from the chief's checkpoints. Each replica updates its own copy
of the batch-norm moving statistics from its slice of the batch (Keras creates them without a
cross-replica aggregation) and reading them gives the first replica's copy; before every save
the first replica's copies are given to all replicas, so that every worker holds the weights
the chief saves.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import pathlib
import time
from typing import Callable, Optional

import keras
import numpy as np
import tensorflow as tf

from osmn import config
from osmn.config import TrainConfig
from osmn.errors import UserError
from osmn.model import OSMN, load_osmn
from osmn.precision import dtype_policy, loss_scaling
from osmn.training import checkpoints as ckpt_lib
from osmn.training.batch_norm import batch_norm_layers, recalibrate_batch_norm
from osmn.training.devices import is_chief
from osmn.training.schedule import learning_rate_at, make_optimizer
from osmn.training.step import train_step
from osmn.training.summaries import SummaryWriter
from osmn.progress import Progbar

_LOG = logging.getLogger("osmn.training")

# A dataset factory: start_batch -> tf.data.Dataset of (inputs dict, label [B, H, W, 1]) batches
# that starts at batch `start_batch` of the run's deterministic sequence.
DatasetFn = Callable[[int], tf.data.Dataset]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is left untouched."""


@dataclasses.dataclass
class TrainResult:
    """What a call to `train` did.

    Attributes:
        first_step: step the run started (or resumed) from.
        step: completed steps at the end (= `TrainConfig.steps`).
        loss: the last step's total loss (float).
        losses: every step's total loss in this call (list of float).
        checkpoint: prefix of the last checkpoint written.
        run_dir: the run directory.
        model: the trained model (this process's copy of the weights).
    """

    first_step: int
    step: int
    loss: float
    losses: list
    checkpoint: Optional[str]
    run_dir: pathlib.Path
    model: Optional[OSMN] = None


def copy_weights(target: OSMN, source: OSMN, log=_LOG.info) -> None:
    """Copy the weights of `source`'s sub-networks into `target`'s, part by part.

    Parts present in `target` but missing from `source` (an ablated source) keep their
    initialisation, which is logged; parts present only in `source` are ignored (logged).

    Raises:
        UserError: a part's weights do not match (other width or early-layer modulation).
    """
    src_parts, dst_parts = source.parts(), target.parts()
    for name, part in dst_parts.items():
        if name not in src_parts:
            log(f"init checkpoint has no {name}: it keeps its fresh initialisation")
            continue
        weights = src_parts[name].get_weights()
        shapes = [w.shape for w in weights]
        expected = [tuple(w.shape) for w in part.weights]
        if shapes != expected:
            raise UserError(f"init checkpoint: {name} weights do not match this model "
                            f"(other width_multiplier or mod_early_conv?)")
        part.set_weights(weights)
    for name in sorted(set(src_parts) - set(dst_parts)):
        log(f"init checkpoint's {name} is not used by this model (ablation)")


def initialise(model: OSMN, train_config: TrainConfig, imagenet_weights=None,
               log=_LOG.info) -> None:
    """Initial weights of a fresh run: ImageNet (stage 1) and/or an init checkpoint.

    Args:
        model: a freshly built OSMN.
        train_config: `he_init`, `imagenet_init` and `init_checkpoint` are read.
        imagenet_weights: vgg16: None (Keras' VGG16 download), a local `.h5` or a TF-slim
            `vgg_16` checkpoint (`osmn.model.imagenet.load_imagenet_vgg16`); lite: None (Keras'
            MobileNet download) or a local `mobilenet_1_0_224_tf.h5`
            (`osmn.model.lite.load_imagenet_mobilenet`).

    Raises:
        UserError: weights unavailable (offline download, missing file) or not matching.
    """
    lite = model.model_config.backbone == "lite"
    if train_config.he_init and not (train_config.imagenet_init or train_config.init_checkpoint):
        he_initialise_vgg(model, train_config.seed)
        log("VGG16 conv/fc6/fc7 kernels of both networks drawn from He-normal (--he_init)")
    if train_config.imagenet_init:
        # Imported lazily: they pull in keras.applications and only stage 1 needs them.
        if lite:
            from osmn.model.lite.imagenet import load_imagenet_mobilenet
            load_imagenet_mobilenet(model, imagenet_weights)
        else:
            from osmn.model.imagenet import load_imagenet_vgg16
            load_imagenet_vgg16(model, imagenet_weights)
        log(f"initialised both {'MobileNets' if lite else 'VGG16s'} from ImageNet "
            f"({imagenet_weights or 'Keras download'})")
    if train_config.init_checkpoint:
        copy_weights(model, load_osmn(train_config.init_checkpoint), log=log)
        log(f"initialised from {train_config.init_checkpoint}")


def he_initialise_vgg(model: OSMN, seed: int) -> None:
    """Redraw the VGG16 kernels of both networks from He-normal (`TrainConfig.he_init`).

    Touches conv1_1..conv5_3 of the segmentation network and of the visual modulator and the
    modulator's fc6/fc7; fc8 keeps its zero weights (gamma = 1), and the side, fusion and
    spatial-modulator convs keep N(0, 0.001), as in the original. Both conv1_1 kernels are then
    divided by `config.HE_INIT_INPUT_STD`, so that activations start at unit scale rather than
    at the pixel scale (~30-60): at pixel scale fc7 summed to ~9000, so Adam's first step of
    ~lr on each zero fc8 weight moved every gamma by up to ~9 at lr 1e-3 and the loss jumped
    to 1e10 (the ablation's first runs; docs/ablation.md).

    Raises:
        UserError: the model has the lite backbone (its convs are batch-normalised and train
            from their MobileNet init; `TrainConfig.validate` refuses he_init for lite).
    """
    if model.model_config.backbone != "vgg16":
        raise UserError(f"he_init applies to the vgg16 backbone only, the model is "
                        f"{model.model_config.backbone}")
    layers = list(model.segmentation_network.trunk_layers())
    firsts = [layers[0]]  # the conv1_1 of each network
    if model.visual_modulator is not None:
        vm = model.visual_modulator
        vm_convs = [conv for block in vm.conv_blocks for conv in block]
        firsts.append(vm_convs[0])
        layers += vm_convs + [vm.fc6, vm.fc7]
    for i, layer in enumerate(layers):
        initializer = keras.initializers.HeNormal(seed=seed * 1000 + i)
        kernel = initializer(layer.kernel.shape, layer.kernel.dtype)
        if any(layer is first for first in firsts):
            kernel = kernel / config.HE_INIT_INPUT_STD
        layer.kernel.assign(kernel)


def _check_resumable(run_dir, train_config: TrainConfig) -> None:
    saved = ckpt_lib.read_run_config(run_dir)
    if saved is not None and saved.model != train_config.model:
        raise UserError(
            f"{run_dir}: its checkpoints are of another model ({saved.model}); "
            f"use a new --train_dir or the same model flags")


def train(train_config: TrainConfig, run_dir, dataset_fn: DatasetFn,
          strategy: Optional[tf.distribute.Strategy] = None, precision: str = "float32",
          summary_every: int = 100, resume: bool = True, imagenet_weights=None,
          progress: bool = True, log=_LOG.info) -> TrainResult:
    """Train OSMN for `train_config.steps` steps (in total, counting resumed ones).

    Args:
        train_config: the validated recipe.
        run_dir: str or path; checkpoints, `model.keras`, `train_config.json`, summaries.
        dataset_fn: start_batch -> dataset of (inputs, label) batches, see `DatasetFn`:
            inputs = {"image": [B, H, W, 3], "visual_guide": [B, 224, 224, 3],
            "spatial_guide": [B, H, W, 1]} float32, label [B, H, W, 1] in {0, 1}.
        strategy: a `tf.distribute` strategy (default: the current/default one).
        precision: "float32", "bfloat16" or "float16" (adds loss scaling): `osmn.precision`
            (resolve "auto" with `osmn.precision.training_auto` first).
        summary_every: steps between TensorBoard summaries (0: none).
        resume: continue from the newest checkpoint in `run_dir` if there is one; if False and
            there is one, raise `UserError` rather than overwrite it.
        imagenet_weights: source of ImageNet weights when `train_config.imagenet_init`.
        progress: show a progress bar.
        log: callable taking one line.

    Returns:
        TrainResult.

    Raises:
        UserError: inconsistent run directory or init checkpoint.
        TrainingDiverged: the loss became non-finite (nothing is saved after that step).
    """
    run_dir = pathlib.Path(run_dir)
    strategy = strategy or tf.distribute.get_strategy()
    keras.utils.set_random_seed(train_config.seed)  # Python, NumPy and TF global seeds.
    with dtype_policy(precision), strategy.scope():  # layers take the policy when built
        model = OSMN(train_config.model)
        step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        optimizer = make_optimizer(train_config, step_var, loss_scale=loss_scaling(precision))
        optimizer.build(model.trainable_variables)
    chief = is_chief(strategy)
    run = ckpt_lib.RunCheckpoints(run_dir, model, optimizer, step_var,
                                  keep=train_config.keep_checkpoints, is_chief=chief)
    if run.latest:
        if not resume:
            raise UserError(f"{run_dir}: already holds checkpoints; resume it or use a new "
                            f"--train_dir")
        _check_resumable(run_dir, train_config)
        first_step = run.restore_latest()
        log(f"resumed from {run.latest} at step {first_step}")
    else:
        initialise(model, train_config, imagenet_weights, log=log)
        first_step = 0
    if first_step >= train_config.steps:
        # A finished run: no input pipeline and no traced step to build for zero steps.
        if chief:
            ckpt_lib.write_run_config(run_dir, train_config)
        log(f"nothing to do: {run_dir} is already at step {first_step} of {train_config.steps}")
        return TrainResult(first_step=first_step, step=first_step, loss=float("nan"),
                           losses=[], checkpoint=run.latest, run_dir=run_dir, model=model)

    step_fn = train_step(model, optimizer, strategy)

    @tf.function(reduce_retracing=True)
    def distributed_step(inputs, labels):
        loss, logits = step_fn(inputs, labels)
        step_var.assign_add(1)
        return loss, logits

    # Shard by element, not by input file: each worker takes its replicas' slices of every global
    # batch of the one deterministic stream (no effect with a single worker).
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    sync_statistics = _first_replica_broadcast(
        strategy, [v for norm in batch_norm_layers(model)
                   for v in (norm.moving_mean, norm.moving_variance)])
    dataset = strategy.experimental_distribute_dataset(
        dataset_fn(first_step).with_options(options))
    # Written once the data is known to be usable: a failed start leaves no config behind.
    if chief:
        ckpt_lib.write_run_config(run_dir, train_config)
    summaries = SummaryWriter(run_dir, summary_every if chief else 0)
    bar = Progbar(train_config.steps, stateful_metrics=["loss", "samples/s"],
                              verbose=1 if progress else 0)
    step, loss_value, last_checkpoint, history = first_step, float("nan"), run.latest, []
    batches = iter(dataset)
    tick = time.perf_counter()
    try:
        while step < train_config.steps:
            inputs, labels = next(batches)
            learning_rate = float(learning_rate_at(train_config, step))
            loss, logits = distributed_step(inputs, labels)
            loss_value = float(loss)
            if not math.isfinite(loss_value):
                raise TrainingDiverged(
                    f"loss is {loss_value} at step {step + 1}; stopped without saving; last "
                    f"good checkpoint: {run.latest or 'none'} (lower the learning rate or "
                    f"check the data)")
            history.append(loss_value)
            step += 1
            now = time.perf_counter()
            samples_per_second = train_config.batch_size / max(now - tick, 1e-9)
            tick = now
            bar.update(step, [("loss", loss_value), ("samples/s", samples_per_second)])
            if summaries.due(step):
                summaries.write(step, loss_value, learning_rate, samples_per_second,
                                labels=_first_replica(strategy, labels),
                                logits=_first_replica(strategy, logits))
            if step == train_config.steps and train_config.bn_recalibration_batches:
                found = recalibrate_batch_norm(model, batches,
                                               train_config.bn_recalibration_batches, strategy)
                log(f"batch-norm statistics of {found} layers re-estimated over "
                    f"{train_config.bn_recalibration_batches} training batches")
            if step % train_config.checkpoint_every == 0 or step == train_config.steps:
                sync_statistics()
                if not _all_finite(model):
                    raise TrainingDiverged(
                        f"non-finite weights after step {step}; stopped without saving; last "
                        f"good checkpoint: {run.latest or 'none'}")
                last_checkpoint = run.save()
    finally:
        summaries.close()
    return TrainResult(first_step=first_step, step=step, loss=loss_value, losses=history,
                       checkpoint=last_checkpoint, run_dir=run_dir, model=model)


def _first_replica_broadcast(strategy, variables) -> Callable[[], None]:
    """A function that sets every replica's copy of `variables` to the first replica's (exact:
    an all-reduce sum of the first replica's values and zeros). A no-op for one replica."""
    if strategy.num_replicas_in_sync == 1 or not variables:
        return lambda: None

    def replica_fn():
        context = tf.distribute.get_replica_context()
        first = tf.cast(tf.equal(context.replica_id_in_sync_group, 0), tf.float32)
        values = context.all_reduce(tf.distribute.ReduceOp.SUM,
                                    [tf.cast(v.value, tf.float32) * first for v in variables])
        for variable, value in zip(variables, values):
            variable.assign(tf.cast(value, variable.dtype))

    @tf.function
    def broadcast():
        strategy.run(replica_fn)

    return broadcast


def _all_finite(model) -> bool:
    return all(bool(tf.reduce_all(tf.math.is_finite(v.value)))
               for v in model.weights if tf.as_dtype(v.dtype).is_floating)


def _first_replica(strategy, value) -> np.ndarray:
    return np.asarray(strategy.experimental_local_results(value)[0])
