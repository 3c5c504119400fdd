"""Video inference: the per-video segmenter, its engine, object ids, merging, frames, writing."""

from osmn.inference.driver import segment_video
from osmn.inference.engine import LocalEngine
from osmn.inference.frames import FrameSource, default_mask_path, read_frame
from osmn.inference.masks import davis_palette, object_ids, read_mask, write_mask
from osmn.inference.merge import merge_probabilities
from osmn.inference.object_manager import ObjectManager
from osmn.inference.video_segmenter import FrameResult, VideoSegmenter, load_segmenter
from osmn.inference.writer import ResultWriter, publish_sequence

__all__ = ["FrameSource", "default_mask_path", "read_frame", "davis_palette", "object_ids",
           "read_mask", "write_mask", "merge_probabilities", "ObjectManager", "FrameResult",
           "VideoSegmenter", "LocalEngine", "load_segmenter", "segment_video", "ResultWriter",
           "publish_sequence"]
