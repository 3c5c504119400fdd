"""Every tool keeps its promise under bad input, signals and unusable output locations.

The promise (docs/tools.md, `osmn/cli.py`): bad input or an unusable output location gives ONE line on
stderr naming the file or flag and the problem, exit code 2, and nothing is left in or beside the
output location; SIGTERM exits 143 and Ctrl-C 130 after removing temporary files; after a
SIGKILL the next run removes what the killed one left; outputs get the umask's modes.

The tools run as a user runs them (subprocesses, stderr as printed: TensorFlow's start-up lines
must not be there). Checks that happen before TensorFlow loads run with a `tensorflow` package on
PYTHONPATH that fails on import, which proves they come before any work. Fixtures are cut from
the shipped sample at a tiny size.
"""

import errno
import os
import pathlib
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from conftest import DAVIS_SAMPLE, REPO, SAMPLE_SEQUENCE, TINY_WIDTH
from osmn import io
from osmn.errors import UserError

FRAMES = DAVIS_SAMPLE / "JPEGImages" / "480p" / SAMPLE_SEQUENCE
GT = DAVIS_SAMPLE / "Annotations" / "480p" / SAMPLE_SEQUENCE
TINY_SIZE = (96, 54)  # W, H of the fixture frames
UNWRITABLE = pathlib.Path("/sys/osmn-test")  # sysfs: no new entries, even for root
SAVE_AS_PNG = "save the mask as a PNG (palette or grey)"


# --------------------------------------------------------------------------------------- helpers

def _env(no_tensorflow=None):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join(
        ([str(no_tensorflow)] if no_tensorflow else []) + [str(REPO)])
    return env


def _command(tool, args):
    return [sys.executable, str(REPO / "tools" / f"{tool}.py"), *map(str, args)]


def run(tool, *args, no_tensorflow=None, timeout=300):
    """The tool in a subprocess, as a user runs it (our defaults only: no TF log level set)."""
    return subprocess.run(_command(tool, args), capture_output=True, text=True,
                          env=_env(no_tensorflow), cwd=REPO, timeout=timeout)


def assert_one_error_line(result, *fragments):
    """Exit code 2, and stderr is exactly one `error: ...` line holding every fragment."""
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    for fragment in fragments:
        assert str(fragment) in lines[0], lines[0]
    return lines[0]


