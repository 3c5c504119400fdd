"""What the CPU offers, from /proc/cpuinfo (Linux; elsewhere nothing is known).

Used to pick the native kernels only where their fast path runs, and by benchmarks/ to record
the machine beside its numbers.
"""

from __future__ import annotations

import functools
import pathlib
import platform
import re

CPUINFO = pathlib.Path("/proc/cpuinfo")


@functools.lru_cache(maxsize=None)
def _cpuinfo() -> str:
    return CPUINFO.read_text() if CPUINFO.exists() else ""


def cpu_flags() -> frozenset:
    """The first CPU's feature flags (e.g. "avx512_bf16", "amx_bf16"); empty when unknown."""
    line = re.search(r"flags\s*:\s*(.*)", _cpuinfo())
    return frozenset(line.group(1).split()) if line else frozenset()


def cpu_model() -> str:
    """The CPU's model name, or `platform.processor()` when /proc/cpuinfo has none."""
    model = re.search(r"model name\s*:\s*(.*)", _cpuinfo())
    return model.group(1).strip() if model else platform.processor()
