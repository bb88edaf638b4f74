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
"""

from __future__ import annotations

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

    def quality(self, name: str) -> int:
        return self.quality_offset + _QUALITY_INDEX[name]

    def coarse_counts(self, vector: FloatArray) -> FloatArray:
        """Counts per exported bin: coarse bins (numeric) or categories."""
        fine = vector[self.counts]
        if not self.numeric:
            return fine
        coarse = np.bincount(
            self.fine_to_coarse, weights=fine, minlength=len(self.column.coarse_edges) + 1
        )
        return coarse.astype(np.float64)


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
    out[slots.sums] += np.bincount(idx, weights=present, minlength=slots.bins)
    outside = int(np.count_nonzero((present < col.min) | (present > col.max)))
    # Type errors were turned into NaN by the caller; they are not also missing.
    out[slots.quality("missing")] += missing - type_errors
    infinite = values.size - present.size - missing
    out[slots.quality("out_of_range")] += outside + infinite
    out[slots.quality("type_errors")] += type_errors


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
    """Reference fine-bin means and shares, for the Wasserstein distance."""
    col = slots.column
    return np.asarray(col.fine_means, dtype=np.float64), np.asarray(col.fine_ratios)


def window_points(slots: ColumnSlots, vector: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Window fine-bin means and counts (empty bins get their reference mean)."""
    counts = vector[slots.counts]
    sums = vector[slots.sums]
    ref_means, _ = reference_points(slots)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.where(counts > 0, counts, 1), ref_means)
    return means, counts
