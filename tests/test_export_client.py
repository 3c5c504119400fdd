"""The TF Serving REST client (tools/serve_client.py) against a local stand-in of TF Serving.

TF Serving cannot be installed here, so `FakeTFServing` answers its documented REST predict
protocol (https://www.tensorflow.org/tfx/serving/api_rest) over the exported SavedModel loaded
with `tf.saved_model.load`: `POST /v1/models/<name>[/versions/<N>]:predict` with
`signature_name` and `inputs` (columnar) or `instances` (row), answered by `outputs` /
`predictions` (the name dropped for a single output) or `{"error": ...}`. It listens on
127.0.0.1 only and answers at most MAX_REQUESTS predict requests.
"""

import http.server
import json
import pathlib
import re
import subprocess
import sys
import threading
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from osmn.errors import UserError
from osmn.export import ServingBackend, ServingClient, export_saved_model
from osmn.inference import LocalEngine, VideoSegmenter, davis_palette, read_mask, write_mask
from test_export import lively_tiny_model

REPO = pathlib.Path(__file__).resolve().parents[1]
MAX_REQUESTS = 100
MAX_BODY_BYTES = 64 * 2 ** 20
FRAMES = 4
SIZE = (170, 96)  # (width, height): the sample's 854x480 shrunk 5x to keep the test fast.


class FakeTFServing:
    """TF Serving's REST predict API over SavedModels, on 127.0.0.1 (a test stand-in).

    Args:
        model_name: str, the served name.
        versions: {int: SavedModel path}; requests without a version get the highest.

    Attributes:
        url: "http://127.0.0.1:<port>".
        log: one dict per predict request: path, signature, request format, input shapes.
    """

    def __init__(self, model_name, versions):
        self.model_name = model_name
        self.loaded = {v: tf.saved_model.load(str(p)) for v, p in versions.items()}
        self.log = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _answer(self, status, payload):
                data = json.dumps(payload).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                try:
                    self._answer(*server.predict(self.path, self._body()))
                except Exception as error:  # a bug in the stand-in: report it, do not hang
                    self._answer(500, {"error": f"{type(error).__name__}: {error}"})

            def do_GET(self):
                status = server.status(self.path)
                self._answer(200 if status else 404, status or {"error": "not found"})

            def _body(self):
                length = int(self.headers.get("Content-Length", 0))
                return None if length > MAX_BODY_BYTES else self.rfile.read(length)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)

    def status(self, path):
        """GET /v1/models/<name>: the model status answer."""
        if path != f"/v1/models/{self.model_name}":
            return None
        return {"model_version_status": [
            {"version": str(v), "state": "AVAILABLE",
             "status": {"error_code": "OK", "error_message": ""}} for v in sorted(self.loaded)]}

    def predict(self, path, body):
        """(HTTP status, JSON answer) of one predict request."""
        match = re.fullmatch(r"/v1/models/([^/:]+)(?:/versions/(\d+))?:predict", path)
        if match is None:
            return 404, {"error": f"Malformed request: POST {path}"}
        if len(self.log) >= MAX_REQUESTS:
            return 503, {"error": f"test server: more than {MAX_REQUESTS} requests"}
        if body is None:
            return 413, {"error": "request body too large"}
        name, version = match.group(1), match.group(2)
        if name != self.model_name:
            return 404, {"error": f"Servable not found for request: Latest({name})"}
        version = max(self.loaded) if version is None else int(version)
        if version not in self.loaded:
            return 404, {"error": f"Servable not found for request: Specific({name}, {version})"}
        try:
            request = json.loads(body)
        except ValueError as error:
            return 400, {"error": f"JSON Parse error: {error}"}
        signature = request.get("signature_name", "serving_default")
        functions = self.loaded[version].signatures
        if signature not in functions:
            return 400, {"error": f'Serving signature name: "{signature}" not found in '
                                  "signature def"}
        function = functions[signature]
        specs = function.structured_input_signature[1]
        if ("inputs" in request) == ("instances" in request):
            return 400, {"error": "Missing 'inputs' or 'instances' key"
                         if "inputs" not in request else "Both 'inputs' and 'instances' given"}
        row_format = "instances" in request
        if row_format:
            rows = request["instances"]
            if rows and isinstance(rows[0], dict):
                values = {k: [row[k] for row in rows] for k in rows[0]}
            else:
                values = {next(iter(specs)): rows} if len(specs) == 1 else None
        else:
            values = request["inputs"]
            if not isinstance(values, dict):
                values = {next(iter(specs)): values} if len(specs) == 1 else None
        if values is None or set(values) != set(specs):
            return 400, {"error": f"inputs must be named {sorted(specs)}"}
        tensors = {k: tf.constant(np.asarray(v, specs[k].dtype.as_numpy_dtype))
                   for k, v in values.items()}
        self.log.append({"path": path, "signature": signature, "row_format": row_format,
                         "shapes": {k: list(t.shape) for k, t in tensors.items()}})
        try:
            outputs = {k: v.numpy() for k, v in function(**tensors).items()}
        except (tf.errors.OpError, ValueError, TypeError) as error:
            return 400, {"error": _status_message(error)}
        if row_format:
            if len(outputs) == 1:
                return 200, {"predictions": next(iter(outputs.values())).tolist()}
            batch = len(next(iter(outputs.values())))
            return 200, {"predictions": [{k: v[i].tolist() for k, v in outputs.items()}
                                         for i in range(batch)]}
        if len(outputs) == 1:
            return 200, {"outputs": next(iter(outputs.values())).tolist()}
        return 200, {"outputs": {k: v.tolist() for k, v in outputs.items()}}


