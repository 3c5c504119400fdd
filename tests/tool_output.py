"""Reading what a tool printed on stderr, without TensorFlow's own start-up chatter.

TensorFlow's C++ runtime logs a few lines at import (CPU features, oneDNN, and with the plain
`tensorflow` wheel "Could not find cuda drivers") before absl's logging is set up, so
TF_CPP_MIN_LOG_LEVEL cannot silence them. Everything else on stderr is the tool's own.
"""

import re

_TF_STARTUP = re.compile(
    r"^([IWEF]\d{4} [\d:.]+\s+\d+ \S+\.(cc|h):\d+\]"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|To enable the following instructions:)")


def own_lines(stderr: str):
    """The non-empty lines of `stderr` that the tool printed itself."""
    return [line for line in stderr.splitlines() if line.strip() and not _TF_STARTUP.match(line)]


def error_lines(stderr: str):
    """The tool's `error: ...` lines."""
    return [line for line in own_lines(stderr) if line.startswith("error:")]


def single_error_line(stderr: str) -> str:
    """Assert the tool printed exactly one line, an `error: ...` line, and return it."""
    lines = own_lines(stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr[-2000:]
    return lines[0]
