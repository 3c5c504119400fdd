"""The one way every tool in `tools/` starts, so that all report user errors alike, and the flag
types the tools share: sizes in one form, WIDTHxHEIGHT (`define_size`, `define_size_list`,
`parse_size`), and comma-separated lists of fixed words (`define_enum_list`).

Import this module before TensorFlow or Keras: it quiets TensorFlow's start-up logging.

Exit codes of every tool (`run_tool`):
    0    success
    1    a bug (the traceback is printed), or a tool-specific failure its docstring names
    2    bad input or an unusable environment: ONE line `error: <what and where>` on stderr (a bad
         flag, a `UserError`, a full disk or read-only folder, out of memory), nothing half-written
    130  interrupted by Ctrl-C (SIGINT): temporary files removed, one line on stderr
    143  terminated by SIGTERM (`timeout`, `docker stop`, schedulers): the same clean-up
A SIGKILL cannot be caught: the temporary names it leaves behind are removed by the next run
that writes the same output (`osmn.io.clean_stale`).
"""

from __future__ import annotations

import contextlib
import errno
import importlib.abc
import importlib.util
import os
import pathlib
import re
import signal
import sys
import tempfile
from typing import NamedTuple, Optional, Tuple

# TensorFlow's start-up lines (CPU features, oneDNN, "could not find cuda drivers", cuInit on
# machines without a GPU) are not for users of the tools; errors reach them as one line instead.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

# absl's C++ logging writes some of them to file descriptor 2 while `tensorflow` is imported,
# before TF_CPP_MIN_LOG_LEVEL applies: `_QuietTensorFlowImport` drops exactly those lines.
_START_UP_NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\) is "
                             r"called are written to STDERR"
                             r"|[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] )")


@contextlib.contextmanager
def _start_up_lines_dropped():
    """Capture file descriptor 2; replay what is not TF start-up noise (everything on error)."""
    sys.stderr.flush()
    saved = os.dup(2)
    capture = tempfile.TemporaryFile()
    os.dup2(capture.fileno(), 2)
    failed = False
    try:
        yield
    except Exception:  # a signal (KeyboardInterrupt, Terminated) is no import error: still quiet
        failed = True
        raise
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        capture.seek(0)
        lines = capture.read().decode(errors="replace").splitlines()
        capture.close()
        kept = [line for line in lines if failed or not _START_UP_NOISE.match(line)]
        if kept:
            print("\n".join(kept), file=sys.stderr, flush=True)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Runs the first `import tensorflow` (also the one Keras makes) inside
    `_start_up_lines_dropped`."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def quiet_exec_module(module):
            with _start_up_lines_dropped():
                exec_module(module)
                # Device discovery (cuInit) logs too, at the first op otherwise: done here.
                try:
                    module.config.list_physical_devices()
                except Exception:  # noqa: BLE001 (discovery errors surface again at first use)
                    pass

        spec.loader.exec_module = quiet_exec_module
        return spec


if "tensorflow" not in sys.modules and not any(
        isinstance(finder, _QuietTensorFlowImport) for finder in sys.meta_path):
    sys.meta_path.insert(0, _QuietTensorFlowImport())

from absl import app, flags  # noqa: E402

from osmn import signals  # noqa: E402
from osmn.errors import UserError  # noqa: E402

EXIT_USER_ERROR = 2
EXIT_SIGINT = 130
EXIT_SIGTERM = 143

# Errors of the environment a user can fix (disk, permissions), reported as one line.
_ENVIRONMENT_ERRNOS = {errno.ENOSPC: "no space left on the device",
                       errno.EDQUOT: "disk quota exceeded", errno.EROFS: "read-only filesystem",
                       errno.EACCES: "permission denied", errno.EPERM: "permission denied",
                       errno.ENOTDIR: "a parent is not a folder", errno.EISDIR: "is a folder",
                       errno.ENOENT: "no such file or folder", errno.EEXIST: "already exists",
                       errno.EIO: "input/output error"}


