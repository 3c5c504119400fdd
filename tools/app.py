"""A local web app to segment your own video: make the first mask, propagate, correct, download.

    python tools/app.py [--port 7860] [--checkpoint MODEL.keras] [--precision bfloat16]

serves on http://127.0.0.1:7860 (this machine only); the same as the installed `osmn-app`.
Needs `pip install -e ".[app]"`. Flags: `osmn/app/cli.py`; see docs/app.md.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from osmn.app.cli import entry  # noqa: E402

if __name__ == "__main__":
    entry()
