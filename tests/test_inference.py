"""Unit tests of osmn.inference: masks, merge, object ids, frames, the per-video segmenter."""


import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from osmn import config
from osmn.errors import UserError
from osmn.inference import (FrameSource, LocalEngine, ObjectManager, ResultWriter,
                            VideoSegmenter, davis_palette, default_mask_path,
                            merge_probabilities, object_ids, read_mask, write_mask)
from osmn.inference.merge import winner_positions
from osmn.model import OSMN


# ----------------------------------------------------------------------------- masks
def test_davis_palette_first_colours():
    palette = davis_palette()
    assert palette.shape == (256, 3) and palette.dtype == np.uint8
    np.testing.assert_array_equal(palette[:5], [[0, 0, 0], [128, 0, 0], [0, 128, 0],
                                                [128, 128, 0], [0, 0, 128]])


def test_palette_mask_round_trip_keeps_ids_void_and_palette(tmp_path):
    labels = np.zeros((6, 7), np.uint8)
    labels[1:3, 1:3] = 3
    labels[4, :] = 7
    labels[0, 6] = 255
    palette = davis_palette().copy()
    palette[3] = (1, 2, 3)
    write_mask(tmp_path / "m.png", labels, palette)
    read, read_palette = read_mask(tmp_path / "m.png")
    np.testing.assert_array_equal(read, labels)
    np.testing.assert_array_equal(read_palette, palette)
    assert object_ids(read) == (3, 7)
    assert not list(tmp_path.glob(".*"))  # no temp file left


def test_grey_0_255_mask_is_one_object(tmp_path, davis_sample):
    labels, palette = read_mask(davis_sample / "Annotations/480p/car-shadow/00000.png")
    assert palette is None and labels.shape == (480, 854)
    assert object_ids(labels) == (1,)
    assert 0 < labels.mean() < 1


def test_grey_mask_with_ids_keeps_255_as_void(tmp_path):
    labels = np.array([[0, 1, 2, 255]], np.uint8)
    Image.fromarray(labels, mode="L").save(tmp_path / "g.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "g.png")[0], labels)


def test_read_mask_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_mask(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="bad.png: unreadable"):
        read_mask(tmp_path / "bad.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "rgb.png")
    with pytest.raises(UserError, match="RGB image"):
        read_mask(tmp_path / "rgb.png")


# ----------------------------------------------------------------------------- ids and merge
def test_object_manager_orders_ids_and_maps_back():
    manager = ObjectManager([7, 3])
    assert manager.ids == (3, 7) and manager.position(7) == 1
    labels = np.array([[0, 3, 7, 255]], np.uint8)
    masks = manager.masks_from_labels(labels)
    np.testing.assert_array_equal(masks, [[[0, 1, 0, 0]], [[0, 0, 1, 0]]])
    np.testing.assert_array_equal(manager.labels_from_positions(np.array([[0, 1, 2]])),
                                  [[0, 3, 7]])
    with pytest.raises(ValueError):
        ObjectManager([])


def test_merge_is_argmax_against_half_background_in_id_order():
    probabilities = np.array([[[0.2, 0.6, 0.7, 0.5, 0.9]],   # object 3
                              [[0.4, 0.4, 0.8, 0.5, 0.9]]],  # object 7
                             np.float32)
    labels = merge_probabilities(probabilities, ObjectManager([3, 7]))
    # 0.5 exactly stays background; a tie between objects goes to the lower id.
    np.testing.assert_array_equal(labels, [[0, 3, 7, 0, 3]])
    np.testing.assert_array_equal(winner_positions(probabilities), [[0, 1, 2, 0, 1]])


# ----------------------------------------------------------------------------- frames
def test_frame_source_sorted_and_default_mask(davis_sample):
    folder = davis_sample / "JPEGImages/480p/car-shadow"
    source = FrameSource(folder)
    assert len(source) == 40 and source.names[:2] == ["00000", "00001"]
    assert source.frame(0).shape == (480, 854, 3) and source.frame(0).dtype == np.uint8
    assert default_mask_path(folder) == (
        davis_sample / "Annotations/480p/car-shadow/00000.png").resolve()


def test_frame_source_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        FrameSource(tmp_path / "nothing")
    with pytest.raises(UserError, match="no .jpg"):
        FrameSource(tmp_path)
    (tmp_path / "00000.jpg").write_bytes(b"garbage")
    with pytest.raises(UserError, match="00000.jpg: unreadable frame"):
        FrameSource(tmp_path).frame(0)


def test_prefetched_frames_in_order_with_errors_at_their_frame(tmp_path):
    folder = tmp_path / "v"
    folder.mkdir()
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (24, 32, 3), np.uint8) for _ in range(5)]
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{i:05d}.png")
    source = FrameSource(folder)
    got = list(source.prefetched(1, frames[0].shape, depth=2))
    assert [i for i, _ in got] == [1, 2, 3, 4]
    for i, frame in got:
        np.testing.assert_array_equal(frame, frames[i])
    # A frame of another size and an unreadable frame fail when reached, not before.
    Image.fromarray(frames[3][:20]).save(folder / "00003.png")
    (folder / "00004.png").write_bytes(b"not a png")
    seen = []
    with pytest.raises(UserError, match=r"00003.png: frame size 32x20 differs"):
        for i, _ in FrameSource(folder).prefetched(0, frames[0].shape):
            seen.append(i)
    assert seen == [0, 1, 2]
    seen = []
    with pytest.raises(UserError, match="00004.png"):
        for i, _ in FrameSource(folder).prefetched(0):
            seen.append(i)
    assert seen == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="depth"):
        next(source.prefetched(0, depth=0))


