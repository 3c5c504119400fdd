"""LiteRT and ONNX exports of both halves, run with the ai-edge-litert interpreter and
onnxruntime and compared with the Keras model (max abs differences printed: `pytest -s`)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, TINY_WIDTH
from lite_weights import randomize
from osmn.errors import UserError
from osmn.export import portable
from osmn.model import OSMN, save_osmn

pytest.importorskip("ai_edge_litert")
pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")

from osmn.export.litert import LiteRTHalves, export_litert  # noqa: E402
from osmn.export.onnx_export import OnnxHalves, export_onnx  # noqa: E402
from tool_output import error_lines

# Bounds on the max abs difference to Keras of gamma (values ~0.5..1.5) and of the probability
# (in [0, 1]). float32: reordered float32 arithmetic (measured ~1e-6). float16 weights: ~1e-3
# relative per weight. int8 dynamic range: weights AND activations quantised per op, so the
# probability can move by a few hundredths (measured values in docs/lite_and_portable.md).
BOUNDS = {"float32": 1e-4, "float16": 3e-2, "int8": 0.25}
ONNX_BOUND = 1e-4
# Odd sizes: padding to multiples of 32 (lite) and the VGG16 crops run inside the exports too.
SIZES = [(64, 96), (37, 53)]


@pytest.fixture(scope="module")
def lite_model():
    import keras
    keras.utils.set_random_seed(0)
    return randomize(OSMN({"width_multiplier": TINY_WIDTH, "backbone": "lite"}))


@pytest.fixture(scope="module")
def litert_dir(lite_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("litert") / "osmn_litert"
    diffs = export_litert(lite_model, path, ("float16", "int8"), source="test")
    print("LiteRT lite max abs diff vs Keras at 64x96:", diffs)
    return path


@pytest.fixture(scope="module")
def onnx_dir(lite_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "osmn_onnx"
    print("ONNX lite max abs diff vs Keras at 64x96:", export_onnx(lite_model, path))
    return path


def _spread(model, inputs):
    """The reference must not be trivial (see lite_weights.py)."""
    reference = portable.keras_reference(model, inputs)
    assert np.std(reference["gamma"]) > 0.05
    probability = reference["segment"]
    assert probability.min() < 0.3 and probability.max() > 0.7
    return reference


@pytest.mark.parametrize("quantization", ["float32", "float16", "int8"])
@pytest.mark.parametrize("height, width", SIZES)
def test_litert_agrees_with_keras(lite_model, litert_dir, quantization, height, width):
    inputs = portable.sample_inputs(lite_model.gamma_size, height, width, objects=2, seed=3)
    _spread(lite_model, inputs)
    diffs = portable.compare(LiteRTHalves(litert_dir, quantization).run, lite_model, inputs)
    print(f"LiteRT {quantization} {height}x{width}: max abs diff {diffs}")
    assert max(diffs.values()) <= BOUNDS[quantization]


@pytest.mark.parametrize("height, width", SIZES)
def test_onnx_agrees_with_keras(lite_model, onnx_dir, height, width):
    inputs = portable.sample_inputs(lite_model.gamma_size, height, width, objects=2, seed=3)
    _spread(lite_model, inputs)
    diffs = portable.compare(OnnxHalves(onnx_dir).run, lite_model, inputs)
    print(f"ONNX {height}x{width}: max abs diff {diffs}")
    assert max(diffs.values()) <= ONNX_BOUND


def test_quantized_files_are_smaller_and_metadata_is_written(litert_dir, onnx_dir):
    sizes = {q: sum((litert_dir / f"{h}_{q}.tflite").stat().st_size for h in portable.HALVES)
             for q in ("float32", "float16", "int8")}
    assert sizes["int8"] < sizes["float16"] < sizes["float32"]
    info = json.loads((litert_dir / "osmn_export.json").read_text())
    assert info["model_config"]["backbone"] == "lite"
    assert info["files"]["int8"] == {"gamma": "gamma_int8.tflite",
                                     "segment": "segment_int8.tflite"}
    assert info["max_abs_difference_vs_keras"]["float32"]["segment"] <= BOUNDS["float32"]
    assert info["inputs"]["segment"] == ["image", "spatial_guide", "gamma"]
    onnx_info = json.loads((onnx_dir / "osmn_export.json").read_text())
    assert sorted(onnx_info["files"].values()) == ["gamma.onnx", "segment.onnx"]
    assert not [p for p in litert_dir.parent.iterdir() if p.name.startswith(".")]


def test_existing_folder_is_refused_and_left_alone(lite_model, litert_dir):
    before = {p.name: p.stat().st_mtime_ns for p in litert_dir.iterdir()}
    with pytest.raises(UserError, match="already exists"):
        export_litert(lite_model, litert_dir)
    with pytest.raises(UserError, match="LiteRT quantization must be one of"):
        export_litert(lite_model, litert_dir.parent / "new", ("bfloat16",))
    assert {p.name: p.stat().st_mtime_ns for p in litert_dir.iterdir()} == before
    assert not (litert_dir.parent / "new").exists()


@pytest.mark.slow
def test_vgg16_exports_too(tmp_path):
    model = randomize(OSMN({"width_multiplier": TINY_WIDTH}))
    inputs = portable.sample_inputs(model.gamma_size, 37, 53, objects=2, seed=5)
    _spread(model, inputs)
    export_litert(model, tmp_path / "litert", ())
    export_onnx(model, tmp_path / "onnx")
    litert = portable.compare(LiteRTHalves(tmp_path / "litert").run, model, inputs)
    onnx = portable.compare(OnnxHalves(tmp_path / "onnx").run, model, inputs)
    print(f"VGG16 37x53 LiteRT float32 {litert}, ONNX {onnx}")
    assert max(litert.values()) <= BOUNDS["float32"] and max(onnx.values()) <= ONNX_BOUND


def _run_tool(*args, cwd):
    return subprocess.run([sys.executable, str(REPO / "tools" / "export.py"), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=600)


_error_lines = error_lines


def test_unknown_format_fails_with_one_line(tmp_path):
    done = _run_tool("--format", "coreml", "--export_dir", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 2
    assert _error_lines(done.stderr) == [
        "error: bad flag: flag --format=coreml: value should be one of <saved_model|litert|onnx>"]
    assert not (tmp_path / "out").exists()
    quant = _run_tool("--format", "litert", "--litert_quantization", "int4", cwd=tmp_path)
    assert quant.returncode == 2
    assert _error_lines(quant.stderr) == [
        "error: bad flag: flag --litert_quantization=int4: value should be one of "
        "<float16|int8|none>"]


@pytest.mark.slow
@pytest.mark.parametrize("export_format", ["litert", "onnx"])
def test_export_tool_writes_portable_formats(tmp_path, lite_model, export_format):
    checkpoint = tmp_path / "lite.keras"
    save_osmn(lite_model, checkpoint)
    out = tmp_path / export_format
    # "none": float32 only. The quantized conversions are the fixture's (litert_dir); here the
    # flag's plumbing is what is tested, at half the conversions.
    done = _run_tool("--checkpoint", str(checkpoint), "--format", export_format,
                     "--export_dir", str(out), "--litert_quantization", "none", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    print(done.stdout)
    assert "max abs diff vs Keras" in done.stdout
    expected = ({"gamma_float32.tflite", "segment_float32.tflite"} if export_format == "litert"
                else {"gamma.onnx", "segment.onnx"})
    assert {p.name for p in out.iterdir()} == expected | {"osmn_export.json"}
    again = _run_tool("--checkpoint", str(checkpoint), "--format", export_format,
                      "--export_dir", str(out), cwd=tmp_path)
    assert again.returncode == 2
    assert _error_lines(again.stderr) == [
        f"error: {out}: already exists (pass --overwrite to replace it)"]
