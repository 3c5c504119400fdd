"""Data sources on shipped and generated data: DAVIS 2016/2017 layouts, YouTube-VOS, COCO, and
the bad-data cases (reported once with the path, skipped, counted; never a crash)."""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from pycocotools import mask as mask_utils

from osmn.config import RECIPES
from osmn.data import DataReport, training_dataset
from osmn.data.coco import coco_source
from osmn.data.davis import davis_source
from osmn.data.youtube_vos import youtube_vos_source
from osmn.errors import UserError

from conftest import DATA, DAVIS_SAMPLE, SAMPLE_SEQUENCE

SMALL = (60, 107)  # (h, w) of the generated frames: 854x480 / 8
VOC_PALETTE = [0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (3 * 252) + [224, 224, 192]


def davis_cfg(**kw):
    values = dict(batch_size=2, image_sizes=((48, 64), (32, 48)), seed=5)
    values.update(kw)
    return RECIPES["davis_stage2"].replace(**values)


def sample_frames(n, step=1):
    """First n*step frames of the shipped sequence (every step-th), shrunk: (rgb, car mask)."""
    out = []
    for i in range(0, n * step, step):
        rgb = Image.open(DAVIS_SAMPLE / "JPEGImages/480p" / SAMPLE_SEQUENCE / f"{i:05d}.jpg")
        car = Image.open(DAVIS_SAMPLE / "Annotations/480p" / SAMPLE_SEQUENCE / f"{i:05d}.png")
        rgb = rgb.resize(SMALL[::-1], Image.BILINEAR)
        car = np.asarray(car.resize(SMALL[::-1], Image.NEAREST)) > 0
        out.append((rgb, car))
    return out


def two_objects(car):
    """Palette ids: car's left half 1, right half 2, a void column between them (255)."""
    ids = np.zeros(car.shape, np.uint8)
    cols = np.nonzero(car.any(axis=0))[0]
    mid = (cols[0] + cols[-1]) // 2
    ids[:, :mid][car[:, :mid]] = 1
    ids[:, mid + 1:][car[:, mid + 1:]] = 2
    ids[:, mid][car[:, mid]] = 255
    return ids


def save_palette(ids, path):
    image = Image.fromarray(ids, mode="P")
    image.putpalette(VOC_PALETTE)
    image.save(path)


def write_davis17(root, names=("a",), n=4):
    for name in names:
        jpg = root / "JPEGImages/480p" / name
        ann = root / "Annotations/480p" / name
        jpg.mkdir(parents=True)
        ann.mkdir(parents=True)
        for i, (rgb, car) in enumerate(sample_frames(n)):
            rgb.save(jpg / f"{i:05d}.jpg", quality=90)
            save_palette(two_objects(car), ann / f"{i:05d}.png")
    (root / "ImageSets/2017").mkdir(parents=True)
    (root / "ImageSets/2017/train.txt").write_text("\n".join(names) + "\n")
    return root


def write_youtube_vos(root, n=4):
    base = root / "train"
    jpg, ann = base / "JPEGImages/v1", base / "Annotations/v1"
    jpg.mkdir(parents=True)
    ann.mkdir(parents=True)
    frames = []
    for i, (rgb, car) in enumerate(sample_frames(n, step=5)):
        name = f"{5 * i:05d}"
        frames.append(name)
        rgb.save(jpg / f"{name}.jpg", quality=90)
        ids = two_objects(car)
        if i == 0:
            ids[ids == 2] = 0  # object 2 first appears in the second annotated frame
        save_palette(ids, ann / f"{name}.png")
    meta = {"videos": {"v1": {"objects": {
        "1": {"category": "car", "frames": frames},
        "2": {"category": "car", "frames": frames[1:]},
        "3": {"category": "ghost", "frames": frames}}}}}
    (base / "meta.json").write_text(json.dumps(meta))
    return root


def first_batch(cfg, root, **kw):
    ds = training_dataset(cfg, str(root), with_void=True, **kw)
    return ds, next(iter(ds))


# ---------------------------------------------------------------- DAVIS


def test_davis_sample_shapes_and_dtypes(davis_sample):
    cfg = davis_cfg()
    ds, (inputs, label, void) = first_batch(cfg, davis_sample)
    h, w = inputs["image"].shape[1:3]
    assert (h, w) in cfg.image_sizes
    assert inputs["image"].shape == (2, h, w, 3) and inputs["image"].dtype == tf.float32
    assert inputs["visual_guide"].shape == (2, 224, 224, 3)
    assert inputs["spatial_guide"].shape == (2, h, w, 1)
    assert label.shape == (2, h, w, 1) and label.dtype == tf.float32
    assert set(np.unique(label.numpy())) <= {0.0, 1.0} and label.numpy().any()
    assert not void.numpy().any()  # DAVIS 2016 grey masks have no void
    # Model-input convention: BGR minus mean, so values lie in [-123, 151].
    assert inputs["image"].numpy().min() >= -123 and inputs["image"].numpy().max() <= 151
    assert ds.report.kept == {"sequences": 1, "objects": 1, "samples": 39}
    assert ds.report.skipped == 0


def test_davis_split_file_and_fallback(tmp_path, davis_sample, caplog):
    report = DataReport("davis")
    source = davis_source(str(davis_sample), "train", report=report)
    assert source.num_samples == 39  # frames 1..39: frame 0 only serves as previous frame
    assert any("ImageSets/2017/train.txt" in n for n in report.notes)
    # A root without ImageSets uses every sequence and says so in a log line.
    root = tmp_path / "davis"
    shutil.copytree(davis_sample / "JPEGImages", root / "JPEGImages")
    shutil.copytree(davis_sample / "Annotations", root / "Annotations")
    report = DataReport("davis")
    with caplog.at_level("INFO", logger="osmn.data"):
        source = davis_source(str(root), "train", report=report)
    assert source.num_samples == 39
    assert "using all 1 sequences" in caplog.text


def test_davis17_palette_objects_split_and_void(tmp_path):
    root = write_davis17(tmp_path / "d17", names=("a", "b"), n=4)
    cfg = davis_cfg(batch_size=12, image_sizes=(SMALL,), randomize_guide=False)
    ds, (inputs, label, void) = first_batch(cfg, root)
    assert ds.report.kept == {"sequences": 2, "objects": 4, "samples": 12}  # 2 x 2 x frames 1-3
    lab, vd = label.numpy()[..., 0], void.numpy()[..., 0]
    assert vd.any() and not (lab * vd).any()  # void pixels are never foreground
    # Each label is exactly one half of the car: compare with the palette ids written.
    truth = [two_objects(car) for _, car in sample_frames(4)]
    halves = {(t, o): (truth[t] == o).astype(np.float32) for t in range(1, 4) for o in (1, 2)}
    for b in range(12):
        (t, obj), = [k for k, m in halves.items() if np.array_equal(lab[b], m)]
        np.testing.assert_array_equal(vd[b], (truth[t] == 255).astype(np.float32))
    # Each of the 12 (frame, object) pairs appears exactly once in the first epoch.
    seen = [k for b in range(12) for k, m in halves.items() if np.array_equal(lab[b], m)]
    assert len(set(seen)) == 6 * 1 and len(seen) == 12  # both sequences hold the same frames


def test_randomize_guide_uses_eligible_frames(tmp_path):
    root = write_davis17(tmp_path / "d17", names=("a",), n=4)
    source = davis_source(str(root), randomize_guide=True)
    frames = set()
    for s in range(40):
        frames.add(int(source.guide_frame(tf.constant(0, tf.int64),
                                          tf.constant([s, 0], tf.int64))))
    assert frames == {0, 1, 2, 3}  # every frame of object 1 qualifies (area, box fill)
    fixed = davis_source(str(root), randomize_guide=False)
    assert int(fixed.guide_frame(tf.constant(0, tf.int64), tf.constant([1, 0], tf.int64))) == 0


# ---------------------------------------------------------------- YouTube-VOS


def test_youtube_vos_previous_annotated_frame_and_first_appearance(tmp_path, caplog):
    root = write_youtube_vos(tmp_path / "yt")
    report = DataReport("youtube_vos")
    with caplog.at_level("INFO", logger="osmn.data"):
        source = youtube_vos_source(str(root), report=report)
    # Object 1: annotated frames 1..3 after its first; object 2 first appears at frame 1.
    assert source.num_samples == 3 + 2
    assert "[3]" in caplog.text  # meta.json's object 3 is in no mask: reported
    cfg = davis_cfg(source="youtube_vos", batch_size=5, image_sizes=(SMALL,))
    ds, (inputs, label, void) = first_batch(cfg, root)
    assert label.shape == (5, *SMALL, 1) and inputs["spatial_guide"].numpy().max() > 0.9


def test_youtube_vos_missing_meta_is_user_error(tmp_path):
    with pytest.raises(UserError, match="meta.json"):
        youtube_vos_source(str(tmp_path))


# ---------------------------------------------------------------- COCO


def coco_cfg(**kw):
    values = dict(batch_size=3, image_sizes=((64, 64), (48, 48)), seed=2)
    values.update(kw)
    return RECIPES["coco_stage1"].replace(**values)


def test_coco_sample_filters_crowd_and_small():
    report = DataReport("coco")
    source = coco_source(str(DATA / "coco_sample"), report=report)
    assert source.num_samples == 3
    assert report.filtered["crowd instances"] == 1
    assert report.filtered["instances <= 3% of the image"] == 2


def test_coco_three_percent_filter_boundary(tmp_path):
    h, w = 100, 100  # 3% = 300 pixels: 300 is dropped ("larger than 3%"), 301 kept
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(tmp_path / "a.jpg")
    anns = []
    for i, area in enumerate([299, 300, 301, 2000]):
        m = np.zeros((h, w), np.uint8)
        m.flat[:area] = 1
        rle = mask_utils.encode(np.asfortranarray(m))
        anns.append({"id": i + 1, "image_id": 1, "iscrowd": 0, "category_id": 1,
                     "segmentation": {"size": [h, w], "counts": rle["counts"].decode()}})
    (tmp_path / "ann.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.jpg", "height": h, "width": w}],
        "annotations": anns}))
    source = coco_source(str(tmp_path), annotation_file=str(tmp_path / "ann.json"))
    assert source.num_samples == 2
    areas = sorted(int(source.instance_mask(tf.constant(i, tf.int64)).numpy().sum())
                   for i in range(2))
    assert areas == [301, 2000]


