"""Video frames from a folder of JPEG/PNG images (sorted by name) or from a video file.

Frames are `[H, W, 3] uint8` RGB. A folder's frames keep their file names (without suffix),
which name the output masks; a video file's frames are named 00000, 00001, ...
Video files (.mp4, .avi, .mov, .mkv) are read with `imageio` + `imageio-ffmpeg`, an optional
install: `pip install imageio imageio-ffmpeg`.
"""

from __future__ import annotations

import collections
import concurrent.futures
import pathlib
from typing import Iterator, List, Optional, Tuple

import numpy as np
from PIL import Image

from osmn.errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")
FRAME_NAME_DIGITS = 5  # DAVIS frame names: 00000.jpg, 00001.jpg, ...
PREFETCH_FRAMES = 2  # frames decoded ahead while the current one is segmented


def read_frame(path) -> np.ndarray:
    """Read one image file as RGB: [H, W, 3] uint8. Raises UserError naming the file."""
    path = pathlib.Path(path)
    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"), np.uint8)
    except FileNotFoundError as error:
        raise UserError(f"{path}: frame not found") from error
    except Exception as error:  # PIL raises several types for corrupt files.
        raise UserError(f"{path}: unreadable frame ({type(error).__name__})") from error


def _imageio():
    try:
        import imageio.v2 as imageio  # noqa: PLC0415 (optional dependency)
        import imageio_ffmpeg  # noqa: F401, PLC0415 (checks that the ffmpeg plugin exists)
    except ImportError as error:
        raise UserError("video files need the optional packages imageio and imageio-ffmpeg: "
                        "pip install imageio imageio-ffmpeg") from error
    return imageio


class FrameSource:
    """The frames of one video, in order.

    Args:
        path: a folder of .jpg/.jpeg/.png frames (sorted by file name) or a video file.

    Attributes:
        path: pathlib.Path. The given path.
        names: list of str. One name per frame (file stem, or 00000, ... for a video file).
        is_folder: bool.
        fps: float or None. The frame rate of a video file (None for a folder of frames).

    Raises:
        UserError: missing path, a folder without frames, an unreadable video.
    """

    def __init__(self, path):
        self.path = pathlib.Path(path)
        self.fps: Optional[float] = None  # a video file's frame rate, when it says
        if self.path.is_dir():
            self.is_folder = True
            self._files = sorted(p for p in self.path.iterdir()
                                 if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._files:
                raise UserError(f"{self.path}: no .jpg/.jpeg/.png frames in this folder")
            self.names = [p.stem for p in self._files]
        elif self.path.is_file() and self.path.suffix.lower() in VIDEO_SUFFIXES:
            self.is_folder = False
            self._frames = self._read_video()
            self.names = [f"{i:0{FRAME_NAME_DIGITS}d}" for i in range(len(self._frames))]
        elif self.path.exists():
            raise UserError(f"{self.path}: not a folder of frames nor a video file "
                            f"({', '.join(VIDEO_SUFFIXES)})")
        else:
            raise UserError(f"{self.path}: video folder or file not found")

    def _read_video(self) -> List[np.ndarray]:
        imageio = _imageio()
        try:
            with imageio.get_reader(str(self.path)) as reader:
                fps = reader.get_meta_data().get("fps")
                self.fps = float(fps) if fps and fps > 0 else None
                frames = [np.asarray(frame, np.uint8)[..., :3] for frame in reader]
        except Exception as error:
            raise UserError(f"{self.path}: unreadable video ({type(error).__name__})") from error
        if not frames:
            raise UserError(f"{self.path}: the video has no frames")
        return frames

    def __len__(self) -> int:
        return len(self.names)

    def frame(self, index: int) -> np.ndarray:
        """Frame `index` as [H, W, 3] uint8 RGB."""
        if self.is_folder:
            return read_frame(self._files[index])
        return self._frames[index]

    def file(self, index: int) -> str:
        """What to name in a message about frame `index`."""
        return str(self._files[index]) if self.is_folder else f"{self.path} frame {index}"

    def __iter__(self) -> Iterator[Tuple[str, np.ndarray]]:
        for index, name in enumerate(self.names):
            yield name, self.frame(index)

    def prefetched(self, start: int = 0, shape: Optional[Tuple[int, ...]] = None,
                   depth: int = PREFETCH_FRAMES) -> Iterator[Tuple[int, np.ndarray]]:
        """Frames `start`.. in order as (index, [H, W, 3] uint8), the next `depth` decoded on a
        background thread while the caller works on the current one (JPEG decoding releases
        the GIL, so it overlaps the model's compute; docs/performance.md).

        Args:
            start: int. First frame index.
            shape: optional (H, W, 3). Every frame must have it (the first frame's shape).
            depth: int >= 1. Frames decoded ahead.

        Raises:
            UserError: an unreadable frame, or one whose size differs from `shape`, raised
                when the iteration reaches that frame (the frames before it are yielded).
        """
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="osmn-frames") as pool:
            pending = collections.deque()
            ahead = start
            try:
                for index in range(start, len(self)):
                    while ahead < len(self) and ahead < index + 1 + depth:
                        pending.append(pool.submit(self.frame, ahead))
                        ahead += 1
                    frame = pending.popleft().result()
                    if shape is not None and frame.shape != tuple(shape):
                        raise UserError(f"{self.file(index)}: frame size {frame.shape[1]}x"
                                        f"{frame.shape[0]} differs from the first frame's "
                                        f"({shape[1]}x{shape[0]})")
                    yield index, frame
            finally:
                for future in pending:  # the caller stopped early: decode nothing more
                    future.cancel()


def default_mask_path(video_path, index: int = 0) -> pathlib.Path:
    """Frame `index`'s annotation (default: the first) in the DAVIS layout for a frame folder.

    `.../JPEGImages/<res>/<seq>` -> `.../Annotations/<res>/<seq>/<frame>.png`; any other
    folder -> `<folder>/../Annotations/<folder name>/<frame>.png`.
    """
    video_path = pathlib.Path(video_path)
    frames = sorted(p for p in video_path.iterdir()
                    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    first = (frames[index].stem if index < len(frames)
             else f"{index:0{FRAME_NAME_DIGITS}d}") + ".png"
    parts = list(video_path.resolve().parts)
    if "JPEGImages" in parts:
        index = len(parts) - 1 - parts[::-1].index("JPEGImages")
        parts[index] = "Annotations"
        return pathlib.Path(*parts) / first
    return video_path.parent / "Annotations" / video_path.name / first
