"""Build and load the native kernels (C++ TF custom ops) on first use, cached per machine.

`modulate_op.cc` is compiled with the installed TF's own headers and flags
(`tf.sysconfig`) by the system C++ compiler (`$CXX`, else `g++`) into a cache directory
(`$OSMN_KERNEL_CACHE`, else `~/.cache/osmn-tf/kernels`). The file name carries a hash of the
source, the TF version and the flags, so a new TF or an edited source builds a new library and
an old one is never loaded by mistake. The library is written to a temporary file and renamed,
so a build that fails or is interrupted leaves nothing behind that could be loaded.

Nothing here is required: without a compiler, or with `OSMN_NATIVE_KERNELS=0`, `load` returns
None with the reason and inference uses the XLA formulation of the same pass (same values).

Example:
>>> op, reason = load("modulate_op")   # builds once (~10 s), then loads from the cache
>>> op.osmn_modulate if op else reason
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import threading
from typing import Optional, Tuple

import tensorflow as tf

from osmn.io import atomic_path

SOURCE_DIR = pathlib.Path(__file__).parent
# Set to 0 to never build or load a native kernel (the XLA formulations are used).
ENABLE_ENV = "OSMN_NATIVE_KERNELS"
CACHE_ENV = "OSMN_KERNEL_CACHE"
BUILD_TIMEOUT_S = 600

_loaded: dict = {}
_lock = threading.Lock()


def cache_dir() -> pathlib.Path:
    """Where built libraries are kept: $OSMN_KERNEL_CACHE or ~/.cache/osmn-tf/kernels."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return pathlib.Path(configured)
    return pathlib.Path.home() / ".cache" / "osmn-tf" / "kernels"


def compiler() -> Optional[str]:
    """The C++ compiler to use ($CXX, else g++), or None when it is not on PATH."""
    return shutil.which(os.environ.get("CXX", "g++"))


def compile_command(cxx: str, source: pathlib.Path, output: pathlib.Path) -> list:
    """The compiler call for one op library: TF's compile and link flags, -O3, shared."""
    return ([cxx, "-std=c++17", "-O3", "-shared", "-fPIC", str(source), "-o", str(output)]
            + tf.sysconfig.get_compile_flags() + tf.sysconfig.get_link_flags()
            + ["-Wno-deprecated-declarations", "-Wno-interference-size"])


def library_path(name: str) -> pathlib.Path:
    """The cached library for op source `name`.cc under the current TF: a content-keyed name."""
    source = SOURCE_DIR / f"{name}.cc"
    key = hashlib.sha256()
    key.update(source.read_bytes())
    key.update(tf.__version__.encode())
    key.update(repr(compile_command("c++", source, pathlib.Path("out"))[1:]).encode())
    return cache_dir() / f"{name}-{key.hexdigest()[:16]}.so"


def build(name: str) -> pathlib.Path:
    """Compile `name`.cc into the cache (atomically) unless it is there already.

    Returns:
        The library's path.

    Raises:
        RuntimeError: no compiler, or the compiler failed (its last error line in the message).
    """
    target = library_path(name)
    if target.exists():
        return target
    cxx = compiler()
    if cxx is None:
        raise RuntimeError(f"no C++ compiler found ({os.environ.get('CXX', 'g++')} not on PATH)")
    target.parent.mkdir(parents=True, exist_ok=True)
    # A progress note, on stdout with the tools' other notes: stderr is for errors only.
    print(f"osmn: building the native kernel {name} (once per TF version, ~10 s) into "
          f"{target.parent}", flush=True)
    with atomic_path(target, executable=True) as temporary:
        result = subprocess.run(compile_command(cxx, SOURCE_DIR / f"{name}.cc", temporary),
                                capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
        if result.returncode != 0:
            errors = [line for line in result.stderr.splitlines() if "error" in line]
            raise RuntimeError(f"{cxx} failed on {name}.cc: "
                               f"{(errors or result.stderr.splitlines() or ['?'])[-1].strip()}")
    return target


def load(name: str) -> Tuple[Optional[object], str]:
    """The op module of `name`.cc (built if needed), or None and the reason it is unavailable.

    Loaded once per process; a failure is also remembered, so it is reported once.
    """
    with _lock:
        if name not in _loaded:
            _loaded[name] = _load_uncached(name)
        return _loaded[name]


def _load_uncached(name: str) -> Tuple[Optional[object], str]:
    if os.environ.get(ENABLE_ENV, "1") == "0":
        return None, f"disabled by {ENABLE_ENV}=0"
    try:
        return tf.load_op_library(str(build(name))), "loaded"
    except (RuntimeError, OSError, subprocess.SubprocessError, tf.errors.NotFoundError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"osmn: native kernel {name} unavailable, using XLA: {reason}", file=sys.stderr,
              flush=True)
        return None, reason


def main() -> None:
    """`python -m osmn.kernels.build`: build every kernel now (e.g. in a Docker image)."""
    for source in sorted(SOURCE_DIR.glob("*.cc")):
        op, reason = load(source.stem)
        print(f"{source.stem}: {library_path(source.stem) if op else reason}")
        if op is None:
            sys.exit(1)


if __name__ == "__main__":
    main()
