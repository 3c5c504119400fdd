"""Video frames from a folder of JPEG/PNG images (sorted by name) or from a video file.

Frames are `[H, W, 3] uint8` RGB. A folder's frames keep their file names (without suffix),
which name the output masks; a video file's frames are named 00000, 00001, ...
Video files (.mp4, .avi, .mov, .mkv) are read with `imageio` + `imageio-ffmpeg`, an optional
install: `pip install imageio imageio-ffmpeg`.
"""

from __future__ import annotations

import pathlib
from typing import Iterator, List, Tuple

import numpy as np
from PIL import Image

from osmn.errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")
FRAME_NAME_DIGITS = 5  # DAVIS frame names: 00000.jpg, 00001.jpg, ...


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

    Raises:
        UserError: missing path, a folder without frames, an unreadable video.
    """

    def __init__(self, path):
        self.path = pathlib.Path(path)
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


def default_mask_path(video_path) -> pathlib.Path:
    """The first annotation in the DAVIS layout for a frame folder.

    `.../JPEGImages/<res>/<seq>` -> `.../Annotations/<res>/<seq>/<first frame>.png`; any other
    folder -> `<folder>/../Annotations/<folder name>/<first frame>.png`.
    """
    video_path = pathlib.Path(video_path)
    frames = sorted(p for p in video_path.iterdir()
                    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    first = (frames[0].stem if frames else f"{0:0{FRAME_NAME_DIGITS}d}") + ".png"
    parts = list(video_path.resolve().parts)
    if "JPEGImages" in parts:
        index = len(parts) - 1 - parts[::-1].index("JPEGImages")
        parts[index] = "Annotations"
        return pathlib.Path(*parts) / first
    return video_path.parent / "Annotations" / video_path.name / first
