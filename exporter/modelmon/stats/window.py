"""Sliding event-time windows over additive vectors.

A window of length L keeps ``buckets`` sub-window sums of resolution L / buckets and a
running total. Adding a vector at time t adds it to t's bucket; moving time forward
subtracts the buckets that fall out. Reading is O(1): the running total.

The window covers the buckets whose start lies within L of the newest bucket, so it
spans between L - L/buckets and L of event time. Vectors older than the window are not
added (the exporter still counts them in its counters).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class SlidingWindow:
    """A ring of ``buckets`` sums of ``size``-long vectors, keyed by event time.

    >>> w = SlidingWindow(length=60.0, size=2, buckets=6)
    >>> w.add(0.0, np.array([1.0, 0.0])), w.add(35.0, np.array([0.0, 2.0]))
    (True, True)
    >>> w.total().tolist()
    [1.0, 2.0]
    >>> w.advance(65.0); w.total().tolist()
    [0.0, 2.0]
    """

    def __init__(self, length: float, size: int, buckets: int = 30) -> None:
        if length <= 0:
            raise ValueError(f"length: expected a positive duration, got {length}")
        if buckets < 1:
            raise ValueError(f"buckets: expected at least 1, got {buckets}")
        self.length = float(length)
        self.resolution = self.length / buckets
        self.buckets = buckets
        self._sums = np.zeros((buckets, size), dtype=np.float64)
        self._ids = np.full(buckets, -1, dtype=np.int64)  # bucket id held by each ring slot
        self._total = np.zeros(size, dtype=np.float64)
        self._newest = -1

    def bucket_of(self, timestamp: float) -> int:
        return math.floor(timestamp / self.resolution)

    def accepts(self, timestamp: float) -> bool:
        """Whether an event at ``timestamp`` still falls inside the window."""
        return self.bucket_of(timestamp) > self._newest - self.buckets

    def advance(self, timestamp: float) -> None:
        """Move the window's end to ``timestamp``, dropping buckets that fall out."""
        newest = self.bucket_of(timestamp)
        if newest <= self._newest:
            return
        oldest_kept = newest - self.buckets + 1
        stale = (self._ids >= 0) & (self._ids < oldest_kept)
        if stale.any():
            self._total -= self._sums[stale].sum(axis=0)
            self._sums[stale] = 0.0
            self._ids[stale] = -1
        if not (self._ids >= 0).any():
            self._total[:] = 0.0  # wash out rounding once the window is empty
        self._newest = newest

    def add(self, timestamp: float, vector: FloatArray) -> bool:
        """Add ``vector`` at event time ``timestamp``; False when it is too old."""
        self.advance(timestamp)
        bucket = self.bucket_of(timestamp)
        if bucket <= self._newest - self.buckets:
            return False
        slot = bucket % self.buckets
        if self._ids[slot] != bucket:
            self._ids[slot] = bucket
        self._sums[slot] += vector
        self._total += vector
        return True

    def total(self) -> FloatArray:
        """The sum of every vector in the window (a copy)."""
        total: FloatArray = self._total.copy()
        return total

    # --- checkpoints -------------------------------------------------------------------

    def state(self) -> dict[str, object]:
        held = self._ids >= 0
        return {
            "length": self.length,
            "buckets": self.buckets,
            "newest": self._newest,
            "ids": self._ids[held].tolist(),
            "sums": self._sums[held].tolist(),
        }

    def restore(self, state: dict[str, object]) -> None:
        """Load a :meth:`state`; a different length or bucket count is ignored."""
        if state.get("length") != self.length or state.get("buckets") != self.buckets:
            return
        ids = np.asarray(state["ids"], dtype=np.int64)
        sums = np.asarray(state["sums"], dtype=np.float64).reshape(-1, self._sums.shape[1])
        if len(ids) != len(sums):
            return
        self._newest = int(state["newest"])  # type: ignore[call-overload]
        self._ids[:] = -1
        self._sums[:] = 0.0
        for bucket, vec in zip(ids, sums, strict=True):
            slot = int(bucket) % self.buckets
            self._ids[slot] = bucket
            self._sums[slot] = vec
        self._total = self._sums.sum(axis=0)