def test_video_file_frames(tmp_path):
    imageio = pytest.importorskip("imageio.v2")
    pytest.importorskip("imageio_ffmpeg")
    frames = [np.full((32, 48, 3), 40 * i, np.uint8) for i in range(4)]
    with imageio.get_writer(str(tmp_path / "v.mp4"), fps=5, macro_block_size=1) as writer:
        for frame in frames:
            writer.append_data(frame)
    source = FrameSource(tmp_path / "v.mp4")
    assert source.names == ["00000", "00001", "00002", "00003"]
    assert source.frame(2).shape == (32, 48, 3)
    assert abs(int(source.frame(2).mean()) - 80) <= 3


# ----------------------------------------------------------------------------- segmenter
def _scene(height=32, width=48, ids=(2, 5)):
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    labels = np.zeros((height, width), np.uint8)
    labels[4:14, 5:20] = ids[0]
    labels[16:28, 25:44] = ids[1]
    return frame, labels


def _constant_output(model, logit):
    """Make the model's logits exactly `logit` everywhere (fusion conv: zero kernel, bias)."""
    fuse = model.segmentation_network.fuse
    fuse.kernel.assign(tf.zeros_like(fuse.kernel))
    fuse.bias.assign(tf.fill(fuse.bias.shape, float(logit)))


@pytest.fixture(scope="module")
def tiny_model():
    return OSMN({"width_multiplier": 1 / 16})


def test_segmenter_one_trace_for_all_sizes_and_object_counts(tiny_model):
    segmenter = VideoSegmenter(tiny_model)
    frame, labels = _scene()
    first = segmenter.start(frame, labels)
    np.testing.assert_array_equal(first.labels, labels)
    assert segmenter.gammas.shape == (2, tiny_model.gamma_size)
    for _ in range(3):
        result = segmenter.step(frame)
        assert result.labels.shape == (32, 48) and result.labels.dtype == np.uint8
        assert result.probabilities.shape == (2, 32, 48)
        assert set(np.unique(result.labels)) <= {0, 2, 5}
    bigger, _ = _scene(40, 56)
    assert segmenter.step(bigger).labels.shape == (40, 56)
    segmenter.start(frame, np.where(labels == 5, 5, 0).astype(np.uint8))  # one object now
    assert segmenter.step(frame).probabilities.shape == (1, 32, 48)
    assert segmenter.trace_count == 1
    assert segmenter.frames_segmented == 5


def test_segmenter_guides_follow_predictions_and_keep_last_guide():
    model = OSMN({"width_multiplier": 1 / 16})
    frame, labels = _scene()
    _constant_output(model, -20.0)  # every prediction empty
    original = VideoSegmenter(model)
    original.start(frame, labels)
    np.testing.assert_array_equal(original.guide_masks[1], labels == 5)
    result = original.step(frame)
    assert not result.labels.any()
    assert not original.guide_masks.any()  # original: empty prediction -> all-zero guide
    keeping = VideoSegmenter(model, keep_last_guide=True)
    keeping.start(frame, labels)
    keeping.step(frame)
    np.testing.assert_array_equal(keeping.guide_masks[0], labels == 2)
    _constant_output(model, 20.0)  # every object predicts everything: ties -> the lower id
    segmenter = VideoSegmenter(model)
    segmenter.start(frame, labels)
    result = segmenter.step(frame)
    assert (result.labels == 2).all()
    assert segmenter.guide_masks.all()


