"""Inputs and outputs of a batch run through Beam's `FileSystems` (local disk, gs://, s3://, ...).

A video's results are published all at once (what `tools/infer.py` does with a temporary folder
and a rename, on any Beam filesystem):

    OUT/.osmn-staging.<sequence>.<random hex>/<frame>.png   written first
    OUT/<sequence>/<frame>.png                              the staging folder renamed
    OUT/.osmn-done/<sequence>.json                          written last: the video is complete

On a local disk (and any POSIX filesystem) the rename of the staging folder is one `rename(2)`,
so `OUT/<sequence>/` appears complete or not at all. Object stores (gs://, s3://) have no
folders: there each object is renamed (copied) on its own and the marker, written after the last
one, is what says the folder is complete. A re-run skips a sequence whose marker exists and whose
folder holds the marker's number of masks, and removes that sequence's stale staging folders
(left by a worker that died) before working on it.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import tempfile
import uuid
from typing import Dict, Optional

from apache_beam.io.filesystems import FileSystems

STAGING_PREFIX = ".osmn-staging."
DONE_FOLDER = ".osmn-done"


def is_local(path: str) -> bool:
    """True for a local path (no scheme, or file://)."""
    return FileSystems.get_scheme(path) in (None, "file")


def join(base: str, *parts: str) -> str:
    return FileSystems.join(base, *parts)


def sequence_path(output: str, sequence: str) -> str:
    return join(output, sequence)


def marker_path(output: str, sequence: str) -> str:
    return join(output, DONE_FOLDER, f"{sequence}.json")


def _staging_pattern(output: str, sequence: str) -> str:
    return join(output, f"{STAGING_PREFIX}{sequence}.")


def write_bytes(path: str, data: bytes) -> None:
    with FileSystems.create(path) as f:
        f.write(data)


def read_bytes(path: str) -> bytes:
    with FileSystems.open(path) as f:
        return f.read()


def _files_under(folder: str) -> list:
    """Paths of the files directly or indirectly under `folder` (empty if none)."""
    pattern = join(folder, "**")
    return [m.path for m in FileSystems.match([pattern])[0].metadata_list]


def completed(output: str, sequence: str) -> Optional[Dict]:
    """The marker of a complete sequence (its results row), or None.

    Complete = the marker exists and `OUT/<sequence>/` holds the marker's number of masks.
    """
    marker = marker_path(output, sequence)
    if not FileSystems.exists(marker):
        return None
    try:
        record = json.loads(read_bytes(marker).decode("utf-8"))
    except (ValueError, OSError):
        return None
    masks = [p for p in _files_under(sequence_path(output, sequence)) if p.endswith(".png")]
    return record if len(masks) == int(record.get("frames", -1)) else None


def remove_stale_staging(output: str, sequence: str) -> int:
    """Delete `sequence`'s staging folders left by an earlier, interrupted attempt.

    Returns the number of folders removed.
    """
    prefix = _staging_pattern(output, sequence)
    if is_local(output):
        parent = os.path.dirname(prefix)
        if not os.path.isdir(parent):
            return 0
        stale = [os.path.join(parent, name) for name in os.listdir(parent)
                 if os.path.join(parent, name).startswith(prefix)]
        for folder in stale:
            shutil.rmtree(folder, ignore_errors=True)
        return len(stale)
    files = [m.path for m in FileSystems.match([prefix + "*/**"])[0].metadata_list]
    folders = sorted({p[: p.index("/", len(prefix)) + 1] for p in files})
    if folders:
        FileSystems.delete(folders)
    return len(folders)


def publish(local_folder: str, output: str, sequence: str, record: Dict) -> None:
    """Copy the files of `local_folder` to OUT/<sequence>/ all at once, then write the marker.

    Args:
        local_folder: a local folder holding the sequence's files (no sub-folders).
        record: the results row, stored in the marker.
    """
    staging = _staging_pattern(output, sequence) + uuid.uuid4().hex[:12]
    names = sorted(os.listdir(local_folder))
    try:
        for name in names:
            with open(os.path.join(local_folder, name), "rb") as f:
                write_bytes(join(staging, name), f.read())
        final = sequence_path(output, sequence)
        if is_local(output):
            if not names:  # FileSystems.create made no folder
                os.makedirs(staging)
            if FileSystems.exists(final):  # an incomplete or older result: replaced
                FileSystems.delete([final])
            FileSystems.rename([staging], [final])
        else:
            old = _files_under(final)
            if old:
                FileSystems.delete(old)
            FileSystems.rename([join(staging, n) for n in names], [join(final, n) for n in names])
            remaining = _files_under(staging)
            if remaining:
                FileSystems.delete(remaining)
    except BaseException:
        try:
            if FileSystems.exists(staging):
                FileSystems.delete([staging if is_local(output) else staging + "/"])
        except Exception:  # noqa: BLE001 (the original error matters more)
            pass
        raise
    marker = marker_path(output, sequence)
    temporary = f"{marker}.tmp-{uuid.uuid4().hex[:12]}"
    write_bytes(temporary, json.dumps(record, sort_keys=True).encode("utf-8"))
    FileSystems.rename([temporary], [marker])


def localise(path: str, work_dir: str) -> str:
    """A local path for `path`: itself if local, else a copy under `work_dir`.

    A remote folder of frames (`gs://bucket/video/` with objects below it) is copied file by
    file; a remote file (video or mask) is copied as one file.
    """
    if is_local(path):
        return path[len("file://"):] if path.startswith("file://") else path
    base = path.rstrip("/")
    target = os.path.join(work_dir, uuid.uuid4().hex[:8], posixpath.basename(base))
    files = [m.path for m in FileSystems.match([base + "/*"])[0].metadata_list]
    if files:
        os.makedirs(target)
        for remote in files:
            _copy_to_local(remote, os.path.join(target, posixpath.basename(remote)))
        return target
    os.makedirs(os.path.dirname(target))
    _copy_to_local(path, target)
    return target


def _copy_to_local(remote: str, local: str) -> None:
    with FileSystems.open(remote) as source, open(local, "wb") as target:
        shutil.copyfileobj(source, target)


def make_work_dir() -> str:
    """A private local scratch folder for one video (removed by the caller)."""
    return tempfile.mkdtemp(prefix="osmn-batch-")


def remove_tree(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def count_rows(path: str) -> int:
    """Data rows (lines after the header) of a CSV written by the pipeline; 0 if missing."""
    if not FileSystems.exists(path):
        return 0
    lines = [line for line in read_bytes(path).decode("utf-8").splitlines() if line.strip()]
    return max(len(lines) - 1, 0)


def ensure_folder(path: str) -> None:
    if is_local(path):
        os.makedirs(path, exist_ok=True)
