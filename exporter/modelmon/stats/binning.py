"""Frozen reference binning: raw column values to additive count vectors.

A :class:`Layout` gives every column of a profile a fixed slice of one float64 vector.
Encoding a batch of values adds counts into that vector; vectors add and subtract, so
sliding windows, replicas and batch checks all use the same representation.

Per numeric column the slice holds, in order: the count of each fine bin, the sum of
the values in each fine bin (for the Wasserstein distance), then the quality slots.
Per categorical column: the count of each reference category and of ``__other__``,
then the quality slots. Quality slots: missing, out of range, unseen, type errors.

Fine bin ``i`` of edges ``e`` holds ``e[i-1] <= x < e[i]`` (``searchsorted(e, x,
side="right")``), the first bin is ``(-inf, e[0])`` and the last ``[e[-1], +inf)``.
Infinite values are counted out of range and not binned; NaN counts as missing.

Bounded influence: the value sums (used only by the Wasserstein distance) add each value
clipped to the column's *clip range*, the reference's 1st-99th percentile range (its
first and last fine edges) widened by its own width on both sides. A single value,
however extreme, then moves a window's Wasserstein distance by at most about
``3 * width / n`` (in reference standard deviations: about 14 / n for normal data).
Counts, and so PSI, Jensen-Shannon, KS and chi-square, are bounded by construction (one
value moves one share by 1/n); values outside the reference's min..max are still counted
``out_of_range``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from itertools import repeat
from typing import cast

import numpy as np
import numpy.typing as npt

from modelmon.profile import ColumnProfile, Profile

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

QUALITY = ("missing", "out_of_range", "unseen", "type_errors")
_QUALITY_INDEX = {name: i for i, name in enumerate(QUALITY)}
EVENTS_SLOT = 0


@dataclass(frozen=True)
class ColumnSlots:
    """Where one column lives in the vector, and how its values map to bins."""

    column: ColumnProfile
    offset: int
    bins: int  # fine bins (numeric) or categories + __other__
    fine_edges: FloatArray
    fine_to_coarse: npt.NDArray[np.intp]
    category_index: dict[str, int]
    known: frozenset[str]

    @cached_property
    def numeric(self) -> bool:
        return self.column.is_numeric

    @cached_property
    def counts(self) -> slice:
        return slice(self.offset, self.offset + self.bins)

    @cached_property
    def sums(self) -> slice:
        start = self.offset + self.bins
        return slice(start, start + (self.bins if self.numeric else 0))

    @cached_property
    def quality_offset(self) -> int:
        return int(self.sums.stop)

    @cached_property
    def end(self) -> int:
        return self.quality_offset + len(QUALITY)

    @cached_property
    def clip_range(self) -> tuple[float, float]:
        """Where values are clipped before their sums are added (see the module doc)."""
        return clip_range(self.fine_edges, self.column.min, self.column.max)

    @cached_property
    def reference_points(self) -> tuple[FloatArray, FloatArray]:
        """Reference fine-bin means (clipped to the clip range) and shares."""
        low, high = self.clip_range
        means = np.clip(np.asarray(self.column.fine_means, dtype=np.float64), low, high)
        return means, np.asarray(self.column.fine_ratios, dtype=np.float64)

    def quality(self, name: str) -> int:
        return self.quality_offset + _QUALITY_INDEX[name]

    @cached_property
    def few_values(self) -> bool:
        """A numeric column with at most 5 distinct reference values."""
        return self.numeric and self.column.binned_as_categorical

    @cached_property
    def test_ratios(self) -> FloatArray:
        """Reference shares of the bins that PSI, Jensen-Shannon and chi-square compare:
        the coarse bins (categories), except for numeric columns with at most 5 distinct
        values, whose coarse quantile bins can collapse (a 0/1 column with 2% ones has one
        coarse bin). Those are compared over their fine bins, one per distinct value, plus
        a bin for values above the reference's maximum (which the last fine bin would
        mix with the maximum), whose reference share is the rule of succession's
        ``1 / (N + 1)`` for a value not seen in N rows."""
        if not self.few_values:
            return np.asarray(self.column.reference_ratios(), dtype=np.float64)
        unseen = 1.0 / (self.column.values + 1)
        fine = np.asarray(self.column.fine_ratios, dtype=np.float64) * (1.0 - unseen)
        return np.append(fine, unseen)

    def test_counts(self, vector: FloatArray) -> FloatArray:
        """The window's counts over the bins of :attr:`test_ratios`."""
        if not self.few_values:
            return self.coarse_counts(vector)
        counts = np.append(vector[self.counts], 0.0)
        outside = float(vector[self.quality("out_of_range")])
        if outside > 0:
            # Below the minimum is bin 0 when the first edge is the minimum (values are
            # discrete here); the rest of the out-of-range values are above the maximum
            # (or infinite, and not binned): move them out of the last fine bin.
            below = (
                counts[0] if self.fine_edges.size and self.fine_edges[0] <= self.column.min else 0.0
            )
            above = max(outside - below, 0.0)
            moved = min(above, counts[-2])
            counts[-2] -= moved
            counts[-1] += moved
        return counts

    def coarse_counts(self, vector: FloatArray) -> FloatArray:
        """Counts per exported bin: coarse bins (numeric) or categories."""
        fine = vector[self.counts]
        if not self.numeric:
            return fine
        coarse = np.bincount(
            self.fine_to_coarse, weights=fine, minlength=len(self.column.coarse_edges) + 1
        )
        return coarse.astype(np.float64)


