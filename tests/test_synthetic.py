"""The synthetic video generator: determinism, DAVIS layout, twins, distractors, disjoint sets."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from osmn.data import synthetic
from osmn.errors import UserError
from osmn.inference.masks import davis_palette
from tool_output import error_lines

SMALL = dict(frames=6, height=64, width=96)


def _digest(video):
    return hashlib.sha256(video.frames.tobytes() + video.labels.tobytes()).hexdigest()


@pytest.mark.parametrize("family", synthetic.FAMILIES)
def test_same_seed_same_video_other_seed_other_video(family):
    a = synthetic.generate_video(family, seed=5, index=2, **SMALL)
    b = synthetic.generate_video(family, seed=5, index=2, **SMALL)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.name == b.name == f"{family}-s5-002"
    c = synthetic.generate_video(family, seed=6, index=2, **SMALL)
    d = synthetic.generate_video(family, seed=5, index=3, **SMALL)
    assert len({_digest(a), _digest(c), _digest(d)}) == 3


def test_sets_of_different_seeds_share_no_frame():
    def frames(seed):
        out = set()
        for family in synthetic.FAMILIES:
            for video in synthetic.generate_videos(family, 3, seed, **SMALL):
                out |= {hashlib.sha256(f.tobytes()).hexdigest() for f in video.frames}
        return out

    train, evaluation = frames(0), frames(1)
    assert len(train) == 2 * 3 * SMALL["frames"]  # no frame repeats inside a set either
    assert not train & evaluation


@pytest.mark.parametrize("family", synthetic.FAMILIES)
def test_shapes_ids_and_first_frame(family):
    for video in synthetic.generate_videos(family, 4, seed=0, **SMALL):
        assert video.frames.shape == (6, 64, 96, 3) and video.frames.dtype == np.uint8
        assert video.labels.shape == (6, 64, 96) and video.labels.dtype == np.uint8
        k = video.num_objects
        assert (k == 2) if family == "twin" else (2 <= k <= 4)
        # Every object is in frame 0; ids are exactly 0..K; the target is in every frame.
        assert set(np.unique(video.labels[0])) == set(range(k + 1))
        assert set(np.unique(video.labels)) <= set(range(k + 1))
        assert all((video.labels[t] == synthetic.TARGET_ID).any() for t in range(6))
        # Objects move: the target's mask changes over the video.
        assert not np.array_equal(video.labels[0] == 1, video.labels[-1] == 1)


def test_twins_are_pixel_identical():
    checked = 0
    for video in synthetic.generate_videos("twin", 4, seed=0, frames=8, height=128, width=224):
        assert video.twin_id == 2
        for t in range(video.frames.shape[0]):
            pair = []
            for object_id in (1, 2):
                ys, xs = np.nonzero(video.labels[t] == object_id)
                box = (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1)
                pair.append((box, video.labels[t][box[0]:box[1], box[2]:box[3]] == object_id,
                             video.frames[t][box[0]:box[1], box[2]:box[3]]))
            (box1, mask1, rgb1), (box2, mask2, rgb2) = pair
            touching = (box1[0] <= 0 or box2[0] <= 0 or box1[2] <= 0 or box2[2] <= 0
                        or box1[1] >= 128 or box2[1] >= 128 or box1[3] >= 224 or box2[3] >= 224)
            if mask1.shape != mask2.shape or touching:
                continue  # one is occluded or cut by the border in this frame
            if not np.array_equal(mask1, mask2):
                continue
            np.testing.assert_array_equal(rgb1[mask1], rgb2[mask2])
            checked += 1
    assert checked >= 10  # most frames have both twins whole


def test_twin_sprites_identical_and_distractors_differ():
    rng = np.random.default_rng(0)
    target = synthetic.random_appearance(rng)
    others = [target]
    for _ in range(3):
        others.append(synthetic.random_appearance(rng, unlike=others))
    for i, a in enumerate(others):
        for b in others[i + 1:]:
            assert a.shape != b.shape and a.pattern != b.pattern
            assert min(abs(a.hue - b.hue), 1 - abs(a.hue - b.hue)) >= 0.2
    rgb1, mask1 = synthetic.render_sprite(target, 17.3, 12.0)
    rgb2, mask2 = synthetic.render_sprite(target, 17.3, 12.0)
    np.testing.assert_array_equal(rgb1, rgb2)
    np.testing.assert_array_equal(mask1, mask2)


def test_distractor_videos_have_objects_near_the_target():
    near = 0
    videos = synthetic.generate_videos("distractor", 6, seed=0, frames=12, height=128, width=224)
    for video in videos:
        target = video.labels == 1
        others = (video.labels > 1)
        # distance between the target's and the nearest other object's pixels, per frame
        for t in range(12):
            ty, tx = np.nonzero(target[t])
            oy, ox = np.nonzero(others[t])
            if len(oy) == 0:
                continue
            gap = np.min(np.hypot(ty[:, None] - oy[None], tx[:, None] - ox[None]))
            near += gap <= 3
    assert near >= 12  # in a sixth of the frames or more, another object touches the target


def test_write_davis_layout(tmp_path):
    train = synthetic.generate_videos("distractor", 2, seed=0, **SMALL)
    val = synthetic.generate_videos("twin", 1, seed=1, **SMALL)
    root = synthetic.write_davis(tmp_path / "all", {"train": train, "val": val})
    assert (root / "ImageSets/2017/train.txt").read_text().split() == [v.name for v in train]
    assert (root / "ImageSets/2017/val.txt").read_text().split() == [val[0].name]
    for video in train + val:
        images = sorted((root / "JPEGImages/480p" / video.name).iterdir())
        masks = sorted((root / "Annotations/480p" / video.name).iterdir())
        assert [p.name for p in images] == [f"{t:05d}.jpg" for t in range(6)]
        assert [p.name for p in masks] == [f"{t:05d}.png" for t in range(6)]
        for t, (image_path, mask_path) in enumerate(zip(images, masks)):
            with Image.open(image_path) as image:
                assert image.format == "JPEG" and image.size == (96, 64)
                # JPEG is lossy: close to the rendered frame, not equal.
                error = np.abs(np.asarray(image, np.float32) - video.frames[t]).mean()
                assert error < 6.0
            with Image.open(mask_path) as mask:
                assert mask.mode == "P" and mask.size == (96, 64)
                palette = np.asarray(mask.getpalette()[:768], np.uint8).reshape(256, 3)
                np.testing.assert_array_equal(palette, davis_palette())
                np.testing.assert_array_equal(np.asarray(mask), video.labels[t])


def test_write_davis_target_only(tmp_path):
    videos = synthetic.generate_videos("distractor", 1, seed=2, **SMALL)
    root = synthetic.write_davis(tmp_path / "val", {"val": videos}, annotate="target")
    for t in range(6):
        with Image.open(root / "Annotations/480p" / videos[0].name / f"{t:05d}.png") as mask:
            np.testing.assert_array_equal(np.asarray(mask), (videos[0].labels[t] == 1) * 1)


def test_written_root_feeds_the_training_pipeline(tmp_path):
    from osmn.config import ModelConfig, TrainConfig
    from osmn.data import training_dataset
    videos = synthetic.generate_videos("twin", 2, seed=0, frames=4, height=64, width=96)
    root = synthetic.write_davis(tmp_path / "train", {"train": videos})
    config = TrainConfig(name="t", source="davis", batch_size=2, steps=1, lr_boundaries=(),
                         lr_values=(1e-4,), image_sizes=((64, 96),),
                         model=ModelConfig(width_multiplier=1 / 16))
    dataset = training_dataset(config, str(root))
    # 2 videos x 2 objects x 3 frames after the first.
    assert dataset.report.kept["samples"] == 12
    inputs, label = next(iter(dataset))
    assert inputs["image"].shape == (2, 64, 96, 3) and label.shape == (2, 64, 96, 1)
    assert 0 < float(np.mean(label)) < 0.5


def test_bad_arguments_raise_user_error(tmp_path):
    with pytest.raises(UserError, match="family"):
        synthetic.generate_video("triplets", 0, 0)
    with pytest.raises(UserError, match="height"):
        synthetic.generate_video("twin", 0, 0, height=16)
    with pytest.raises(UserError, match="frames"):
        synthetic.generate_video("twin", 0, 0, frames=1)
    with pytest.raises(UserError, match="num_videos"):
        synthetic.generate_videos("twin", 0, 0)
    with pytest.raises(UserError, match="seed"):
        synthetic.generate_videos("twin", 1, -1)
    videos = synthetic.generate_videos("twin", 1, 0, **SMALL)
    with pytest.raises(UserError, match="annotate"):
        synthetic.write_davis(tmp_path / "x", {"train": videos}, annotate="some")
    (tmp_path / "exists").mkdir()
    with pytest.raises(UserError, match="already exists"):
        synthetic.write_davis(tmp_path / "exists", {"train": videos})
    assert not (tmp_path / "x").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists"]  # no temp folder left


def _tool(*args):
    return subprocess.run([sys.executable, str(REPO / "tools/make_synthetic.py"), *args],
                          capture_output=True, text=True, timeout=120)


def test_tool_writes_a_set_and_rejects_bad_flags(tmp_path):
    out = tmp_path / "val"
    done = _tool(f"--output={out}", "--family=twin", "--num_videos=2", "--frames=3",
                 "--size=96x64", "--seed=4", "--split=val", "--annotate=target")
    assert done.returncode == 0, done.stderr
    assert (out / "ImageSets/2017/val.txt").read_text().split() == ["twin-s4-000", "twin-s4-001"]
    mask = np.asarray(Image.open(out / "Annotations/480p/twin-s4-001/00002.png"))
    assert mask.shape == (64, 96) and set(np.unique(mask)) <= {0, 1} and mask.any()
    for args, message in ((["--family=twin"], "--output"),
                          ([f"--output={out}", "--family=twin"], "already exists"),
                          ([f"--output={tmp_path / 'b'}", "--family=pairs"], "--family"),
                          ([f"--output={tmp_path / 'b'}", "--family=twin", "--size=64"],
                           "--size=64: expected WIDTHxHEIGHT"),
                          ([f"--output={tmp_path / 'b'}", "--family=twin", "--num_videos=x"],
                           "num_videos")):
        done = _tool(*args)
        assert done.returncode == 2, (args, done.stderr)
        lines = error_lines(done.stderr)
        assert len(lines) == 1 and message in lines[0], done.stderr
    assert not (tmp_path / "b").exists()
