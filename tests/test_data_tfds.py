"""TFDS sources: clear one-line errors when not prepared (never a download), and the readers on
records built from the shipped sample, checked against the folder readers."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from osmn.config import RECIPES
from osmn.data import DataReport, training_dataset
from osmn.data.davis import davis_source
from osmn.data.tfds_sources import CocoPanopticSource, davis_from_records
from osmn.errors import UserError

from conftest import DAVIS_SAMPLE, SAMPLE_SEQUENCE

FRAMES = 5


def png_bytes(array, mode=None):
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def davis_records():
    """One TFDS-davis-like record of the sample's first frames: JPEG bytes, id PNGs (0/1)."""
    seq_j = DAVIS_SAMPLE / "JPEGImages/480p" / SAMPLE_SEQUENCE
    seq_a = DAVIS_SAMPLE / "Annotations/480p" / SAMPLE_SEQUENCE
    frames = [(seq_j / f"{i:05d}.jpg").read_bytes() for i in range(FRAMES)]
    masks = [png_bytes((np.asarray(Image.open(seq_a / f"{i:05d}.png")) > 0).astype(np.uint8))
             for i in range(FRAMES)]
    return [{"video": {"frames": np.array(frames, object),
                       "segmentations": np.array(masks, object)},
             "metadata": {"video_name": SAMPLE_SEQUENCE.encode(), "num_frames": FRAMES}}]


@pytest.mark.parametrize("source,name,match", [
    ("davis", "tfds:davis/480p", "not prepared"),
    ("coco", "tfds:coco/2017_panoptic", "not prepared"),
    ("coco", "tfds:coco/2017", "no instance masks"),
    ("youtube_vos", "tfds:youtube_vos", "no TFDS reader"),
])
def test_tfds_not_prepared_is_one_line_user_error(tmp_path, source, name, match):
    recipe = "coco_stage1" if source == "coco" else "davis_stage2"
    cfg = RECIPES[recipe].replace(source=source)
    with pytest.raises(UserError, match=match) as info:
        training_dataset(cfg, name, tfds_data_dir=str(tmp_path))
    assert "\n" not in str(info.value)


def test_davis_records_match_folder_reader(tmp_path):
    # The same frames from TFDS-style records and from a folder give identical samples.
    root = tmp_path / "davis"
    (root / "JPEGImages/480p/v").mkdir(parents=True)
    (root / "Annotations/480p/v").mkdir(parents=True)
    for i in range(FRAMES):
        src = DAVIS_SAMPLE / "JPEGImages/480p" / SAMPLE_SEQUENCE / f"{i:05d}.jpg"
        (root / f"JPEGImages/480p/v/{i:05d}.jpg").write_bytes(src.read_bytes())
        ann = DAVIS_SAMPLE / "Annotations/480p" / SAMPLE_SEQUENCE / f"{i:05d}.png"
        (root / f"Annotations/480p/v/{i:05d}.png").write_bytes(ann.read_bytes())
    folder = davis_source(str(root), randomize_guide=True)
    report = DataReport("davis")
    records = davis_from_records(davis_records(), "tfds:davis/480p/train", True, report)
    assert records.num_samples == folder.num_samples == FRAMES - 1
    for index in (0, 3):
        seed = tf.constant([3, index], tf.int64)
        a = records.make_sample(tf.constant(index, tf.int64), seed, 96, 160)
        b = folder.make_sample(tf.constant(index, tf.int64), seed, 96, 160)
        tf.nest.map_structure(lambda x, y: np.testing.assert_array_equal(x.numpy(), y.numpy()),
                              a, b)
        assert a[1].numpy().any()


def test_davis_records_bad_frame_reported_with_name():
    records = davis_records()
    frames = list(records[0]["video"]["frames"])
    frames[2] = b"\xff\xd8 broken"
    records[0]["video"]["frames"] = np.array(frames, object)
    report = DataReport("davis")
    source = davis_from_records(records, "tfds:davis/480p/train", False, report)
    assert report.count("corrupt image") == 1
    assert report.problems["corrupt image"][0][0].endswith(f"{SAMPLE_SEQUENCE}/00002.jpg")
    assert source.num_samples == FRAMES - 1 - 2  # t=2 and t=3 need frame 2


def test_coco_panoptic_records():
    car = np.asarray(Image.open(DAVIS_SAMPLE / "Annotations/480p" / SAMPLE_SEQUENCE
                                / "00000.png")) > 0
    ids = np.zeros(car.shape, np.int64)
    ids[car] = 70000 + 2 * 256 + 3  # exercises all three channels of the id encoding
    ids[:20, :20] = 5  # small thing (0.1%)
    ids[400:, :] = 9  # stuff (road), large
    ids[300:340, 0:300] = 11  # crowd
    panoptic = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)
    image = (DAVIS_SAMPLE / "JPEGImages/480p" / SAMPLE_SEQUENCE / "00000.jpg").read_bytes()
    record = {"image": image, "panoptic_image": png_bytes(panoptic),
              "panoptic_objects": {"id": np.array([ids[car][0], 5, 9, 11]),
                                   "area": np.array([car.sum(), 400, 854 * 80, 12000]),
                                   "label": np.array([2, 0, 100, 0]),
                                   "is_crowd": np.array([False, False, False, True])}}
    report = DataReport("coco")
    source = CocoPanopticSource([record], "tfds:coco/2017_panoptic/train", report)
    assert source.num_samples == 1
    assert report.filtered == {"stuff segments": 1, "crowd instances": 1,
                               "instances <= 3% of the image": 1}
    cfg = RECIPES["coco_stage1"].replace(batch_size=2, image_sizes=((480, 480),))
    from osmn.data import sample_stream
    _, inputs, label, _ = next(iter(sample_stream(source, cfg)))
    expected = tf.image.resize(car[..., None].astype(np.float32), [480, 480], "nearest").numpy()
    flipped = expected[:, ::-1]
    assert np.array_equal(label.numpy(), expected) or np.array_equal(label.numpy(), flipped)
