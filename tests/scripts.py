"""Importing the repository's scripts (tools/*.py, benchmarks/*.py) as modules in the tests.

They are scripts, not package modules, so they are loaded from their files; each is loaded once
per test session and registered in `sys.modules` (absl flags may be defined only once, and
dataclasses look their module up there). The tools share flag names (one vocabulary: --output,
--data_dir, --checkpoint, --precision, ...): in one test process a shared flag belongs to the
script loaded last.
"""

import importlib.util
import os
import pathlib
import subprocess
import sys

from absl import flags

REPO = pathlib.Path(__file__).resolve().parents[1]


_LOADED = set()  # module names of the scripts loaded so far


def _loaded_scripts_flags():
    return [flag for module, defined in flags.FLAGS.flags_by_module_dict().items()
            if module in _LOADED for flag in defined]


def load_script(relative_path: str, module_name: str):
    """The module of `REPO/relative_path`, loaded once as `module_name`."""
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, REPO / relative_path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        shared = _loaded_scripts_flags()
        for flag in shared:  # defined again by this script: absl replaces it
            flag.allow_override = True
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            raise
        finally:
            for flag in shared:
                flag.allow_override = False
        _LOADED.add(module_name)
    return sys.modules[module_name]


def load_tool(name: str):
    """tools/<name>.py as the module `osmn_tool_<name>`."""
    return load_script(f"tools/{name}.py", f"osmn_tool_{name}")


def run_tool(name: str, *args, cwd=REPO, tf_log_level: str = "3", timeout: int = 300):
    """tools/<name>.py in a subprocess, as a user runs it: the CompletedProcess with text
    stdout/stderr (exit codes and stderr as a user sees them; TensorFlow's own C++ log level
    `tf_log_level`, the repository on PYTHONPATH)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": tf_log_level, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, str(REPO / "tools" / f"{name}.py"), *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
