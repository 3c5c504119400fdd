"""The web app end to end: `tools/app.py` started on 127.0.0.1 by the test, driven through
Gradio's own client (`gradio_client`) and through a real headless browser (Debian's chromium
with its chromedriver, by Selenium).

The server segments at a working size of 214x120 (`--im_size`), and the client uploads the
sample's first 8 frames, so that the comparison with `tools/infer.py` stays short.
Set OSMN_UPDATE_SCREENSHOT=1 to write the browser's screenshot to docs/app_screenshot.png.
"""

import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile

import numpy as np
import pytest

from conftest import DAVIS_SAMPLE, REPO, SAMPLE_SEQUENCE

pytestmark = pytest.mark.slow  # a server, a browser, and tools/infer.py: ~3 min on 2 cores

IM_SIZE = "214x120"
CLIENT_FRAMES = 8
STARTUP_SECONDS = 300  # TF import and model load on a loaded 2-core machine
FIRST_MASK = DAVIS_SAMPLE / "Annotations" / "480p" / SAMPLE_SEQUENCE / "00000.png"
SCREENSHOT = REPO / "docs" / "app_screenshot.png"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    # The server's own temp folder, so that the tests can see its sessions' folders go.
    env = dict(os.environ, GRADIO_TEMP_DIR=str(tmp_path_factory.mktemp("gradio")),
               TMPDIR=str(tmp_path_factory.mktemp("server_tmp")))
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, str(REPO / "tools" / "app.py"), f"--port={port}",
             f"--im_size={IM_SIZE}", "--max_frames=100"],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the app did not start:\n{log.read_text()[-3000:]}")
            time.sleep(1)
    yield url, pathlib.Path(env["TMPDIR"])
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client  # noqa: PLC0415
    return Client(server[0], verbose=False)


def _editor(value):
    """An editor value returned by the server, sent back as an input."""
    from gradio_client import handle_file  # noqa: PLC0415
    return {"background": handle_file(value["background"]),
            "layers": [handle_file(p) for p in value["layers"]], "composite": None, "id": None}


def _zip_labels(path):
    from PIL import Image  # noqa: PLC0415
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
        return {n: np.asarray(Image.open(archive.open(n))) for n in names}


def _layer_file(labels, folder):
    """A paint layer (what the editor would send) for `labels`, as a PNG file."""
    from PIL import Image  # noqa: PLC0415
    from osmn.app.painting import layer_from_labels  # noqa: PLC0415
    path = pathlib.Path(folder) / f"layer{len(list(pathlib.Path(folder).iterdir()))}.png"
    Image.fromarray(layer_from_labels(labels)).save(path)
    return str(path)


def test_client_upload_mask_segment_download_matches_infer(client, tmp_path):
    from gradio_client import handle_file  # noqa: PLC0415
    from PIL import Image  # noqa: PLC0415
    frames = tmp_path / SAMPLE_SEQUENCE
    frames.mkdir()
    upload = tmp_path / f"{SAMPLE_SEQUENCE}.zip"
    with zipfile.ZipFile(upload, "w") as archive:
        for path in sorted((DAVIS_SAMPLE / "JPEGImages" / "480p" / SAMPLE_SEQUENCE).iterdir()
                           )[:CLIENT_FRAMES]:
            shutil.copy(path, frames / path.name)
            archive.write(path, path.name)
    opened = client.predict([handle_file(str(upload))], api_name="/open_upload")
    assert f"{CLIENT_FRAMES} frames, 854x480, 24 fps" in opened[3]
    editor, status = client.predict(handle_file(str(FIRST_MASK)), 0, api_name="/load_mask")
    assert "Mask loaded" in status
    result = client.predict(0, _editor(editor), api_name="/segment")
    status, video, downloads = result[3], result[4], result[5]
    assert status.startswith("Done") and f"{CLIENT_FRAMES} frames with masks" in status
    zip_path = next(p for p in downloads if p.endswith(".zip"))
    mp4_path = next(p for p in downloads if p.endswith(".mp4"))
    assert video.endswith(".mp4")

    # The same video and mask through tools/infer.py: the same masks, pixel for pixel.
    out = tmp_path / "out"
    subprocess.run([sys.executable, str(REPO / "tools" / "infer.py"), f"--video={frames}",
                    f"--mask={FIRST_MASK}", f"--output={out}", f"--im_size={IM_SIZE}"],
                   check=True, cwd=REPO, capture_output=True)
    got = _zip_labels(zip_path)
    assert sorted(got) == [f"{SAMPLE_SEQUENCE}/{i:05d}.png" for i in range(CLIENT_FRAMES)]
    for name, labels in got.items():
        expected = np.asarray(Image.open(out / name))
        np.testing.assert_array_equal(labels, expected, err_msg=name)

    import imageio.v2 as imageio  # noqa: PLC0415
    with imageio.get_reader(mp4_path) as reader:
        assert reader.get_meta_data()["fps"] == 24.0
        decoded = [frame for frame in reader]  # list() would ask len(): inf
    assert len(decoded) == CLIENT_FRAMES and decoded[0].shape == (480, 854, 3)

    # A correction at frame 4: frames 0-3 kept, 4 is the corrected mask, 5.. follow it.
    t = 4
    corrected = got[f"{SAMPLE_SEQUENCE}/{t:05d}.png"].copy()
    corrected[:, :500] = 0  # erase the car's rear half
    layers = tmp_path / "layers"
    layers.mkdir()
    shown = client.predict(t, api_name="/show_frame")
    editor = _editor(shown[1])
    editor["layers"] = [handle_file(_layer_file(corrected, layers))]
    result = client.predict(t, editor, api_name="/segment")
    assert result[3].startswith("Done: frames 5-7 segmented from frame 4")
    again = _zip_labels(next(p for p in result[5] if p.endswith(".zip")))
    for index in range(t):
        name = f"{SAMPLE_SEQUENCE}/{index:05d}.png"
        np.testing.assert_array_equal(again[name], got[name])
    np.testing.assert_array_equal(again[f"{SAMPLE_SEQUENCE}/{t:05d}.png"], corrected)
    later = f"{SAMPLE_SEQUENCE}/{t + 1:05d}.png"
    assert (again[later][:, :450] > 0).sum() < (got[later][:, :450] > 0).sum()


