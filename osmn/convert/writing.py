"""Write a converted OSMN model as `.keras` or as `.weights.h5` + `config.json`, atomically."""

from __future__ import annotations

import json
import pathlib

from osmn.errors import UserError
from osmn.io import atomic_path
from osmn.model import OSMN, save_osmn

CONFIG_NAME = "config.json"  # read by `osmn.model.load_osmn` beside a `.weights.h5`


def _atomic_write(path: pathlib.Path, write) -> None:
    """Call `write(temp_path)` on a temp file beside `path`, then rename it to `path`."""
    with atomic_path(path) as tmp:
        write(str(tmp))


def write_model(model: OSMN, path) -> list:
    """Save `model` to `path`.

    Args:
        model: the OSMN model.
        path: `*.keras` (config + weights in one file, via `osmn.model.save_osmn`) or
            `*.weights.h5` (weights only, with `config.json` = {"model_config": {...}} written
            beside it so that `osmn.model.load_osmn` can rebuild the model).

    Returns:
        The paths written.

    Raises:
        UserError: any other extension.
    """
    path = pathlib.Path(path)
    if path.suffix == ".keras":
        save_osmn(model, path)
        return [path]
    if not path.name.endswith(".weights.h5"):
        raise UserError(f"{path}: the output must end in .keras or .weights.h5")
    path.parent.mkdir(parents=True, exist_ok=True)
    config_path = path.parent / CONFIG_NAME
    _atomic_write(path, model.save_weights)
    text = json.dumps({"model_config": model.model_config.to_dict()}, indent=2, sort_keys=True)
    _atomic_write(config_path, lambda tmp: pathlib.Path(tmp).write_text(text + "\n"))
    return [path, config_path]