def _status_message(error) -> str:
    """The C++ status message TF Serving would send, without eager Python's preamble lines."""
    lines = str(getattr(error, "message", error)).splitlines()
    preamble = ("Graph execution error:", "Detected at node", "<stack traces unavailable>")
    kept = [line for line in lines if line.strip() and not line.startswith(preamble)]
    return kept[0] if kept else str(error)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("serving")
    model = lively_tiny_model()
    path = export_saved_model(model, workdir / "models" / "osmn", version=1, verify=False)
    with FakeTFServing("osmn", {1: path}) as server:
        yield {"model": model, "server": server, "workdir": workdir}


@pytest.fixture(scope="module")
def small_video(davis_sample_module, tmp_path_factory):
    """4 frames of the sample, shrunk to 170x96, and a 2-object palette mask (ids 1 and 3).

    The car's mask is split at its median column: left half id 1, right half id 3.
    """
    root = tmp_path_factory.mktemp("video")
    frames_dir = root / "frames"
    frames_dir.mkdir()
    sequence = davis_sample_module
    for i in range(FRAMES):
        with Image.open(sequence["frames"] / f"{i:05d}.jpg") as image:
            image.convert("RGB").resize(SIZE, Image.BILINEAR).save(frames_dir / f"{i:05d}.png")
    with Image.open(sequence["masks"] / "00000.png") as mask:
        car = np.asarray(mask.convert("L").resize(SIZE, Image.NEAREST)) > 0
    columns = np.nonzero(car)[1]
    split = int(np.median(columns))
    labels = np.zeros(car.shape, np.uint8)
    labels[car] = 1
    labels[car & (np.arange(SIZE[0])[None, :] > split)] = 3
    mask_path = root / "first.png"
    write_mask(mask_path, labels)
    return {"frames": frames_dir, "mask": mask_path, "labels": labels}


@pytest.fixture(scope="module")
def davis_sample_module():
    sample = REPO / "data" / "davis_sample"
    return {"frames": sample / "JPEGImages" / "480p" / "car-shadow",
            "masks": sample / "Annotations" / "480p" / "car-shadow"}


