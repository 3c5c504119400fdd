"""Batch segmentation on Apache Beam: tools/segment_many.py against tools/infer.py.

The end-to-end test runs Beam's DirectRunner with two worker processes on the first 5 frames of
the sample video (twice, under two names) plus a video with a corrupt frame, at a small working
size, with the shipped model passed explicitly to both tools.
"""

import csv
import os
import shutil

import pytest

from osmn.batch.manifest import default_sequence, parse_manifest
from osmn.errors import UserError
from scripts import REPO, run_tool

SAMPLE = REPO / "data" / "davis_sample"
FRAMES = SAMPLE / "JPEGImages" / "480p" / "car-shadow"
MASK = SAMPLE / "Annotations" / "480p" / "car-shadow" / "00000.png"
# The settings given to both tools, explicitly, so that the comparison holds whatever the
# tools' defaults are.
SETTINGS = ("--im_size=214x120", "--precision=float32")
BEAM = ("--runner=DirectRunner", "--direct_num_workers=2",
        "--direct_running_mode=multi_processing")


def test_manifest_rows_defaults_and_errors():
    tasks = parse_manifest("# videos\nvideo,mask,sequence\n"
                           "gs://b/v/bear/,gs://b/a/bear.png,\n"
                           "/data/clip.MP4,/data/clip.png,\n"
                           "/data/x,/data/x.png,named\n")
    assert [t.sequence for t in tasks] == ["bear", "clip", "named"]
    assert tasks[0].video == "gs://b/v/bear/" and tasks[2].mask == "/data/x.png"
    assert default_sequence("/a/b/frames") == "frames"
    bad = {"video,sequence\n/a,x\n": "missing mask",
           "video,mask\n/a/v,/m.png\n/b/v,/n.png\n": "repeats row 2",
           "video,mask,sequence\n/a,/m.png,../up\n": "bad sequence name",
           "video,mask\n/a,\n": "empty video or mask",
           "video,mask\n": "no video listed"}
    for text, message in bad.items():
        with pytest.raises(UserError, match=message):
            parse_manifest(text, "m.csv")


