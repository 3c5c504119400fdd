"""Paper §4.2 analysis (Figures 5-7): MDS, per-layer statistics, object collection, outputs, tool."""

import json

import keras
import numpy as np
import pytest

from osmn import config
from osmn.analysis import analyze, classical_mds, coco_objects, davis_objects, write_analysis
from osmn.analysis import statistics
from osmn.analysis.objects import AnalysisObject, mask_objects
from osmn.analysis.report import FILES
from osmn.config import ModelConfig
from osmn.errors import UserError
from osmn.model import OSMN, save_osmn

from conftest import DAVIS_SAMPLE, REPO, SAMPLE_SEQUENCE, TINY_WIDTH
from scripts import run_tool
from tool_output import own_lines

COCO_SAMPLE = REPO / "data" / "coco_sample"
COCO_ANNOTATIONS = COCO_SAMPLE / "annotations" / "instances_train2017.json"
COCO_IMAGES = COCO_SAMPLE / "train2017"
TINY = {"width_multiplier": TINY_WIDTH}
LAYERS = [name for name, _ in ModelConfig(**TINY).modulated_layers()]


@pytest.fixture(scope="module")
def varied_model():
    """A tiny OSMN whose visual modulator gives object-dependent gammas.

    At initialisation every gamma is 1 (fc8 zero) and N(0, 0.001) kernels make fc7 vanish, so
    the visual modulator's kernels are re-drawn with He-normal scale and fc8 with a small one.
    """
    keras.utils.set_random_seed(1)
    model = OSMN(TINY)
    rng = np.random.default_rng(1)
    for kernel in model.visual_modulator.kernels():
        fan_in = int(np.prod(kernel.shape[:-1]))
        scale = 0.01 if kernel is model.visual_modulator.fc8.kernel else np.sqrt(2.0 / fan_in)
        kernel.assign(rng.normal(0.0, scale, kernel.shape).astype("float32"))
    return model


