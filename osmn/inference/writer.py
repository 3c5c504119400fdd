"""Writing results on a background thread (as Cutie's ResultSaver), atomically per file.

Layout under the output folder `root` (the DAVIS results layout, read by the official evaluator):
    root/<seq>/<frame>.png                  palette label maps
    root/<seq>/<frame>.obj<id>.npy          with `save_scores`: [H, W] float32 probabilities
    root/overlays/<seq>/<frame>.jpg         with `overlay`
    root/overlays/<seq>.gif (and .mp4)      with `overlay`: the overlays as an animation
"""

from __future__ import annotations

import os
import pathlib
import queue
import shutil
import threading
from typing import List, Optional, Sequence

import numpy as np
from PIL import Image

from osmn.io import atomic_save, write_mask
from osmn.inference.overlay import overlay as make_overlay

ANIMATION_FPS = 10  # Display choice: frames per second of the GIF (kept small).
ANIMATION_MAX_WIDTH = 480  # Display choice: GIF frames are shrunk to at most this width.
# The mp4 plays at the source's frame rate and size; a folder of frames has no frame rate, and
# this is DAVIS's (Perazzi et al. 2016: "24fps").
FOLDER_FPS = 24.0
_QUEUE_SIZE = 8  # Frames waiting to be written before `put` blocks (bounds memory).


class ResultWriter:
    """Writes one sequence's results from a background thread.

    Args:
        root: output folder (for the tool, a temporary folder renamed when everything is done).
        sequence: str. Sequence name, the sub-folder.
        palette: [256, 3] uint8 of the output PNGs.
        object_ids: ids in batch order (names the score files).
        overlay: bool. Also write overlay JPEGs and a GIF (and an mp4 when imageio-ffmpeg is
            installed).
        save_scores: bool. Also write each object's probability map as float32 .npy.
        fps: float or None. The source's frame rate, for the mp4 (None: `FOLDER_FPS`).

    Use as a context manager: leaving the block (normally or by an exception) flushes the queue
    and joins the thread; an error of the thread is raised by `put` or on exit.
    """

    def __init__(self, root, sequence: str, palette: np.ndarray, object_ids: Sequence[int],
                 overlay: bool = False, save_scores: bool = False,
                 fps: Optional[float] = None):
        self.root = pathlib.Path(root)
        self.sequence = sequence
        self.palette = np.asarray(palette, np.uint8)
        self.object_ids = tuple(object_ids)
        self.overlay = overlay
        self.save_scores = save_scores
        self.mask_dir = self.root / sequence
        self.mask_dir.mkdir(parents=True, exist_ok=True)
        self.overlay_dir = self.root / "overlays" / sequence
        if overlay:
            self.overlay_dir.mkdir(parents=True, exist_ok=True)
        self._animation: List[Image.Image] = []
        self.fps = float(fps) if fps else FOLDER_FPS
        self._mp4 = None  # imageio writer, opened on the first overlay (mp4 at full size)
        self._mp4_path = self.root / "overlays" / f"{sequence}.mp4"
        self._queue: "queue.Queue" = queue.Queue(maxsize=_QUEUE_SIZE)
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self.mp4_written = False

    def put(self, name: str, frame: np.ndarray, labels: np.ndarray,
            probabilities: Optional[np.ndarray] = None) -> None:
        """Queue one frame's results: frame [H, W, 3] uint8, labels [H, W] uint8, probs [K, H, W]."""
        self._raise_error()
        self._queue.put((name, frame, labels, probabilities))

    def _run(self):
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if self._error is None:
                    self._write(*item)
            except BaseException as error:  # Kept and raised in the main thread.
                self._error = error
            finally:
                self._queue.task_done()

    def _write(self, name, frame, labels, probabilities):
        write_mask(self.mask_dir / f"{name}.png", labels, self.palette)
        if self.save_scores and probabilities is not None:
            for object_id, probability in zip(self.object_ids, probabilities):
                atomic_save(self.mask_dir / f"{name}.obj{object_id}.npy",
                            lambda f, p=probability: np.save(f, np.asarray(p, np.float32)))
        if self.overlay:
            image = Image.fromarray(make_overlay(frame, labels, self.palette))
            atomic_save(self.overlay_dir / f"{name}.jpg", lambda f: image.save(f, format="JPEG"))
            self._append_mp4(np.asarray(image))
            if image.width > ANIMATION_MAX_WIDTH:
                height = round(image.height * ANIMATION_MAX_WIDTH / image.width)
                image = image.resize((ANIMATION_MAX_WIDTH, height), Image.BILINEAR)
            self._animation.append(image)

    def _raise_error(self):
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def close(self) -> None:
        """Flush the queue, stop the thread, write the animations; raise a write error if any."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._raise_error()
        self._close_mp4()
        if self.overlay and self._animation:
            self._write_animations()

    def _append_mp4(self, image: np.ndarray) -> None:
        """Stream one overlay into the mp4 (even size for H.264), if imageio-ffmpeg is there."""
        if self._mp4 is None:
            try:
                import imageio.v2 as imageio  # noqa: PLC0415 (optional dependency)
                import imageio_ffmpeg  # noqa: F401, PLC0415 (checks the ffmpeg plugin exists)
            except ImportError:
                self._mp4 = False
                return
            self._mp4 = imageio.get_writer(str(self._mp4_path), fps=self.fps,
                                           macro_block_size=1)
        if self._mp4 is not False:
            self._mp4.append_data(image[: image.shape[0] // 2 * 2, : image.shape[1] // 2 * 2])

    def _write_animations(self):
        frames, self._animation = self._animation, []
        duration = int(1000 / ANIMATION_FPS)
        atomic_save(self.root / "overlays" / f"{self.sequence}.gif", lambda f: frames[0].save(
            f, format="GIF", save_all=True, append_images=frames[1:], duration=duration, loop=0))

    def _close_mp4(self) -> None:
        if self._mp4 not in (None, False):
            self._mp4.close()
            self.mp4_written = True

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:  # Stop the thread, but let the original error propagate; no animations.
            self._animation = []
            try:
                self.close()
            except Exception:
                pass
        return False


def publish_sequence(temp_root: pathlib.Path, output: pathlib.Path, sequence: str):
    """Move a finished sequence from the temp folder into the output folder.

    A new `output` is the renamed temp folder; into an existing one only this sequence's
    masks and overlays are moved (replacing an earlier run of the same sequence), so other
    sequences already in `output` are kept. Nothing is half-written: each move is a rename.
    """
    if not output.exists():
        os.replace(temp_root, output)
        return
    moves = [(temp_root / sequence, output / sequence)]
    overlays = temp_root / "overlays"
    if overlays.exists():
        (output / "overlays").mkdir(exist_ok=True)
        moves += [(p, output / "overlays" / p.name) for p in overlays.iterdir()]
    for source, target in moves:
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(source, target)
    shutil.rmtree(temp_root)
