"""The benchmark's --quick smoke run: it runs end to end and writes a complete, consistent JSON.

Speed itself is never asserted (wall-clock in tests is noise); only structure and arithmetic.
"""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from flops import objects_macs, segmentation_macs  # noqa: E402
from timing import (STABLE_SPREAD, paired_ratio, spread, stability,  # noqa: E402
                    time_interleaved)


def test_segmentation_macs_match_vgg16_and_split_shared_from_per_object():
    plain = segmentation_macs({"use_visual_modulator": False, "use_spatial_modulator": False},
                              224, 224)
    assert plain["per_object"] == 0
    # VGG16's 13 convs at 224x224 are 15.35 GMACs; the side outputs, computed as a 1x1
    # product to the 9 folded kernel taps (osmn/inference/engine/inference_head.py), add ~0.02 G.
    vgg16 = 15_346_630_656
    side = sum(s * s * 9 * c for s, c in [(112, 128), (56, 256), (28, 512), (14, 512)])
    assert plain["shared"] == vgg16 + side
    counts = segmentation_macs({}, 224, 224)
    # Shared: conv1_x, conv2_x, conv3_1 (its input is not modulated) and the conv2_2 side output.
    shared = (224 * 224 * 9 * (3 * 64 + 64 * 64) + 112 * 112 * 9 * (64 * 128 + 128 * 128)
              + 112 * 112 * 9 * 128 + 56 * 56 * 9 * 128 * 256)
    assert counts["shared"] == shared
    spatial_1x1 = 56 * 56 * 256 * 3 + 28 * 28 * 512 * 3 + 14 * 14 * 512 * 3
    assert counts["shared"] + counts["per_object"] == plain["shared"] + spatial_1x1
    assert objects_macs(counts, 3) == counts["shared"] + 3 * counts["per_object"]


def test_stability_flags_a_machine_whose_calls_swing():
    steady = {"runs_s": [0.100, 0.104, 0.102]}
    swinging = {"runs_s": [0.22, 0.50, 0.45]}  # seen on a shared AMX host
    assert spread(steady) == pytest.approx(1.04)
    assert spread(swinging) == pytest.approx(0.50 / 0.22)
    both = {"trunk": steady, "frame": swinging}
    assert stability(both, ["trunk"]) == {"max_spread": pytest.approx(1.04), "stable": True,
                                          "stable_spread_limit": STABLE_SPREAD}
    verdict = stability(both, ["trunk", "frame"])
    assert verdict["max_spread"] == pytest.approx(0.50 / 0.22) and not verdict["stable"]


def test_rounds_alternate_order_and_pair_by_round():
    calls = []
    timings = time_interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                               runs=3, warmup=1)
    assert calls == ["a", "b"] + ["a", "b", "b", "a", "a", "b"]  # warm-up, then ABBA order
    assert all(len(t["runs_s"]) == 3 for t in timings.values())


def test_paired_ratio_follows_the_host_state_of_each_round():
    # The host swings 2x between calls; a frame is 1.02x its reference in the same state. In
    # round 2 the frame ran in the fast state and the reference in the slow one.
    reference = [0.20, 0.20, 0.40, 0.40, 0.40]
    frame = [0.204, 0.204, 0.204, 0.408, 0.408]
    t = {"frame": {"runs_s": frame}, "reference": {"runs_s": reference}}
    paired = paired_ratio(t, "frame", "reference")
    assert paired["median"] == pytest.approx(1.02)
    assert paired["q1"] == pytest.approx(1.02) and paired["q3"] == pytest.approx(1.02)
    assert paired_ratio(t, "reference", "frame")["median"] == pytest.approx(1 / 1.02)
    # The ratio of the medians is thrown off by that one round.
    assert np.median(frame) / np.median(reference) == pytest.approx(0.51)


@pytest.mark.slow
def test_quick_benchmark_writes_a_complete_result(tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "benchmark.py"), "--quick", "--max_objects",
         "2", "--output_dir", str(tmp_path), "--tag", "smoke", "--noxla",
         "--noportable"],  # the portable section has its own test (test_lite_tools.py)
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "whole frame / bare trunk" in done.stdout
    result = json.loads((tmp_path / "smoke.json").read_text())
    env = result["environment"]
    for key in ("cpu_model", "cores", "tensorflow", "TF_ENABLE_ONEDNN_OPTS", "amx_bf16",
                "load_average_start", "load_average_end"):
        assert key in env
    assert set(result["segmentation"]) == {"float32", "bfloat16"}
    entry = result["segmentation"]["float32"]["97x65"]
    t = entry["times"]
    assert entry["ratios"]["whole_frame_over_bare_trunk"] == pytest.approx(
        t["osmn_k1"]["median_s"] / t["bare_trunk"]["median_s"])
    assert entry["ratios"]["batched_over_separate"]["2"] == pytest.approx(
        t["osmn_k2"]["median_s"] / (2 * t["osmn_k1"]["median_s"]))
    assert entry["ratios_min_time"]["modulated_over_plain"] == pytest.approx(
        t["osmn_k1"]["min_s"] / t["plain_fcn"]["min_s"])
    per_round = [a / b for a, b in zip(t["osmn_k1"]["runs_s"], t["plain_fcn"]["runs_s"])]
    assert entry["ratios_paired"]["modulated_over_plain"]["median"] == pytest.approx(
        float(np.median(per_round)))
    assert "per round (quartiles)" in done.stdout
    timed = ("bare_trunk", "plain_fcn", "osmn_k1")
    assert entry["stability"]["max_spread"] == pytest.approx(
        max(max(t[k]["runs_s"]) / min(t[k]["runs_s"]) for k in timed))
    assert "per-call spread" in done.stdout
    assert entry["trace_count"] == 1
    assert all(len(v["runs_s"]) == result["runs"] for v in t.values())
    assert 0 < result["matmul_ceiling"]["bfloat16"]["gflops"]
    assert result["finetune"]["steps"] == 3
    loop = result["tool_loop"]["bfloat16"]  # the tool's own per-frame call, measured
    assert loop["tool_step_over_bare"] == pytest.approx(
        loop["times"]["tool_step"]["median_s"] / loop["times"]["bare_segment"]["median_s"])
    assert loop["precision"] == "bfloat16" and loop["trace_count"] == 1
    assert "VideoSegmenter.step / bare segment" in done.stdout
    accuracy = result["bfloat16_accuracy"]
    assert accuracy["frames"] == 3 and "random" in accuracy["model"]
    assert 0 <= accuracy["mask_iou_bf16_vs_f32_min"] <= 1
    assert result["peak_rss_mib"] >= result["peak_rss_mib_before_accuracy"] > 0
    assert "portable" not in result


def test_bad_sizes_flag_is_one_line_and_exit_code_2(tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "benchmark.py"), "--sizes", "854by480",
         "--output_dir", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == "error: bad flag: flag --sizes=854by480: " \
        "expected WIDTHxHEIGHT, e.g. 854x480, got '854by480'"
    assert not list(tmp_path.iterdir())
