"""SavedModel export: the export loaded the way TF Serving loads it, without osmn.

A fresh Python process that cannot import `osmn` loads the export twice: with the graph-mode
loader TF Serving's C++ server also uses (`tf.compat.v1.saved_model.loader.load` into a
`tf.compat.v1.Session`, tag "serve", tensors looked up by the SignatureDefs' names) and with
`tf.saved_model.load` (eager). Its outputs are compared here with the Keras model's.
"""

import json
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from osmn import config, guides
from osmn.errors import UserError
from osmn.export import (SIGNATURES, existing_versions, export_saved_model, guide_to_rgb,
                         next_version)
from osmn.model import OSMN
from osmn.preprocessing import to_model_input
from tool_output import single_error_line

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY_WIDTH = 1 / 16  # as conftest's tiny_config: gamma size 240.
G = config.VISUAL_GUIDE_SIZE
# Bounds on max |export - Keras|: probabilities in [0, 1] and gammas of magnitude ~1 (measured
# ~1e-7 to 1e-6; float32 reordering between the Keras call and the exported graph).
PROBABILITY_TOLERANCE = 1e-4
GAMMA_TOLERANCE = 1e-4
GUIDE_TOLERANCE = 1e-3  # spatial guides in [0, 1]; visual guides in 0..255.
# Op types that must never appear: Python callbacks (not in a TF Serving build).
FORBIDDEN_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc"}


def lively_tiny_model(seed: int = 0) -> OSMN:
    """A width-1/16 OSMN whose outputs vary: every kernel redrawn He-normal.

    The paper's init (N(0, 0.001) convs, fc8 zero) makes every probability 0.5 and every gamma
    1, which would hide mistakes. fc8 is scaled by 0.002 (gammas ~1 +- 0.3) and the fusion conv
    by 0.01 (logits of std ~1.3 on random images) so nothing overflows or saturates.
    """
    keras.utils.set_random_seed(seed)
    model = OSMN({"width_multiplier": TINY_WIDTH})
    scales = {"fc8": 0.002, "upscore_fuse": 0.01}
    for i, variable in enumerate(model.variables):
        if variable.path.endswith("kernel"):
            layer = variable.path.split("/")[-2]
            value = keras.initializers.HeNormal(seed=seed * 1000 + i)(variable.shape)
            variable.assign(value * scales.get(layer, 1.0))
    return model


def blob_masks(height, width, centers, radius):
    """[len(centers), H, W] float32 discs (a center of None gives an empty mask)."""
    yy, xx = np.mgrid[:height, :width]
    masks = [np.zeros((height, width), np.float32) if c is None else
             ((yy - c[0]) ** 2 + (xx - c[1]) ** 2 <= radius ** 2).astype(np.float32)
             for c in centers]
    return np.stack(masks)


# A loader that cannot import osmn: the export must stand on its own, as in TF Serving.
NO_OSMN_LOADER = r'''
import importlib.abc, json, sys

class _NoOsmn(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "osmn" or name.startswith("osmn."):
            raise ImportError("the export must load without the osmn package: " + name)
        return None

sys.meta_path.insert(0, _NoOsmn())
import numpy as np
import tensorflow as tf

export_dir, inputs_path, outputs_path, report_path = sys.argv[1:5]
data = np.load(inputs_path)
cases = {}  # (case, signature) -> {input name: array}
for key in data.files:
    case, signature, name = key.split("/")
    cases.setdefault((case, signature), {})[name] = data[key]
outputs, report = {}, {}

def chain(run, feeds):
    """gamma, then segment with its gamma; and serving_default on the same inputs."""
    gamma = run("gamma", {"visual_guide": feeds["visual_guide"]})["gamma"]
    two = run("segment", {"image": feeds["image"], "spatial_guide": feeds["spatial_guide"],
                          "gamma": gamma})["probability"]
    one = run("serving_default", feeds)["probability"]
    return {"two_step": two, "one_step": one}

def run_all(mode, run):
    for (case, signature), feeds in sorted(cases.items()):
        results = chain(run, feeds) if signature == "chain" else run(signature, feeds)
        for name, value in results.items():
            outputs[f"{mode}/{case}/{signature}/{name}"] = np.asarray(value)

# 1. Graph mode, as TF Serving: SignatureDef tensor names into a v1 Session.
with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
    meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], export_dir)
    signatures = meta.signature_def
    report["signatures"] = {
        name: {"method": sig.method_name,
               "inputs": {k: [v.dtype, [d.size for d in v.tensor_shape.dim]]
                          for k, v in sig.inputs.items()},
               "outputs": {k: [v.dtype, [d.size for d in v.tensor_shape.dim]]
                           for k, v in sig.outputs.items()}}
        for name, sig in signatures.items() if not name.startswith("__")}
    ops = {node.op for node in meta.graph_def.node}
    for function in meta.graph_def.library.function:
        ops |= {node.op for node in function.node_def}
    report["ops"] = sorted(ops)
    report["ops_without_raw_op"] = sorted(op for op in ops if not hasattr(tf.raw_ops, op))

    def run_graph(signature, feeds):
        sig = signatures[signature]
        names = sorted(sig.outputs)
        values = session.run([sig.outputs[n].name for n in names],
                             {sig.inputs[k].name: v for k, v in feeds.items()})
        return dict(zip(names, values))

    run_all("graph", run_graph)

# 2. Eager: tf.saved_model.load and the signatures' concrete functions.
loaded = tf.saved_model.load(export_dir)

def run_eager(signature, feeds):
    results = loaded.signatures[signature](**{k: tf.constant(v) for k, v in feeds.items()})
    return {k: v.numpy() for k, v in results.items()}

run_all("eager", run_eager)
report["osmn_modules"] = sorted(m for m in sys.modules if m.split(".")[0] == "osmn")
np.savez(outputs_path, **outputs)
with open(report_path, "w") as f:
    json.dump(report, f)
'''


