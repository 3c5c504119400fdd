"""What the modulators learn (paper §4.2): Figures 5, 6 and 7 from any checkpoint.

* `objects`: (visual guide, category) pairs from COCO annotations or DAVIS masks.
* `statistics`: gammas per object, per-layer gamma spread, spatial-modulator scales.
* `embedding`: classical MDS in numpy.
* `figures`: the matplotlib figures, written atomically.
* `report`: `analyze(model, objects)` and `write_analysis(result, folder)`.

The command line is `tools/analyze.py`; see docs/analysis.md.
"""

from osmn.analysis.embedding import classical_mds
from osmn.analysis.objects import AnalysisObject, coco_objects, davis_objects
from osmn.analysis.report import Analysis, analyze, write_analysis

__all__ = ["AnalysisObject", "Analysis", "analyze", "classical_mds", "coco_objects",
           "davis_objects", "write_analysis"]
