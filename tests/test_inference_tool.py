"""End to end: tools/infer.py on the shipped DAVIS sequence with a tiny constructed model."""

import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from osmn.errors import UserError
from osmn.inference import ObjectManager, davis_palette, merge_probabilities, read_mask, write_mask
from osmn.cli import SHIPPED_MODEL
from osmn.model import OSMN, load_osmn, save_osmn
from scripts import load_tool

REPO = pathlib.Path(__file__).resolve().parents[1]
SEQUENCE = "car-shadow"


@pytest.fixture(scope="module")
def infer():
    return load_tool("infer")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    save_osmn(OSMN({"width_multiplier": 1 / 16}), path)
    return path


@pytest.fixture
def frames(davis_sample):
    return davis_sample / "JPEGImages/480p" / SEQUENCE


@pytest.fixture
def gt_path(davis_sample):
    return davis_sample / "Annotations/480p" / SEQUENCE / "00000.png"


@pytest.fixture
def short_video(tmp_path, frames):
    """The first 4 frames of the sample in a folder outside the DAVIS layout."""
    folder = tmp_path / "short"
    folder.mkdir()
    for path in sorted(frames.glob("*.jpg"))[:4]:
        shutil.copy(path, folder / path.name)
    return folder


def _no_leftovers(parent: pathlib.Path):
    assert not [p for p in parent.iterdir() if p.name.startswith(".") and "tmp" in p.name]


@pytest.mark.slow  # about 8 s on an idle 2-core machine, 34 s under load (40 frames of I/O)
def test_sample_sequence_end_to_end(infer, checkpoint, frames, gt_path, tmp_path):
    out = tmp_path / "out"
    # Segmented at a quarter of the size to keep the test fast; results come back at 854x480.
    summary = infer.run(str(frames), None, str(checkpoint), str(out), overlay=True,
                        save_scores=True, im_size=(214, 120))
    assert "40 frames" in summary and "1 object(s)" in summary and "s/frame" in summary
    pngs = sorted((out / SEQUENCE).glob("*.png"))
    assert [p.stem for p in pngs] == [p.stem for p in sorted(frames.glob("*.jpg"))]
    palette = davis_palette()
    for path in pngs:
        with Image.open(path) as image:
            assert image.mode == "P" and image.size == (854, 480)
            np.testing.assert_array_equal(
                np.asarray(image.getpalette()[:768], np.uint8).reshape(256, 3), palette)
            assert set(np.unique(np.asarray(image))) <= {0, 1}
    np.testing.assert_array_equal(read_mask(pngs[0])[0], read_mask(gt_path)[0])
    assert len(list((out / SEQUENCE).glob("*.obj1.npy"))) == 40
    assert len(list((out / "overlays" / SEQUENCE).glob("*.jpg"))) == 40
    assert (out / "overlays" / f"{SEQUENCE}.gif").exists()
    _no_leftovers(tmp_path)


def test_two_objects_keep_their_ids_and_palette(infer, checkpoint, short_video, gt_path, tmp_path):
    car = read_mask(gt_path)[0] > 0
    split = int(np.median(np.nonzero(car)[1]))
    labels = np.zeros(car.shape, np.uint8)
    labels[:, :split][car[:, :split]] = 1
    labels[:, split:][car[:, split:]] = 2
    palette = davis_palette().copy()
    palette[1], palette[2] = (10, 200, 30), (250, 5, 120)
    write_mask(tmp_path / "two.png", labels, palette)
    out = tmp_path / "out"
    summary = infer.run(str(short_video), str(tmp_path / "two.png"), str(checkpoint), str(out),
                        save_scores=True, im_size=(214, 120))
    assert "2 object(s) (ids 1, 2)" in summary
    first, first_palette = read_mask(out / "short/00000.png")
    np.testing.assert_array_equal(first, labels)
    np.testing.assert_array_equal(first_palette, palette)
    for name in ("00001", "00002", "00003"):
        result = read_mask(out / "short" / f"{name}.png")[0]
        assert result.shape == labels.shape
        scores = np.stack([np.load(out / "short" / f"{name}.obj{i}.npy") for i in (1, 2)])
        assert scores.dtype == np.float32 and scores.shape == (2,) + labels.shape
        np.testing.assert_array_equal(result, merge_probabilities(scores, ObjectManager([1, 2])))