def test_client_uploads_and_bad_input_messages_server_lives_on(client, tmp_path):
    from gradio_client import handle_file  # noqa: PLC0415
    from gradio_client.exceptions import AppError  # noqa: PLC0415
    text = tmp_path / "notes.txt"
    text.write_text("not a video")
    with pytest.raises(AppError, match="not a video"):
        client.predict([handle_file(str(text))], api_name="/open_upload")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(AppError, match="empty.mp4"):
        client.predict([handle_file(str(empty))], api_name="/open_upload")
    with pytest.raises(AppError, match="the folder holds no frames"):
        client.predict([handle_file(str(text))], api_name="/open_folder")
    folder = [handle_file(str(p)) for p in sorted(
        (DAVIS_SAMPLE / "JPEGImages" / "480p" / SAMPLE_SEQUENCE).iterdir())[:3]] + [
        handle_file(str(text))]
    opened = client.predict(folder, api_name="/open_folder")
    assert "3 frames, 854x480" in opened[3]
    assert client.predict(2, api_name="/show_frame")[3] == "Frame 2"  # frames stay readable
    import imageio.v2 as imageio  # noqa: PLC0415
    clip = tmp_path / "clip.mp4"
    with imageio.get_writer(str(clip), fps=12, macro_block_size=1) as writer:
        for path in sorted((DAVIS_SAMPLE / "JPEGImages" / "480p" / SAMPLE_SEQUENCE).iterdir())[:4]:
            writer.append_data(imageio.imread(path))
    opened = client.predict([handle_file(str(clip))], api_name="/open_upload")
    assert "**clip**: 4 frames, 854x480, 12 fps" in opened[3]
    assert client.predict(3, api_name="/show_frame")[3] == "Frame 3"
    one = client.predict([handle_file(str(FIRST_MASK.parent.parent.parent.parent / "JPEGImages"
                                           / "480p" / SAMPLE_SEQUENCE / "00000.jpg"))],
                         api_name="/open_upload")
    assert "1 frames" in one[3]
    editor, _ = client.predict(handle_file(str(FIRST_MASK)), 0, api_name="/load_mask")
    result = client.predict(0, _editor(editor), api_name="/segment")  # nothing after frame 0
    assert "1 frames with masks (0-0)" in result[3]
    client.predict(api_name="/open_sample")
    with pytest.raises(AppError, match="not a video"):  # a bad upload keeps the open video
        client.predict([handle_file(str(text))], api_name="/open_upload")
    assert client.predict(39, api_name="/show_frame")[3] == "Frame 39"
    with pytest.raises(AppError, match="greater than maximum value 39"):  # Gradio's check
        client.predict(40, api_name="/show_frame")
    small = tmp_path / "small.png"
    from PIL import Image  # noqa: PLC0415
    Image.fromarray(np.ones((10, 10), np.uint8), mode="L").save(small)
    with pytest.raises(AppError, match="differs from the frame size"):
        client.predict(handle_file(str(small)), 0, api_name="/load_mask")
    layers = tmp_path / "layers"
    layers.mkdir()
    shown = client.predict(0, api_name="/show_frame")
    editor = _editor(shown[1])
    editor["layers"] = [handle_file(_layer_file(np.zeros((480, 854), np.uint8), layers))]
    with pytest.raises(AppError, match="holds no object"):
        client.predict(0, editor, api_name="/segment")

    # Two Segments at once on one video: the second is refused; a Cancel stops the first.
    editor, _ = client.predict(handle_file(str(FIRST_MASK)), 0, api_name="/load_mask")
    first = client.submit(0, _editor(editor), api_name="/segment")
    deadline = time.monotonic() + 120
    while not (first.status().progress_data or first.done()) and time.monotonic() < deadline:
        time.sleep(0.2)
    with pytest.raises(AppError, match="already running"):
        client.predict(0, _editor(editor), api_name="/segment")
    client.predict(api_name="/cancel")
    status = first.result()[3]
    assert status.startswith("Cancelled: frames 1-"), status
    assert "frames with masks (0-" in status


