"""DAVIS J and F: hand-computed known cases, the statistics, data-set level rules, the tool."""

import csv
import pathlib
import shutil

import numpy as np
import pytest
from PIL import Image

from osmn.errors import UserError
from osmn.evaluation import (evaluate, evaluate_sequence, f_measure, jaccard, list_sequences,
                             overall, seg2bmap, statistics)
from osmn.evaluation.metrics import boundary_tolerance, disk_dilate
from osmn.inference import write_mask
from scripts import load_tool

REPO = pathlib.Path(__file__).resolve().parents[1]


def _squares():
    """A 4x4 square and the same square shifted 2 columns right, in a 10x10 image."""
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[2:6, 2:6] = True
    b[2:6, 4:8] = True
    return a, b


# ----------------------------------------------------------------------------- frame measures
def test_jaccard_of_shifted_square_is_one_third():
    a, b = _squares()
    assert jaccard(a, b) == pytest.approx(8 / 24, abs=1e-12)


def test_seg2bmap_of_square_is_outline_of_box_shifted_up_left():
    a, _ = _squares()
    expected = np.zeros((10, 10), bool)
    expected[1:6, 1] = expected[1:6, 5] = expected[1, 1:6] = expected[5, 1:6] = True
    np.testing.assert_array_equal(seg2bmap(a), expected)


def test_f_of_shifted_square_by_hand():
    # 10x10 image: tolerance ceil(0.008 * 14.14) = 1 px (a plus-shaped disk). Each boundary is
    # the 16-pixel outline of a 5x5 box (rows 1-5; columns 1-5 and 3-7). Of the shifted
    # outline, 10 pixels are within 1 px of the other: the top and bottom rows at columns 3-6
    # (8) and the left column at rows 2 and 4 (2); its row-3 left pixel and whole right column
    # are not. P = R = 10/16 by symmetry, so F = 0.625.
    a, b = _squares()
    assert boundary_tolerance(a.shape) == 1
    assert f_measure(a, b) == pytest.approx(0.625, abs=1e-12)
    assert f_measure(b, a) == pytest.approx(0.625, abs=1e-12)


def test_identical_and_empty_cases():
    a, _ = _squares()
    empty = np.zeros_like(a)
    assert jaccard(a, a) == 1.0 and f_measure(a, a) == 1.0
    assert jaccard(empty, empty) == 1.0 and f_measure(empty, empty) == 1.0
    assert jaccard(a, empty) == 0.0 and f_measure(a, empty) == 0.0
    assert jaccard(empty, a) == 0.0 and f_measure(empty, a) == 0.0


def test_void_pixels_are_ignored_only_when_given():
    a, b = _squares()
    void = b & ~a  # the part of the result outside the ground truth
    assert jaccard(a, b) < 1.0
    assert jaccard(a, b, void) == pytest.approx(8 / 16)  # 8 of the square's 16 pixels remain


def test_tolerance_at_davis_resolution_is_8_pixels():
    assert boundary_tolerance((480, 854)) == 8  # ceil(0.008 * 979.6)
    assert boundary_tolerance((480, 854), bound_th=3) == 3


@pytest.mark.parametrize("radius", [1, 2, 5, 8])
def test_disk_dilation_matches_brute_force(radius):
    mask = np.random.default_rng(radius).random((23, 31)) > 0.97
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    offsets = np.argwhere(yy ** 2 + xx ** 2 <= radius ** 2) - radius
    expected = np.zeros_like(mask)
    for y, x in np.argwhere(mask):
        for dy, dx in offsets:
            if 0 <= y + dy < 23 and 0 <= x + dx < 31:
                expected[y + dy, x + dx] = True
    np.testing.assert_array_equal(disk_dilate(mask, radius), expected)


# ----------------------------------------------------------------------------- statistics
def test_statistics_mean_recall_decay():
    mean, recall, decay = statistics(np.array([1, 1, 1, 1, 0, 0, 0, 0], float))
    assert (mean, recall, decay) == (0.5, 0.5, 1.0)


def test_decay_bins_share_their_boundary_frame_as_the_official_code():
    # n = 5: ids = round(linspace(1, 5, 5)) - 1 = [0..4]; bin 0 = v[0:2], bin 3 = v[3:5].
    values = np.array([1.0, 0.8, 0.6, 0.4, 0.2])
    mean, recall, decay = statistics(values)
    assert mean == pytest.approx(0.6)
    assert recall == pytest.approx(0.6)  # 1.0, 0.8, 0.6 are > 0.5
    assert decay == pytest.approx(0.9 - 0.3)


def test_recall_threshold_is_strict():
    assert statistics(np.array([0.5, 0.5, 0.51, 0.5]))[1] == pytest.approx(0.25)


