"""The one way every tool in `tools/` starts, so that all report user errors alike.

A bad flag or a `UserError` raised anywhere in the tool becomes ONE line on stderr,
`error: <what and where>`, and exit code 2. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys

from absl import app, flags

from osmn.errors import UserError


def _parse_flags(argv):
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        raise UserError(f"bad flag: {error}") from None


def run_tool(main) -> None:
    """`absl.app.run(main)` with bad flags and `UserError` turned into one line and exit code 2.

    `main(argv)` may return an int exit code (0 on success), as with `app.run`.
    """
    try:
        app.run(main, flags_parser=_parse_flags)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def no_extra_arguments(argv) -> None:
    """Raise `UserError` for positional arguments a tool does not take."""
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