def test_second_sequence_joins_existing_output(infer, checkpoint, short_video, gt_path, tmp_path):
    out = tmp_path / "out"
    infer.run(str(short_video), str(gt_path), str(checkpoint), str(out), sequence="a",
              im_size=(107, 60), overlay=True)
    infer.run(str(short_video), str(gt_path), str(checkpoint), str(out), sequence="b",
              im_size=(107, 60), overlay=True)
    assert len(list((out / "a").glob("*.png"))) == 4 and len(list((out / "b").glob("*.png"))) == 4
    assert (out / "overlays/a.gif").exists() and (out / "overlays/b.gif").exists()
    _no_leftovers(tmp_path)


def _corrupt_copy(short_video):
    (short_video / "00002.jpg").write_bytes(b"this is not a jpeg")
    return short_video / "00002.jpg"


@pytest.mark.parametrize("case", ["missing_folder", "no_frames", "no_mask", "size_mismatch",
                                  "empty_mask", "unreadable_frame", "bad_finetune_steps"])
def test_bad_input_names_the_file_and_leaves_nothing(case, infer, checkpoint, short_video,
                                                     gt_path, tmp_path):
    video, mask, expected = str(short_video), str(gt_path), None
    if case == "missing_folder":
        video, expected = str(tmp_path / "nope"), "nope: video folder or file not found"
    elif case == "no_frames":
        (tmp_path / "empty").mkdir()
        video, expected = str(tmp_path / "empty"), "empty: no .jpg/.jpeg/.png frames"
    elif case == "no_mask":
        mask, expected = None, "Annotations/short/00000.png: mask file not found"
    elif case == "size_mismatch":
        Image.fromarray(np.full((10, 10), 255, np.uint8)).save(tmp_path / "small.png")
        mask, expected = str(tmp_path / "small.png"), "small.png: mask size 10x10 differs"
    elif case == "empty_mask":
        Image.fromarray(np.zeros((480, 854), np.uint8)).save(tmp_path / "zero.png")
        mask, expected = str(tmp_path / "zero.png"), "zero.png: the mask holds no object"
    elif case == "unreadable_frame":
        expected = f"{_corrupt_copy(short_video)}: unreadable frame"
    kwargs = {"finetune_steps": -1} if case == "bad_finetune_steps" else {}
    expected = expected or "--finetune_steps"
    out = tmp_path / "out"
    with pytest.raises(UserError) as error:
        infer.run(video, mask, str(checkpoint), str(out), im_size=(107, 60), **kwargs)
    assert expected in str(error.value)
    assert "\n" not in str(error.value)
    assert not out.exists()
    _no_leftovers(tmp_path)


