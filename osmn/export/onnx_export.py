"""ONNX export of OSMN (`tf2onnx`): the `gamma` and `segment` halves as two `.onnx` files.

    export_dir/
      gamma.onnx       visual_guide [B,224,224,3] -> gamma [B,G]
      segment.onnx     image [B|1,H,W,3], spatial_guide [B,H,W,1], gamma [B,G]
                       -> probability [B,H,W,1]
      osmn_export.json

Converted with `tf2onnx.convert.from_function` from the SavedModel's signatures
(`OSMNServingModule`), so the inputs are the same (RGB float32 0..255, NHWC, converted inside)
and every dimension but the channels and G is dynamic. Run with onnxruntime (`OnnxHalves`).
The graph's assertions (image and guide sizes) are dropped by tf2onnx: a wrong size gives an
onnxruntime shape error instead of the SavedModel's message.
"""

from __future__ import annotations

import pathlib
from typing import Dict, Optional

import numpy as np

from osmn.errors import UserError
from osmn.export import portable

# ONNX opset of the exported graphs (ResizeBilinear without half-pixel centres maps to
# Resize-11+ "asymmetric"; 17 is supported by every current runtime).
OPSET = 17


def _tf2onnx():
    try:
        import tf2onnx  # noqa: PLC0415
    except ImportError as error:
        raise UserError("ONNX export needs the tf2onnx package (pip install tf2onnx)") \
            from error
    return tf2onnx


def convert_half(function, opset: int = OPSET) -> bytes:
    """A `tf.function` with an input signature (`OSMNServingModule.gamma`/`.segment`) ->
    serialized ONNX model bytes."""
    tf2onnx = _tf2onnx()
    model_proto, _ = tf2onnx.convert.from_function(
        function, input_signature=function.input_signature, opset=opset)
    return model_proto.SerializeToString()


class OnnxHalves:
    """Both halves of an ONNX export folder, run with onnxruntime on the CPU.

    Example:
    >>> halves = OnnxHalves("models/osmn_onnx")
    >>> gamma = halves.run("gamma", {"visual_guide": visual_guides})
    >>> probability = halves.run("segment", {"image": frame, "spatial_guide": guides,
    ...                                      "gamma": gamma})
    """

    def __init__(self, export_dir, threads: Optional[int] = None):
        try:
            import onnxruntime  # noqa: PLC0415
        except ImportError as error:
            raise UserError("running ONNX models needs the onnxruntime package "
                            "(pip install onnxruntime)") from error
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.sessions = {}
        for half in portable.HALVES:
            path = pathlib.Path(export_dir) / f"{half}.onnx"
            if not path.exists():
                raise UserError(f"{path}: ONNX model not found")
            self.sessions[half] = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"])

    def run(self, half: str, inputs: Dict[str, np.ndarray]) -> np.ndarray:
        session = self.sessions[half]
        return session.run(None, session_feed(session, inputs))[0]


def session_feed(session, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """The onnxruntime feed of one half: `inputs` by the signature's names ("image",
    "spatial_guide", ...) -> the same arrays, float32 and C-contiguous, by the graph's input
    names (tf2onnx names them "<name>:0").

    Args:
        session: an `onnxruntime.InferenceSession` of `gamma.onnx` or `segment.onnx`.
        inputs: name -> array, e.g. {"visual_guide": [B, 224, 224, 3]} for `modulate`.
    """
    names = {i.name.split(":")[0]: i.name for i in session.get_inputs()}
    return {names[name]: np.ascontiguousarray(value, np.float32)
            for name, value in inputs.items()}


def export_onnx(model, export_dir, overwrite: bool = False, verify: bool = True,
                source: Optional[str] = None, opset: int = OPSET) -> Dict[str, float]:
    """Write `gamma.onnx` and `segment.onnx` to `export_dir` (atomically, as one folder).

    Args:
        model: `osmn.model.OSMN` (either backbone).
        export_dir: the folder to create.
        overwrite: replace an existing `export_dir`.
        verify: run both files with onnxruntime on random inputs and record the max abs
            difference to Keras (in osmn_export.json and the return value).
        source: optional description of the checkpoint, stored in the metadata.
        opset: ONNX opset.

    Returns:
        {"gamma": diff, "segment": diff} ({} without `verify`).
    """
    _tf2onnx()  # Fail before writing anything when it is missing.
    differences = {}

    def write(folder: pathlib.Path) -> dict:
        functions = portable.halves(model)
        module = functions.module
        files = {}
        for half in portable.HALVES:
            (folder / f"{half}.onnx").write_bytes(convert_half(getattr(module, half), opset))
            files[half] = f"{half}.onnx"
        if verify:
            differences.update(portable.compare(OnnxHalves(folder).run, model))
        info = portable.metadata(model, f"osmn-tf ONNX (opset {opset})", files, source,
                                 differences)
        return info

    portable.write_folder(export_dir, write, overwrite=overwrite)
    return differences