def test_coco_shapes_flip_consistency():
    cfg = coco_cfg(batch_size=12, image_sizes=((40, 40), (32, 32)), seed=0)
    ds, (inputs, label, void) = first_batch(cfg, DATA / "coco_sample")
    h, w = inputs["image"].shape[1:3]
    assert h == w and (h, w) in cfg.image_sizes
    lab = label.numpy()[..., 0]
    # Flipped or not, the spatial guide's peak lies on the same side as the object.
    for b in range(12):
        guide = inputs["spatial_guide"].numpy()[b, ..., 0]
        gx = np.unravel_index(np.argmax(guide), guide.shape)[1]
        xs = np.nonzero(lab[b].any(axis=0))[0]
        assert xs[0] - 0.25 * w <= gx <= xs[-1] + 0.25 * w
    # Some of the 12 samples (4 epochs of 3) are flipped: instances appear in mirror forms, and
    # a flipped label comes with a flipped image.
    distinct = {lab[b].tobytes() for b in range(12)}
    assert len(distinct) > 3
    images = inputs["image"].numpy()
    mirrored = 0
    for b in range(12):
        for c in range(12):
            if np.array_equal(lab[b], lab[c][:, ::-1]) and not np.array_equal(lab[b], lab[c]):
                np.testing.assert_array_equal(images[b], images[c][:, ::-1])
                mirrored += 1
    assert mirrored > 0


