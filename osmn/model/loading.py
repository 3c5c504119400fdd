"""Save and load OSMN models: the `.keras` file (config + weights) is the unit users pass around.

Accepted by `load_osmn`:
* a `.keras` file written by `save_osmn` or `model.save(...)`;
* a `.weights.h5` file with a `config.json` beside it holding {"model_config": {...}};
* a directory holding `model.keras` (e.g. a training run's output directory).
"""

from __future__ import annotations

import json
import pathlib
import zipfile

import keras

from osmn.errors import UserError
from osmn.io import atomic_path
from osmn.model.osmn_model import OSMN


def save_osmn(model: OSMN, path) -> None:
    """Write `model` to a `.keras` file atomically (temp file in the same folder, then rename)."""
    path = pathlib.Path(path)
    if path.suffix != ".keras":
        raise UserError(f"{path}: a model file must end in .keras")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        model.save(tmp)


def _complete_zip(path: pathlib.Path) -> bool:
    """Whether `path` is a zip archive whose every member's CRC checks (a cut file is not)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return False


def load_osmn(path) -> OSMN:
    """Load an OSMN model from a `.keras` file, a `.weights.h5` + `config.json`, or a folder.

    Raises:
        UserError: the path does not exist or is not a readable OSMN model.
    """
    path = pathlib.Path(path)
    if path.is_dir():
        path = path / "model.keras"
    if not path.exists():
        raise UserError(f"{path}: model file not found")
    try:
        if path.name.endswith(".weights.h5"):
            config_path = path.parent / "config.json"
            if not config_path.exists():
                raise UserError(f"{path}: weights file without {config_path.name} beside it")
            model = OSMN(json.loads(config_path.read_text()).get("model_config", {}))
            model.load_weights(path)
            return model
        if path.suffix == ".keras" and not _complete_zip(path):
            raise UserError(f"{path}: not a readable OSMN model (not a complete .keras file: "
                            "truncated, or not the zip archive a .keras model is)")
        model = keras.saving.load_model(path, compile=False)
    except UserError:
        raise
    except Exception as error:  # Keras raises many types for corrupt files.
        raise UserError(f"{path}: not a readable OSMN model ({type(error).__name__}: "
                        f"{str(error).splitlines()[0] if str(error) else ''})") from error
    if not isinstance(model, OSMN):
        raise UserError(f"{path}: holds a {type(model).__name__}, not an OSMN model")
    return model
