"""Stopping a tool on SIGINT (Ctrl-C) and SIGTERM, even when the signal lands in library code.

`install()` makes SIGINT raise KeyboardInterrupt and SIGTERM raise `Terminated` in the main
thread, so that `finally` / `except BaseException` clean-ups run, and records which one arrived.
A signal that lands inside C++ code calling back into Python (TensorFlow's) can have its exception
swallowed there; `raise_if_received()`, called at every progress update (`osmn.progress`), raises
it again at the next safe point, so that no tool keeps running after a signal.
"""

from __future__ import annotations

import signal
import sys
import os
from typing import Optional


class Terminated(BaseException):
    """Raised in the main thread by SIGTERM, so that clean-ups run as for Ctrl-C."""


_received = []


def _on_sigint(signum, frame):
    _stop(signal.SIGINT)


def _on_sigterm(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # A second SIGTERM must not cut the clean-up.
    _stop(signal.SIGTERM)


def _stop(signum: int) -> None:
    if not _received:
        # What code on the way prints about the exception (a C++ callback printing the error it
        # swallowed) is not for the user: the tool's one line goes to sys.__stderr__.
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (kept open until the process exits)
    _received.append(signum)
    raise_if_received()


def install() -> None:
    """Make SIGINT and SIGTERM stop the program by exceptions (main thread only)."""
    signal.signal(signal.SIGINT, _on_sigint)
    signal.signal(signal.SIGTERM, _on_sigterm)


def received() -> Optional[int]:
    """The first signal received since `install()`, or None."""
    return _received[0] if _received else None


def raise_if_received() -> None:
    """Raise KeyboardInterrupt or `Terminated` if a signal was received."""
    if _received:
        raise Terminated(_received[0]) if _received[0] == signal.SIGTERM else KeyboardInterrupt
