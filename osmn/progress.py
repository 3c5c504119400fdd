"""Progress bars that keep logs readable.

`Progbar(...)` is `keras.utils.Progbar` when stdout is a terminal (a bar redrawn in place);
otherwise (a log file, a pipe, CI) it prints plain lines, no ANSI colour codes and no carriage
returns: one line at each tenth of the work and one at the end, e.g.

    frame 30/104 (29%) 2.1 s
"""

from __future__ import annotations

import sys
import time
from typing import Optional, Sequence

from osmn import signals


def Progbar(target: int, unit_name: str = "step",  # noqa: N802 (stands in for the Keras class)
            stateful_metrics: Optional[Sequence[str]] = None, verbose: int = 1):
    """A Keras progress bar on a terminal, a `PlainProgress` otherwise (same `update`/`add`)."""
    if sys.stdout.isatty():
        import keras  # noqa: PLC0415
        return _StopsOnSignal(keras.utils.Progbar(target, unit_name=unit_name, verbose=verbose,
                                                  stateful_metrics=stateful_metrics))
    return _StopsOnSignal(PlainProgress(target, unit_name, stateful_metrics, verbose))


class _StopsOnSignal:
    """A progress bar whose every update is a safe point to stop at after a signal whose
    exception was swallowed on the way (`osmn.signals.raise_if_received`)."""

    def __init__(self, bar):
        self._bar = bar

    def update(self, current: int, values=None, finalize: Optional[bool] = None) -> None:
        signals.raise_if_received()
        self._bar.update(current, values, finalize=finalize)

    def add(self, n: int, values=None) -> None:
        signals.raise_if_received()
        self._bar.add(n, values)


class PlainProgress:
    """Plain-line progress: `update(current, values)` / `add(n, values)` as `keras.utils.Progbar`.

    Args:
        target: int, the total count. unit_name: str, what is counted.
        stateful_metrics: names whose value is shown as given (others are averaged).
        verbose: 0 prints nothing.
    """

    def __init__(self, target: int, unit_name: str = "step",
                 stateful_metrics: Optional[Sequence[str]] = None, verbose: int = 1):
        self.target = max(int(target or 0), 0)
        self.unit_name = unit_name
        self.stateful = set(stateful_metrics or ())
        self.verbose = verbose
        self._seen = 0
        self._printed_tenth = -1
        self._sums = {}
        self._start = time.perf_counter()

    def update(self, current: int, values=None, finalize: Optional[bool] = None) -> None:
        for name, value in values or ():
            value = float(value)
            if name in self.stateful:
                self._sums[name] = (value, 1)
            else:
                total, count = self._sums.get(name, (0.0, 0))
                self._sums[name] = (total + value * max(current - self._seen, 1),
                                    count + max(current - self._seen, 1))
        self._seen = current
        if not self.verbose or not self.target:
            return
        done = current >= self.target if finalize is None else finalize
        tenth = min(current * 10 // self.target, 10)
        if tenth == self._printed_tenth and not done:
            return
        if done and self._printed_tenth == 10:
            return
        self._printed_tenth = 10 if done else tenth
        metrics = "".join(f" {name} {total / count:.4g}"
                          for name, (total, count) in self._sums.items())
        print(f"{self.unit_name} {current}/{self.target} ({100 * current // self.target}%)"
              f"{metrics} {time.perf_counter() - self._start:.1f} s", flush=True)

    def add(self, n: int, values=None) -> None:
        self.update(self._seen + n, values)