def test_bad_manifest_is_one_line_and_exit_2(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,mask\n/a,/b.png\n")
    done = run_tool("segment_many", "--manifest", manifest, "--output", tmp_path / "out",
                    timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: {manifest}: the header")
    assert not (tmp_path / "out").exists()


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_beam_batch_equals_infer_dead_letters_a_broken_video_and_reruns_idempotently(tmp_path):
    video = tmp_path / "videos" / "car"
    video.mkdir(parents=True)
    for index in range(5):
        shutil.copy(FRAMES / f"{index:05d}.jpg", video)
    broken = tmp_path / "videos" / "broken"
    shutil.copytree(video, broken)
    (broken / "00003.jpg").write_bytes(b"not a jpeg")
    checkpoint = REPO / "data" / "sample_model.keras"  # whatever model it is, for both tools
    if not checkpoint.exists():
        from osmn.cli import model_path_or_shipped
        checkpoint = model_path_or_shipped(None)

    reference = run_tool("infer", "--video", video, "--mask", MASK, "--output", tmp_path / "ref",
                         "--checkpoint", checkpoint, *SETTINGS)
    assert reference.returncode == 0, reference.stderr[-3000:]

    manifest = tmp_path / "videos.csv"
    manifest.write_text("video,mask,sequence\n"
                        f"{video},{MASK},car-a\n"
                        f"{video}/,{MASK},car-b\n"
                        f"{broken},{MASK},\n")
    out = tmp_path / "out"
    command = ("--manifest", manifest, "--output", out, "--checkpoint", checkpoint,
               *SETTINGS, *BEAM)
    first = run_tool("segment_many", *command)
    assert first.returncode == 1, first.stderr[-3000:]  # documented: 1 = some videos failed
    # "10 frames": the Beam counter osmn/frames, summed over the two worker processes.
    assert "3 videos: 2 segmented (10 frames), 0 already complete (skipped), 1 failed" \
        in first.stdout

    expected = sorted(p.name for p in (tmp_path / "ref" / "car").iterdir())
    assert expected == [f"{i:05d}.png" for i in range(5)]
    for sequence in ("car-a", "car-b"):
        assert sorted(p.name for p in (out / sequence).iterdir()) == expected
        for name in expected:
            assert ((out / sequence / name).read_bytes()
                    == (tmp_path / "ref" / "car" / name).read_bytes()), (sequence, name)
    assert not (out / "broken").exists()
    assert not [p for p in os.listdir(out) if p.startswith(".osmn-staging.")]
    failed = _rows(out / "failed.csv")
    assert len(failed) == 1 and failed[0]["sequence"] == "broken"
    assert failed[0]["reason"] == f"{broken / '00003.jpg'}: unreadable frame (UnidentifiedImageError)"
    results = {row["sequence"]: row for row in _rows(out / "results.csv")}
    assert {s: r["status"] for s, r in results.items()} == {
        "broken": "failed", "car-a": "done", "car-b": "done"}
    assert results["car-a"]["frames"] == "5" and results["car-a"]["objects"] == "1"
    assert float(results["car-a"]["seconds"]) > 0

    # A re-run skips the complete videos (their files untouched) and cleans a stale staging
    # folder that a killed worker would have left.
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("car-*/*.png")}
    stale = out / ".osmn-staging.car-a.0123456789ab"
    stale.mkdir()
    (stale / "00000.png").write_bytes(b"half")
    second = run_tool("segment_many", *command)
    assert second.returncode == 1, second.stderr[-3000:]
    assert "3 videos: 0 segmented (0 frames), 2 already complete (skipped), 1 failed" \
        in second.stdout
    assert {p: p.stat().st_mtime_ns for p in out.glob("car-*/*.png")} == stamps
    assert not stale.exists()
    assert {r["sequence"]: r["status"] for r in _rows(out / "results.csv")} == {
        "broken": "failed", "car-a": "skipped", "car-b": "skipped"}
    assert len(_rows(out / "failed.csv")) == 1


def test_publish_is_all_or_nothing_and_completion_needs_every_mask(tmp_path):
    from osmn.batch import store
    local = tmp_path / "local"
    local.mkdir()
    for name in ("00000.png", "00001.png"):
        (local / name).write_bytes(name.encode())
    out = str(tmp_path / "out")
    (tmp_path / "out" / "seq").mkdir(parents=True)  # an incomplete earlier result: replaced
    (tmp_path / "out" / "seq" / "old.png").write_bytes(b"old")
    assert store.completed(out, "seq") is None
    store.publish(str(local), out, "seq", {"frames": 2, "status": "done"})
    assert sorted(os.listdir(tmp_path / "out" / "seq")) == ["00000.png", "00001.png"]
    assert store.completed(out, "seq") == {"frames": 2, "status": "done"}
    assert [p for p in os.listdir(tmp_path / "out") if p.startswith(".osmn-staging.")] == []
    (tmp_path / "out" / "seq" / "00001.png").unlink()  # a mask lost since: not complete
    assert store.completed(out, "seq") is None

    # A publish that fails half-way leaves no staging folder and the old result as it was.
    (local / "00002.png").mkdir()  # unreadable as a file
    with pytest.raises(OSError):
        store.publish(str(local), out, "seq", {"frames": 3})
    assert [p for p in os.listdir(tmp_path / "out") if p.startswith(".osmn-staging.")] == []
    assert sorted(os.listdir(tmp_path / "out" / "seq")) == ["00000.png"]


def test_a_rerun_with_other_settings_segments_again(tmp_path, monkeypatch):
    """A complete video is skipped only when its marker holds the run's settings."""
    from osmn.batch import pipeline, store
    from osmn.batch.manifest import VideoTask
    from osmn.batch.video_job import SegmentSettings, settings_record
    out = str(tmp_path / "out")
    local = tmp_path / "local"
    local.mkdir()
    (local / "00000.png").write_bytes(b"png")
    small = SegmentSettings(checkpoint="/m.keras", work_size=(214, 120))
    store.publish(str(local), out, "seq", {"frames": 1, "settings": settings_record(small)})
    calls = []
    monkeypatch.setattr(pipeline, "segment_video", lambda task, output, segmenter, settings: (
        calls.append(settings) or {"sequence": task.sequence, "frames": 1, "seconds": 0.1}))
    task = VideoTask("/v", "/m.png", "seq")
    for settings, expected in ((small, "skipped"), (SegmentSettings("/m.keras"), None)):
        fn = pipeline.SegmentVideosFn(out, settings)
        fn.setup()
        monkeypatch.setattr(fn, "_get_segmenter", lambda: None)
        rows = list(fn.process(task))
        assert len(rows) == 1 and rows[0].get("status") == expected
    assert calls == [SegmentSettings("/m.keras")]