# ----------------------------------------------------------------------------- data-set level
def _davis_tree(root: pathlib.Path, frames=5, with_image_set=True):
    """A 2-object DAVIS 2017 sequence 'seq' (palette PNGs, 24x32) with a void strip."""
    gt_dir = root / "Annotations/480p/seq"
    gt_dir.mkdir(parents=True)
    labels = []
    for t in range(frames):
        frame = np.zeros((24, 32), np.uint8)
        frame[2:10, 2 + t:12 + t] = 1
        frame[14:22, 16:28] = 2
        frame[:, 30:] = 255
        write_mask(gt_dir / f"{t:05d}.png", frame)
        labels.append(frame)
    if with_image_set:
        (root / "ImageSets/2017").mkdir(parents=True)
        (root / "ImageSets/2017/val.txt").write_text("seq\n")
    return labels


def _results(root: pathlib.Path, labels):
    (root / "seq").mkdir(parents=True)
    for t, frame in enumerate(labels):
        write_mask(root / "seq" / f"{t:05d}.png", frame)


def test_ground_truth_against_itself_and_against_background(tmp_path):
    labels = _davis_tree(tmp_path / "davis")
    _results(tmp_path / "same", [np.where(f == 255, 0, f) for f in labels])
    _results(tmp_path / "none", [np.zeros_like(f) for f in labels])
    same = evaluate(tmp_path / "davis", tmp_path / "same", ["seq"])
    assert [r.name for r in same] == ["seq_1", "seq_2"]
    assert [r.frames for r in same][0] == ["00001", "00002", "00003"]  # first, last excluded
    total = overall(same)
    for key in ("J-Mean", "F-Mean", "J&F-Mean", "J-Recall", "F-Recall"):
        assert total[key] == 1.0
    assert total["J-Decay"] == 0.0
    total = overall(evaluate(tmp_path / "davis", tmp_path / "none", ["seq"]))
    for key in ("J-Mean", "F-Mean", "J&F-Mean", "J-Recall", "F-Recall"):
        assert total[key] == 0.0


def test_first_and_last_frames_do_not_count_and_ids_must_match(tmp_path):
    labels = _davis_tree(tmp_path / "davis")
    wrong = [np.where(f == 255, 0, f) for f in labels]
    wrong[0] = np.zeros_like(wrong[0])
    wrong[-1] = np.zeros_like(wrong[-1])
    _results(tmp_path / "ends", wrong)
    assert overall(evaluate(tmp_path / "davis", tmp_path / "ends", ["seq"]))["J&F-Mean"] == 1.0
    swapped = [np.choose(f, [0, 2, 1]) if f.max() < 3 else f for f in
               [np.where(f == 255, 0, f) for f in labels]]
    _results(tmp_path / "swapped", swapped)
    results_2017 = evaluate(tmp_path / "davis", tmp_path / "swapped", ["seq"], year="2017")
    assert overall(results_2017)["J-Mean"] == 0.0
    results_2016 = evaluate(tmp_path / "davis", tmp_path / "swapped", ["seq"], year="2016")
    assert [r.name for r in results_2016] == ["seq_1"]  # 2016: one merged object
    assert overall(results_2016)["J&F-Mean"] == 1.0


def test_void_counts_as_background_unless_excluded(tmp_path):
    labels = _davis_tree(tmp_path / "davis")
    _results(tmp_path / "into_void", [np.where(f == 255, 2, f) for f in labels])
    official = evaluate_sequence(tmp_path / "davis", tmp_path / "into_void", "seq")
    assert official[1].j.max() < 1.0  # object 2 spills into the void strip
    excluded = evaluate_sequence(tmp_path / "davis", tmp_path / "into_void", "seq",
                                 exclude_void=True)
    np.testing.assert_allclose(excluded[1].j, 1.0)


def test_dataset_errors(tmp_path):
    labels = _davis_tree(tmp_path / "davis")
    labels = [np.where(f == 255, 0, f) for f in labels]
    _results(tmp_path / "res", labels[:3])  # frame 00003 missing
    with pytest.raises(UserError, match=r"seq/00003.png: result not found"):
        evaluate_sequence(tmp_path / "davis", tmp_path / "res", "seq")
    _results(tmp_path / "three", [np.full_like(f, 3) for f in labels])
    with pytest.raises(UserError, match="id 3 but the sequence has 2 object"):
        evaluate_sequence(tmp_path / "davis", tmp_path / "three", "seq")
    _results(tmp_path / "small", [f[:10] for f in labels])
    with pytest.raises(UserError, match="differs from the ground truth"):
        evaluate_sequence(tmp_path / "davis", tmp_path / "small", "seq")


