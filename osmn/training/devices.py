"""Where training runs: the `tf.distribute` strategy (its precision: `osmn.precision`).

* `auto` (default): several visible GPUs -> `MirroredStrategy` over all of them (synchronous
  data parallelism, the global batch split evenly); one GPU -> that GPU; none -> the CPU.
* `mirrored`: `MirroredStrategy` over every GPU, or over every logical CPU device when there is
  no GPU (this is how the tests exercise the multi-replica path on a CPU machine).
* `multi_worker`: `MultiWorkerMirroredStrategy` for several machines. Each worker runs the same
  command with its own `TF_CONFIG` environment variable, e.g. on worker 0 of two:
  `TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker",
  "index": 0}}'`. Every worker builds the same data stream (same seed) and takes its replicas'
  slices of each global batch (`tf.data` DATA auto-sharding, set by the trainer), so the
  replicas see what `mirrored` with as many replicas would. Only the chief (`is_chief`: the
  "chief" task, else worker 0) writes checkpoints, `model.keras`, the config and summaries; all
  workers read the chief's checkpoints to resume, so `--train_dir` must be one folder every
  worker can read (a shared filesystem). The strategy must exist before any other TensorFlow
  call of the process (it configures the collective ops), so `make_strategy` creates it first.
"""

from __future__ import annotations

from typing import Tuple

import tensorflow as tf

from osmn.config import STRATEGIES
from osmn.errors import UserError


def make_strategy(kind: str = "auto") -> Tuple[tf.distribute.Strategy, str]:
    """Build the distribution strategy and a one-line description of the devices used.

    Args:
        kind: one of `STRATEGIES`.

    Returns:
        (strategy, description), e.g. (OneDeviceStrategy, "training on CPU (no GPU visible)").

    Raises:
        UserError: unknown `kind`.
    """
    if kind == "multi_worker":  # before listing devices, which would start the runtime
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        resolver = strategy.cluster_resolver
        return strategy, (f"training with MultiWorkerMirroredStrategy, "
                          f"{strategy.num_replicas_in_sync} replicas in sync, this is "
                          f"{resolver.task_type} {resolver.task_id}"
                          f"{' (chief)' if is_chief(strategy) else ''}")
    gpus = tf.config.list_logical_devices("GPU")
    cpus = tf.config.list_logical_devices("CPU")
    if kind == "auto":
        kind = "mirrored" if len(gpus) > 1 else "one_device"
    if kind == "one_device":
        if gpus:
            return (tf.distribute.OneDeviceStrategy(gpus[0].name),
                    f"training on GPU {gpus[0].name}")
        return tf.distribute.OneDeviceStrategy(cpus[0].name), "training on CPU (no GPU visible)"
    if kind == "mirrored":
        devices = [d.name for d in (gpus or cpus)]
        strategy = tf.distribute.MirroredStrategy(devices)
        what = "GPU" if gpus else "CPU"
        return strategy, (f"training on {len(devices)} {what} replicas with MirroredStrategy "
                          f"({', '.join(devices)})")
    raise UserError(f"--strategy: unknown strategy {kind!r}, expected one of {STRATEGIES}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True unless `strategy` is multi-worker and this process is not its chief.

    The chief is the task of type "chief" if the cluster has one, else worker 0 (TF_CONFIG).
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief
