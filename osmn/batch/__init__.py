"""Batch segmentation of many videos on Apache Beam (`tools/segment_many.py`, docs/batch.md).

* `manifest`: the CSV of videos (no TF, no Beam);
* `video_job`: one video -> OUT/<sequence>/ with the library's VideoSegmenter;
* `store`: reads and atomic writes through Beam's FileSystems;
* `pipeline`: the Beam pipeline (needs the `beam` extra: pip install -e ".[beam]").
"""