def listing(folder):
    """Every path under `folder` (hidden ones included), relative."""
    folder = pathlib.Path(folder)
    if not folder.exists():
        return set()
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def no_tensorflow(tmp_path_factory):
    """A folder to put first on PYTHONPATH: `import tensorflow` (and Keras) fails there."""
    root = tmp_path_factory.mktemp("no_tf")
    (root / "tensorflow").mkdir()
    (root / "tensorflow" / "__init__.py").write_text(
        "raise ImportError('tensorflow was imported before the flags and output were checked')\n")
    return root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 3-frame video at 96x54 with its first mask, a tiny model, a DAVIS root of it."""
    root = tmp_path_factory.mktemp("tiny")
    video = root / "davis" / "JPEGImages" / "480p" / "short"
    annotations = root / "davis" / "Annotations" / "480p" / "short"
    video.mkdir(parents=True)
    annotations.mkdir(parents=True)
    for i in range(3):
        Image.open(FRAMES / f"{i:05d}.jpg").resize(TINY_SIZE, Image.BILINEAR).save(
            video / f"{i:05d}.jpg")
        labels, palette = io.read_mask(GT / f"{i:05d}.png")
        small = np.asarray(Image.fromarray(labels).resize(TINY_SIZE, Image.NEAREST))
        io.write_mask(annotations / f"{i:05d}.png", small, palette)
    from osmn.model import OSMN, save_osmn  # noqa: PLC0415
    model = OSMN({"width_multiplier": TINY_WIDTH})
    model_path = root / "tiny.keras"
    _build(model)
    save_osmn(model, model_path)
    return {"root": root, "video": video, "mask": annotations / "00000.png",
            "davis": root / "davis", "model": model_path}


def _build(model):
    from osmn.guides import spatial_guide, visual_guide  # noqa: PLC0415
    from osmn.preprocessing import to_model_input  # noqa: PLC0415
    frame = np.zeros((TINY_SIZE[1], TINY_SIZE[0], 3), np.uint8)
    mask = np.zeros(frame.shape[:2], np.uint8)
    mask[10:30, 20:50] = 1
    gamma = model.gamma(visual_guide(frame, mask)[None])
    model.segment(to_model_input(frame)[None], spatial_guide(mask)[None], gamma)


# ------------------------------------------------------------- unusable output locations

def _bad_locations(tmp_path):
    """name -> (make the location, the path to pass, what the error line must name)."""
    a_file = tmp_path / "a_file"
    return {
        "parent is a file": (lambda: a_file.write_text("x"), a_file / "out", a_file),
        "a file where a folder is expected": (lambda: a_file.write_text("x"), a_file, a_file),
        "unwritable location": (lambda: None, UNWRITABLE / "out", UNWRITABLE.parent),
    }


FOLDER_OUTPUTS = {  # tool -> (arguments before the output flag, the output flag)
    "infer": (lambda t: ["--video", t["video"], "--mask", t["mask"], "--checkpoint",
                         t["model"]], "--output"),
    "serve_client": (lambda t: ["--video", t["video"], "--mask", t["mask"],
                                "--server", "http://127.0.0.1:9"], "--output"),
    "train": (lambda t: ["--recipe", "sample", "--data_dir", t["davis"]], "--train_dir"),
    "eval": (lambda t: ["--results", t["davis"] / "Annotations" / "480p", "--data_dir",
                        t["davis"], "--sequences", "short"], "--output"),
    "analyze": (lambda t: ["--checkpoint", t["model"], "--data_dir", t["davis"]], "--output"),
    "export": (lambda t: ["--checkpoint", t["model"]], "--export_dir"),
}


@pytest.mark.parametrize("case", ["parent is a file", "a file where a folder is expected",
                                  "unwritable location"])
@pytest.mark.parametrize("tool", sorted(FOLDER_OUTPUTS))
def test_unusable_output_folder(tool, case, tiny, tmp_path, no_tensorflow):
    make, path, named = _bad_locations(tmp_path)[case]
    make()
    before = listing(tmp_path)
    arguments, flag = FOLDER_OUTPUTS[tool]
    result = run(tool, *arguments(tiny), f"{flag}={path}", no_tensorflow=no_tensorflow)
    assert_one_error_line(result, flag, named)
    assert listing(tmp_path) == before


@pytest.mark.parametrize("tool,flag,name", [
    ("convert_tf1_checkpoint", "--output", "m.keras"),
    ("show_samples", "--output", "s.png"),
])
@pytest.mark.parametrize("case", ["parent is a file", "a folder where a file is expected",
                                  "unwritable location"])
def test_unusable_output_file(tool, flag, name, case, tmp_path, no_tensorflow):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    path = {"parent is a file": a_file / name,
            "a folder where a file is expected": tmp_path,
            "unwritable location": UNWRITABLE / name}[case]
    if case == "a folder where a file is expected":
        path = tmp_path / "folder.png" if tool == "show_samples" else tmp_path / "f.keras"
        path.mkdir()
    before = listing(tmp_path)
    source = ["--tf1_checkpoint", tmp_path / "missing.ckpt"] if tool != "show_samples" else []
    result = run(tool, *source, f"{flag}={path}", no_tensorflow=no_tensorflow)
    assert_one_error_line(result, flag)
    assert listing(tmp_path) == before


def test_show_samples_refuses_a_name_that_is_not_png(tmp_path, no_tensorflow):
    result = run("show_samples", f"--output={tmp_path / 's.xyz'}", no_tensorflow=no_tensorflow)
    assert_one_error_line(result, "s.xyz", ".png")
    assert listing(tmp_path) == set()


# ------------------------------------------------------------- flags checked before TensorFlow

@pytest.mark.parametrize("flags,fragment", [
    (["--finetune_steps=-1"], "--finetune_steps"),
    (["--im_size=100000x100000"], "--im_size=100000x100000: width and height must be in 32..4096"),
    (["--im_size=8x8"], "--im_size=8x8: width and height must be in 32..4096"),
    (["--im_size=wide"], "--im_size=wide: expected WIDTHxHEIGHT, e.g. 854x480"),
    (["--precision=float16"], "--precision=float16: value should be one of <auto|float32|bfloat16>"),
])
def test_infer_flags_refused_before_tensorflow(flags, fragment, tiny, tmp_path, no_tensorflow):
    result = run("infer", "--video", tiny["video"], "--mask", tiny["mask"], "--output",
                 tmp_path / "out", *flags, no_tensorflow=no_tensorflow)
    assert_one_error_line(result, fragment)
    assert listing(tmp_path) == set()


# Every size flag of the tools takes WIDTHxHEIGHT, one parser (osmn.cli.parse_size).
SIZE_FLAGS = [("infer", "--im_size"), ("segment_many", "--im_size"), ("app", "--im_size"),
              ("train", "--image_sizes"), ("train", "--crop_size"), ("make_synthetic", "--size")]


@pytest.mark.parametrize("tool,flag", SIZE_FLAGS)
def test_a_size_in_another_form_is_refused_in_one_line(tool, flag, tmp_path, no_tensorflow):
    result = run(tool, f"{flag}=854,480", no_tensorflow=no_tensorflow)
    assert_one_error_line(result, f"{flag}=854,480", "expected WIDTHxHEIGHT, e.g. 854x480")
    assert listing(tmp_path) == set()


@pytest.mark.parametrize("tool,flag,values", [
    ("infer", "--precision", "auto|float32|bfloat16"),
    ("segment_many", "--precision", "auto|float32|bfloat16"),
    ("app", "--precision", "auto|float32|bfloat16"),
    ("train", "--precision", "auto|float32|bfloat16|float16"),
    ("train", "--strategy", "auto|mirrored|one_device|multi_worker"),
    ("export", "--format", "saved_model|litert|onnx"),
    ("analyze", "--source", "davis|coco"),
    ("make_synthetic", "--annotate", "all|target"),
])
def test_an_unknown_enum_value_is_refused_in_one_line(tool, flag, values, no_tensorflow):
    result = run(tool, f"{flag}=half", no_tensorflow=no_tensorflow)
    assert_one_error_line(result, f"{flag}=half", f"<{values}>")


# ------------------------------------------------------------- masks: one reader, lossy refused

def _mask_variants(tmp_path):
    labels = io.read_mask(GT / "00000.png")[0]
    binary = (labels > 0).astype(np.uint8) * 255
    Image.fromarray(binary).save(tmp_path / "mask.jpg", quality=75)
    Image.fromarray(binary).convert("RGB").save(tmp_path / "rgb.png")
    # A JPEG once saved, then converted to a grey PNG: the noise survives as many values.
    Image.open(tmp_path / "mask.jpg").save(tmp_path / "was_jpeg.png")
    return {"jpeg": tmp_path / "mask.jpg", "rgb png": tmp_path / "rgb.png",
            "grey png from a jpeg": tmp_path / "was_jpeg.png"}


@pytest.mark.parametrize("kind", ["jpeg", "rgb png", "grey png from a jpeg"])
def test_lossy_or_colour_masks_are_refused(kind, tmp_path):
    path = _mask_variants(tmp_path)[kind]
    with pytest.raises(UserError, match=SAVE_AS_PNG.replace("(", r"\(").replace(")", r"\)")):
        io.read_mask(path)
    from osmn.data.images import Problem, read_mask as data_read_mask  # noqa: PLC0415
    assert isinstance(data_read_mask(str(path)), Problem)


def test_infer_refuses_a_jpeg_mask(tiny, tmp_path):
    mask = _mask_variants(tmp_path)["jpeg"]
    result = run("infer", "--video", tiny["video"], "--mask", mask, "--checkpoint",
                 tiny["model"], "--output", tmp_path / "out")
    assert_one_error_line(result, mask, SAVE_AS_PNG)
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if io.TEMP_MARK in p.name]


def test_good_masks_still_read(tmp_path):
    labels = np.zeros((8, 8), np.uint8)
    labels[2:5, 2:5] = 1
    labels[5:7, 5:7] = 3
    io.write_mask(tmp_path / "p.png", labels)
    np.testing.assert_array_equal(io.read_mask(tmp_path / "p.png")[0], labels)
    Image.fromarray(labels * 85).save(tmp_path / "grey.png")  # 0, 85, 255: ids and void
    assert set(np.unique(io.read_mask(tmp_path / "grey.png")[0])) == {0, 85, 255}
    Image.fromarray((labels > 0).astype(np.uint8) * 255).save(tmp_path / "d16.png")
    assert set(np.unique(io.read_mask(tmp_path / "d16.png")[0])) == {0, 1}  # DAVIS 2016


# ------------------------------------------------------------- truncated models and checkpoints

def test_truncated_keras_model_is_one_line(tiny, tmp_path):
    cut = tmp_path / "cut.keras"
    data = tiny["model"].read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    from osmn.model import load_osmn  # noqa: PLC0415
    with pytest.raises(UserError, match=r"cut.keras: not a readable OSMN model \(not a complete"):
        load_osmn(cut)
    assert zipfile.is_zipfile(tiny["model"])  # the whole file still loads
    load_osmn(tiny["model"])


def test_truncated_tf1_checkpoint_is_one_line(tmp_path):
    from osmn.config import ModelConfig  # noqa: PLC0415
    from osmn.convert import convert_tf1_checkpoint, write_tf1_checkpoint  # noqa: PLC0415
    from test_convert import random_tf1_arrays  # noqa: PLC0415
    prefix = write_tf1_checkpoint(tmp_path / "model.ckpt-5", random_tf1_arrays(
        ModelConfig(width_multiplier=TINY_WIDTH), training_state=False))
    data = next(tmp_path.glob("model.ckpt-5.data-*"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 3])
    with pytest.raises(UserError, match="model.ckpt-5: the checkpoint's data file is truncated"):
        convert_tf1_checkpoint(prefix)


# ------------------------------------------------------------- train: nothing written on failure

def test_train_with_empty_data_folder_writes_nothing(tmp_path):
    (tmp_path / "data").mkdir()
    result = run("train", "--recipe", "sample", "--data_dir", tmp_path / "data",
                 "--train_dir", tmp_path / "run", "--steps", "1")
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-3000:]
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------- run_tool: environment failures

def _run_tool_with(monkeypatch, capsys, error):
    from osmn import cli  # noqa: PLC0415

    def main(argv):
        raise error

    monkeypatch.setattr(sys, "argv", ["tool"])
    handler = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as exited:
            cli.run_tool(main)
    finally:
        signal.signal(signal.SIGTERM, handler)
    return exited.value.code, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize("error,fragment", [
    (OSError(errno.ENOSPC, "No space left on device", "/data/out/x.png"),
     "/data/out/x.png: no space left"),
    (OSError(errno.EROFS, "Read-only file system", "/mnt/ro/out"), "read-only filesystem"),
    (MemoryError("Unable to allocate 37.3 GiB"), "out of memory"),
])
def test_environment_failures_are_one_line(error, fragment, monkeypatch, capsys):
    code, lines = _run_tool_with(monkeypatch, capsys, error)
    assert code == 2 and len(lines) == 1 and fragment in lines[0], lines


def test_tensorflow_out_of_memory_is_one_line(monkeypatch, capsys):
    import tensorflow as tf  # noqa: PLC0415
    code, lines = _run_tool_with(monkeypatch, capsys, tf.errors.ResourceExhaustedError(
        None, None, "OOM when allocating tensor with shape[1,64,100000,100000]"))
    assert code == 2 and len(lines) == 1 and "out of memory" in lines[0], lines


# ------------------------------------------------------------- osmn.io

def test_atomic_file_failure_leaves_nothing_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "result.csv"
    target.write_text("old")

    def fail(f):
        f.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        io.atomic_save(target, fail)
    assert target.read_text() == "old" and listing(tmp_path) == {"result.csv"}


def test_atomic_dir_failure_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with io.atomic_dir(tmp_path / "out") as tmp:
            (tmp / "part").write_text("x")
            raise KeyboardInterrupt
    assert listing(tmp_path) == set()


def test_modes_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        io.atomic_write(tmp_path / "f.txt", "x")
        with io.atomic_dir(tmp_path / "d") as tmp:
            (tmp / "inner.txt").write_text("y")
        os.umask(0o027)
        io.atomic_write(tmp_path / "g.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "g.txt").stat().st_mode & 0o777 == 0o640


def test_stale_temps_of_dead_processes_are_cleaned(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    mine = io.temp_sibling(tmp_path / "out")
    stale = pathlib.Path(str(mine).replace(f"-{os.getpid()}-", f"-{dead}-"))
    mine.mkdir()
    stale.mkdir()
    (stale / "00000.png").write_text("x")
    other = tmp_path / ".out.something-else"
    other.mkdir()
    assert io.stale_temps(tmp_path, "out") == [stale]
    io.check_output_dir(tmp_path / "out", "--output")  # cleans what a killed run left
    assert not stale.exists() and mine.exists() and other.exists()


# ------------------------------------------------------------- signals: infer and export

def _start(tool, args, umask=0o022):
    def child():
        os.umask(umask)
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # as from a terminal
    return subprocess.Popen(_command(tool, args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(), cwd=REPO,
                            preexec_fn=child)


def _wait_for_temp(process, folder, timeout=120):
    """Wait until the tool has created its temporary folder in `folder` (it is working)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if [p for p in pathlib.Path(folder).iterdir() if io.TEMP_MARK in p.name]:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError("the tool never started writing")


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    """40 frames at 96x54, so that a signal lands mid-video."""
    root = tmp_path_factory.mktemp("long")
    for path in sorted(FRAMES.iterdir()):
        Image.open(path).resize(TINY_SIZE, Image.BILINEAR).save(root / path.name)
    labels, palette = io.read_mask(GT / "00000.png")
    io.write_mask(root.parent / "long_mask.png",
                  np.asarray(Image.fromarray(labels).resize(TINY_SIZE, Image.NEAREST)), palette)
    return root, root.parent / "long_mask.png"


