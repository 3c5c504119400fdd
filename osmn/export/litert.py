"""LiteRT (TensorFlow Lite) export of OSMN: the `gamma` and `segment` halves as `.tflite`.

    export_dir/
      gamma_float32.tflite      segment_float32.tflite     <- always
      gamma_float16.tflite      segment_float16.tflite     <- quantization="float16" (default)
      gamma_int8.tflite         segment_int8.tflite        <- quantization="int8"
      osmn_export.json                                     <- config, inputs, measured diffs

Each half is converted with `tf.lite.TFLiteConverter.from_concrete_functions` from the
SavedModel's signature (`OSMNServingModule`), so inputs are the same: RGB float32 0..255 (the
BGR-minus-mean conversion is inside), every dimension but the channels and G dynamic (call
`resize_tensor_input` before `allocate_tensors`). Variants:

* float32: the Keras model's arithmetic;
* float16: weights stored as float16 (half the file), dequantised to float32 at load time;
* int8: dynamic-range quantisation (weights int8, a quarter of the file; activations are
  quantised on the fly per op, so outputs move more, see docs/lite_and_portable.md).

Run with the `ai-edge-litert` interpreter (`LiteRTHalves`), the package that replaces
`tf.lite.Interpreter`.
"""

from __future__ import annotations

import pathlib
from typing import Dict, Optional, Sequence

import numpy as np
import tensorflow as tf

from osmn.errors import UserError
from osmn.export import portable

QUANTIZATIONS = ("float32", "float16", "int8")


def convert_half(function, module, quantization: str = "float32") -> bytes:
    """One concrete function -> `.tflite` flatbuffer bytes.

    Args:
        function: a concrete function of `OSMNServingModule` (`portable.halves`).
        module: the module that owns its variables.
        quantization: "float32", "float16" or "int8" (dynamic range).
    """
    if quantization not in QUANTIZATIONS:
        raise UserError(f"LiteRT quantization must be one of {', '.join(QUANTIZATIONS)}, "
                        f"got {quantization!r}")
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], module)
    if quantization != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def file_name(half: str, quantization: str) -> str:
    return f"{half}_{quantization}.tflite"


class LiteRTHalf:
    """One `.tflite` half run with the `ai-edge-litert` interpreter.

    Call with the half's inputs by name (numpy float32, any sizes) -> its one output.
    """

    def __init__(self, path, num_threads: Optional[int] = None):
        try:
            from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415
        except ImportError as error:
            raise UserError("running LiteRT models needs the ai-edge-litert package "
                            "(pip install ai-edge-litert)") from error
        self.path = str(path)
        self.interpreter = Interpreter(model_path=self.path, num_threads=num_threads)
        self._inputs = {self._name(d["name"]): d for d in self.interpreter.get_input_details()}
        self._shapes = None

    @staticmethod
    def _name(tensor_name: str) -> str:
        # Converted signatures name inputs "serving_default_image:0" or "image".
        name = tensor_name.split(":")[0]
        for known in ("visual_guide", "spatial_guide", "image", "gamma"):
            if name.endswith(known):
                return known
        return name

    def __call__(self, **inputs) -> np.ndarray:
        shapes = {name: tuple(value.shape) for name, value in inputs.items()}
        if shapes != self._shapes:
            for name, value in inputs.items():
                self.interpreter.resize_tensor_input(self._inputs[name]["index"], value.shape)
            self.interpreter.allocate_tensors()
            self._shapes = shapes
        for name, value in inputs.items():
            self.interpreter.set_tensor(self._inputs[name]["index"],
                                        np.ascontiguousarray(value, np.float32))
        self.interpreter.invoke()
        output = self.interpreter.get_output_details()[0]
        return self.interpreter.get_tensor(output["index"])


class LiteRTHalves:
    """Both halves of a LiteRT export folder, of one quantization.

    Example:
    >>> halves = LiteRTHalves("models/osmn_litert", "float32")
    >>> gamma = halves.gamma(visual_guide=visual_guides)             # [K, 224, 224, 3] RGB
    >>> probability = halves.segment(image=frame, spatial_guide=guides, gamma=gamma)
    """

    def __init__(self, export_dir, quantization: str = "float32",
                 num_threads: Optional[int] = None):
        export_dir = pathlib.Path(export_dir)
        for half in portable.HALVES:
            path = export_dir / file_name(half, quantization)
            if not path.exists():
                raise UserError(f"{path}: LiteRT model not found")
            setattr(self, half, LiteRTHalf(path, num_threads))

    def run(self, half: str, inputs: dict) -> np.ndarray:
        return getattr(self, half)(**inputs)


def export_litert(model, export_dir, quantizations: Sequence[str] = ("float32", "float16"),
                  overwrite: bool = False, verify: bool = True,
                  source: Optional[str] = None) -> Dict[str, Dict[str, float]]:
    """Write both halves in each quantization to `export_dir` (atomically, as one folder).

    Args:
        model: `osmn.model.OSMN` (either backbone).
        export_dir: the folder to create.
        quantizations: subset of QUANTIZATIONS; "float32" is always written.
        overwrite: replace an existing `export_dir`.
        verify: run each written model with the LiteRT interpreter on random inputs and record
            the max abs difference to Keras (in osmn_export.json and the return value).
        source: optional description of the checkpoint, stored in the metadata.

    Returns:
        {quantization: {"gamma": diff, "segment": diff}} (empty dicts without `verify`).
    """
    quantizations = list(dict.fromkeys(["float32", *quantizations]))
    for quantization in quantizations:
        if quantization not in QUANTIZATIONS:
            raise UserError(f"LiteRT quantization must be one of {', '.join(QUANTIZATIONS)}, "
                            f"got {quantization!r}")
    differences = {}

    def write(folder: pathlib.Path) -> dict:
        functions = portable.halves(model)
        files = {}
        for quantization in quantizations:
            for half in portable.HALVES:
                name = file_name(half, quantization)
                (folder / name).write_bytes(
                    convert_half(functions[half], functions.module, quantization))
                files.setdefault(quantization, {})[half] = name
            differences[quantization] = (
                portable.compare(LiteRTHalves(folder, quantization).run, model) if verify
                else {})
        return portable.metadata(model, "osmn-tf LiteRT (.tflite)", files, source, differences)

    portable.write_folder(export_dir, write, overwrite=overwrite)
    return differences
