"""DAVIS evaluation: J (region similarity) and F (boundary accuracy) as the official code."""

from osmn.evaluation.davis import ObjectResult, evaluate, evaluate_sequence, list_sequences, overall
from osmn.evaluation.metrics import boundary_f, f_measure, jaccard, seg2bmap, statistics
from osmn.evaluation.report import j_over_time, table, write_csv, write_plot

__all__ = ["ObjectResult", "evaluate", "evaluate_sequence", "list_sequences", "overall",
           "boundary_f", "f_measure", "jaccard", "seg2bmap", "statistics", "j_over_time",
           "table", "write_csv", "write_plot"]
