"""Quantiles of a stream: exact up to a limit, a mergeable weighted summary beyond it.

Up to ``exact_limit`` values (2 million by default) the sketch keeps every value and
its quantiles are exact (``numpy.quantile``, linear interpolation). Past the limit it
compresses to ``summary_size`` weighted points: the values are sorted and cut into
groups of equal weight, each group kept as its mean with its weight. Compressing
again after more values arrive merges the old points with the new values the same
way, so two sketches merge by concatenating their points and compressing. Each
compression moves a quantile by one to two groups (measured: up to 1.4 groups with
tiny groups, about 1.1 on continuous data), i.e. 1-2/``summary_size`` of the rank, so
with the defaults a quantile's rank moves by at most 0.004% per compression.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class QuantileSketch:
    """Values of one numeric column, exact or summarised."""

    def __init__(self, exact_limit: int = 2_000_000, summary_size: int = 50_000) -> None:
        self.exact_limit = exact_limit
        self.summary_size = summary_size
        self._parts: list[FloatArray] = []
        self._buffered = 0
        self._points: FloatArray = np.empty(0)
        self._weights: FloatArray = np.empty(0)
        self.exact = True

    def update(self, values: FloatArray) -> None:
        if values.size == 0:
            return
        self._parts.append(values.astype(np.float64, copy=False))
        self._buffered += values.size
        if self._buffered > self.exact_limit:
            self._compress()

    def _compress(self) -> None:
        new = np.concatenate(self._parts) if self._parts else np.empty(0)
        points = np.concatenate([self._points, new])
        weights = np.concatenate([self._weights, np.ones(new.size)])
        self._parts, self._buffered, self.exact = [], 0, False
        order = np.argsort(points, kind="stable")
        points, weights = points[order], weights[order]
        cum = np.cumsum(weights)
        group = np.minimum(
            (cum - weights) * self.summary_size // cum[-1], self.summary_size - 1
        ).astype(np.intp)
        w = np.bincount(group, weights=weights)
        s = np.bincount(group, weights=points * weights)
        keep = w > 0
        self._points = (s[keep] / w[keep]).astype(np.float64)
        self._weights = w[keep].astype(np.float64)

    def merge(self, other: QuantileSketch) -> None:
        """Add another sketch's values to this one."""
        if other.exact:
            for part in other._parts:
                self.update(part)
            return
        self._points = np.concatenate([self._points, other._points])
        self._weights = np.concatenate([self._weights, other._weights])
        self._compress()

    def weighted(self) -> tuple[FloatArray, FloatArray]:
        """All values as sorted (points, weights); weights are 1 while exact."""
        if self.exact:
            values = np.sort(np.concatenate(self._parts)) if self._parts else np.empty(0)
            return values, np.ones(values.size)
        if self._parts:
            self._compress()
        return self._points, self._weights

    def quantiles(self, qs: FloatArray) -> FloatArray:
        points, weights = self.weighted()
        if points.size == 0:
            return np.full(len(qs), np.nan)
        if self.exact:
            return np.quantile(points, qs)
        # Weighted quantile: interpolate the cumulative weight at group midpoints.
        cum = np.cumsum(weights) - 0.5 * weights
        return np.asarray(np.interp(np.asarray(qs) * weights.sum(), cum, points), np.float64)