SIGNALS = {"SIGTERM": (signal.SIGTERM, 143, "terminated"),
           "SIGINT": (signal.SIGINT, 130, "interrupted")}


# Tools in which library code gets in the way of a signal's exception: it turns it into another
# exception, or it prints and swallows it (as a C++ callback into Python may) and the tool carries
# on to its next progress update. Either way the tool stops with the signal's one line and code.
SIGNAL_IN_LIBRARY_CODE = {
    "wrapped": """
import os, signal, time
from osmn.cli import run_tool
def main(argv):
    try:
        os.kill(os.getpid(), signal.{name})
        time.sleep(30)
    except BaseException as error:
        raise RuntimeError("wrapped by a library") from error
run_tool(main)
""",
    "swallowed": """
import os, signal, sys, time, traceback
from osmn.cli import run_tool
from osmn.progress import Progbar
def main(argv):
    bar = Progbar(3, unit_name="frame")
    try:
        os.kill(os.getpid(), signal.{name})
        time.sleep(30)
    except BaseException:
        traceback.print_exc()
    bar.update(1)
    print("still running", file=sys.__stderr__)
run_tool(main)
"""}


@pytest.mark.parametrize("case", sorted(SIGNAL_IN_LIBRARY_CODE))
@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_a_signal_is_reported_whatever_library_code_does_with_its_exception(name, case):
    _, code, word = SIGNALS[name]
    script = SIGNAL_IN_LIBRARY_CODE[case].format(name=name)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=_env(), cwd=REPO, timeout=60)
    assert result.returncode == code, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and word in lines[0], result.stderr


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_infer_signal_cleans_up(name, tiny, long_video, tmp_path):
    number, code, word = SIGNALS[name]
    video, mask = long_video
    process = _start("infer", ["--video", video, "--mask", mask, "--checkpoint", tiny["model"],
                               "--output", tmp_path / "out"])
    _wait_for_temp(process, tmp_path)
    process.send_signal(number)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and word in lines[0], stderr
    assert listing(tmp_path) == set()


