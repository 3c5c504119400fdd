"""Checkpoints survive a kill at any moment: the newest listed checkpoint always loads."""

import os
import pathlib
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tensorflow as tf

from osmn.model import load_osmn

REPO = pathlib.Path(__file__).resolve().parents[1]

# Saves checkpoints as fast as it can (resuming first), each with the model's first kernel
# filled with the step number, so a restored checkpoint can be checked for consistency.
WRITER = textwrap.dedent("""
    import sys
    import tensorflow as tf
    from osmn.config import RECIPES, ModelConfig
    from osmn.model import OSMN
    from osmn.training.checkpoints import RunCheckpoints
    from osmn.training.schedule import make_optimizer
    recipe = RECIPES["sample"].replace(model=ModelConfig(width_multiplier=0.125))
    model = OSMN(recipe.model)
    step = tf.Variable(0, dtype=tf.int64)
    optimizer = make_optimizer(recipe, step)
    optimizer.build(model.trainable_variables)
    run = RunCheckpoints(sys.argv[1], model, optimizer, step, keep=2)
    if run.latest:
        run.restore_latest()
    while True:
        step.assign_add(1)
        kernel = model.trainable_variables[0]
        kernel.assign(tf.fill(kernel.shape, float(step.numpy())))
        run.save()
        print("saved", int(step.numpy()), flush=True)
""")


def _restore(run_dir):
    from osmn.config import RECIPES, ModelConfig
    from osmn.model import OSMN
    from osmn.training.checkpoints import RunCheckpoints
    from osmn.training.schedule import make_optimizer
    recipe = RECIPES["sample"].replace(model=ModelConfig(width_multiplier=0.125))
    model = OSMN(recipe.model)
    step = tf.Variable(0, dtype=tf.int64)
    optimizer = make_optimizer(recipe, step)
    optimizer.build(model.trainable_variables)
    run = RunCheckpoints(run_dir, model, optimizer, step, keep=2)
    restored = run.restore_latest()
    return run.latest, restored, np.asarray(model.trainable_variables[0])


@pytest.mark.slow
def test_kill_while_saving_never_leaves_a_broken_checkpoint(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    rng = random.Random(0)
    last_restored = 0
    for _ in range(3):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], env=env,
                                  stdout=subprocess.PIPE, text=True, cwd=REPO)
        try:
            assert writer.stdout.readline().startswith("saved")  # resumed and saving
            time.sleep(rng.uniform(0.2, 1.5))
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait()
        latest, restored, kernel = _restore(tmp_path)
        assert latest.endswith(f"ckpt-{restored}")
        assert restored > last_restored  # each writer resumed from the previous one's last
        np.testing.assert_array_equal(kernel, np.full(kernel.shape, float(restored)))
        last_restored = restored
        # model.keras (written after the checkpoint) is whole: the same or the previous step.
        model_kernel = np.asarray(load_osmn(tmp_path).trainable_variables[0])
        assert float(model_kernel.flat[0]) in (restored, restored - 1)
        assert np.all(model_kernel == model_kernel.flat[0])
    # Only the last 2 checkpoints are kept (plus at most one half-written temporary).
    indexes = list((tmp_path / "checkpoints").glob("ckpt-*.index"))
    assert 1 <= len(indexes) <= 3
