"""Install osmn-tf: `pip install -r requirements.txt -e .` (see README.md)."""

import pathlib
import re

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "osmn" / "__init__.py").read_text()).group(1)
REQUIREMENTS = [line.split("#")[0].strip()
                for line in (HERE / "requirements.txt").read_text().splitlines()
                if line.split("#")[0].strip() and not line.startswith("pytest")]

setup(
    name="osmn-tf",
    version=VERSION,
    description="Efficient Video Object Segmentation via Network Modulation (OSMN) in TF2/Keras 3",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    # `osmn_tools` is the tools/ folder, installed so that console scripts can start its tools.
    packages=find_packages(include=["osmn", "osmn.*"]) + ["osmn_tools"],
    package_dir={"osmn_tools": "tools"},
    # The native kernels' C++ sources, compiled on first use (osmn/kernels/build.py).
    package_data={"osmn.kernels": ["*.cc"]},
    python_requires=">=3.10",
    install_requires=REQUIREMENTS,
    # Optional: `pip install -e .[video]` reads and writes mp4 (imageio-ffmpeg ships its own
    # ffmpeg); `.[crf]` enables `tools/infer.py --crf` (dense CRF, Table 3 "+ CRF"). Without them
    # the tools say in one line what to install. `.[portable]`: `tools/export.py --format
    # litert|onnx` (ai-edge-litert runs .tflite files; tf2onnx converts, onnxruntime runs ONNX).
    # `.[beam]`: `tools/segment_many.py` (Apache Beam).
    extras_require={
        "video": ["imageio==2.38.1", "imageio-ffmpeg==0.8.1"],
        "crf": ["pydensecrf2==1.1"],
        "portable": ["ai-edge-litert==2.3.0", "tf2onnx==1.17.0", "onnxruntime==1.32.0"],
        # `tools/segment_many.py`: many videos on Apache Beam (docs/batch.md). 2.77 installs
        # with TF 2.21 (numpy < 2.5, protobuf 6.x); it needs pillow < 13 (requirements.txt).
        "beam": ["apache-beam==2.77.0"],
        # `.[app]`: the local web app (`osmn-app`, docs/app.md): Gradio for the page, OpenCV's
        # GrabCut for box-to-mask, imageio for the overlay mp4; selenium drives the system's
        # chromium in the app's browser test.
        "app": ["gradio==6.31.0", "opencv-python-headless==5.1.0.95", "imageio==2.38.1",
                "imageio-ffmpeg==0.8.1", "selenium==4.51.0"],
    },
    # One command per tool (`pip install osmn-tf` gives them; `python tools/<tool>.py` works
    # the same from a checkout).
    entry_points={"console_scripts": [
        "osmn-infer=osmn_tools.infer:entry",
        "osmn-train=osmn_tools.train:entry",
        "osmn-eval=osmn_tools.eval:entry",
        "osmn-export=osmn_tools.export:entry",
        "osmn-serve-client=osmn_tools.serve_client:entry",
        "osmn-convert=osmn_tools.convert_tf1_checkpoint:entry",
        "osmn-analyze=osmn_tools.analyze:entry",
        "osmn-show-samples=osmn_tools.show_samples:entry",
        "osmn-segment-many=osmn_tools.segment_many:entry",
        "osmn-app=osmn.app.cli:entry",
    ]},
    license="MIT",
)
