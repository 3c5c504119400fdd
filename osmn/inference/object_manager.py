"""User object ids <-> positions on the batch axis (as Cutie/XMem's ObjectManager)."""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from osmn import config


class ObjectManager:
    """Keeps the user's object ids (the values of the first-frame mask) apart from batch slots.

    Objects are kept in increasing id order, the order of the original's merge (spec,
    "Multi-object"): batch position k holds object `ids[k]`.

    Args:
        ids: sequence of int in 1..254, the object ids. Must not be empty.

    Example:
    >>> manager = ObjectManager([7, 2])
    >>> manager.ids, manager.position(7)
    ((2, 7), 1)
    """

    def __init__(self, ids: Sequence[int]):
        ids = tuple(sorted(int(i) for i in set(ids)))
        if not ids:
            raise ValueError("ObjectManager needs at least one object id")
        if ids[0] < 1 or ids[-1] >= config.VOID_LABEL:
            raise ValueError(f"object ids must be in 1..{config.VOID_LABEL - 1}, got {ids}")
        self.ids: Tuple[int, ...] = ids

    @property
    def num_objects(self) -> int:
        return len(self.ids)

    def position(self, object_id: int) -> int:
        """Batch position of a user id."""
        return self.ids.index(int(object_id))

    def masks_from_labels(self, labels: np.ndarray) -> np.ndarray:
        """Label map [H, W] -> one boolean mask per object, [K, H, W] in batch order."""
        return np.stack([labels == object_id for object_id in self.ids])

    def labels_from_positions(self, winners: np.ndarray) -> np.ndarray:
        """Winner map [H, W] int (0 background, k + 1 for batch position k) -> user ids, uint8."""
        lookup = np.array((0,) + self.ids, np.uint8)
        return lookup[winners]