def run_loader(export_path, inputs: dict, workdir: pathlib.Path):
    """Run NO_OSMN_LOADER in a fresh interpreter outside the repo; returns (outputs, report)."""
    inputs_path, outputs_path, report_path = (workdir / n for n in
                                              ("in.npz", "out.npz", "report.json"))
    np.savez(inputs_path, **inputs)
    result = subprocess.run(
        [sys.executable, "-c", NO_OSMN_LOADER, str(export_path), str(inputs_path),
         str(outputs_path), str(report_path)],
        cwd=workdir, capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2", "HOME": str(workdir)})
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(outputs_path) as data:
        outputs = {k: data[k] for k in data.files}
    return outputs, json.loads(report_path.read_text())


def sigmoid_np(x):
    return tf.sigmoid(tf.cast(x, tf.float32)).numpy()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A lively tiny model, its export, the loader's outputs on fixed inputs, and references."""
    workdir = tmp_path_factory.mktemp("export")
    model = lively_tiny_model()
    path = export_saved_model(model, workdir / "models" / "osmn", version=1)
    rng = np.random.default_rng(0)

    def frame(batch, h, w):
        return rng.integers(0, 256, (batch, h, w, 3)).astype(np.float32)

    visual = frame(2, G, G)
    inputs, expected = {}, {}
    # serving_default and chain at two frame sizes; image batch 1 shared by 2 objects, and B = 2.
    for case, (h, w, image_batch) in {"a": (40, 56, 1), "b": (33, 47, 2)}.items():
        image = frame(image_batch, h, w)
        spatial = rng.uniform(0, 1, (2, h, w, 1)).astype(np.float32)
        feeds = {"image": image, "visual_guide": visual, "spatial_guide": spatial}
        for signature in ("serving_default", "chain"):
            for name, value in feeds.items():
                inputs[f"{case}/{signature}/{name}"] = value
        gamma = model.gamma(to_model_input(visual))
        images = np.broadcast_to(image, (2, h, w, 3))
        probability = sigmoid_np(model.segment(to_model_input(images), spatial, gamma))
        expected[f"{case}/serving_default/probability"] = probability
        for name, value in (("image", image), ("spatial_guide", spatial),
                            ("gamma", gamma.numpy())):
            inputs[f"{case}/segment/{name}"] = value
        expected[f"{case}/segment/probability"] = probability
    inputs["a/gamma/visual_guide"] = visual
    expected["a/gamma/gamma"] = model.gamma(to_model_input(visual)).numpy()
    # Guides: two discs and an empty mask at 40x56.
    masks = blob_masks(40, 56, [(12, 20), (28, 40), None], radius=6)
    inputs["a/spatial_guide/mask"] = masks
    expected["a/spatial_guide/spatial_guide"] = np.stack(
        [guides.spatial_guide(m).numpy() for m in masks])
    image = frame(1, 40, 56)
    inputs["a/visual_guide/image"] = image
    inputs["a/visual_guide/mask"] = masks
    expected["a/visual_guide/visual_guide"] = np.stack(
        [guide_to_rgb(guides.visual_guide(image[0], m)).numpy() for m in masks])
    outputs, report = run_loader(path, inputs, workdir)
    return {"model": model, "path": path, "inputs": inputs, "expected": expected,
            "outputs": outputs, "report": report}


def test_export_layout_is_what_tf_serving_loads(exported):
    path = exported["path"]
    assert path.name == "1"
    assert (path / "saved_model.pb").is_file()
    assert sorted(p.name for p in (path / "variables").iterdir()) == [
        "variables.data-00000-of-00001", "variables.index"]
    metadata = json.loads((path / "assets.extra" / "osmn_export.json").read_text())
    assert metadata["gamma_size"] == 240 and metadata["version"] == 1
    assert metadata["model_config"]["width_multiplier"] == TINY_WIDTH
    # No temporary folder is left beside the version.
    assert [p.name for p in path.parent.iterdir()] == ["1"]


def test_loader_process_did_not_import_osmn(exported):
    assert exported["report"]["osmn_modules"] == []


def test_signatures_are_float32_with_dynamic_sizes(exported):
    signatures = exported["report"]["signatures"]
    assert sorted(signatures) == sorted(SIGNATURES)
    float32 = tf.float32.as_datatype_enum
    hw = [-1, -1]
    want = {
        "serving_default": ({"image": [-1, *hw, 3], "visual_guide": [-1, G, G, 3],
                             "spatial_guide": [-1, *hw, 1]}, {"probability": [-1, *hw, 1]}),
        "gamma": ({"visual_guide": [-1, G, G, 3]}, {"gamma": [-1, 240]}),
        "segment": ({"image": [-1, *hw, 3], "spatial_guide": [-1, *hw, 1], "gamma": [-1, 240]},
                    {"probability": [-1, *hw, 1]}),
        "spatial_guide": ({"mask": [-1, *hw]}, {"spatial_guide": [-1, *hw, 1]}),
        "visual_guide": ({"image": [-1, *hw, 3], "mask": [-1, *hw]},
                         {"visual_guide": [-1, G, G, 3]}),
    }
    for name, (inputs, outputs) in want.items():
        sig = signatures[name]
        assert sig["method"] == "tensorflow/serving/predict", name
        assert sig["inputs"] == {k: [float32, v] for k, v in inputs.items()}, name
        assert sig["outputs"] == {k: [float32, v] for k, v in outputs.items()}, name


@pytest.mark.parametrize("mode", ["graph", "eager"])
def test_every_signature_matches_the_keras_model(exported, mode):
    outputs, expected = exported["outputs"], exported["expected"]
    checked = 0
    for key, want in sorted(expected.items()):
        got = outputs[f"{mode}/{key}"]
        assert got.shape == want.shape, key
        diff = float(np.max(np.abs(got - want)))
        print(f"{mode:5s} {key:40s} max abs diff {diff:.3g}")
        tolerance = {"probability": PROBABILITY_TOLERANCE, "gamma": GAMMA_TOLERANCE}.get(
            key.split("/")[-1], GUIDE_TOLERANCE)
        assert diff <= tolerance, key
        checked += 1
    assert checked == len(expected) == 7
    # The model's outputs are not degenerate, so the comparison means something.
    probability = expected["a/segment/probability"]
    assert 0.05 < probability.mean() < 0.95 and probability.std() > 0.05
    assert expected["a/gamma/gamma"].std() > 0.05


def test_different_frame_sizes_without_re_export(exported):
    for mode in ("graph", "eager"):
        for case, hw in (("a", (40, 56)), ("b", (33, 47))):
            for signature in ("serving_default", "segment"):
                got = exported["outputs"][f"{mode}/{case}/{signature}/probability"]
                assert got.shape == (2, *hw, 1)
                assert np.all((got >= 0) & (got <= 1))


def test_modulate_then_segment_equals_serving_default(exported):
    for mode in ("graph", "eager"):
        for case in ("a", "b"):
            two = exported["outputs"][f"{mode}/{case}/chain/two_step"]
            one = exported["outputs"][f"{mode}/{case}/chain/one_step"]
            diff = float(np.max(np.abs(two - one)))
            print(f"{mode} {case}: |gamma->segment - serving_default| max {diff:.3g}")
            assert two.shape == one.shape == (2,) + one.shape[1:]
            assert diff <= 1e-6


def test_guide_signatures_match_osmn_guides(exported):
    outputs = exported["outputs"]
    spatial = outputs["graph/a/spatial_guide/spatial_guide"]
    assert spatial.shape == (3, 40, 56, 1)
    assert np.all(spatial[2] == 0)  # empty mask -> all-zero guide
    assert spatial[0, 12, 20, 0] == pytest.approx(1.0)  # peak at each disc's centre
    assert spatial[1, 28, 40, 0] == pytest.approx(1.0)
    visual = outputs["graph/a/visual_guide/visual_guide"]
    assert visual.shape == (3, G, G, 3)
    # RGB output, background = the mean colour: in the model's convention it is the original's
    # guide (background exactly 0).
    image = exported["inputs"]["a/visual_guide/image"][0]
    masks = exported["inputs"]["a/visual_guide/mask"]
    for k in range(3):
        original = guides.visual_guide(image, masks[k]).numpy()
        converted = to_model_input(visual[k]).numpy()
        assert np.max(np.abs(converted - original)) <= GUIDE_TOLERANCE
        assert np.all(converted[original == 0] == 0)
    mean_rgb = np.array(config.MEAN_BGR[::-1], np.float32)
    assert np.all(visual[2] == mean_rgb)  # empty mask -> all mean colour


def test_graph_has_only_stock_tensorflow_ops(exported):
    ops = set(exported["report"]["ops"])
    print("op types:", ", ".join(sorted(ops)))
    assert not ops & FORBIDDEN_OPS
    assert not any("PyFunc" in op for op in ops)
    # Every op is a core op of this TF build (custom ops loaded from a .so have no raw_op).
    assert exported["report"]["ops_without_raw_op"] == []
    # The graph really is the model (and the loop of the guide signatures).
    assert {"Conv2D", "MaxPool", "AvgPool", "Sigmoid", "ScaleAndTranslate", "TopKV2",
            "StatelessWhile"} <= ops


def test_versions_are_refused_unless_overwrite(exported, tmp_path):
    model = exported["model"]
    base = tmp_path / "models"
    first = export_saved_model(model, base, verify=False)
    assert first == base / "1" and next_version(base) == 2
    stamp = (first / "saved_model.pb").stat().st_mtime_ns
    with pytest.raises(UserError, match="already exists"):
        export_saved_model(model, base, version=1, verify=False)
    assert (first / "saved_model.pb").stat().st_mtime_ns == stamp
    with pytest.raises(UserError, match="positive integer"):
        export_saved_model(model, base, version=0, verify=False)
    replaced = export_saved_model(model, base, version=1, overwrite=True, verify=False)
    assert replaced == first and (first / "saved_model.pb").is_file()
    assert existing_versions(base) == [1]
    assert sorted(p.name for p in base.iterdir()) == ["1"]  # nothing half-written left


def test_failed_export_leaves_nothing(exported, tmp_path, monkeypatch):
    import osmn.export.saved_model as saved_model

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(saved_model, "verify_export", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export_saved_model(exported["model"], tmp_path / "models", version=3)
    assert list((tmp_path / "models").iterdir()) == []


def error_lines(stderr: str):
    return [single_error_line(stderr)]


def _run_tool(*args, cwd):
    return subprocess.run([sys.executable, str(REPO / "tools" / "export.py"), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=300)


def test_export_tool_writes_a_version_and_refuses_to_overwrite(tmp_path):
    from osmn.model import save_osmn

    checkpoint = tmp_path / "tiny.keras"
    save_osmn(OSMN({"width_multiplier": TINY_WIDTH}), checkpoint)
    base = tmp_path / "models" / "osmn"
    done = _run_tool("--checkpoint", str(checkpoint), "--export_dir", str(base), "--version",
                     "4", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "checked by reloading" in done.stdout
    assert (base / "4" / "saved_model.pb").is_file()
    again = _run_tool("--checkpoint", str(checkpoint), "--export_dir", str(base), "--version",
                      "4", cwd=tmp_path)
    assert again.returncode == 2
    assert error_lines(again.stderr) == [
        f"error: {base / '4'}: version 4 already exists (pass --overwrite to replace it, "
        "or another --version)"]
    missing = _run_tool("--checkpoint", str(tmp_path / "nope.keras"), "--export_dir", str(base),
                        cwd=tmp_path)
    assert missing.returncode == 2
    assert error_lines(missing.stderr) == [
        f"error: {tmp_path / 'nope.keras'}: model file not found"]
    assert existing_versions(base) == [4]


@pytest.mark.parametrize("switch", ["use_visual_modulator", "use_spatial_modulator"])
def test_ablation_models_export_and_verify(tmp_path, switch):
    """Table 3's ablations export too; `verify` compares serving_default with Keras."""
    model = OSMN({"width_multiplier": TINY_WIDTH, switch: False})
    path = export_saved_model(model, tmp_path / "models", version=1, verify=True)
    loaded = tf.saved_model.load(str(path))
    assert sorted(loaded.signatures) == sorted(SIGNATURES)
    out = loaded.signatures["segment"](
        image=tf.zeros([1, 24, 40, 3]), spatial_guide=tf.zeros([3, 24, 40, 1]),
        gamma=tf.ones([3, 240]))["probability"]
    assert out.shape == (3, 24, 40, 1)  # batch-1 frame broadcast to 3 objects
