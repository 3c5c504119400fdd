"""Training data of OSMN: COCO (stage 1), DAVIS and YouTube-VOS (stage 2), as tf.data pipelines.

    from osmn.data import training_dataset
    ds = training_dataset(train_config, data_dir, start_batch=0)

See `osmn.data.pipeline.training_dataset` and docs/data.md.
"""

from osmn.data.pipeline import build_source, sample_stream, training_dataset
from osmn.data.report import DataReport

__all__ = ["DataReport", "build_source", "sample_stream", "training_dataset"]