@pytest.fixture(scope="module")
def checkpoint(varied_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("analysis_model") / "model.keras"
    save_osmn(varied_model, path)
    return path


# --- Classical MDS ------------------------------------------------------------------------------


def test_mds_of_identical_gammas_collapses_to_one_point():
    gammas = np.tile(np.linspace(0.5, 1.5, 240, dtype=np.float32), (7, 1))
    coords, eigenvalues = classical_mds(gammas)
    assert coords.shape == (7, 2)
    np.testing.assert_array_equal(coords, np.zeros((7, 2)))
    np.testing.assert_array_equal(eigenvalues, [0.0, 0.0])


def test_mds_preserves_distances_of_planar_points():
    rng = np.random.default_rng(0)
    plane = rng.normal(size=(12, 2)) * [3.0, 1.0]
    basis, _ = np.linalg.qr(rng.normal(size=(10, 2)))  # orthonormal 2-D subspace of R^10
    points = plane @ basis.T + 5.0
    coords, eigenvalues = classical_mds(points)
    def squared_distances(x):  # [N, D] -> [N, N]
        return np.sum((x[:, None, :] - x[None, :, :]) ** 2, axis=-1)

    np.testing.assert_allclose(squared_distances(coords), squared_distances(points), atol=1e-9)
    assert eigenvalues[0] > eigenvalues[1] > 0


def test_mds_separates_two_clusters_along_the_first_axis():
    rng = np.random.default_rng(0)
    a = rng.normal(0.0, 0.01, size=(5, 30)) + 1.0
    b = rng.normal(0.0, 0.01, size=(5, 30)) + 2.0
    coords, _ = classical_mds(np.concatenate([a, b]))
    assert np.sign(coords[:5, 0]).tolist() == [np.sign(coords[0, 0])] * 5
    assert np.sign(coords[5:, 0]).tolist() == [-np.sign(coords[0, 0])] * 5


# --- Statistics ---------------------------------------------------------------------------------


def test_gamma_std_has_one_vector_per_modulated_layer():
    cfg = ModelConfig(**TINY)
    gammas = np.random.default_rng(0).normal(size=(6, cfg.gamma_size))
    stds = statistics.gamma_std_per_layer(gammas, cfg.gamma_slices())
    assert list(stds) == LAYERS and len(stds) == 9
    for (name, channels), (start, stop) in zip(cfg.modulated_layers(),
                                               cfg.gamma_slices().values()):
        assert stds[name].shape == (channels,)
        np.testing.assert_allclose(stds[name], gammas[:, start:stop].std(axis=0))
    with pytest.raises(ValueError, match="gammas must be"):
        statistics.gamma_std_per_layer(gammas[:, :-1], cfg.gamma_slices())


def test_spatial_scales_slice_each_block_conv_per_layer():
    model = OSMN(TINY)
    modulator = model.spatial_modulator
    conv4, bn4 = modulator.convs[1], modulator.norms[1]
    rng = np.random.default_rng(0)
    conv4.kernel.assign(rng.normal(size=conv4.kernel.shape).astype("float32"))
    bn4.gamma.assign(rng.uniform(0.5, 2.0, size=bn4.gamma.shape).astype("float32"))
    bn4.moving_variance.assign(rng.uniform(0.1, 4.0, size=bn4.gamma.shape).astype("float32"))
    bn4.moving_mean.assign(rng.normal(size=bn4.gamma.shape).astype("float32"))
    bn4.beta.assign(rng.normal(size=bn4.gamma.shape).astype("float32"))
    scales = statistics.spatial_scales(model)
    assert list(scales) == LAYERS
    channels = ModelConfig(**TINY).block_channels()[3]  # conv4: 32 channels at width 1/16
    kernel = np.asarray(conv4.kernel).reshape(-1)
    effective = kernel * np.asarray(bn4.gamma) / np.sqrt(np.asarray(bn4.moving_variance)
                                                         + config.BN_EPSILON)
    for i, name in enumerate(["conv4_1", "conv4_2", "conv4_3"]):
        part = slice(i * channels, (i + 1) * channels)
        np.testing.assert_allclose(scales[name]["raw"], kernel[part])
        np.testing.assert_allclose(scales[name]["effective"], effective[part], rtol=1e-6)
    # The affine form reproduces the modulator's own output before the ReLU.
    guide = np.array([0.0, 0.3, 1.0], np.float32).reshape(3, 1, 1, 1)
    pre_relu = np.asarray(bn4(conv4(guide), training=False)).reshape(3, -1)
    for i, name in enumerate(["conv4_1", "conv4_2", "conv4_3"]):
        part = slice(i * channels, (i + 1) * channels)
        expected = (guide.reshape(3, 1) * scales[name]["effective"][None]
                    + scales[name]["offset"][None])
        np.testing.assert_allclose(pre_relu[:, part], expected, rtol=1e-4, atol=1e-4)


def test_fraction_dead_counts_channels_without_bias_on_the_guide_range():
    effective = np.array([1.0, -1.0, 2.0, -0.5, 0.0])
    offset = np.array([-2.0, 0.5, -1.0, -0.1, -0.3])
    # max over m in {0, 1}: -1, 0.5, 1, -0.1, -0.3 -> dead: channels 0, 3, 4
    assert statistics.fraction_dead(effective, offset) == pytest.approx(3 / 5)


def test_zeroed_spatial_scales_are_reported_100_percent_near_zero(varied_model):
    model = OSMN(TINY)
    model.set_weights(varied_model.get_weights())
    conv4 = model.spatial_modulator.convs[1]
    channels = ModelConfig(**TINY).block_channels()[3]
    kernel = np.asarray(conv4.kernel).copy()
    kernel[..., channels:2 * channels] = 0.0  # conv4_2
    conv4.kernel.assign(kernel)
    objects = davis_objects(str(DAVIS_SAMPLE), sequences=[SAMPLE_SEQUENCE])
    result = analyze(model, objects)
    for kind in ("raw", "effective"):
        fractions = result.near_zero_fraction[kind]
        assert fractions["conv4_2"] == 1.0
        assert all(f < 0.5 for name, f in fractions.items() if name != "conv4_2"), fractions


def test_near_zero_threshold_absolute_and_relative():
    values = {"a": np.array([0.0, -0.01, 0.5]), "b": np.array([-2.0, 0.03])}
    assert statistics.near_zero_threshold(values, 0.01, relative=False) == 0.01
    assert statistics.near_zero_threshold(values, 0.02, relative=True) == pytest.approx(0.04)
    assert statistics.fraction_near_zero(values["a"], 0.01) == pytest.approx(2 / 3)
    assert statistics.fraction_near_zero(values["b"], 0.04) == 0.5
    zeros = {"a": np.zeros(4)}
    assert statistics.fraction_near_zero(zeros["a"],
                                         statistics.near_zero_threshold(zeros, 0.02, True)) == 1.0


# --- Objects ------------------------------------------------------------------------------------


def test_davis_objects_first_frame_and_several_frames():
    first = davis_objects(str(DAVIS_SAMPLE), split="val")
    assert [(o.name, o.category) for o in first] == [(f"{SAMPLE_SEQUENCE}/1@00000",
                                                       SAMPLE_SEQUENCE)]
    assert first[0].mask.shape == (480, 854) and first[0].mask.dtype == bool
    several = davis_objects(str(DAVIS_SAMPLE), sequences=[SAMPLE_SEQUENCE], frames_per_object=4)
    assert [o.name.split("@")[1] for o in several] == ["00000", "00013", "00026", "00039"]
    assert all(o.mask.any() for o in several)


def test_davis_objects_errors_name_the_path(tmp_path):
    with pytest.raises(UserError, match="DAVIS folder not found"):
        davis_objects(str(tmp_path / "missing"))
    with pytest.raises(UserError, match="annotation folder of sequence 'nope'"):
        davis_objects(str(DAVIS_SAMPLE), sequences=["nope"])


def test_mask_objects_palette_ids_and_void(tmp_path):
    from PIL import Image
    labels = np.zeros((6, 8), np.uint8)
    labels[1:3, 1:3], labels[4:, 5:], labels[0, 7] = 1, 2, 255
    image = Image.fromarray(labels, mode="P")
    image.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [255] * 759)
    image.save(tmp_path / "m.png")
    masks = mask_objects(str(tmp_path / "m.png"))
    assert sorted(masks) == [1, 2]
    assert masks[1].sum() == 4 and masks[2].sum() == 6
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(UserError, match="rgb.png: mask is a RGB image"):
        mask_objects(str(tmp_path / "rgb.png"))
    (tmp_path / "bad.png").write_bytes(b"\x89PNG truncated")
    with pytest.raises(UserError, match="bad.png: unreadable mask"):
        mask_objects(str(tmp_path / "bad.png"))


