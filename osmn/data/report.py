"""Bookkeeping of bad training data: each problem is logged once with its path and counted.

Bad data (a missing image, a corrupt JPEG, an annotation with no valid object, a mask whose size
differs from its image, ...) is found while the sample index is built, skipped, and summarised by
`DataReport.summary()`; it never stops an epoch.
"""

from __future__ import annotations

import collections
import logging
from typing import Dict, List, Tuple

logger = logging.getLogger("osmn.data")


class DataReport:
    """Counts of skipped bad samples, keyed by problem.

    Attributes:
        problems: dict problem -> list of (path, detail), in the order found.
        kept: dict name -> int, e.g. {"samples": 1234, "sequences": 60}.
        filtered: dict reason -> int, items left out by design (crowd, small instances).
    """

    def __init__(self, source: str):
        self.source = source
        self.problems: Dict[str, List[Tuple[str, str]]] = collections.OrderedDict()
        self.kept: Dict[str, int] = collections.OrderedDict()
        # Items left out by design, not bad data (e.g. crowd or small COCO instances).
        self.filtered: Dict[str, int] = collections.OrderedDict()
        self.notes: List[str] = []
        self._seen = set()

    def skip(self, problem: str, path, detail: str = "") -> None:
        """Record (and log once per problem, path and detail) a skipped item."""
        key = (problem, str(path), detail)
        if key in self._seen:
            return
        self._seen.add(key)
        self.problems.setdefault(problem, []).append((str(path), detail))
        logger.warning("skipping %s: %s%s", path, problem, f" ({detail})" if detail else "")

    def note(self, message: str) -> None:
        """A fact about the build worth one log line (e.g. 'no split file, using all')."""
        self.notes.append(message)
        logger.info("%s: %s", self.source, message)

    def count(self, problem: str) -> int:
        return len(self.problems.get(problem, ()))

    @property
    def skipped(self) -> int:
        return sum(len(v) for v in self.problems.values())

    def summary(self) -> str:
        """One line, e.g. 'davis: kept 39 samples, 1 sequences; skipped 2 (corrupt image: 1, ...)'."""
        kept = ", ".join(f"{v} {k}" for k, v in self.kept.items()) or "nothing"
        line = f"{self.source}: kept {kept}; skipped {self.skipped}"
        if self.problems:
            line += " (" + ", ".join(f"{k}: {len(v)}" for k, v in self.problems.items()) + ")"
        if any(self.filtered.values()):
            line += "; filtered " + ", ".join(f"{v} {k}" for k, v in self.filtered.items() if v)
        return line

    def __repr__(self) -> str:
        return f"DataReport({self.summary()!r})"
