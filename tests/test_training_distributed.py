"""The mirrored (multi-replica) training path, on two logical CPU devices in a subprocess."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

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