# ---------------------------------------------------------------- bad data


def test_bad_video_files_reported_once_and_skipped(tmp_path, caplog):
    root = write_davis17(tmp_path / "d17", names=("a", "b", "c", "d"), n=4)
    # a: frame 2 is a corrupt JPEG -> samples at t=2 and t=3 (its next frame) are dropped.
    (root / "JPEGImages/480p/a/00002.jpg").write_bytes(b"\xff\xd8not a jpeg at all")
    # b: frame 1's image is missing.
    os.remove(root / "JPEGImages/480p/b/00001.jpg")
    # c: frame 3's mask has a different size than its image.
    save_palette(np.zeros((10, 10), np.uint8), root / "Annotations/480p/c/00003.png")
    # d: no object in any frame.
    for i in range(4):
        save_palette(np.zeros(SMALL, np.uint8), root / f"Annotations/480p/d/{i:05d}.png")
    cfg = davis_cfg(batch_size=4, image_sizes=(SMALL,))
    with caplog.at_level("WARNING", logger="osmn.data"):
        ds = training_dataset(cfg, str(root))
        for _ in ds.take(6):  # more than an epoch: nothing crashes
            pass
    report = ds.report
    assert report.count("corrupt image") == 1
    assert report.count("missing image") == 1
    assert report.count("mask size differs from image size") == 1
    assert report.count("no valid object") == 1
    assert report.skipped == 4
    # a: t=1 (2 objects); b: t=3; c: t=1, t=2; 2 objects each
    assert report.kept["samples"] == 2 * (1 + 1 + 2)
    assert caplog.text.count("00002.jpg") == 1  # reported once, with its path
    assert "skipped 4" in report.summary()