def test_missing_default_model_says_how_to_make_it(infer, short_video, gt_path, tmp_path,
                                                   monkeypatch):
    monkeypatch.setattr("osmn.cli.SHIPPED_MODEL", "data/no_such_model.keras")
    with pytest.raises(UserError, match=r"tools/train.py --flagfile=data/davis16_lite.flags"):
        infer.run(str(short_video), str(gt_path), None, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_crf_without_package_is_one_clear_error(infer, short_video, gt_path, tmp_path,
                                                monkeypatch, checkpoint):
    monkeypatch.setitem(sys.modules, "pydensecrf", None)
    monkeypatch.setitem(sys.modules, "pydensecrf.densecrf", None)
    with pytest.raises(UserError, match="pip install pydensecrf2"):
        infer.run(str(short_video), str(gt_path), str(checkpoint), str(tmp_path / "out"), crf=True)


def test_crf_and_finetuning_run(infer, checkpoint, short_video, gt_path, tmp_path):
    pytest.importorskip("pydensecrf")
    out = tmp_path / "out"
    summary = infer.run(str(short_video), str(gt_path), str(checkpoint), str(out),
                        im_size=(107, 60), crf=True, finetune_steps=2)
    assert "fine-tuning" in summary
    assert len(list((out / "short").glob("*.png"))) == 4


def test_command_line_error_is_one_line_and_exit_code_2(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    completed = subprocess.run(
        [sys.executable, str(REPO / "tools/infer.py"), "--video", str(tmp_path / "nope"),
         "--output", str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=300)
    assert completed.returncode == 2
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {tmp_path / 'nope'}: video folder or file not found"]
    assert not (tmp_path / "out").exists()


def test_default_shipped_model_follows_the_car(infer, short_video, gt_path, davis_sample,
                                               tmp_path, capsys):
    """The shipped model, which never saw car-shadow (a DAVIS 2016 validation video), follows
    the car through the first frames at its own working size."""
    from osmn.evaluation import jaccard  # noqa: PLC0415
    out = tmp_path / "out"
    summary = infer.run(str(short_video), str(gt_path), None, str(out))
    assert "Using the shipped model data/osmn_lite_davis16.keras" in capsys.readouterr().out
    width, height = load_osmn(REPO / SHIPPED_MODEL).model_config.working_size
    assert f"working size {width}x{height}" in summary
    for name in ("00001", "00002", "00003"):
        result = read_mask(out / "short" / f"{name}.png")[0] > 0
        truth = read_mask(davis_sample / "Annotations/480p/car-shadow" / f"{name}.png")[0] > 0
        assert result.shape == truth.shape
        assert jaccard(truth, result) > 0.5


def test_bfloat16_precision_gives_the_float32_masks(infer, short_video, gt_path, tmp_path):
    from osmn.evaluation import jaccard  # noqa: PLC0415
    infer.run(str(short_video), str(gt_path), None, str(tmp_path / "f32"), precision="float32")
    infer.run(str(short_video), str(gt_path), None, str(tmp_path / "bf16"), precision="bfloat16")
    for name in ("00001", "00002", "00003"):
        f32 = read_mask(tmp_path / "f32" / "short" / f"{name}.png")[0] > 0
        bf16 = read_mask(tmp_path / "bf16" / "short" / f"{name}.png")[0] > 0
        assert f32.any() and jaccard(f32, bf16) > 0.98


def test_start_frame_segments_from_the_given_frame_and_mask(infer, checkpoint, short_video,
                                                            davis_sample, tmp_path):
    """--start_frame t: frames before t are not written; t is the given mask; later frames are
    the segmenter started at t with that mask."""
    from osmn.inference import FrameSource, LocalEngine, VideoSegmenter  # noqa: PLC0415
    from osmn.model import load_osmn  # noqa: PLC0415
    mask = davis_sample / "Annotations/480p" / SEQUENCE / "00002.png"
    out = tmp_path / "out"
    summary = infer.run(str(short_video), str(mask), str(checkpoint), str(out),
                        save_scores=True, precision="float32", start_frame=2)
    assert "2 frames (from frame 2)" in summary and "float32" in summary
    assert sorted(p.name for p in (out / "short").glob("*.png")) == ["00002.png", "00003.png"]
    given = read_mask(mask)[0]
    np.testing.assert_array_equal(read_mask(out / "short/00002.png")[0], given)
    source = FrameSource(short_video)
    segmenter = VideoSegmenter(LocalEngine(load_osmn(checkpoint), precision="float32"))
    segmenter.start(source.frame(2), given)
    expected = segmenter.step(source.frame(3))
    np.testing.assert_array_equal(read_mask(out / "short/00003.png")[0], expected.labels)
    np.testing.assert_allclose(np.load(out / "short/00003.obj1.npy"),
                               expected.probabilities[0], atol=1e-6)
    with pytest.raises(UserError, match="--start_frame: 4 is outside"):
        infer.run(str(short_video), str(mask), str(checkpoint), str(out), start_frame=4)
