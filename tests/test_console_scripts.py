"""The installed commands (setup.py's console scripts): one per tool, each starting that tool."""

import pathlib
import re
import subprocess
import sys

import pytest

from conftest import REPO

SCRIPTS = re.findall(r'"(osmn-[a-z-]+)=([\w.]+):entry"', (REPO / "setup.py").read_text())
BIN = pathlib.Path(sys.executable).parent


def test_every_user_tool_has_a_command():
    modules = {module for _, module in SCRIPTS}
    for tool in ("infer", "train", "eval", "export", "serve_client", "convert_tf1_checkpoint",
                 "analyze", "show_samples", "segment_many"):
        assert f"osmn_tools.{tool}" in modules, tool
    assert "osmn.app.cli" in modules


@pytest.mark.parametrize("command", [name for name, _ in SCRIPTS])
def test_command_is_installed_and_starts_its_tool(command):
    path = BIN / command
    assert path.is_file(), f"{path}: not installed (pip install -e .)"
    done = subprocess.run([str(path), "--no_such_flag"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    # Its tool's own one-line refusal (segment_many hands unknown flags to Beam and first
    # names its missing --manifest).
    assert len(errors) == 1 and errors[0].startswith("error: "), errors
    assert "no_such_flag" in errors[0] or "--manifest: required" in errors[0], errors