def keras_reference(model, frames_dir, labels):
    """Label maps of `osmn.inference.VideoSegmenter` (tools/infer.py's algorithm) on the frames,
    in float32 as the export computes."""
    frames = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(frames_dir.iterdir())]
    segmenter = VideoSegmenter(LocalEngine(model, precision="float32"))
    results = [segmenter.start(frames[0], labels).labels]
    results += [segmenter.step(frame).labels for frame in frames[1:]]
    return results


def test_serve_client_segments_the_video_like_infer(served, small_video, tmp_path):
    server = served["server"]
    server.log.clear()
    output = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, str(REPO / "tools" / "serve_client.py"), "--server", server.url,
         "--model_name", "osmn", "--video", str(small_video["frames"]), "--mask",
         str(small_video["mask"]), "--output", str(output)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    print(done.stdout.strip())
    requests = 2 + 2 * (FRAMES - 1)
    assert f"{FRAMES} frames; 2 object(s) (ids 1, 3); {requests} requests" in done.stdout

    # The call pattern: guides + gamma once for both objects, then 2 requests per frame.
    signatures = [entry["signature"] for entry in server.log]
    assert signatures == ["visual_guide", "gamma"] + ["spatial_guide", "segment"] * (FRAMES - 1)
    assert {entry["path"] for entry in server.log} == {"/v1/models/osmn:predict"}
    assert server.log[1]["shapes"] == {"visual_guide": [2, 224, 224, 3]}
    h, w = SIZE[1], SIZE[0]
    assert server.log[3]["shapes"] == {"image": [1, h, w, 3], "spatial_guide": [2, h, w, 1],
                                       "gamma": [2, 240]}

    # tools/infer.py's output format: OUTPUT/<sequence>/<frame>.png palette label maps.
    pngs = sorted((output / "frames").iterdir())
    assert [p.name for p in pngs] == [f"{i:05d}.png" for i in range(FRAMES)]
    written = []
    for png in pngs:
        with Image.open(png) as image:
            assert image.mode == "P" and image.size == SIZE
            palette = np.asarray(image.getpalette()[:768], np.uint8).reshape(256, 3)
        assert np.array_equal(palette, davis_palette())
        written.append(read_mask(png)[0])
    assert np.array_equal(written[0], small_video["labels"])
    assert set(np.unique(np.stack(written))) <= {0, 1, 3}

    # Same label maps as the Keras model through osmn.inference (tools/infer.py's algorithm);
    # the served probabilities equal the Keras ones to ~1e-6, so at most a pixel may flip.
    reference = keras_reference(served["model"], small_video["frames"], small_video["labels"])
    mismatched = sum(int(np.sum(a != b)) for a, b in zip(written, reference))
    print(f"pixels differing from the Keras VideoSegmenter: {mismatched} of {FRAMES * h * w}")
    assert mismatched <= 0.001 * FRAMES * h * w
    for labels in written[1:]:  # the lively model finds both objects somewhere
        assert {1, 3} <= set(np.unique(labels))


def test_served_segmenter_keeps_last_guide_and_follows_size_changes(served, small_video):
    """The served backend runs the one video algorithm (VideoSegmenter), size changes included."""
    client = ServingClient(served["server"].url, "osmn", version=1)
    segmenter = VideoSegmenter(ServingBackend(client), keep_last_guide=True)
    frames = [np.asarray(Image.open(p).convert("RGB"))
              for p in sorted(small_video["frames"].iterdir())]
    first = segmenter.start(frames[0], small_video["labels"])
    assert first.probabilities.shape == (2, SIZE[1], SIZE[0])
    assert segmenter.gammas.shape == (2, 240)
    result = segmenter.step(frames[1])
    assert result.probabilities.shape == (2, SIZE[1], SIZE[0]) and result.labels.dtype == np.uint8
    assert served["server"].log[-1]["path"] == "/v1/models/osmn/versions/1:predict"
    # A smaller frame: the previous masks are resized to it, as for a local model.
    assert segmenter.step(frames[1][:50]).labels.shape == (50, SIZE[0])
    assert served["server"].log[-1]["shapes"]["image"] == [1, 50, SIZE[0], 3]


