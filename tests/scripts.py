"""Importing the repository's scripts (tools/*.py, benchmarks/*.py) as modules in the tests.

They are scripts, not package modules, so they are loaded from their files; each is loaded once
per test session and registered in `sys.modules` (absl flags may be defined only once, and
dataclasses look their module up there).
"""

import importlib.util
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def load_script(relative_path: str, module_name: str):
    """The module of `REPO/relative_path`, loaded once as `module_name`."""
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, REPO / relative_path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


def load_tool(name: str):
    """tools/<name>.py as the module `osmn_tool_<name>`."""
    return load_script(f"tools/{name}.py", f"osmn_tool_{name}")
