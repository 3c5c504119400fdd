"""The inference engine: how an `OSMN` runs fast, kept apart from the paper's model.

* `LocalEngine`: the model's per-frame graph at a precision (float32 / bfloat16, "auto" per
  backbone and CPU), XLA or not, with the native modulation op: the one per-frame function
  that `osmn.inference.VideoSegmenter`, the tools, the benchmarks and the app run;
* `segment_objects`: the inference forward pass for K objects (`forward.py`);
* `modulation_pass`, `inference_head`: its kernels (one-pass modulation, inference head).
"""

from osmn.inference.engine.forward import segment_objects
from osmn.inference.engine.local_engine import (XLA_BY_DEFAULT, LocalEngine, choose_precision,
                                                default_jit_compile, inference_model,
                                                working_frame)

__all__ = ["LocalEngine", "segment_objects", "inference_model", "choose_precision",
           "default_jit_compile", "working_frame", "XLA_BY_DEFAULT"]
