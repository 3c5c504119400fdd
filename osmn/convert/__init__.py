"""Converters from the authors' TF1 checkpoints (and the TF-slim ImageNet vgg_16) to OSMN."""

from osmn.convert.reference_check import ReferenceResult, check_reference, load_reference
from osmn.convert.tf1_checkpoint import ConversionReport, convert_tf1_checkpoint
from osmn.convert.tf1_names import (fixed_upsampling_kernels, infer_model_config,
                                    tf1_name_map)
from osmn.convert.tf1_writer import write_tf1_checkpoint
from osmn.convert.writing import write_model

__all__ = ["ConversionReport", "ReferenceResult", "check_reference", "convert_tf1_checkpoint",
           "fixed_upsampling_kernels", "infer_model_config", "load_reference", "tf1_name_map",
           "write_model", "write_tf1_checkpoint"]