def _exit_for_signal() -> None:
    if signals.received() == signal.SIGTERM:
        _exit("terminated (SIGTERM): stopped, temporary files removed", EXIT_SIGTERM)
    _exit("interrupted (Ctrl-C): stopped, temporary files removed", EXIT_SIGINT)


def _parse_flags(argv):
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        raise UserError(f"bad flag: {error}") from None


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _out_of_memory(error: BaseException) -> bool:
    if isinstance(error, MemoryError):
        return True
    tf = sys.modules.get("tensorflow")
    errors = getattr(tf, "errors", None)
    return errors is not None and isinstance(error, errors.ResourceExhaustedError)


def run_tool(main) -> None:
    """`absl.app.run(main)` with the exit codes above (one stderr line for each failure a user
    can cause or fix; a traceback only for bugs).

    `main(argv)` may return an int exit code (0 on success), as with `app.run`.
    """
    signals.install()
    try:
        app.run(main, flags_parser=_parse_flags)
    except UserError as error:
        _exit(f"error: {_one_line(error)}", EXIT_USER_ERROR)
    except (KeyboardInterrupt, signals.Terminated):
        _exit_for_signal()
    except OSError as error:
        if signals.received():
            _exit_for_signal()
        if error.errno not in _ENVIRONMENT_ERRNOS:
            raise
        where = error.filename or "output"
        _exit(f"error: {where}: {_ENVIRONMENT_ERRNOS[error.errno]}", EXIT_USER_ERROR)
    except Exception as error:  # noqa: BLE001 (out-of-memory and signals handled; rest re-raised)
        if signals.received():
            _exit_for_signal()
        if not _out_of_memory(error):
            raise
        _exit("error: out of memory (try a smaller --im_size or fewer objects/frames at once)",
              EXIT_USER_ERROR)


def _exit(line: str, code: int) -> None:
    if sys.stdout.isatty():  # a progress bar may be mid-line: the error goes on a line of its own
        print(flush=True)
    sys.stdout.flush()
    # After a signal sys.stderr is silenced (osmn.signals): the one line goes to the real one.
    print(line, file=sys.__stderr__ if signals.received() else sys.stderr, flush=True)
    sys.exit(code)


# The model shipped in the repository, the default of every tool that takes --checkpoint: lite
# OSMN at width 1/4 trained on 25 DAVIS 2016 training sequences (`data/davis16_lite.flags`).
SHIPPED_MODEL = "data/osmn_lite_davis16.keras"


def model_path_or_shipped(checkpoint):
    """`--checkpoint` as a path, or the shipped model when it is None (one line says so).

    Raises:
        UserError: the default was asked for and the shipped model is missing.
    """
    if checkpoint is not None:
        return pathlib.Path(checkpoint)
    path = pathlib.Path(__file__).resolve().parents[1] / SHIPPED_MODEL
    if not path.exists():
        raise UserError(f"{SHIPPED_MODEL}: the shipped model is missing; run "
                        "`python tools/train.py --flagfile=data/davis16_lite.flags` first or "
                        "pass --checkpoint")
    print(f"Using the shipped model {SHIPPED_MODEL} (lite OSMN trained on DAVIS 2016).")
    return path


def no_extra_arguments(argv) -> None:
    """Raise `UserError` for positional arguments a tool does not take."""
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")


# --- size flags ------------------------------------------------------------------------------
# Every size on a command line is WIDTHxHEIGHT (width first, as video tools write it): one form,
# parsed by `parse_size`, whatever the tool. Configs keep their own order (TrainConfig's
# (height, width) tuples): `FrameSize.hw` is the one conversion.

SIZE_FORM = "WIDTHxHEIGHT, e.g. 854x480"

# Sides of every size flag, working and training sizes alike. 32: the lower bound of
# ModelConfig.working_size and TrainConfig.image_sizes/crop_size. 4096 covers 4K video
# (3840x2160); beyond it one frame's activations (VGG16 at full width) need tens of GB, and a
# training batch more still: no useful training size comes near it.
MIN_SIDE = 32
MAX_SIDE = 4096


