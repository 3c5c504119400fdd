"""benchmarks/ablation.py: settings checks, the table, and a tiny run end to end."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from scripts import load_script
from osmn.errors import UserError


def _load():
    return load_script("benchmarks/ablation.py", "ablation")


ablation = _load()


def test_default_sets_are_disjoint_and_variants_are_table3_rows():
    s = ablation.AblationSettings().validate()
    assert s.train_seed != s.eval_seed
    assert s.variants == ("full", "no_visual", "no_spatial", "no_guide_aug")
    config = ablation.train_config(s, "no_visual", 7)
    assert config.he_init and config.perturb_spatial_guide  # from scratch: He-normal kernels
    assert config.steps == 7 and not config.model.use_visual_modulator
    assert config.model.use_spatial_modulator
    assert config.image_sizes == ((s.height, s.width),) and config.source == "davis"
    assert config.lr_values == s.learning_rates and config.lr_boundaries == (5,)  # 0.75 x 7
    config = ablation.train_config(s, "no_spatial", 7)
    assert config.model.use_visual_modulator and not config.model.use_spatial_modulator
    config = ablation.train_config(s, "no_guide_aug", 7)
    assert not config.perturb_spatial_guide
    assert config.model.use_visual_modulator and config.model.use_spatial_modulator


@pytest.mark.parametrize("changes, message", [
    ({"eval_seed": 0}, "must differ"),
    ({"variants": ("no_visual", "full")}, "start with full"),
    ({"variants": ("full", "no_crop")}, "variants"),
    ({"frames": 2}, "frames"),
    ({"steps": 0}, "steps"),
    ({"learning_rates": (1e-3,)}, "lr"),
    ({"decay_fraction": 1.5}, "decay_fraction"),
    ({"minutes_per_variant": 0.0}, "minutes_per_variant"),
])
def test_bad_settings_raise_user_error(changes, message):
    with pytest.raises(UserError, match=message):
        dataclasses.replace(ablation.AblationSettings(), **changes).validate()


def test_markdown_table_lists_every_variant_and_family():
    families = {"distractor": {"J_mean": 61.25, "others_hit_pct": 3.0},
                "twin": {"J_mean": 40.0, "others_hit_pct": 55.5}}
    report = {"variants": {"copy_first_mask": {"families": families},
                           "full": {"steps": 12, "families": families}}}
    lines = ablation.markdown_table(report).splitlines()
    assert len(lines) == 4
    assert lines[2].startswith("| first-frame mask copied")
    assert lines[3] == "| OSMN (both modulators) | 12 | 61.2 | 40.0 | 3.0% | 55.5% | 52.5 |"


def test_other_objects_hit_counts_pixels_of_the_other_objects(tmp_path):
    from osmn.data import synthetic
    from osmn.inference import write_mask
    s = ablation.QUICK
    video = synthetic.generate_video("twin", s.eval_seed, 0, s.frames, s.height, s.width)
    for labels, expected in ((video.labels, 0.0), (video.labels > 0, 100.0)):
        out = tmp_path / str(expected) / video.name
        out.mkdir(parents=True)
        for t in range(s.frames):
            write_mask(out / f"{t:05d}.png", np.asarray(labels[t], np.uint8))
        assert ablation.other_objects_hit(s, "twin", out.parent, [video.name]) == expected


@pytest.mark.slow
def test_tiny_ablation_end_to_end(tmp_path):
    """2 steps per variant at width 1/16 on 1 tiny video per family: the machinery, not a result.
    Two trained variants (the full model and one without a modulator); what the others change
    is tested on their configs above."""
    settings = dataclasses.replace(ablation.QUICK, variants=("full", "no_visual"))
    out = tmp_path / "ablation.json"
    report = ablation.run_ablation(settings, tmp_path / "work", out,
                                   tmp_path / "ablation.md", progress=False, log=lambda _: None)
    assert json.loads(out.read_text()) == report
    assert list(report["variants"]) == ["copy_first_mask", "full", "no_visual"]
    for name, entry in report["variants"].items():
        for family in ("distractor", "twin"):
            scores = entry["families"][family]
            assert 0.0 <= scores["J_mean"] <= 100.0 and 0.0 <= scores["others_hit_pct"] <= 100.0
        if name != "copy_first_mask":
            assert entry["steps"] == 2
            assert np.isfinite(entry["loss_start"]) and np.isfinite(entry["loss_end"])
    # Copying the first mask keeps the target's first-frame pixels: J > 0, no other object hit.
    baseline = report["variants"]["copy_first_mask"]["families"]
    assert baseline["twin"]["J_mean"] > 0 and baseline["twin"]["others_hit_pct"] == 0.0
    table = (tmp_path / "ablation.md").read_text()
    assert table.count("\n") == 5 and "no visual modulator" in table
    # Every variant left a trained model and one result PNG per evaluation frame.
    for variant in settings.variants:
        assert (tmp_path / "work/runs" / variant / "model.keras").is_file()
        pngs = list((tmp_path / "work/results" / variant / "twin").glob("*/*.png"))
        assert len(pngs) == settings.frames
    # The same work dir again: data reused, nothing left to train, the same scores.
    messages = []
    again = ablation.run_ablation(settings, tmp_path / "work", progress=False,
                                  log=messages.append)
    assert any(m.startswith("resuming") for m in messages)
    for name, entry in again["variants"].items():
        assert entry["families"] == report["variants"][name]["families"]
        if name != "copy_first_mask":
            assert entry["steps"] == 2 and entry["loss_end"] is None  # nothing trained


def test_work_dir_of_other_settings_is_refused(tmp_path):
    (tmp_path / "settings.json").write_text("{}")
    with pytest.raises(UserError, match="other settings"):
        ablation.run_ablation(ablation.QUICK, tmp_path, log=lambda _: None)
    (tmp_path / "settings.json").unlink()
    (tmp_path / "data").mkdir()
    with pytest.raises(UserError, match="unknown run"):
        ablation.run_ablation(ablation.QUICK, tmp_path, log=lambda _: None)


@pytest.mark.slow
def test_time_budget_trains_the_timed_chunks_then_fills_the_budget(tmp_path):
    """A budget already spent by the two timed chunks stops after them (10 + 30 steps)."""
    from osmn.data import synthetic
    s = dataclasses.replace(ablation.QUICK, steps=None, minutes_per_variant=0.001)
    root = synthetic.write_davis(tmp_path / "train", {"train": synthetic.generate_videos(
        "twin", 1, 0, s.frames, s.height, s.width)})
    messages = []
    entry = ablation.train_variant(s, "no_spatial", root, tmp_path / "run", None, 0.06, False,
                                   log=messages.append)
    assert entry["steps"] == sum(ablation.CALIBRATION_STEPS)
    assert any("s/step" in m and "more steps" in m for m in messages)
    assert (tmp_path / "run" / "model.keras").is_file()


def test_script_rejects_bad_flags(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "benchmarks/ablation.py"),
                           "--variants=full,no_crop", f"--output={tmp_path / 'a.json'}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = [l for l in done.stderr.splitlines() if l.startswith("ablation.py:")]
    assert len(lines) == 1 and "--variants" in lines[0]
    assert not (tmp_path / "a.json").exists()
