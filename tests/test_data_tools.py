"""tools/show_samples.py and tools/make_coco_sample.py as a user runs them."""

import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

from conftest import DATA, REPO
from tool_output import error_lines

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")





def run(*args):
    return subprocess.run([sys.executable, *args], cwd=REPO, env=ENV, capture_output=True,
                          text=True, timeout=300)


def test_make_coco_sample_reproduces_the_shipped_file(tmp_path):
    out = tmp_path / "coco"
    result = run("tools/make_coco_sample.py", f"--output={out}")
    assert result.returncode == 0, result.stderr
    made = json.loads((out / "annotations/instances_train2017.json").read_text())
    shipped = json.loads((DATA / "coco_sample/annotations/instances_train2017.json").read_text())
    assert made == shipped
    assert (out / "train2017/00000.jpg").is_file()  # the symlink resolves from elsewhere too
    kinds = [type(a["segmentation"]).__name__ for a in made["annotations"]]
    assert "list" in kinds and "dict" in kinds and sum(a["iscrowd"] for a in made["annotations"]) == 1


def test_make_coco_sample_bad_flag_exit_2(tmp_path):
    result = run("tools/make_coco_sample.py", f"--data_dir={tmp_path}",
                 f"--output={tmp_path / 'out'}")
    assert result.returncode == 2
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and "not found" in errors[0]
    assert result.stderr.strip().splitlines()[-1] == errors[0]
    assert not (tmp_path / "out").exists()


def test_show_samples_writes_grid(tmp_path):
    out = tmp_path / "grid.png"
    result = run("tools/show_samples.py", "--source=coco", "--num_samples=2", "--cell=64",
                 f"--output={out}")
    assert result.returncode == 0, result.stderr
    grid = np.asarray(Image.open(out))
    assert grid.shape[0] == 2 * 66 and grid.shape[2] == 3  # 2 rows of 64 px + 2 px gap
    assert grid.std() > 10  # real image content, not a blank canvas


def test_show_samples_bad_input_exit_2(tmp_path):
    out = tmp_path / "grid.png"
    result = run("tools/show_samples.py", "--source=davis", f"--data_dir={tmp_path / 'none'}",
                 f"--output={out}")
    assert result.returncode == 2
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and "not found" in errors[0]
    assert result.stderr.strip().splitlines()[-1] == errors[0]
    assert not out.exists()
