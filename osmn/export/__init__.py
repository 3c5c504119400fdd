"""SavedModel export of OSMN for TF Serving, and a REST client for it (see docs/serving.md).

* `OSMNServingModule`: the signatures; `export_saved_model`: writes `export_dir/<version>/`
  atomically (both need TensorFlow).
* `ServingClient`, `ServingBackend`: TF Serving's REST API as the backend of
  `osmn.inference.VideoSegmenter` (numpy only).
* `export_model`: any of `FORMATS` (saved_model, litert, onnx) in one call
  (`osmn.export.formats`).

Names are imported on first use, so the client side does not import TensorFlow.
"""

import importlib

_EXPORTS = {
    "OSMNServingModule": "osmn.export.serving_module",
    "SIGNATURES": "osmn.export.serving_module",
    "guide_to_rgb": "osmn.export.serving_module",
    "export_saved_model": "osmn.export.saved_model",
    "existing_versions": "osmn.export.saved_model",
    "next_version": "osmn.export.saved_model",
    "reference_probability": "osmn.export.saved_model",
    "verify_export": "osmn.export.saved_model",
    "FORMATS": "osmn.export.formats",
    "export_model": "osmn.export.formats",
    "ServingClient": "osmn.export.rest_client",
    "ServingBackend": "osmn.export.serving_backend",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'osmn.export' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