class FrameSize(NamedTuple):
    """A size from a size flag: (width, height) in pixels, the order of `--im_size` values and
    of `ModelConfig.working_size`."""

    width: int
    height: int

    @property
    def hw(self) -> Tuple[int, int]:
        """(height, width): the order of `TrainConfig.image_sizes`/`crop_size` and of tensors."""
        return self.height, self.width

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


def parse_size(text) -> FrameSize:
    """"WIDTHxHEIGHT" (e.g. "854x480") -> FrameSize(width=854, height=480): the one parser of
    every size flag (`define_size`, `define_size_list`; absl reports its error as the flag's).

    Raises:
        ValueError: not WIDTHxHEIGHT, or a side outside MIN_SIDE..MAX_SIDE.
    """
    match = re.fullmatch(r"\s*(\d+)x(\d+)\s*", str(text))
    if not match:
        raise ValueError(f"expected {SIZE_FORM}, got {text!r}")
    size = FrameSize(int(match.group(1)), int(match.group(2)))
    if not (MIN_SIDE <= size.width <= MAX_SIDE and MIN_SIDE <= size.height <= MAX_SIDE):
        raise ValueError(f"width and height must be in {MIN_SIDE}..{MAX_SIDE}, got {size}")
    return size


class _SizeParser(flags.ArgumentParser):
    """absl parser of one size flag: a bad value is absl's one-line flag error."""

    def parse(self, argument):
        return argument if isinstance(argument, FrameSize) else parse_size(argument)

    def flag_type(self):
        return "size"


class _ListParser(flags.ListParser):
    """A comma-separated list whose items are checked one by one by `item(text)`."""

    def __init__(self, item, flag_type: str):
        super().__init__()
        self._item, self._type = item, flag_type

    def parse(self, argument):
        return [self._item(value) for value in super().parse(argument)]

    def flag_type(self):
        return self._type


def _caller_module() -> str:
    """The defining tool's module name, so that `--help` lists the flag with the tool's own."""
    name = sys._getframe(2).f_globals.get("__name__")
    return sys.argv[0] if name == "__main__" else name


def define_size(name: str, default: Optional[str], help: str,  # noqa: A002 (absl's name)
                flag_values=flags.FLAGS) -> None:
    """A size flag: FLAGS.<name> is a `FrameSize` (or None when unset). The help text says the
    form; a bad value stops the tool with one line naming the flag (exit 2, `run_tool`)."""
    flags.DEFINE(_SizeParser(), name, default, f"{help} ({SIZE_FORM}).", flag_values,
                 module_name=_caller_module())


def define_size_list(name: str, default, help: str, special=(),  # noqa: A002
                     flag_values=flags.FLAGS) -> None:
    """A comma-separated list of sizes: FLAGS.<name> is a list of `FrameSize`; a word of
    `special` (e.g. "native") stays a string."""
    parser = _SizeParser()

    def item(value):
        return value if value in special else parser.parse(value)

    words = "".join(f" or {word}" for word in special)
    flags.DEFINE(_ListParser(item, "list of sizes"), name, default,
                 f"{help} (comma-separated, each {SIZE_FORM}{words}).", flag_values,
                 serializer=flags.CsvListSerializer(","), module_name=_caller_module())


def define_enum_list(name: str, default, values, help: str,  # noqa: A002
                     flag_values=flags.FLAGS) -> None:
    """A comma-separated list of words from `values` (FLAGS.<name>: list of str); a word not in
    `values` stops the tool with one line naming the flag and the allowed words."""
    values = tuple(values)

    def item(value):
        if value not in values:
            raise ValueError(f"{value!r} is not one of <{'|'.join(values)}>")
        return value

    flags.DEFINE(_ListParser(item, "list"), name, default,
                 f"{help} (comma-separated, each one of {', '.join(values)}).", flag_values,
                 serializer=flags.CsvListSerializer(","), module_name=_caller_module())
