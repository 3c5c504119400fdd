"""The interactive session (osmn/inference/session.py): start at frame t, corrections, cancel,
bad input, downloads; and the editor-layer <-> mask conversion of the app (osmn/app/painting.py).

The sample video's first 6 frames at a working size of 214x120 keep every test short.
"""

import shutil
import zipfile

import numpy as np
import pytest

from conftest import DAVIS_SAMPLE, SAMPLE_SEQUENCE
from osmn.errors import UserError

FRAMES = 6
WORK_SIZE = (214, 120)


@pytest.fixture(scope="module")
def model():
    from osmn.cli import model_path_or_shipped  # noqa: PLC0415
    from osmn.model import load_osmn  # noqa: PLC0415
    return load_osmn(model_path_or_shipped(None))


@pytest.fixture(scope="module")
def short_video(tmp_path_factory):
    folder = tmp_path_factory.mktemp("video") / SAMPLE_SEQUENCE
    folder.mkdir()
    source = DAVIS_SAMPLE / "JPEGImages" / "480p" / SAMPLE_SEQUENCE
    for path in sorted(source.iterdir())[:FRAMES]:
        shutil.copy(path, folder / path.name)
    return folder


@pytest.fixture(scope="module")
def first_mask():
    from osmn.inference import read_mask  # noqa: PLC0415
    labels, _ = read_mask(DAVIS_SAMPLE / "Annotations" / "480p" / SAMPLE_SEQUENCE / "00000.png")
    return labels


def _session(short_video, model, tmp_path):
    from osmn.inference.session import SegmentationSession, open_frames  # noqa: PLC0415
    return SegmentationSession(open_frames(short_video, tmp_path), model, work_size=WORK_SIZE)


def _reference(frames, model, start, labels):
    """The plain library loop from frame `start`: VideoSegmenter.start, then step."""
    from osmn.inference.session import make_segmenter  # noqa: PLC0415
    segmenter = make_segmenter(model, WORK_SIZE)
    segmenter.start(frames.frame(start), labels)
    return [segmenter.step(frames.frame(i)).labels for i in range(start + 1, len(frames))]


def test_propagate_from_frame_t_equals_the_library_loop(short_video, model, first_mask, tmp_path):
    session = _session(short_video, model, tmp_path)
    start = 2
    labels = np.zeros_like(first_mask)
    labels[200:330, 300:600] = 1  # a box-shaped mask of frame 2
    last = session.propagate(start, labels)
    assert last == FRAMES - 1
    assert session.masks[:start] == [None, None]  # nothing before t
    np.testing.assert_array_equal(session.masks[start], labels)
    expected = _reference(session.frames, model, start, labels)
    for got, want in zip(session.masks[start + 1:], expected):
        np.testing.assert_array_equal(got, want)
    assert session.segmented() == list(range(start, FRAMES))


def test_correction_keeps_earlier_frames_and_restarts_from_the_corrected_mask(
        short_video, model, first_mask, tmp_path):
    session = _session(short_video, model, tmp_path)
    session.propagate(0, first_mask)
    before = [m.copy() for m in session.masks]
    assert all(m is not None for m in before)
    t = 3
    corrected = before[t].copy()
    corrected[:, : corrected.shape[1] // 2] = 0  # the user erases the left half of the object
    corrected[20:80, 20:120] = 2                 # and adds a second object
    session.propagate(t, corrected)
    for index in range(t):  # masks before t unchanged
        np.testing.assert_array_equal(session.masks[index], before[index])
    np.testing.assert_array_equal(session.masks[t], corrected)
    expected = _reference(session.frames, model, t, corrected)
    for got, want in zip(session.masks[t + 1:], expected):  # after t: follow the new mask
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(session.masks[t + 1], before[t + 1])
    assert sorted(session.references) == [0, t]


def test_cancel_stops_after_the_current_frame(short_video, model, first_mask, tmp_path):
    session = _session(short_video, model, tmp_path)

    def on_frame(done, total):
        assert total == FRAMES - 1
        if done == 2:
            session.cancel.set()

    last = session.propagate(0, first_mask, on_frame=on_frame)
    assert last == 2
    assert session.segmented() == [0, 1, 2]
    assert not session.running


def test_bad_masks_and_a_second_run_are_refused(short_video, model, first_mask, tmp_path):
    session = _session(short_video, model, tmp_path)
    with pytest.raises(UserError, match="differs from the frame size"):
        session.propagate(0, first_mask[:-2])
    with pytest.raises(UserError, match="holds no object"):
        session.propagate(0, np.zeros_like(first_mask))
    with pytest.raises(UserError, match="frames 0..5"):
        session.propagate(FRAMES, first_mask)
    errors = []

    def again(done, total):
        if done == 1:
            with pytest.raises(UserError, match="already running") as caught:
                session.propagate(0, first_mask)
            errors.append(caught.value)
            session.cancel.set()

    session.propagate(0, first_mask, on_frame=again)
    assert len(errors) == 1


def test_bad_videos_are_refused_with_a_message(short_video, tmp_path):
    from osmn.inference.session import open_frames  # noqa: PLC0415
    text = tmp_path / "notes.txt"
    text.write_text("not a video")
    with pytest.raises(UserError, match="not a video"):
        open_frames(text, tmp_path)
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"\x00" * 100)
    with pytest.raises(UserError, match="fake.mp4"):
        open_frames(fake, tmp_path)
    assert not (tmp_path / "frames.raw").exists()
    empty_zip = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty_zip, "w") as archive:
        archive.writestr("readme.txt", "no frames")
    work = tmp_path / "w1"
    work.mkdir()
    with pytest.raises(UserError, match="no .jpg"):
        open_frames(empty_zip, work)
    with pytest.raises(UserError, match="the limit is 4"):
        open_frames(short_video, tmp_path, max_frames=4)
    zipped = tmp_path / "frames.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        for path in sorted(short_video.iterdir()):
            archive.write(path, f"../../{SAMPLE_SEQUENCE}/{path.name}")  # no escape from workdir
    work = tmp_path / "w2"
    work.mkdir()
    frames = open_frames(zipped, work)
    assert len(frames) == FRAMES and frames.names[0] == "00000"
    assert (work / "frames" / "00000.jpg").is_file()


