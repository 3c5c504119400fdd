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


# The small demo model shipped in the repository, the default of tools that take --checkpoint.
SHIPPED_MODEL = "data/sample_model.keras"


def model_path_or_shipped(checkpoint):
    """`--checkpoint` as a path, or the shipped demo model when it is None (one line says so).

    Raises:
        UserError: the default was asked for and the shipped model is missing.
    """
    if checkpoint is not None:
        return pathlib.Path(checkpoint)
    path = pathlib.Path(__file__).resolve().parents[1] / SHIPPED_MODEL
    if not path.exists():
        raise UserError(f"{SHIPPED_MODEL}: the shipped sample model is missing; run "
                        "`python tools/train.py --flagfile=data/sample.flags` first or pass "
                        "--checkpoint")
    print(f"Using the shipped sample model {SHIPPED_MODEL} (a small demo model).")
    return path


def no_extra_arguments(argv) -> None:
    """Raise `UserError` for positional arguments a tool does not take."""
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