def test_coco_objects_from_the_sample_annotations():
    # The sample has 4 cars (car 6: 12077 px, 2.9% of 854x480, under the 3% rule), a crowd
    # "region" and a "region" of 600 px.
    objects = coco_objects(str(COCO_ANNOTATIONS), str(COCO_IMAGES))
    assert [(o.name, o.category) for o in objects] == [
        ("coco:1", "car"), ("coco:2", "car"), ("coco:4", "car")]
    assert all(o.mask.mean() > config.COCO_MIN_AREA_FRACTION for o in objects)
    assert all(o.mask.shape == (480, 854) for o in objects)
    every = coco_objects(str(COCO_ANNOTATIONS), str(COCO_IMAGES), min_area_fraction=0.0)
    assert [o.name for o in every] == ["coco:1", "coco:2", "coco:4", "coco:6", "coco:5"]
    assert every[-1].mask.sum() == pytest.approx(600, rel=0.15)
    assert len(coco_objects(str(COCO_ANNOTATIONS), str(COCO_IMAGES), ["car"],
                            per_category=2)) == 2
    with pytest.raises(UserError, match="unknown categor.*dog"):
        coco_objects(str(COCO_ANNOTATIONS), str(COCO_IMAGES), ["car", "dog"])
    with pytest.raises(UserError, match="annotation file not found"):
        coco_objects(str(COCO_SAMPLE / "missing.json"), str(COCO_IMAGES))


# --- Analysis and outputs -----------------------------------------------------------------------


