"""One interactive video: its frames, a mask per frame, propagation from any frame, corrections.

The per-video state behind the web app (`osmn/app/`), usable without it:

* `open_frames(path, workdir, max_frames)` opens a folder of frames, a zip of frames or a video
  file, refusing videos longer than `max_frames` before they fill the memory (a video file's
  frames are decoded once into a memory-mapped file in `workdir`, so RAM does not grow with
  the video's length);
* `SegmentationSession.propagate(t, labels)` segments frames t+1.. from the mask of frame t:
  the `VideoSegmenter` is restarted at t, so frame t and `labels` become every object's visual
  guide (the crop of frame t) and the source of frame t+1's spatial guide. Frames before t keep
  their masks; frames after t get new ones; a cancel flag stops between two frames;
* a correction is the same call: repaint the mask of frame t, propagate from t;
* `write_masks_zip` / `write_overlay_mp4` write the results (DAVIS layout zip, overlay video at
  the source's frame rate and size) atomically: temp file in the same folder, then rename.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
import threading
import time
import zipfile
from typing import Callable, List, Optional

import numpy as np

from osmn.config import MAX_VIDEO_FRAMES
from osmn.errors import UserError
from osmn.inference.frames import (FRAME_NAME_DIGITS, IMAGE_SUFFIXES, VIDEO_SUFFIXES,
                                   FrameSource, _imageio)
from osmn.inference.masks import atomic_save, check_mask, davis_palette, write_mask
from osmn.inference.overlay import overlay as make_overlay

FOLDER_FPS = 24.0  # Frame rate given to a folder of frames, which has none (DAVIS was shot at 24).
GRABCUT_MARGIN = 0.25  # GrabCut sees the box plus 25% of its longer side around it (display
GRABCUT_MIN_MARGIN = 16  # choice, for speed), at least 16 pixels.


def make_segmenter(model, work_size=None, keep_last_guide: bool = False):
    """The one place where the session builds its per-video segmenter."""
    from osmn.inference.video_segmenter import VideoSegmenter  # noqa: PLC0415 (imports TF)
    return VideoSegmenter(model, keep_last_guide=keep_last_guide, work_size=work_size)


class VideoFileFrames:
    """A video file's frames, decoded once into a memory-mapped array in `workdir`.

    Same interface as `FrameSource` (`names`, `len`, `frame(i)`, `file(i)`), plus `fps`.

    Raises:
        UserError: unreadable video, no frames, more than `max_frames` frames, frames of
            different sizes.
    """

    def __init__(self, path, workdir, max_frames: int = MAX_VIDEO_FRAMES):
        self.path = pathlib.Path(path)
        self.is_folder = False
        imageio = _imageio()
        raw = pathlib.Path(workdir) / "frames.raw"
        shape = None
        count = 0
        try:
            with imageio.get_reader(str(self.path)) as reader:
                meta = reader.get_meta_data()
                self.fps = float(meta.get("fps") or FOLDER_FPS)
                estimate = meta.get("duration", 0) * self.fps
                if estimate > max_frames + 1:  # refuse before decoding anything
                    raise UserError(f"{self.path.name}: about {estimate:.0f} frames; the limit "
                                    f"is {max_frames}")
                with open(raw, "wb") as out:
                    for frame in reader:
                        frame = np.ascontiguousarray(np.asarray(frame, np.uint8)[..., :3])
                        if shape is None:
                            shape = frame.shape
                        elif frame.shape != shape:
                            raise UserError(f"{self.path.name}: frame {count} has another size")
                        count += 1
                        if count > max_frames:
                            raise UserError(f"{self.path.name}: more than {max_frames} frames; "
                                            f"the limit is {max_frames}")
                        out.write(frame.tobytes())
        except UserError:
            raw.unlink(missing_ok=True)
            raise
        except Exception as error:
            raw.unlink(missing_ok=True)
            raise UserError(f"{self.path.name}: not a readable video "
                            f"({type(error).__name__})") from error
        if count == 0:
            raw.unlink(missing_ok=True)
            raise UserError(f"{self.path.name}: the video has no frames")
        self._frames = np.memmap(raw, np.uint8, mode="r", shape=(count,) + shape)
        self.names = [f"{i:0{FRAME_NAME_DIGITS}d}" for i in range(count)]

    def __len__(self) -> int:
        return len(self.names)

    def frame(self, index: int) -> np.ndarray:
        return np.array(self._frames[index])

    def file(self, index: int) -> str:
        return f"{self.path.name} frame {index}"

    def close(self) -> None:
        self._frames = None


def _extract_zip(path: pathlib.Path, workdir: pathlib.Path, max_frames: int) -> pathlib.Path:
    """The image files of a zip, flattened into `workdir/frames` (names must be unique)."""
    target = workdir / "frames"
    target.mkdir()
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()
                       and pathlib.PurePosixPath(m.filename).suffix.lower() in IMAGE_SUFFIXES
                       and not pathlib.PurePosixPath(m.filename).name.startswith(".")]
            if len(members) > max_frames:
                raise UserError(f"{path.name}: {len(members)} frames; the limit is {max_frames}")
            for member in members:
                # Only the base name is used, so no member can write outside `target`.
                name = pathlib.PurePosixPath(member.filename).name
                if (target / name).exists():
                    raise UserError(f"{path.name}: two frames named {name}")
                with archive.open(member) as src, open(target / name, "wb") as dst:
                    dst.write(src.read())
    except zipfile.BadZipFile as error:
        raise UserError(f"{path.name}: not a readable zip file") from error
    if not members:
        raise UserError(f"{path.name}: the zip holds no .jpg/.jpeg/.png frames")
    return target


def open_frames(path, workdir, max_frames: int = MAX_VIDEO_FRAMES):
    """Open a folder of frames, a zip of frames or a video file.

    Returns:
        a `FrameSource` (folders, zips; with `fps` = FOLDER_FPS) or a `VideoFileFrames`.

    Raises:
        UserError: anything else, no frames, more than `max_frames` frames.
    """
    path = pathlib.Path(path)
    workdir = pathlib.Path(workdir)
    if path.is_file() and path.suffix.lower() == ".zip":
        path = _extract_zip(path, workdir, max_frames)
    if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        return VideoFileFrames(path, workdir, max_frames)
    if path.is_file():
        raise UserError(f"{path.name}: not a video ({', '.join(VIDEO_SUFFIXES)}), a zip of "
                        "frames or a folder of frames")
    source = FrameSource(path)
    if len(source) > max_frames:
        raise UserError(f"{path.name}: {len(source)} frames; the limit is {max_frames}")
    source.fps = FOLDER_FPS
    return source


class SegmentationSession:
    """Masks of one video, propagated and corrected from any frame.

    Args:
        frames: `FrameSource` or `VideoFileFrames` (`names`, `len`, `frame(i)`).
        model: an `osmn.inference.LocalEngine` or `osmn.model.OSMN` (shared; the session builds
            its own segmenter from it).
        work_size: optional (width, height) working size (`VideoSegmenter`).
        palette: [256, 3] uint8 of the written masks. Defaults to the DAVIS palette.
        keep_last_guide: as `VideoSegmenter`.

    Attributes:
        masks: list, per frame, of [H, W] uint8 labels or None (not segmented).
        references: dict frame index -> the labels a propagation started from (the user's).
        cancel: threading.Event; set it to stop a running `propagate` after the current frame.
        seconds_per_frame: float. Mean time of the last propagation's frames.

    Example:
    >>> session = SegmentationSession(FrameSource(folder), model)
    >>> session.propagate(0, first_mask)       # frames 1.. follow the first mask
    >>> session.propagate(20, corrected_mask)  # frames 0..19 kept, 21.. follow the correction
    """

    def __init__(self, frames, model, work_size=None, palette=None,
                 keep_last_guide: bool = False):
        self.frames = frames
        self.model = model
        self.work_size = work_size
        self.palette = davis_palette() if palette is None else np.asarray(palette, np.uint8)
        self.keep_last_guide = keep_last_guide
        self.masks: List[Optional[np.ndarray]] = [None] * len(frames)
        self.references = {}
        self.cancel = threading.Event()
        self.seconds_per_frame = 0.0
        self._lock = threading.Lock()
        self._shape = frames.frame(0).shape
        self._segmenter = None  # one per session: its per-frame step is traced once

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def frame_shape(self):
        """(H, W, 3) of every frame."""
        return self._shape

    @property
    def running(self) -> bool:
        return self._lock.locked()

    def check_mask(self, index: int, labels: np.ndarray) -> np.ndarray:
        """`labels` as [H, W] uint8 after the checks a user's mask must pass.

        Raises:
            UserError: frame index out of range, wrong size, no object.
        """
        if not 0 <= index < len(self):
            raise UserError(f"frame {index}: the video has frames 0..{len(self) - 1}")
        labels = np.asarray(labels)
        check_mask(labels, self._shape, f"frame {index}")
        return labels.astype(np.uint8)

    def propagate(self, start: int, labels: np.ndarray,
                  on_frame: Optional[Callable[[int, int], None]] = None) -> int:
        """Segment frames start+1.. from `labels`, the mask of frame `start`.

        Frames before `start` keep their masks; frame `start` gets `labels`; the masks of all
        later frames are cleared and refilled in order. The segmenter restarts at `start`: frame
        `start` cropped to each object's box is its new visual guide, `labels` the source of the
        next spatial guide.

        Args:
            start: frame index t.
            labels: [H, W] uint8 mask of frame t (object ids, 0 background, 255 void).
            on_frame: optional callback(frames_done, frames_total) after each frame.

        Returns:
            The index of the last frame with a mask (len - 1 unless cancelled).

        Raises:
            UserError: bad mask (`check_mask`), a propagation already running, an unreadable
                frame or one of another size (the masks up to it are kept).
        """
        labels = self.check_mask(start, labels)
        if not self._lock.acquire(blocking=False):
            raise UserError("a segmentation of this video is already running")
        try:
            self.cancel.clear()
            if self._segmenter is None:
                self._segmenter = make_segmenter(self.model, self.work_size,
                                                 self.keep_last_guide)
            segmenter = self._segmenter
            frame = self.frames.frame(start)
            segmenter.start(frame, labels)
            self.masks[start] = labels
            self.references[start] = labels
            for later in range(start + 1, len(self)):
                self.masks[later] = None
                self.references.pop(later, None)
            total = len(self) - start - 1
            started = time.perf_counter()
            last = start
            for index in range(start + 1, len(self)):
                if self.cancel.is_set():
                    break
                frame = self.frames.frame(index)
                if frame.shape != self._shape:
                    raise UserError(f"{self.frames.file(index)}: frame size differs from the "
                                    "first frame's")
                self.masks[index] = segmenter.step(frame).labels
                last = index
                if on_frame is not None:
                    on_frame(index - start, total)
            if last > start:
                self.seconds_per_frame = (time.perf_counter() - started) / (last - start)
            return last
        finally:
            self._lock.release()

    def segmented(self) -> List[int]:
        """Indices of the frames that have a mask."""
        return [i for i, m in enumerate(self.masks) if m is not None]

    def overlay(self, index: int) -> np.ndarray:
        """Frame `index` with its mask (if any) blended in: [H, W, 3] uint8."""
        frame = self.frames.frame(index)
        if self.masks[index] is None:
            return frame
        return make_overlay(frame, self.masks[index], self.palette)

    def write_masks_zip(self, path, sequence: Optional[str] = None) -> int:
        """The masks as palette PNGs in a zip, DAVIS results layout `<sequence>/<frame>.png`.

        Only frames that have a mask are written. Returns their number. `sequence` defaults
        to the zip's name without suffix.

        Raises:
            UserError: no frame has a mask.
        """
        path = pathlib.Path(path)
        indices = self.segmented()
        if not indices:
            raise UserError("nothing to download: no frame has been segmented")
        sequence = sequence or path.stem
        with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
            for index in indices:
                write_mask(pathlib.Path(scratch) / f"{self.frames.names[index]}.png",
                           self.masks[index], self.palette)

            def save(f):
                with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as archive:
                    for index in indices:
                        name = f"{self.frames.names[index]}.png"
                        archive.write(pathlib.Path(scratch) / name, f"{sequence}/{name}")

            atomic_save(path, save)
        return len(indices)

    def write_overlay_mp4(self, path) -> int:
        """The overlays of the segmented frames as an H.264 mp4 at the source's frame rate and
        size (an odd width or height is padded by one edge pixel: H.264 needs even sizes).

        Returns the number of frames. Raises UserError when no frame has a mask.
        """
        path = pathlib.Path(path)
        indices = self.segmented()
        if not indices:
            raise UserError("nothing to download: no frame has been segmented")
        imageio = _imageio()
        fps = float(getattr(self.frames, "fps", FOLDER_FPS))
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".mp4", dir=path.parent)
        os.close(fd)
        try:
            with imageio.get_writer(tmp, fps=fps, codec="libx264", macro_block_size=1,
                                    pixelformat="yuv420p", ffmpeg_log_level="error") as writer:
                for index in indices:
                    image = self.overlay(index)
                    pad = ((0, image.shape[0] % 2), (0, image.shape[1] % 2), (0, 0))
                    writer.append_data(np.pad(image, pad, mode="edge"))
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return len(indices)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def first_labels(mask_path, shape) -> np.ndarray:
    """Read a mask PNG for a video of frame shape `shape`; UserError when its size differs."""
    from osmn.inference.masks import read_mask  # noqa: PLC0415
    labels, _ = read_mask(mask_path)
    check_mask(labels, shape, pathlib.Path(mask_path).name)
    return labels


def grabcut(frame: np.ndarray, box, iterations: int = 5) -> np.ndarray:
    """The object inside `box` by GrabCut (`cv2.grabCut`): [H, W] bool.

    Args:
        frame: [H, W, 3] uint8 RGB.
        box: (x0, y0, x1, y1) pixel corners, any order; clipped to the frame.
        iterations: GrabCut iterations (OpenCV's sample uses 5).

    Raises:
        UserError: OpenCV missing, or a box narrower or lower than 2 pixels.
    """
    try:
        import cv2  # noqa: PLC0415 (optional dependency: pip install -e ".[app]")
    except ImportError as error:
        raise UserError("GrabCut needs OpenCV: pip install opencv-python-headless") from error
    height, width = frame.shape[:2]
    x0, x1 = sorted((int(box[0]), int(box[2])))
    y0, y1 = sorted((int(box[1]), int(box[3])))
    x0, x1 = max(0, x0), min(width, x1)
    y0, y1 = max(0, y0), min(height, y1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise UserError(f"box ({x0}, {y0})-({x1}, {y1}) is too small for GrabCut")
    # GrabCut runs on the box and a margin around it (its background model learns from the
    # margin): much cheaper than the whole frame on a CPU, and the pixels far outside the box
    # are background anyway.
    margin = max(GRABCUT_MIN_MARGIN, round(GRABCUT_MARGIN * max(x1 - x0, y1 - y0)))
    cx0, cy0 = max(0, x0 - margin), max(0, y0 - margin)
    cx1, cy1 = min(width, x1 + margin), min(height, y1 + margin)
    bgr = np.ascontiguousarray(frame[cy0:cy1, cx0:cx1, ::-1])
    mask = np.zeros(bgr.shape[:2], np.uint8)
    background = np.zeros((1, 65), np.float64)
    foreground = np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's GMM initialisation uses OpenCV's RNG: fixed for repeatability.
    cv2.grabCut(bgr, mask, (x0 - cx0, y0 - cy0, x1 - x0, y1 - y0), background, foreground,
                iterations, cv2.GC_INIT_WITH_RECT)
    result = np.zeros((height, width), bool)
    result[cy0:cy1, cx0:cx1] = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    return result