def test_client_errors_are_one_line_user_errors(served):
    url = served["server"].url
    with pytest.raises(UserError, match=r"HTTP 404: Servable not found .*Specific\(osmn, 7\)"):
        ServingClient(url, "osmn", version=7).predict("gamma", {"visual_guide": []}, "gamma")
    with pytest.raises(UserError, match=r"HTTP 404: Servable not found .*Latest\(other\)"):
        ServingClient(url, "other").predict("gamma", {"visual_guide": []}, "gamma")
    with pytest.raises(UserError, match='HTTP 400: Serving signature name: "nope"'):
        ServingClient(url, "osmn").predict("nope", {"x": [1.0]}, "y")
    same_size = r"HTTP 400: assertion failed: \[image and spatial_guide must have the same"
    with pytest.raises(UserError, match=same_size):
        ServingClient(url, "osmn").predict(
            "segment", {"image": np.zeros((1, 40, 48, 3)),
                        "spatial_guide": np.zeros((1, 40, 40, 1)), "gamma": np.ones((1, 240))},
            "probability")
    with pytest.raises(UserError, match="HTTP 400: assertion failed: \\[image batch must be 1"):
        ServingClient(url, "osmn").predict(
            "segment", {"image": np.zeros((3, 40, 40, 3)),
                        "spatial_guide": np.zeros((2, 40, 40, 1)), "gamma": np.ones((2, 240))},
            "probability")
    # A closed port: nothing listens there once the probe socket is closed.
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(UserError, match="cannot reach the TF Serving REST API"):
        ServingClient(f"http://127.0.0.1:{port}", "osmn", timeout=5).predict(
            "gamma", {"visual_guide": []}, "gamma")
    with pytest.raises(UserError, match="--server must start with http"):
        ServingClient("localhost:8501", "osmn")


def test_rest_client_module_needs_no_tensorflow():
    code = ("import sys; import osmn.export.rest_client; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def _post(url, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_documented_request_bodies_row_and_columnar(served):
    """The REST bodies of docs/serving.md, in both formats, give the same numbers."""
    url = served["server"].url + "/v1/models/osmn:predict"
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (32, 40, 3)).tolist()
    mask = np.zeros((32, 40), np.float32)
    mask[8:21, 10:31] = 1  # odd sides: the median (guide peak) falls on a pixel
    vg = _post(url, {"signature_name": "visual_guide",
                     "inputs": {"image": [image], "mask": [mask.tolist()]}})["outputs"]
    assert np.asarray(vg).shape == (1, 224, 224, 3)
    columnar = _post(url, {"signature_name": "gamma", "inputs": {"visual_guide": vg}})
    row = _post(url, {"signature_name": "gamma", "instances": [{"visual_guide": vg[0]}]})
    gamma = np.asarray(columnar["outputs"], np.float32)
    assert gamma.shape == (1, 240)
    np.testing.assert_array_equal(np.asarray(row["predictions"], np.float32), gamma)
    guide = _post(url, {"signature_name": "spatial_guide", "inputs": {"mask": [mask.tolist()]}})
    guide = np.asarray(guide["outputs"], np.float32)
    assert guide.shape == (1, 32, 40, 1) and guide.max() == pytest.approx(1.0)
    segment = _post(url, {"signature_name": "segment", "inputs": {
        "image": [image], "spatial_guide": guide.tolist(), "gamma": gamma.tolist()}})
    default = _post(url, {"instances": [{"image": image, "visual_guide": vg[0],
                                         "spatial_guide": guide[0].tolist()}]})
    probability = np.asarray(segment["outputs"], np.float32)
    assert probability.shape == (1, 32, 40, 1)
    np.testing.assert_allclose(np.asarray(default["predictions"], np.float32), probability,
                               atol=1e-6)