def clip_range(fine_edges: FloatArray, low: float, high: float) -> tuple[float, float]:
    """The first and last fine edges widened by their distance on both sides; the
    reference's min..max when there are fewer than two distinct edges.

    >>> clip_range(np.array([1.0, 2.0, 3.0]), 0.0, 10.0)
    (-1.0, 5.0)
    """
    if fine_edges.size >= 2 and fine_edges[-1] > fine_edges[0]:
        first, last = float(fine_edges[0]), float(fine_edges[-1])
        width = last - first
        if math.isfinite(width):
            return first - width, last + width
    if math.isfinite(low) and math.isfinite(high) and high > low:
        width = high - low
        return low - width, high + width
    return -math.inf, math.inf


def _slots(column: ColumnProfile, offset: int) -> ColumnSlots:
    if column.is_numeric:
        fine = np.asarray(column.fine_edges, dtype=np.float64)
        coarse = np.asarray(column.coarse_edges, dtype=np.float64)
        # Lower edge of every fine bin; the first is -inf and maps to coarse bin 0.
        lower = np.concatenate([[-np.inf], fine])
        mapping = np.searchsorted(coarse, lower, side="right").astype(np.intp)
        return ColumnSlots(column, offset, fine.size + 1, fine, mapping, {}, frozenset())
    index = {name: i for i, name in enumerate(column.categories)}
    known = frozenset(column.known_values) | frozenset(column.categories)
    return ColumnSlots(
        column, offset, len(index) + 1, np.empty(0), np.empty(0, np.intp), index, known
    )