def test_bad_flag_is_one_line_and_exit_code_2():
    done = subprocess.run([sys.executable, str(REPO / "tools" / "app.py"), "--port=0"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == "error: --port: must be in 1..65535, got 0"


def _browser():
    """Debian's chromium through its chromedriver; None when they are missing."""
    chromium = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        return None
    from selenium import webdriver  # noqa: PLC0415
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync",
                     f"--user-data-dir={tempfile.mkdtemp(prefix='osmn-chromium-')}",
                     "--window-size=1280,1400", "--hide-scrollbars"]:
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(driver), options=options)


def _wait_for(driver, condition, what, seconds=240):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    try:
        driver.save_screenshot(str(pathlib.Path(tempfile.gettempdir()) / "osmn_app_failure.png"))
    except Exception:  # noqa: BLE001 (the browser may be gone)
        pass
    pytest.fail(f"timed out waiting for {what}")


def test_browser_open_sample_box_grabcut_segment(server, tmp_path):
    url, server_tmp = server
    before = set(server_tmp.glob("osmn-app-*"))
    driver = _browser()
    if driver is None:
        message = "chromium and chromedriver are needed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium.webdriver.common.action_chains import ActionChains  # noqa: PLC0415
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    def status():
        return driver.find_element(By.ID, "status").text

    try:
        driver.get(url)
        _wait_for(driver, lambda: driver.find_elements(By.ID, "open-sample"), "the page")
        driver.find_element(By.ID, "open-sample").click()
        _wait_for(driver, lambda: "Opened" in status(), "the sample to open")
        canvas = _wait_for(driver, lambda: [c for c in driver.find_elements(
            By.CSS_SELECTOR, "#editor canvas") if c.is_displayed()], "the editor's canvas")[0]
        time.sleep(1)  # the frame is drawn into the canvas
        # The frame is shown centred in the canvas at the zoom the editor displays ("60%").
        zoom = float(driver.find_element(
            By.CSS_SELECTOR, "#editor .zoom-number span").text.rstrip("%")) / 100
        width, height = canvas.size["width"], canvas.size["height"]

        def offset(x, y):  # frame pixel -> offset from the canvas centre, in CSS pixels
            return round((x - 427) * zoom), round((y - 240) * zoom)
        # A box around the car (frame 0: x 330-650, y 150-330) drawn as four brush strokes
        # with real pointer events, in object 1's colour (the brush's default).
        corners = [(300, 110), (690, 110), (690, 350), (300, 350), (300, 110)]
        actions = ActionChains(driver, duration=20)
        actions.move_to_element_with_offset(canvas, *offset(*corners[0])).click_and_hold()
        for (xa, ya), (xb, yb) in zip(corners, corners[1:]):
            for k in range(1, 9):
                actions.move_to_element_with_offset(
                    canvas, *offset(xa + (xb - xa) * k / 8, ya + (yb - ya) * k / 8))
        actions.release().perform()
        assert abs(offset(854, 480)[0]) <= width / 2 and abs(offset(854, 480)[1]) <= height / 2
        time.sleep(1)
        driver.find_element(By.ID, "grabcut").click()
        _wait_for(driver, lambda: "GrabCut filled object(s) 1" in status(), "GrabCut")
        time.sleep(1)
        driver.find_element(By.ID, "segment").click()
        _wait_for(driver, lambda: status().startswith("Done"), "the segmentation")
        _wait_for(driver, lambda: [v for v in driver.find_elements(By.CSS_SELECTOR, "#video video")
                                   if v.get_attribute("src")], "the overlay video")
        links = _wait_for(driver, lambda: [a.get_attribute("href") or "" for a in
                                           driver.find_elements(By.CSS_SELECTOR, "#downloads a")
                                           if (a.get_attribute("href") or "").endswith(
                                               (".zip", ".mp4"))], "the downloads")
        assert any(link.endswith(".zip") for link in links)
        assert any(link.endswith(".mp4") for link in links)
        assert "40 frames with masks (0-39)" in status()
        shot = tmp_path / "app.png"
        driver.save_screenshot(str(shot))
        if os.environ.get("OSMN_UPDATE_SCREENSHOT"):
            from PIL import Image  # noqa: PLC0415
            with Image.open(shot) as image:
                small = image.convert("RGB").resize((image.width // 2, image.height // 2),
                                                    Image.LANCZOS)
                small.quantize(128).save(SCREENSHOT, optimize=True)
        opened = set(server_tmp.glob("osmn-app-*")) - before
        assert len(opened) == 1  # this tab's session folder
    finally:
        driver.quit()
    # Closing the tab ends its session: its temp folder is removed.
    _wait_for(driver, lambda: not any(p.exists() for p in opened), "the session's cleanup", 120)