def test_start_at_a_later_frame_restarts_both_guides(tiny_model):
    """start(frame_t, mask_t) after steps (the app's "correct at frame t") = a fresh segmenter
    started at t: gamma from frame t's crop, spatial guide from mask t."""
    from layer_checks import randomize_weights  # noqa: PLC0415
    model = OSMN({"width_multiplier": 1 / 16})
    randomize_weights(model, seed=11)
    engine = LocalEngine(model, precision="float32")
    frame, labels = _scene()
    later = np.roll(frame, 7, axis=1)
    corrected = np.zeros_like(labels)
    corrected[4:14, 20:40] = 5
    segmenter = VideoSegmenter(engine)
    segmenter.start(frame, labels)
    segmenter.step(frame)
    first = segmenter.start(later, corrected)
    np.testing.assert_array_equal(first.labels, corrected)
    assert segmenter.objects.ids == (5,)
    np.testing.assert_array_equal(segmenter.guide_masks[0], corrected == 5)
    fresh = VideoSegmenter(engine)
    fresh.start(later, corrected)
    np.testing.assert_array_equal(segmenter.gammas, fresh.gammas)
    np.testing.assert_array_equal(segmenter.step(later).probabilities,
                                  fresh.step(later).probabilities)


def test_segmenter_working_size_resizes_back(tiny_model):
    segmenter = VideoSegmenter(tiny_model, work_size=(40, 36))
    frame, labels = _scene()
    segmenter.start(frame, labels)
    assert segmenter.guide_masks.shape == (2, 36, 40)
    result = segmenter.step(frame)
    assert result.labels.shape == (32, 48) and result.probabilities.shape == (2, 32, 48)


def test_segmenter_rejects_bad_first_mask(tiny_model):
    frame, labels = _scene()
    with pytest.raises(ValueError, match="no object"):
        VideoSegmenter(tiny_model).start(frame, np.zeros_like(labels))
    with pytest.raises(ValueError, match="size"):
        VideoSegmenter(tiny_model).start(frame, labels[:-1])


def test_finetuning_trains_one_copy_per_object_and_leaves_model_unchanged(tiny_model):
    frame, labels = _scene()
    before = [w.copy() for w in tiny_model.get_weights()]
    losses = []
    segmenter = VideoSegmenter(tiny_model, finetune_steps=2,
                               on_finetune_step=lambda step, loss: losses.append(loss))
    segmenter.start(frame, labels)
    assert len(losses) == 4 and all(np.isfinite(losses))
    assert len(segmenter.object_models) == 2
    for a, b in zip(before, tiny_model.get_weights()):
        np.testing.assert_array_equal(a, b)
    for copy in segmenter.object_models:
        assert copy is not tiny_model
        assert any(not np.array_equal(a, b) for a, b in zip(before, copy.get_weights()))
    assert segmenter.step(frame).probabilities.shape == (2, 32, 48)


def test_crf_refines_a_mask_along_colour_edges():
    pytest.importorskip("pydensecrf")
    from osmn.inference.crf import DenseCrf
    frame = np.zeros((40, 40, 3), np.uint8)
    frame[:, 20:] = 255
    mask = np.zeros((40, 40), bool)
    mask[:, 17:] = True  # three columns too far left of the colour edge
    probability = DenseCrf()(frame, mask)
    assert probability.shape == (40, 40) and probability.dtype == np.float32
    refined = probability > config.MASK_THRESHOLD
    assert refined[:, 25:].all() and not refined[:, :15].any()
    assert refined[:, 17:20].sum() < mask[:, 17:20].sum()


# ----------------------------------------------------------------------------- writer
def test_writer_writes_palette_pngs_scores_and_overlays(tmp_path):
    frame, labels = _scene()
    palette = davis_palette()
    with ResultWriter(tmp_path, "seq", palette, (2, 5), overlay=True, save_scores=True) as writer:
        for name in ("a", "b"):
            frame = 255 - frame  # two different frames (identical GIF frames are merged)
            writer.put(name, frame, labels, np.stack([labels == 2, labels == 5]).astype(np.float32))
    np.testing.assert_array_equal(read_mask(tmp_path / "seq/a.png")[0], labels)
    score = np.load(tmp_path / "seq/b.obj5.npy")
    assert score.dtype == np.float32 and score.shape == (32, 48)
    np.testing.assert_array_equal(score, labels == 5)
    assert (tmp_path / "overlays/seq/a.jpg").exists()
    with Image.open(tmp_path / "overlays/seq.gif") as gif:
        assert gif.n_frames == 2


def test_writer_error_is_raised_in_main_thread(tmp_path):
    frame, labels = _scene()
    writer = ResultWriter(tmp_path, "seq", davis_palette(), (2, 5))
    writer.put("a", frame, labels[:, :, None, None])  # not a 2-D label map: PIL fails
    with pytest.raises(Exception):
        writer.close()