def test_video_file_limit_and_downloads(short_video, model, first_mask, tmp_path):
    import imageio.v2 as imageio  # noqa: PLC0415
    from osmn.inference.session import SegmentationSession, open_frames  # noqa: PLC0415
    video = tmp_path / "clip.mp4"
    frames = [np.asarray(imageio.imread(p)) for p in sorted(short_video.iterdir())]
    with imageio.get_writer(str(video), fps=12, macro_block_size=1) as writer:
        for frame in frames:
            writer.append_data(frame)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(UserError, match="the limit is 3"):
        open_frames(video, work, max_frames=3)
    assert list(work.iterdir()) == []
    source = open_frames(video, work)
    assert len(source) == FRAMES and source.fps == 12.0
    session = SegmentationSession(source, model, work_size=WORK_SIZE)
    with pytest.raises(UserError, match="nothing to download"):
        session.write_masks_zip(tmp_path / "clip.zip")
    session.propagate(0, first_mask)
    out = tmp_path / "out"
    out.mkdir()
    assert session.write_masks_zip(out / "clip.zip") == FRAMES
    assert session.write_overlay_mp4(out / "clip.mp4") == FRAMES
    assert sorted(p.name for p in out.iterdir()) == ["clip.mp4", "clip.zip"]  # no temp files
    with zipfile.ZipFile(out / "clip.zip") as archive:
        assert archive.namelist() == [f"clip/{i:05d}.png" for i in range(FRAMES)]
    with imageio.get_reader(str(out / "clip.mp4")) as reader:
        assert reader.get_meta_data()["fps"] == 12.0
        decoded = [f for f in reader]
    assert len(decoded) == FRAMES and decoded[0].shape == frames[0].shape


def test_grabcut_fills_the_object_in_a_box():
    from osmn.inference.session import grabcut  # noqa: PLC0415
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 60, (120, 160, 3)).astype(np.uint8)
    frame[40:80, 50:110] = (220, 40, 40)
    mask = grabcut(frame, (40, 30, 120, 90))
    truth = np.zeros(frame.shape[:2], bool)
    truth[40:80, 50:110] = True
    assert (mask & truth).sum() / (mask | truth).sum() > 0.9
    with pytest.raises(UserError, match="too small"):
        grabcut(frame, (10, 10, 11, 50))


def test_editor_layers_round_trip_and_strokes():
    from osmn.app.painting import LAYER_OPACITY, labels_from_layers, layer_from_labels  # noqa: PLC0415
    from osmn.inference.masks import davis_palette  # noqa: PLC0415
    labels = np.zeros((30, 40), np.uint8)
    labels[5:10, 5:10] = 1
    labels[12:20, 20:30] = 2
    labels[25:28, 1:4] = 17
    layer = layer_from_labels(labels)
    np.testing.assert_array_equal(labels_from_layers([layer], labels.shape), labels)
    # A browser's stroke: the colour a few levels off (premultiplied alpha), soft edges.
    stroke = np.zeros((30, 40, 4), np.uint8)
    stroke[0:4, 30:40, :3] = davis_palette()[3].astype(int) + [2, 1, 1]
    stroke[0:4, 30:40, 3] = round(255 * LAYER_OPACITY)
    stroke[4, 30:40] = (128, 128, 0, 10)  # faint antialiased edge: not painted
    got = labels_from_layers([layer, stroke], labels.shape)
    assert (got[0:4, 30:40] == 3).all() and (got[4, 30:40] == 0).all()
    # A canvas twice the frame's size is read back at the frame's size.
    big = np.repeat(np.repeat(layer, 2, axis=0), 2, axis=1)
    np.testing.assert_array_equal(labels_from_layers([big], labels.shape), labels)


def test_closing_a_tab_cancels_its_run_and_removes_its_folder(short_video, model, first_mask):
    import threading  # noqa: PLC0415
    from osmn.app.ui import AppSession  # noqa: PLC0415
    app = AppSession(short_video, model, WORK_SIZE, max_frames=100, name="clip")
    assert app.workdir.is_dir()
    started = threading.Event()
    results = []

    def on_frame(done, total):
        started.set()
        threading.Event().wait(0.2)  # a slow frame, so that the close lands mid-run

    runner = threading.Thread(target=lambda: results.append(
        app.session.propagate(0, first_mask, on_frame=on_frame)))
    runner.start()
    assert started.wait(120)
    app.close()
    runner.join(120)
    assert results and results[0] < FRAMES - 1  # stopped early
    for _ in range(100):
        if not app.workdir.exists():
            break
        threading.Event().wait(0.1)
    assert not app.workdir.exists()