def test_analyze_writes_every_file_with_right_shapes(varied_model, tmp_path):
    objects = davis_objects(str(DAVIS_SAMPLE), sequences=[SAMPLE_SEQUENCE], frames_per_object=5)
    objects += coco_objects(str(COCO_ANNOTATIONS), str(COCO_IMAGES), min_area_fraction=0.0)
    result = analyze(varied_model, objects, bins=12)
    n, cfg = len(objects), ModelConfig(**TINY)
    assert result.gammas.shape == (n, cfg.gamma_size) and result.mds.shape == (n, 2)
    # Gammas depend on the object (the COCO sample's images are frames of the same video, so
    # only the five DAVIS crops are known to be distinct).
    assert np.unique(result.gammas[:5], axis=0).shape[0] == 5
    paths = write_analysis(result, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(FILES.values())
    for key in ("fig5", "fig6", "fig7_raw", "fig7_effective"):
        assert paths[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads(paths["summary"].read_text())
    assert summary["objects"] == n
    assert list(summary["fig6_gamma_std"]) == LAYERS
    for (name, channels) in cfg.modulated_layers():
        hist6 = summary["fig6_gamma_std"][name]["histogram"]
        assert len(hist6["counts"]) == 12 and len(hist6["edges"]) == 13
        assert sum(hist6["counts"]) == channels
        for kind in ("raw", "effective"):
            layer7 = summary["fig7_spatial_scale"]["layers"][name][kind]
            assert layer7["channels"] == channels and sum(layer7["histogram_abs"]["counts"]) == channels
            assert 0.0 <= layer7["fraction_near_zero"] <= 1.0
    # The panels of one figure share their range, so layers compare.
    fig6_edges = {tuple(summary["fig6_gamma_std"][name]["histogram"]["edges"]) for name in LAYERS}
    assert len(fig6_edges) == 1 and next(iter(fig6_edges))[0] == 0.0
    fig7_edges = {tuple(summary["fig7_spatial_scale"]["layers"][name]["raw"]["histogram_abs"]
                        ["edges"]) for name in LAYERS}
    assert len(fig7_edges) == 1
    mds_rows = paths["fig5_csv"].read_text().splitlines()
    assert mds_rows[0] == "object,category,x,y" and len(mds_rows) == n + 1
    fig6_rows = paths["fig6_csv"].read_text().splitlines()
    assert len(fig6_rows) == 1 + cfg.gamma_size
    fig7_rows = paths["fig7_csv"].read_text().splitlines()
    assert fig7_rows[0] == "layer,channel,raw,effective,offset"
    assert len(fig7_rows) == 1 + cfg.gamma_size  # one spatial bias channel per gamma channel
    with np.load(paths["gammas"]) as saved:
        np.testing.assert_array_equal(saved["gammas"], result.gammas)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_analysis_without_spatial_modulator_skips_figure_7(tmp_path):
    model = OSMN({**TINY, "use_spatial_modulator": False})
    objects = davis_objects(str(DAVIS_SAMPLE), sequences=[SAMPLE_SEQUENCE])
    paths = write_analysis(analyze(model, objects), tmp_path / "out")
    assert "fig7_raw" not in paths and not (tmp_path / "out" / FILES["fig7_raw"]).exists()
    assert json.loads(paths["summary"].read_text())["fig7_spatial_scale"] is None


def test_missing_image_raises_before_anything_is_written(varied_model, tmp_path):
    objects = [AnalysisObject("x", "c", str(tmp_path / "nope.jpg"), np.ones((4, 4), bool))]
    with pytest.raises(UserError, match="nope.jpg: image file not found"):
        write_analysis(analyze(varied_model, objects), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


# --- The tool -----------------------------------------------------------------------------------


def _tool(*args):
    return run_tool("analyze", *args, tf_log_level="2")


def _stderr_lines(process):
    return own_lines(process.stderr)


def test_tool_on_coco_sample_writes_the_figures(checkpoint, tmp_path):
    out = tmp_path / "analysis"
    process = _tool(f"--checkpoint={checkpoint}", "--source=coco", f"--data_dir={COCO_IMAGES}",
                    f"--annotation_file={COCO_ANNOTATIONS}", f"--output={out}",
                    "--min_area_fraction=0", "--max_objects=5")
    assert process.returncode == 0, process.stderr
    assert "Analysing 5 object(s) in 2 categor" in process.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES.values())
    assert len(out.joinpath(FILES["fig5_csv"]).read_text().splitlines()) == 6


@pytest.mark.parametrize("args, message", [
    (["--checkpoint={tmp}/missing.keras", "--data_dir=" + str(DAVIS_SAMPLE)],
     "model file not found"),
    (["--checkpoint={tmp}/corrupt.keras", "--data_dir=" + str(DAVIS_SAMPLE)],
     "not a readable OSMN"),
    (["--data_dir={tmp}/no_such_dir"], "--data_dir: {tmp}/no_such_dir: folder not found"),
    (["--data_dir=" + str(DAVIS_SAMPLE), "--source=youtube"],
     "--source=youtube: value should be one of <davis|coco>"),
])
def test_tool_bad_paths_give_one_line_and_exit_code_2(tmp_path, args, message):
    (tmp_path / "corrupt.keras").write_bytes(b"not a zip file")
    args = [a.format(tmp=tmp_path) for a in args]
    process = _tool(*args, f"--output={tmp_path / 'out'}")
    lines = _stderr_lines(process)
    assert process.returncode == 2, process.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message.format(tmp=tmp_path) in lines[0]
    assert not (tmp_path / "out").exists()
