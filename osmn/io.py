"""Writing files and folders atomically, checking output locations, reading and writing masks.

Every file or folder this project writes goes through here, so that all outputs follow the same
rules:

* **Atomic**: the content is written under a hidden temporary name beside the target and renamed
  to the target only when complete; a failure (an exception, SIGTERM or Ctrl-C in a tool) removes
  the temporary name, so a reader sees the old target or the new one, never half of one.
* **Usual permissions**: the result gets the mode a plain `open()` / `mkdir()` would give under
  the process umask (0644 / 0755 under umask 022), not the 0600 / 0700 of `tempfile`.
* **Owned temporary names**: `.<target name>.osmn-tmp-<host>-<pid>-<random>`. After a SIGKILL
  (nothing can clean up then) the next write to the same target removes the temporary names
  whose process is gone (`clean_stale`).

API:
    atomic_path(path)            context manager: a temp path to write; renamed to `path` on success
    atomic_save(path, save)      `save(binary file object)`, atomically
    atomic_write(path, data)     bytes or str, atomically
    atomic_dir(path, overwrite)  context manager: a temp folder to fill, renamed to `path` at the end
    temp_dir(path, where)        context manager: an owned temp folder, removed at the end
    temp_sibling(path, where)    a new owned temporary name beside `path` (or in `where`)
    stale_temps(folder, name) / clean_stale(folder, name)
    check_output_dir(path, flag) / check_output_file(path, flag)   fail early, one `UserError`
    file_mode(directory=False)   the umask-honouring mode
    read_mask(path) / decode_mask(path) / write_mask(path, labels, palette) / davis_palette()
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import pathlib
import re
import secrets
import shutil
import socket
from typing import Callable, Iterator, List, Optional, Tuple, Union

import numpy as np

from osmn.errors import UserError

PathLike = Union[str, os.PathLike]

TEMP_MARK = "osmn-tmp"
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.%s-(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-[0-9a-z]+"
                      r"(?P<suffix>(\.[^.]+)*)$" % TEMP_MARK)


# ---------------------------------------------------------------------------------------------
# Permissions and temporary names


def file_mode(directory: bool = False) -> int:
    """The mode `open()` (0o666) or `mkdir()` (0o777) would give under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def temp_sibling(path: PathLike, where: Optional[PathLike] = None) -> pathlib.Path:
    """A new owned temporary name for `path`: in `path`'s folder, or in `where`.

    The name keeps `path`'s suffixes (`.keras`, `.weights.h5`, ...), which some writers check.
    Nothing is created.
    """
    path = pathlib.Path(path)
    folder = pathlib.Path(where) if where is not None else path.parent
    suffix = "".join(path.suffixes)[-16:] if path.suffix else ""
    return folder / (f".{path.name}.{TEMP_MARK}-{_HOST}-{os.getpid()}-"
                     f"{secrets.token_hex(4)}{suffix}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # Someone else's live process.
        return True
    return True


def stale_temps(folder: PathLike, name: Optional[str] = None) -> List[pathlib.Path]:
    """Owned temporary names in `folder` (for target `name`, or any) whose process is gone.

    Only names made on this host are judged (another host's pids mean nothing here).
    """
    folder = pathlib.Path(folder)
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []
    stale = []
    for entry in entries:
        match = _TEMP_RE.match(entry.name)
        if not match or (name is not None and match["name"] != name):
            continue
        if match["host"] == _HOST and not _pid_alive(int(match["pid"])):
            stale.append(entry)
    return sorted(stale)


def clean_stale(folder: PathLike, name: Optional[str] = None) -> List[pathlib.Path]:
    """Remove `stale_temps(folder, name)` (left by a killed process); returns what was removed."""
    removed = []
    for entry in stale_temps(folder, name):
        _remove(entry)
        removed.append(entry)
    return removed


def _remove(path: pathlib.Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


# ---------------------------------------------------------------------------------------------
# Atomic files and folders


@contextlib.contextmanager
def atomic_path(path: PathLike, executable: bool = False) -> Iterator[pathlib.Path]:
    """Yield a temporary path beside `path`; on success give it the usual mode and rename it.

    `executable`: the mode of a new program (0o777 & ~umask) rather than of a data file.

    The body creates the temporary file (e.g. `model.save(tmp)`, `fig.savefig(tmp)`). On any
    exception (KeyboardInterrupt and the tools' SIGTERM included) it is removed.

    Example:
        with atomic_path("model.keras") as tmp:
            model.save(tmp)
    """
    path = pathlib.Path(path)
    tmp = temp_sibling(path)
    try:
        yield tmp
        os.chmod(tmp, file_mode(directory=executable or tmp.is_dir()))
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def atomic_save(path: PathLike, save: Callable) -> None:
    """Call `save(binary_file_object)` on a temporary file beside `path`, then rename it."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            save(f)


def atomic_write(path: PathLike, data: Union[bytes, str]) -> None:
    """Write bytes (or str, as UTF-8) to `path` atomically."""
    data = data.encode() if isinstance(data, str) else data
    atomic_save(path, lambda f: f.write(data))


@contextlib.contextmanager
def temp_dir(path: PathLike, where: Optional[PathLike] = None) -> Iterator[pathlib.Path]:
    """Yield a new owned temporary folder for target `path` (beside it, or in `where`), with the
    umask's mode; whatever is still in it at the end is removed (error or not).

    For writers that publish piece by piece (rename the whole folder, or move its entries into an
    existing `path`); `atomic_dir` is the one-rename case.

    Raises:
        UserError: the folder cannot be created there.
    """
    path = pathlib.Path(path)
    folder = pathlib.Path(where) if where is not None else path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = temp_sibling(path, folder)
        tmp.mkdir(mode=0o700)
        os.chmod(tmp, file_mode(directory=True))
    except OSError as error:
        raise UserError(f"{folder}: cannot write there ({error.strerror})") from error
    try:
        yield tmp
    finally:
        if os.path.lexists(tmp):
            _remove(tmp)


@contextlib.contextmanager
def atomic_dir(path: PathLike, overwrite: bool = False,
               stage_in: Optional[PathLike] = None) -> Iterator[pathlib.Path]:
    """Yield a new temporary folder; on success rename it to `path`.

    Args:
        path: the folder to create.
        overwrite: replace an existing `path` (renamed aside, then deleted once the new one is
            in place; put back if the rename fails). Without it an existing `path` is a
            `UserError` raised before the body runs.
        stage_in: the folder for the temporary one (same filesystem as `path`). Defaults to
            `path`'s parent. Exports pass the parent of a watched folder, so that a server
            watching `path.parent` never sees the temporary folder.
    """
    path = pathlib.Path(path)
    stage = pathlib.Path(stage_in) if stage_in is not None else path.parent
    if path.exists() and not overwrite:
        raise UserError(f"{path}: already exists (pass --overwrite to replace it)")
    clean_stale(stage, path.name)
    try:
        stage.mkdir(parents=True, exist_ok=True)
        tmp = temp_sibling(path, stage)
        tmp.mkdir(mode=0o700)
    except OSError as error:
        raise UserError(f"{stage}: cannot write there ({error.strerror})") from error
    old = None
    try:
        yield tmp
        os.chmod(tmp, file_mode(directory=True))
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            old = temp_sibling(path, stage)
            os.rename(path, old)
        try:
            os.rename(tmp, path)
        except OSError:
            if old is not None:
                os.rename(old, path)
                old = None
            raise
    finally:
        if tmp.exists():
            _remove(tmp)
        if old is not None:
            _remove(old)


# ---------------------------------------------------------------------------------------------
# Output locations, checked before any work


def _first_existing(path: pathlib.Path) -> pathlib.Path:
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return pathlib.Path(path.anchor or ".")


def _check_writable_folder(path: pathlib.Path, flag: str, shown: pathlib.Path) -> None:
    """`path` exists: it must be a folder this process can create entries in."""
    if not path.is_dir():
        raise UserError(f"{flag}{shown}: {path} is a file, not a folder")
    probe = temp_sibling(path / "probe")
    try:
        probe.mkdir()
    except OSError as error:
        reason = {errno.EROFS: "read-only filesystem", errno.EACCES: "permission denied",
                  errno.EPERM: "permission denied", errno.ENOSPC: "no space left",
                  errno.EDQUOT: "disk quota exceeded"}.get(error.errno, error.strerror)
        raise UserError(f"{flag}{shown}: cannot write in {path} ({reason})") from None
    finally:  # also when a signal lands between the two calls
        with contextlib.suppress(OSError):
            probe.rmdir()


def check_output_dir(path: PathLike, flag: str = "") -> pathlib.Path:
    """Check that folder `path` can be created or written in, before any work is done.

    Creates nothing; removes what a killed earlier run left for `path` (`clean_stale`).

    Args:
        flag: the flag to name in the message (e.g. "--output").

    Raises:
        UserError: `path` or one of its parents is a file, or the nearest existing folder is not
            writable (permissions, read-only filesystem).
    """
    path = pathlib.Path(path)
    flag = f"{flag}=" if flag else ""
    if str(path) == "":
        raise UserError(f"{flag}: empty path")
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag}{path}: exists and is not a folder")
    _check_writable_folder(_first_existing(path), flag, path)
    clean_stale(path.parent, path.name)
    return path


def check_output_file(path: PathLike, flag: str = "") -> pathlib.Path:
    """Check that file `path` can be written (atomically, beside itself), before any work.

    Creates nothing; removes what a killed earlier run left for `path` (`clean_stale`).

    Raises:
        UserError: `path` is a folder or not a regular file (a device), or its folder cannot be
            created or written in.
    """
    path = pathlib.Path(path)
    shown = f"{flag}=" if flag else ""
    if str(path) in ("", "."):
        raise UserError(f"{shown}: empty path")
    if path.is_dir():
        raise UserError(f"{shown}{path}: is a folder; expected a file name")
    if os.path.lexists(path) and not path.is_file():
        raise UserError(f"{shown}{path}: exists and is not a regular file")
    _check_writable_folder(_first_existing(path.parent), shown, path)
    clean_stale(path.parent, path.name)
    return path


# ---------------------------------------------------------------------------------------------
# Masks and palettes

# A lossy or colour mask gives noise ids; a real one has few. More distinct values than this in a
# mask read as "not a label map".
MAX_MASK_IDS = 32


def davis_palette() -> np.ndarray:
    """The DAVIS 2017 annotation palette ([256, 3] uint8): the PASCAL VOC colour map.

    Index i gets its colour from the bits of i spread over R, G, B (0 black, 1 dark red,
    2 dark green, 3 olive, ...), the palette of the DAVIS 2017 PNGs.
    """
    palette = np.zeros((256, 3), np.uint8)
    for index in range(256):
        value, r, g, b = index, 0, 0, 0
        for bit in range(8):
            r |= ((value >> 0) & 1) << (7 - bit)
            g |= ((value >> 1) & 1) << (7 - bit)
            b |= ((value >> 2) & 1) << (7 - bit)
            value >>= 3
        palette[index] = (r, g, b)
    return palette


_SAVE_AS_PNG = "save the mask as a PNG (palette or grey)"


class MaskError(UserError):
    """A mask file that cannot be used; `problem` is a short category (data reports count it)."""

    def __init__(self, message: str, problem: str):
        super().__init__(message)
        self.problem = problem


def decode_mask(path) -> Tuple[str, np.ndarray, Optional[np.ndarray]]:
    """A mask file's raw values: (mode "P" or "L", [H, W] uint8, palette [256, 3] or None).

    Accepted: single-channel lossless images (PNG; also BMP, GIF, TIFF): palette, grey (with or
    without an alpha channel, which is ignored), 1-bit, or 16/32-bit grey with values <= 255. Refused: a lossy file (JPEG, WebP...) or a colour
    (RGB/RGBA) image, whose compression noise or colours would read as dozens of objects; a grey
    mask with more than `MAX_MASK_IDS` distinct values (a photo, or a JPEG converted to PNG).

    Args:
        path: file path, or the encoded bytes (TFDS sources).

    Raises:
        MaskError (a UserError): naming the file and the problem.
    """
    import io  # noqa: PLC0415
    from PIL import Image  # noqa: PLC0415

    name = "mask bytes" if isinstance(path, bytes) else str(path)
    if not isinstance(path, bytes) and not pathlib.Path(path).is_file():
        raise MaskError(f"{name}: mask file not found", "missing mask")
    palette = None
    try:
        with Image.open(io.BytesIO(path) if isinstance(path, bytes) else path) as image:
            image.load()
            fmt, mode = image.format, image.mode
            if fmt not in ("PNG", "BMP", "TIFF", "GIF"):
                raise MaskError(f"{name}: mask is a {fmt} file (lossy: its noise would read as "
                                f"objects); {_SAVE_AS_PNG}", "mask is not a PNG")
            if mode == "P":
                raw = image.getpalette() or []
                raw = (list(raw) + [0] * 768)[:768]
                palette = np.asarray(raw, np.uint8).reshape(256, 3)
                labels = np.array(image, np.uint8)
            elif mode == "1":
                labels = np.array(image.convert("L"), np.uint8) // 255 * 255
            elif mode in ("L", "LA"):  # grey, or grey with an alpha channel: the grey values
                labels = np.array(image.convert("L"), np.uint8)
            elif mode in ("I", "I;16", "I;16B", "I;16L"):
                labels = np.asarray(image)
                if labels.max(initial=0) > 255 or labels.min(initial=0) < 0:
                    raise MaskError(f"{name}: mask has values outside 0..255",
                                    "mask values above 255")
                labels = labels.astype(np.uint8)
            else:
                raise MaskError(f"{name}: mask is a {mode} image (colour); {_SAVE_AS_PNG}",
                                "mask is not an indexed (palette) or grey PNG")
    except MaskError:
        raise
    except Exception as error:  # PIL raises several types for corrupt files.
        raise MaskError(f"{name}: unreadable mask ({type(error).__name__})",
                        "corrupt mask") from error
    if palette is None:
        count = len(np.unique(labels))
        if count > MAX_MASK_IDS + 2:  # + background and void
            raise MaskError(f"{name}: grey mask with {count} distinct values (a photo, or a "
                            f"mask once saved lossily?); {_SAVE_AS_PNG}", "mask looks lossy")
    return ("P" if palette is not None else "L"), labels, palette


def read_mask(path) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Read a label mask: the one reading rule of the project (`decode_mask` says what is read).

    * a palette or grey mask gives its pixel values as labels;
    * a GREY mask whose only values are 0 and 255 is a DAVIS 2016 binary mask: its 255 pixels
      are object 1, not void (a palette mask's 255 is always void);
    * otherwise every non-zero value except 255 is an object id and 255 is void.

    Returns:
        labels: [H, W] uint8 (0 background, object ids, 255 void).
        palette: [256, 3] uint8 of a palette PNG, or None for a grey one.

    Raises:
        MaskError (a UserError): missing, unreadable, lossy or colour, too many grey values.
    """
    _, labels, palette = decode_mask(path)
    values = np.unique(labels)
    if palette is None and set(values.tolist()) <= {0, 255} and 255 in values:
        labels = (labels == 255).astype(np.uint8)  # DAVIS 2016 grey mask: 255 is the object.
    return labels, palette


def encode_mask_png(labels: np.ndarray, palette: Optional[np.ndarray] = None) -> bytes:
    """`labels` ([H, W] uint8) as palette-PNG bytes (`palette` default: `davis_palette()`)."""
    import io  # noqa: PLC0415
    from PIL import Image  # noqa: PLC0415

    palette = davis_palette() if palette is None else palette
    image = Image.fromarray(np.asarray(labels, np.uint8), mode="P")
    image.putpalette(np.asarray(palette, np.uint8).reshape(-1).tolist())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_mask(path: PathLike, labels: np.ndarray, palette: Optional[np.ndarray] = None) -> None:
    """Write `labels` ([H, W] uint8) as a palette PNG atomically.

    Args:
        palette: [256, 3] uint8; defaults to `davis_palette()`.
    """
    atomic_write(path, encode_mask_png(labels, palette))
