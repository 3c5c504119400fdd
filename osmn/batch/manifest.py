"""The manifest of a batch run: one video per row of a CSV file with a header.

Columns (header names, any order; extra columns are ignored):
    video     a folder of frames or a video file; a local path or any Beam filesystem URI
              (gs://..., s3://..., hdfs://...)
    mask      the first-frame mask (palette or grey PNG), local path or URI
    sequence  optional: the output folder's name. Default: the video folder's name, or the
              video file's name without its suffix.

Blank lines and lines starting with `#` are skipped. Every sequence name must be unique and a
plain folder name (no `/`, not starting with `.`), since it names `OUT/<sequence>/`.
Imports no TensorFlow and no Beam (a remote manifest is read through Beam's `FileSystems`).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import posixpath
from typing import List

from osmn.errors import UserError

REQUIRED_COLUMNS = ("video", "mask")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")  # as osmn.inference.frames


@dataclasses.dataclass(frozen=True)
class VideoTask:
    """One row of the manifest.

    Attributes:
        video: str. Folder of frames or video file (path or URI).
        mask: str. First-frame mask (path or URI).
        sequence: str. Output folder name, unique in the manifest.
    """

    video: str
    mask: str
    sequence: str


def default_sequence(video: str) -> str:
    """The folder's name, or the video file's name without suffix (as tools/infer.py)."""
    name = posixpath.basename(video.rstrip("/\\").replace("\\", "/"))
    stem, suffix = posixpath.splitext(name)
    return stem if suffix.lower() in VIDEO_SUFFIXES else name


def parse_manifest(text: str, where: str = "manifest") -> List[VideoTask]:
    """Parse the manifest's CSV text; `where` names the file in error messages.

    Raises:
        UserError: no header or a missing column, an empty field, a bad or repeated sequence
            name, no video at all.
    """
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    header = [name.strip() for name in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise UserError(f"{where}: the header must name the columns video,mask[,sequence]; "
                        f"missing {', '.join(missing)} (header: {','.join(header) or 'none'})")
    reader.fieldnames = header
    tasks, seen = [], {}
    for row_number, row in enumerate(reader, start=2):
        video = (row.get("video") or "").strip()
        mask = (row.get("mask") or "").strip()
        if not video or not mask:
            raise UserError(f"{where}: row {row_number}: empty video or mask")
        sequence = (row.get("sequence") or "").strip() or default_sequence(video)
        if "/" in sequence or "\\" in sequence or sequence.startswith(".") or not sequence:
            raise UserError(f"{where}: row {row_number}: bad sequence name {sequence!r} (a plain "
                            f"folder name, not starting with '.')")
        if sequence in seen:
            raise UserError(f"{where}: row {row_number}: sequence {sequence!r} repeats row "
                            f"{seen[sequence]}; give each video its own sequence name")
        seen[sequence] = row_number
        tasks.append(VideoTask(video, mask, sequence))
    if not tasks:
        raise UserError(f"{where}: no video listed")
    return tasks


def read_manifest(path: str) -> List[VideoTask]:
    """Read and parse a manifest from a local path or a Beam filesystem URI.

    Raises:
        UserError: the file cannot be read, or see `parse_manifest`.
    """
    try:
        from apache_beam.io.filesystems import FileSystems  # noqa: PLC0415 (optional extra)
        with FileSystems.open(path) as f:
            data = f.read()
    except ImportError:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as error:
            raise UserError(f"{path}: cannot read the manifest ({error.strerror})") from None
    except Exception as error:  # Beam raises IOError/BeamIOError and others
        raise UserError(f"{path}: cannot read the manifest ({type(error).__name__})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{path}: the manifest is not UTF-8 text") from None
    return parse_manifest(text, path)
