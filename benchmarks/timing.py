"""Wall-clock timing for the benchmark: warm-up, then interleaved rounds, medians.

Interleaving (round r runs every candidate once, in turn) keeps ratios between candidates fair
when other processes load the machine unevenly over time: a slow spell hits all of them. The
order reverses every other round (A B C, C B A, ...), so no candidate always follows the same
one. On a host whose speed swings from call to call, the ratio of two candidates run one after
the other in the same round (`paired_ratio`) shares the host's state of that moment, and its
median over the rounds is steadier than the ratio of the two medians.
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
    Odd rounds run the candidates in reverse order; `runs_s[r]` is round r for every candidate.

    Returns:
        name -> {"median_s", "min_s", "cpu_median_s" (process CPU time, all threads),
        "runs_s" (list of wall times)}.
    """
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    wall = {name: [] for name in candidates}
    cpu = {name: [] for name in candidates}
    order = list(candidates)
    for round_index in range(runs):
        for name in (order if round_index % 2 == 0 else order[::-1]):
            fn = candidates[name]
            start_cpu, start = time.process_time(), time.perf_counter()
            fn()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return {name: {"median_s": float(np.median(wall[name])), "min_s": float(min(wall[name])),
                   "cpu_median_s": float(np.median(cpu[name])),
                   "runs_s": [round(t, 5) for t in wall[name]]}
            for name in candidates}


# Above this per-call spread (slowest / fastest run of one candidate) the medians of a few runs
# cannot resolve a 5% ratio: seen on a shared AMX host whose bfloat16 frames swung between
# 0.22 and 0.50 s from one call to the next (docs/performance.md).
STABLE_SPREAD = 1.15


def spread(timing: dict) -> float:
    """Slowest / fastest wall time of one `time_interleaved` entry (1.0: no variation)."""
    return max(timing["runs_s"]) / min(timing["runs_s"])


def fastest_mean(timing: dict, count: int = 3) -> float:
    """Mean of the `count` fastest wall times of one entry: on a machine whose calls swing
    between a fast and a slow state, the fast state's time with less luck than the minimum."""
    return float(np.mean(sorted(timing["runs_s"])[:count]))


def stability(timings: Dict[str, dict], names) -> dict:
    """The worst per-call spread among candidates `names` and whether ratios between them can
    be trusted to a few percent (spread <= STABLE_SPREAD)."""
    worst = max(spread(timings[name]) for name in names)
    return {"max_spread": worst, "stable": worst <= STABLE_SPREAD,
            "stable_spread_limit": STABLE_SPREAD}


def paired_ratio(timings: Dict[str, dict], numerator: str, denominator: str) -> dict:
    """Per-round ratios numerator / denominator of two `time_interleaved` entries timed in the
    same rounds: their median and quartiles ("median", "q1", "q3")."""
    ratios = (np.asarray(timings[numerator]["runs_s"])
              / np.asarray(timings[denominator]["runs_s"]))
    q1, median, q3 = np.percentile(ratios, [25, 50, 75])
    return {"median": float(median), "q1": float(q1), "q3": float(q3)}


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss, KiB on Linux), in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
