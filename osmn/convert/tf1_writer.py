"""Write a name-based TF1 checkpoint, the format of the authors' released files.

The authors saved with `tf.train.Saver` in a TF1 graph: a V2 checkpoint (`PREFIX.index`,
`PREFIX.data-00000-of-00001`) keyed by variable names such as `osmn/seg/conv1/conv1_1/weights`.
This writes the same format through the same machinery (`tf.compat.v1` variables and
`tf.compat.v1.train.Saver` in a graph), so the converter's tests read a file made the way the
authors made theirs. It also exports OSMN weights under the original names if ever needed.
"""

from __future__ import annotations

import pathlib
from typing import Mapping

import numpy as np
import tensorflow as tf


def write_tf1_checkpoint(prefix, arrays: Mapping[str, np.ndarray]) -> str:
    """Save `arrays` as TF1 variables named by their keys.

    Values are fed through placeholders, so large tensors (fc6 is 411 MB at
    full width) never become graph constants.

    Args:
        prefix: path prefix of the checkpoint (its folder must exist).
        arrays: checkpoint name -> numpy array (any dtype TF supports; scalars allowed).

    Returns:
        The prefix, readable with `tf.train.load_checkpoint`.
    """
    prefix = str(pathlib.Path(prefix))
    graph = tf.Graph()
    with graph.as_default():
        variables, feeds = {}, {}
        for i, (name, value) in enumerate(arrays.items()):
            value = np.asarray(value)
            placeholder = tf.compat.v1.placeholder(tf.as_dtype(value.dtype), value.shape)
            variables[name] = tf.compat.v1.Variable(placeholder, name=f"var{i}")
            feeds[placeholder] = value
        saver = tf.compat.v1.train.Saver(var_list=variables,
                                         write_version=tf.compat.v1.train.SaverDef.V2)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer(), feeds)
            saver.save(session, prefix, write_meta_graph=False, write_state=False)
    return prefix
