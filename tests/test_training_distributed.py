"""Multi-replica training: MirroredStrategy on two logical CPUs, and two MultiWorkerMirroredStrategy
worker processes on 127.0.0.1, each in subprocesses."""

import json
import os
import pathlib
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from osmn.config import RECIPES, ModelConfig
    from osmn.data import training_dataset
    from osmn.training import make_strategy, train
    strategy, description = make_strategy("mirrored")
    recipe = RECIPES["sample"].replace(batch_size=2, steps=3, image_sizes=((64, 96),),
                                       checkpoint_every=3,
                                       model=ModelConfig(width_multiplier=1 / 16))
    result = train(recipe, sys.argv[1],
                   lambda s: training_dataset(recipe, "data/davis_sample", start_batch=s),
                   strategy=strategy, summary_every=1, progress=False)
    print(json.dumps({"replicas": strategy.num_replicas_in_sync, "description": description,
                      "losses": result.losses, "checkpoint": result.checkpoint}))
""")


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert result["description"].startswith("training on 2 CPU replicas with MirroredStrategy")
    assert len(result["losses"]) == 3 and all(0 < l < 1e7 for l in result["losses"])
    assert result["checkpoint"].endswith("ckpt-3")
    assert (tmp_path / "model.keras").exists()


# One training run in its own process: `multi_worker` (TF_CONFIG from the environment) or
# `mirrored` on two logical CPUs; dumps this process's final weights to argv[4].
RUN_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    # Imported before the strategy is made, as tools/train.py does.
    from osmn.config import RECIPES, ModelConfig
    from osmn.data import training_dataset
    from osmn.training import make_strategy, train
    kind, run_dir, steps, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    if kind == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy, description = make_strategy(kind)
    recipe = RECIPES["sample"].replace(batch_size=2, steps=steps, image_sizes=((64, 96),),
                                       checkpoint_every=2,
                                       model=ModelConfig(width_multiplier=1 / 16))
    result = train(recipe, run_dir,
                   lambda s: training_dataset(recipe, "data/davis_sample", start_batch=s),
                   strategy=strategy, summary_every=1, progress=False)
    np.savez(out, *result.model.get_weights())
    print(json.dumps({"replicas": strategy.num_replicas_in_sync, "description": description,
                      "first_step": result.first_step, "losses": result.losses}))
""")


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _start(kind, run_dir, steps, out, tf_config=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen([sys.executable, "-c", RUN_SCRIPT, kind, str(run_dir), str(steps),
                             str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=REPO)


def _finish(processes, timeout=480):
    """Wait for every process (killing all of them at the deadline); their JSON lines."""
    deadline = time.monotonic() + timeout
    results = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=max(deadline - time.monotonic(), 1))
            assert process.returncode == 0, stderr[-3000:]
            results.append(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return results


def _run_two_workers(run_dir, steps, outs):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    return _finish([_start("multi_worker", run_dir, steps, out,
                           {"cluster": cluster, "task": {"type": "worker", "index": index}})
                    for index, out in enumerate(outs)])


def _weights(path):
    with np.load(path) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


@pytest.mark.slow
def test_two_workers_resume_and_match_mirrored_strategy(tmp_path):
    """Two MultiWorkerMirroredStrategy processes on 127.0.0.1 (one replica each) train 2 steps,
    are restarted and resume to step 3 from the chief's checkpoint; a one-process
    MirroredStrategy run over two logical CPUs (same replicas, same global batch of 2) trains
    3 steps at once. Both workers end with the same weights, equal to the mirrored run's."""
    shared = tmp_path / "multi_worker"
    outs = [tmp_path / f"worker{i}.npz" for i in range(2)]
    first = _run_two_workers(shared, 2, outs)
    assert [r["first_step"] for r in first] == [0, 0]
    assert "(chief)" in first[0]["description"] and "(chief)" not in first[1]["description"]
    second = _run_two_workers(shared, 3, outs)
    assert [r["first_step"] for r in second] == [2, 2]  # both resumed from the chief's ckpt-2
    mirrored = _finish([_start("mirrored", tmp_path / "mirrored", 3, tmp_path / "mirrored.npz")])[0]
    assert mirrored["replicas"] == 2 and all(r["replicas"] == 2 for r in first + second)

    worker0, worker1 = _weights(outs[0]), _weights(outs[1])
    reference = _weights(tmp_path / "mirrored.npz")
    assert len(worker0) == len(worker1) == len(reference)
    for a, b in zip(worker0, worker1):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(worker0, reference):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    for worker in range(2):  # every worker computed the same (all-reduced) losses
        np.testing.assert_allclose(first[worker]["losses"] + second[worker]["losses"],
                                   mirrored["losses"], rtol=1e-5)

    # Only the chief wrote: its checkpoints, model and config; nothing of the other worker.
    checkpoints = sorted(p.name for p in (shared / "checkpoints").iterdir())
    assert {"ckpt-2.index", "ckpt-3.index", "checkpoint"} <= set(checkpoints)
    assert sorted(p.name for p in shared.iterdir()) == [
        "checkpoints", "model.keras", "summaries", "train_config.json"]
