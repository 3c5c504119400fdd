"""Native CPU kernels (C++ TF custom ops), built on first use; see `build.py`.

Inference uses them when they load and falls back to XLA formulations of the same computations
otherwise. Training and SavedModel exports never use them.
"""