def test_sequences_from_image_set_or_results(tmp_path):
    _davis_tree(tmp_path / "davis", with_image_set=False)
    (tmp_path / "res/b").mkdir(parents=True)
    (tmp_path / "res/a").mkdir()
    (tmp_path / "res/overlays/a").mkdir(parents=True)
    Image.new("P", (2, 2)).save(tmp_path / "res/a/00000.png")
    Image.new("P", (2, 2)).save(tmp_path / "res/b/00000.png")
    assert list_sequences(tmp_path / "davis", "2017", "val", tmp_path / "res") == (["a", "b"], None)
    (tmp_path / "davis/ImageSets/2017").mkdir(parents=True)
    (tmp_path / "davis/ImageSets/2017/val.txt").write_text("x\ny\n")
    names, source = list_sequences(tmp_path / "davis", "2017", "val", tmp_path / "res")
    assert names == ["x", "y"] and source.name == "val.txt"


# ----------------------------------------------------------------------------- the tool
@pytest.fixture(scope="module")
def eval_tool():
    return load_tool("eval")


def test_tool_on_the_shipped_sample(eval_tool, davis_sample, tmp_path):
    gt = davis_sample / "Annotations/480p/car-shadow"
    (tmp_path / "gt").mkdir()
    shutil.copytree(gt, tmp_path / "gt/car-shadow")
    text = eval_tool.run(str(tmp_path / "gt"), str(davis_sample), year="2016", plot=True)
    assert "car-shadow_1" in text and "Overall" in text
    with open(tmp_path / "gt/global_results-val.csv") as f:
        rows = list(csv.DictReader(f))
    assert float(rows[0]["J&F-Mean"]) == 1.0 and float(rows[0]["F-Mean"]) == 1.0
    with Image.open(tmp_path / "gt/j_over_time-val.png") as plot:
        assert plot.size == (640, 400)
    with open(tmp_path / "gt/j_over_time-val.csv") as f:
        curve = list(csv.DictReader(f))
    assert len(curve) == 100 and all(float(r["J_mean"]) == 1.0 for r in curve)

    (tmp_path / "bg/car-shadow").mkdir(parents=True)
    for path in sorted(gt.glob("*.png")):
        write_mask(tmp_path / "bg/car-shadow" / path.name, np.zeros((480, 854), np.uint8))
    eval_tool.run(str(tmp_path / "bg"), str(davis_sample), year="2016",
                  output=str(tmp_path / "csv"))
    with open(tmp_path / "csv/per-sequence_results-val.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["Sequence"] == "car-shadow_1"
    assert float(rows[0]["J-Mean"]) == 0.0 and float(rows[0]["F-Mean"]) == 0.0


def test_tool_bad_input(eval_tool, davis_sample, tmp_path):
    with pytest.raises(UserError, match="results folder not found"):
        eval_tool.run(str(tmp_path / "nope"), str(davis_sample))
    with pytest.raises(UserError, match="not a DAVIS root"):
        eval_tool.run(str(tmp_path), str(tmp_path))
    _davis_tree(tmp_path / "davis")
    _results(tmp_path / "res", [np.full((24, 32), 255, np.uint8)] * 5)
    with pytest.raises(UserError, match="00001.png: id 255 but the sequence has 2"):
        eval_tool.run(str(tmp_path / "res"), str(tmp_path / "davis"))


def test_copy_first_mask_writes_the_first_annotation_for_every_frame(tmp_path):
    """The no-model reference: every result equals frame 0's annotation; its J on the sample is
    the 0.408 the README quotes for copying the first mask."""
    from conftest import DAVIS_SAMPLE, SAMPLE_SEQUENCE  # noqa: PLC0415
    from osmn.evaluation.baselines import copy_first_mask  # noqa: PLC0415
    from osmn.io import read_mask  # noqa: PLC0415
    copy_first_mask(DAVIS_SAMPLE, [SAMPLE_SEQUENCE], tmp_path)
    frames = sorted((DAVIS_SAMPLE / "JPEGImages" / "480p" / SAMPLE_SEQUENCE).glob("*.jpg"))
    written = sorted((tmp_path / SAMPLE_SEQUENCE).glob("*.png"))
    assert [p.stem for p in written] == [p.stem for p in frames]
    first = read_mask(DAVIS_SAMPLE / "Annotations" / "480p" / SAMPLE_SEQUENCE / "00000.png")[0]
    for path in (written[0], written[len(written) // 2], written[-1]):
        np.testing.assert_array_equal(read_mask(path)[0], first)
    (result,) = evaluate(DAVIS_SAMPLE, tmp_path, [SAMPLE_SEQUENCE], "2016")
    assert round(result.summary()["J-Mean"], 3) == 0.408


def test_copy_first_mask_names_a_missing_sequence(tmp_path):
    from conftest import DAVIS_SAMPLE  # noqa: PLC0415
    from osmn.evaluation.baselines import copy_first_mask  # noqa: PLC0415
    with pytest.raises(UserError, match="no-such-video"):
        copy_first_mask(DAVIS_SAMPLE, ["no-such-video"], tmp_path)
