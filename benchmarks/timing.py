"""Wall-clock timing for the benchmark: warm-up, then interleaved rounds, medians.

Interleaving (round r runs every candidate once, in turn) keeps ratios between candidates fair
when other processes load the machine unevenly over time: a slow spell hits all of them.
"""

from __future__ import annotations

import resource
import time
from typing import Callable, Dict

import numpy as np


def time_interleaved(candidates: Dict[str, Callable[[], object]], runs: int,
                     warmup: int = 1) -> Dict[str, dict]:
    """Time each zero-argument callable `runs` times after `warmup` calls.

    Every callable must block until its result is computed (e.g. end in `.numpy()`).

    Returns:
        name -> {"median_s", "min_s", "cpu_median_s" (process CPU time, all threads),
        "runs_s" (list of wall times)}.
    """
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    wall = {name: [] for name in candidates}
    cpu = {name: [] for name in candidates}
    for _ in range(runs):
        for name, fn in candidates.items():
            start_cpu, start = time.process_time(), time.perf_counter()
            fn()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return {name: {"median_s": float(np.median(wall[name])), "min_s": float(min(wall[name])),
                   "cpu_median_s": float(np.median(cpu[name])),
                   "runs_s": [round(t, 5) for t in wall[name]]}
            for name in candidates}


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss, KiB on Linux), in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