class Layout:
    """The vector layout of a profile: slot 0 counts events, then one slice per column."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.columns: list[ColumnSlots] = []
        offset = 1
        for column in profile.columns:
            slots = _slots(column, offset)
            self.columns.append(slots)
            offset = slots.end
        self.size = offset
        self.by_key = {(s.column.role, s.column.name): s for s in self.columns}

    def zeros(self) -> FloatArray:
        return np.zeros(self.size, dtype=np.float64)


def encode_numeric(
    slots: ColumnSlots, values: FloatArray, type_errors: int, out: FloatArray
) -> None:
    """Add a batch of numeric values (NaN = missing, or one of the ``type_errors``
    values, which the caller turned into NaN) into ``out``."""
    col = slots.column
    finite = np.isfinite(values)
    present = values if finite.all() else values[finite]
    missing = 0 if present.size == values.size else int(np.count_nonzero(np.isnan(values)))
    idx = np.searchsorted(slots.fine_edges, present, side="right")
    out[slots.counts] += np.bincount(idx, minlength=slots.bins)
    low, high = slots.clip_range
    out[slots.sums] += np.bincount(idx, weights=np.clip(present, low, high), minlength=slots.bins)
    outside = int(np.count_nonzero((present < col.min) | (present > col.max)))
    # Type errors were turned into NaN by the caller; they are not also missing.
    out[slots.quality("missing")] += missing - type_errors
    infinite = values.size - present.size - missing
    out[slots.quality("out_of_range")] += outside + infinite
    out[slots.quality("type_errors")] += type_errors


class NumericBlock:
    """Numeric columns encoded together: one bincount for all of them.

    :func:`encode_block` gives exactly what :func:`encode_numeric` gives column by column
    (the sums add the same values in the same order), with a handful of numpy calls per
    batch instead of a handful per column.

    Fine bins are found through a lookup grid instead of a binary search per value: each
    column's span from its first to its last fine edge is cut into ``grid`` equal cells,
    and the grid gives, for each cell, the bin of the cell's left end. A value's bin is
    that, moved up past the edges inside its cell (at most ``steps`` of them) or down by
    one where rounding put it in the next cell. The result is then checked against the
    edges on both sides of every value; should one differ (it cannot with the chosen
    grid, but this keeps it exact whatever the edges), the batch falls back to
    ``searchsorted``.
    """

    #: Grid sizes tried, smallest first; the first that has at most ``MAX_STEPS`` edges in
    #: any cell of any column is used.
    GRIDS = (512, 2048, 8192)
    MAX_STEPS = 4

    def __init__(self, columns: list[ColumnSlots]) -> None:
        if not columns or not all(c.numeric for c in columns):
            raise ValueError("columns: expected one or more numeric columns")
        self.columns = columns
        sizes = np.array([c.bins for c in columns])
        #: Where column k's bins start in the block's flat bin numbering.
        self.bases = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)[:, None]
        self.total = int(sizes.sum())
        self.count_slots = np.concatenate(
            [np.arange(c.counts.start, c.counts.stop) for c in columns]
        )
        self.sum_slots = np.concatenate([np.arange(c.sums.start, c.sums.stop) for c in columns])
        self.outside_slots = np.array([c.quality("out_of_range") for c in columns])
        self.mins = np.array([c.column.min for c in columns], dtype=np.float64)[:, None]
        self.maxs = np.array([c.column.max for c in columns], dtype=np.float64)[:, None]
        self.clip_lows = np.array([c.clip_range[0] for c in columns])[:, None]
        self.clip_highs = np.array([c.clip_range[1] for c in columns])[:, None]
        self._build_grid()

    def _build_grid(self) -> None:
        # Every column's edges between a -inf and a +inf sentinel, one after the other.
        padded = [np.concatenate([[-np.inf], c.fine_edges, [np.inf]]) for c in self.columns]
        self.edges = np.concatenate(padded)
        with np.errstate(over="ignore"):  # a span beyond float range: no grid for it
            self._fill_grid(padded)

    def _fill_grid(self, padded: list[FloatArray]) -> None:
        k = len(self.columns)
        lows = np.zeros(k)
        scales = np.ones(k)
        starts = np.cumsum([0] + [p.size for p in padded[:-1]]) + 1  # index of edge 0
        self.edge_starts = starts.astype(np.intp)[:, None]
        for grid in self.GRIDS:
            table = np.empty((k, grid), dtype=np.intp)
            steps = 0
            for i, c in enumerate(self.columns):
                e = c.fine_edges
                span = float(e[-1] - e[0]) if e.size else 0.0
                scale = grid / span if span > 0 else 0.0
                if not (math.isfinite(scale) and scale > 0):
                    scale = 1.0  # one edge, or a span too small or large for a grid
                lows[i] = e[0] if e.size else 0.0
                scales[i] = scale
                cells = lows[i] + np.arange(grid) / scale
                table[i] = np.searchsorted(e, cells, side="right")
                inside = np.diff(np.append(table[i], e.size))
                steps = max(steps, int(inside.max()) if inside.size else 0)
            if steps <= self.MAX_STEPS or grid == self.GRIDS[-1]:
                break
        self.grid = grid
        self.steps = steps + 1  # one more for values that rounding put a cell too low
        self.table = (table + self.edge_starts).ravel()  # flat, as edge positions
        self.table_starts = (np.arange(k) * grid).astype(np.intp)[:, None]
        self.lows = lows[:, None]
        self.scales = scales[:, None]

    def bin_indices(self, values: FloatArray) -> npt.NDArray[np.intp]:
        """``searchsorted(fine_edges, values[k], side="right")`` for every column k
        (``values`` finite)."""
        with np.errstate(over="ignore"):  # far outside the span: +-inf, then clipped
            cell = (values - self.lows) * self.scales
        np.clip(cell, 0, self.grid - 1, out=cell)
        pos: npt.NDArray[np.intp] = self.table[cell.astype(np.intp) + self.table_starts]
        edges = self.edges
        if self.steps <= self.MAX_STEPS + 1:
            for _ in range(self.steps):
                pos += values >= edges[pos]
            pos -= values < edges[pos - 1]
            if (values < edges[pos]).all() and (values >= edges[pos - 1]).all():
                pos -= self.edge_starts
                return pos
        out = np.empty(values.shape, dtype=np.intp)
        for k, slots in enumerate(self.columns):
            out[k] = np.searchsorted(slots.fine_edges, values[k], side="right")
        return out


def encode_block(block: NumericBlock, values: FloatArray, out: FloatArray) -> bool:
    """Add ``values`` (one row per column of ``block``, all finite) into ``out``; False,
    with ``out`` untouched, when some value is not finite (missing or infinite: the
    caller encodes column by column)."""
    if values.shape[0] != len(block.columns) or not np.isfinite(values).all():
        return False
    idx = block.bin_indices(values)
    idx += block.bases
    flat = idx.ravel()
    out[block.count_slots] += np.bincount(flat, minlength=block.total)
    clipped = np.clip(values, block.clip_lows, block.clip_highs)
    out[block.sum_slots] += np.bincount(flat, weights=clipped.ravel(), minlength=block.total)
    outside = ((values < block.mins) | (values > block.maxs)).sum(axis=1)
    out[block.outside_slots] += outside
    return True


def encode_categorical(
    slots: ColumnSlots, values: list[str | None], type_errors: int, out: FloatArray
) -> None:
    """Add a batch of category strings (None = missing, or one of the ``type_errors``
    values, which the caller turned into None) into ``out``."""
    index = slots.category_index
    other = slots.bins - 1
    present = cast(
        "list[str]", values if None not in values else [v for v in values if v is not None]
    )
    missing = len(values) - len(present)
    if present:
        idx = np.fromiter(map(index.get, present, repeat(other)), np.intp, len(present))
        out[slots.counts] += np.bincount(idx, minlength=slots.bins)
    if slots.column.known_values_complete and not slots.known.issuperset(present):
        known = slots.known
        out[slots.quality("unseen")] += sum(1 for v in present if v not in known)
    # Type errors were turned into None by the caller; they are not also missing.
    out[slots.quality("missing")] += missing - type_errors
    out[slots.quality("type_errors")] += type_errors


def reference_points(slots: ColumnSlots) -> tuple[FloatArray, FloatArray]:
    """Reference fine-bin means (clipped to the clip range) and shares, for the
    Wasserstein distance."""
    return slots.reference_points


def window_points(slots: ColumnSlots, vector: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Window fine-bin means and counts (empty bins get their reference mean)."""
    counts = vector[slots.counts]
    sums = vector[slots.sums]
    ref_means, _ = reference_points(slots)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.where(counts > 0, counts, 1), ref_means)
    low, high = slots.clip_range  # a no-op for sums added clipped
    return np.clip(means, low, high), counts