def test_infer_after_sigkill_the_next_run_cleans_up(tiny, long_video, tmp_path):
    video, mask = long_video
    process = _start("infer", ["--video", video, "--mask", mask, "--checkpoint", tiny["model"],
                               "--output", tmp_path / "out"])
    _wait_for_temp(process, tmp_path)
    process.kill()
    process.communicate()
    assert [p for p in tmp_path.iterdir() if io.TEMP_MARK in p.name]
    # The next run: a normal one, under umask 022, quiet on stderr.
    result = _start("infer", ["--video", tiny["video"], "--mask", tiny["mask"], "--checkpoint",
                              tiny["model"], "--output", tmp_path / "out", "--overlay"])
    stdout, stderr = result.communicate(timeout=300)
    assert result.returncode == 0 and stderr == "", stderr
    assert "\r" not in stdout and "\x1b" not in stdout  # not a terminal: plain lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    for path in [tmp_path / "out", *(tmp_path / "out").rglob("*")]:
        assert path.stat().st_mode & 0o777 == (0o755 if path.is_dir() else 0o644), path


@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT",
                                  pytest.param("SIGKILL", marks=pytest.mark.slow)])
def test_export_signal_leaves_no_temp_in_the_watched_folder(name, tiny, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    process = _start("export", ["--checkpoint", tiny["model"], "--export_dir", models / "osmn",
                                "--version", "1"])
    _wait_for_temp(process, models)
    assert not (models / "osmn").exists() or not list((models / "osmn").iterdir())
    if name == "SIGKILL":
        process.kill()
        process.communicate()
        assert [p for p in models.iterdir() if io.TEMP_MARK in p.name]
        result = run("export", "--checkpoint", tiny["model"], "--export_dir", models / "osmn",
                     "--version", "1", "--noverify")
        assert result.returncode == 0 and result.stderr == "", result.stderr
        assert sorted(listing(models))[:2] == ["osmn", "osmn/1"]
        assert not [p for p in models.iterdir() if io.TEMP_MARK in p.name]
        return
    number, code, word = SIGNALS[name]
    process.send_signal(number)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert len(stderr.splitlines()) == 1 and word in stderr, stderr
    assert not [p for p in models.iterdir() if io.TEMP_MARK in p.name]
    assert not (models / "osmn" / "1").exists()


@pytest.mark.parametrize("stop, replayed", [(KeyboardInterrupt, False), (RuntimeError, True)])
def test_start_up_noise_stays_dropped_when_a_signal_stops_the_import(capfd, stop, replayed):
    """A Ctrl-C while TensorFlow is imported prints only the tool's one line, not the C++
    start-up lines; a real import error replays everything captured."""
    from osmn.cli import _start_up_lines_dropped  # noqa: PLC0415
    noise = "I0000 00:00:1796493694.323985    8265 port.cc:153] oneDNN custom operations are on."
    with pytest.raises(stop):
        with _start_up_lines_dropped():
            os.write(2, (noise + "\n").encode())
            raise stop()
    assert (noise in capfd.readouterr().err) == replayed


def test_a_signal_during_the_output_check_leaves_no_probe(tmp_path, monkeypatch):
    """The writability probe is removed even when Ctrl-C lands right after it was created."""
    real_mkdir = pathlib.Path.mkdir

    def mkdir_then_interrupted(self, *args, **kwargs):
        real_mkdir(self, *args, **kwargs)
        if io.TEMP_MARK in self.name:
            raise KeyboardInterrupt

    monkeypatch.setattr(pathlib.Path, "mkdir", mkdir_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        io.check_output_dir(tmp_path / "out")
    assert listing(tmp_path) == set()