def test_truncated_jpeg_found_by_header_check(tmp_path):
    data = (DAVIS_SAMPLE / "JPEGImages/480p" / SAMPLE_SEQUENCE / "00000.jpg").read_bytes()
    (tmp_path / "t.jpg").write_bytes(data[: len(data) // 2])
    from osmn.data.images import check_image
    assert check_image(str(tmp_path / "t.jpg"), "header").problem == "corrupt image"
    assert check_image(str(tmp_path / "t.jpg"), "decode").problem == "corrupt image"
    assert check_image(str(tmp_path / "none.jpg")).problem == "missing image"
    assert check_image(str(DAVIS_SAMPLE / "JPEGImages/480p" / SAMPLE_SEQUENCE / "00000.jpg"),
                       "header") == (854, 480)


def test_bad_coco_entries(tmp_path, caplog):
    h, w = 40, 50
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(tmp_path / "ok.jpg")
    Image.fromarray(np.zeros((h + 1, w, 3), np.uint8)).save(tmp_path / "wrong_size.jpg")
    (tmp_path / "corrupt.jpg").write_bytes(b"garbage")
    big = [0, 0, 40, 0, 40, 30, 0, 30]
    anns = [
        {"id": 1, "image_id": 1, "segmentation": [big]},            # kept
        {"id": 2, "image_id": 1, "segmentation": []},               # no valid object
        {"id": 3, "image_id": 1, "segmentation": [[1, 2, 3, 4]]},   # no valid object (2 points)
        {"id": 4, "image_id": 2, "segmentation": [big]},            # image size != annotation
        {"id": 5, "image_id": 3, "segmentation": [big]},            # corrupt image
        {"id": 6, "image_id": 4, "segmentation": [big]},            # missing image
        {"id": 7, "image_id": 99, "segmentation": [big]},           # unknown image
    ]
    images = [{"id": i + 1, "file_name": f, "height": h, "width": w}
              for i, f in enumerate(["ok.jpg", "wrong_size.jpg", "corrupt.jpg", "gone.jpg"])]
    (tmp_path / "ann.json").write_text(json.dumps({"images": images, "annotations": anns}))
    report = DataReport("coco")
    with caplog.at_level("WARNING", logger="osmn.data"):
        source = coco_source(str(tmp_path), annotation_file=str(tmp_path / "ann.json"),
                             report=report)
    assert source.num_samples == 1
    assert report.count("annotation with no valid object") == 2
    assert report.count("mask size differs from image size") == 1
    assert report.count("missing image") == 1
    assert report.count("corrupt image") == 1
    assert report.count("annotation of an unknown image") == 1
    assert "wrong_size.jpg" in caplog.text and "gone.jpg" in caplog.text


@pytest.mark.parametrize("content,match", [(None, "not found"), ("{not json", "JSON"),
                                           ('{"a": 1}', "not a COCO")])
def test_bad_coco_annotation_file_is_user_error(tmp_path, content, match):
    path = tmp_path / "ann.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError, match=match):
        coco_source(str(tmp_path), annotation_file=str(path))


def test_missing_roots_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        training_dataset(davis_cfg(), str(tmp_path / "nope"))
    with pytest.raises(UserError, match="not found"):
        training_dataset(coco_cfg(), str(tmp_path / "nope"))
    with pytest.raises(UserError, match="Annotations"):
        training_dataset(davis_cfg(), str(tmp_path))
