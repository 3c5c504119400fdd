"""The one way every tool in `tools/` starts, so that all report user errors alike.

A bad flag or a `UserError` raised anywhere in the tool becomes ONE line on stderr,
`error: <what and where>`, and exit code 2. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import pathlib
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
