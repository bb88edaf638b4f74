"""The join store in memory: what modelmon uses without a ``state_dir``.

The same behaviour as the SQLite :class:`~modelmon.labels.store.LabelStore` (see that
module), kept in dictionaries for speed, and lost at restart. Predictions are stored as
they come, one *segment* of columns per call; the per-model index ``waiting`` maps each
waiting id to its segment and row. A call whose ids are all new (the common case) is
indexed with one dictionary update, without a Python step per record.

Ages are counted per segment, in arrival order: eviction (``max_pending``) takes the
oldest waiting rows first, expiry drops whole segments older than ``ttl``. If the
clock goes back, a segment that arrived "earlier" than the one before it waits behind
it (expiry stops at the first segment still young enough). Joined ids are remembered,
for duplicate detection, until their prediction's ``ttl`` ends or ``max_pending``
newer joined ids push them out, like the SQLite store's.

>>> store = MemoryLabelStore(ttl_seconds=60, max_pending=10, clock=lambda: 100.0)
>>> store.add_predictions("m", [PendingPrediction("a", "v1", 99.0, "1", 0.8)]).joined
[]
>>> store.pending("m")
1
>>> pair = store.add_labels("m", [LabelRecord("a", "0", 100.0)]).joined[0]
>>> pair.prediction, pair.score, pair.label
('1', 0.8, '0')
>>> store.add_labels("m", [LabelRecord("a", "0", 101.0)]).duplicates
1
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from modelmon.labels.base import JoinStore
from modelmon.labels.records import (
    ExpireResult,
    JoinedPair,
    LabelRecord,
    PendingColumns,
    PendingPrediction,
    ScorePayload,
    StoreResult,
    Value,
)

__all__ = ["MemoryLabelStore", "PendingPrediction"]

#: A handle is ``serial << _SHIFT | row``: the segment and the row in it.
_SHIFT = 32
_ROW = (1 << _SHIFT) - 1


class _Segment:
    """The predictions of one call, column by column."""

    __slots__ = (
        "arrived",
        "base",
        "cursor",
        "ids",
        "predictions",
        "scores",
        "timestamps",
        "versions",
        "waiting",
    )

    def __init__(
        self, serial: int, arrived: float, columns: PendingColumns, shared: dict[str, str]
    ) -> None:
        self.arrived = arrived
        self.base = serial << _SHIFT
        self.ids = columns.ids
        self.versions = _shared(columns.versions, shared)
        self.timestamps = np.asarray(columns.timestamps, dtype=np.float64)
        self.predictions = _compact_predictions(columns.predictions, shared)
        self.scores = _compact_scores(columns.scores)
        self.waiting = 0  # rows still waiting for their label
        self.cursor = 0  # rows before it are waiting no more (eviction's scan position)

    def pair(self, row: int, label: LabelRecord) -> JoinedPair:
        prediction = self.predictions[row]
        return JoinedPair(
            self.ids[row],
            self.versions[row],
            float(prediction) if isinstance(prediction, np.floating) else prediction,
            self.score(row),
            label.label,
            float(self.timestamps[row]),
            label.timestamp,
        )

    def score(self, row: int) -> ScorePayload:
        if isinstance(self.scores, np.ndarray):
            value = float(self.scores[row])
            return None if math.isnan(value) else value
        payload: ScorePayload = self.scores[row]
        return payload


#: Distinct strings kept for sharing (class values and versions repeat row after row).
MAX_SHARED_STRINGS = 10_000


def _shared(values: Sequence[str], shared: dict[str, str]) -> Sequence[str]:
    """``values`` with equal strings as one object each (about 50 bytes saved a row)."""
    if len(shared) >= MAX_SHARED_STRINGS:
        return values
    return list(map(shared.setdefault, values, values))


def _compact_predictions(values: Sequence[Value], shared: dict[str, str]) -> Any:
    """Classes as shared strings; regression values as a float array (8 bytes a row)."""
    kinds = set(map(type, values))
    if kinds == _STR:
        return _shared(values, shared)  # type: ignore[arg-type]
    if kinds == _FLOAT:
        return np.array(values, dtype=np.float64)
    return values


_STR = {str}
_FLOAT = {float}


def _compact_scores(scores: Sequence[ScorePayload]) -> Any:
    """Scalar scores as a float array (NaN for none), 8 bytes a row; others as given."""
    try:
        return np.array(scores, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):  # objects, or an integer beyond floats
        return scores


def _drain(calls: Iterator[object]) -> None:
    """Run the calls of a lazy ``map`` in C."""
    deque(calls, maxlen=0)


class _Book:
    """The store's state for one model."""

    __slots__ = ("joined", "joined_order", "orphans", "segments", "serial", "waiting")

    def __init__(self) -> None:
        self.waiting: dict[str, int] = {}  # id -> handle
        self.segments: dict[int, _Segment] = {}  # serial -> segment, oldest first
        self.serial = 0
        self.joined: dict[str, float] = {}  # id -> its prediction's arrival
        self.joined_order: deque[str] = deque()  # joined ids, in the order they joined
        self.orphans: OrderedDict[str, tuple[float, LabelRecord]] = OrderedDict()

    def segment(self, handle: int) -> _Segment:
        return self.segments[handle >> _SHIFT]

    def release(self, seg: _Segment, count: int = 1) -> None:
        """``count`` rows of ``seg`` wait no more; drop the segment once none does."""
        seg.waiting -= count
        if seg.waiting <= 0:
            self.segments.pop(seg.base >> _SHIFT, None)

    def remember(self, ident: str, arrived: float) -> None:
        self.joined[ident] = arrived
        self.joined_order.append(ident)

    def forget_joined(self, cutoff: float, keep: int) -> int:
        """Forget joined ids whose prediction arrived before ``cutoff``, then the oldest
        beyond ``keep``."""
        joined, order = self.joined, self.joined_order
        forgotten = 0
        while order and (joined[order[0]] < cutoff or len(joined) > keep):
            del joined[order.popleft()]
            forgotten += 1
        return forgotten


class MemoryLabelStore(JoinStore):
    """Predictions waiting for labels, in memory; see the module doc."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._books: dict[str, _Book] = {}
        self._shared: dict[str, str] = {}

    def _book(self, model: str) -> _Book:
        book = self._books.get(model)
        if book is None:
            book = self._books[model] = _Book()
        return book

    def pending(self, model: str) -> int:
        book = self._books.get(model)
        return 0 if book is None else len(book.waiting)

    def orphans(self, model: str) -> int:
        book = self._books.get(model)
        return 0 if book is None else len(book.orphans)

    # --- predictions ----------------------------------------------------------------------

    def add_pending(self, model: str, columns: PendingColumns) -> StoreResult:
        result = StoreResult()
        ids = columns.ids
        if not ids:
            return result
        now = self._clock()
        limit = self._limit(model)
        with self._lock:
            book = self._book(model)
            waiting, joined, orphans = book.waiting, book.joined, book.orphans
            book.serial += 1
            seg = _Segment(book.serial, now, columns, self._shared)
            if (
                waiting.keys().isdisjoint(ids)
                and joined.keys().isdisjoint(ids)
                and (not orphans or orphans.keys().isdisjoint(ids))
                and len(set(ids)) == len(ids)
            ):
                waiting.update(zip(ids, range(seg.base, seg.base + len(ids)), strict=True))
                seg.waiting = len(ids)
            else:
                self._add_one_by_one(book, seg, result)
            if seg.waiting:
                book.segments[book.serial] = seg
            excess = len(waiting) - limit.max_pending
            if excess > 0:
                result.evicted = self._evict(book, excess)
            if result.joined:
                book.forget_joined(-math.inf, limit.max_pending)
        return result

    def _add_one_by_one(self, book: _Book, seg: _Segment, result: StoreResult) -> None:
        """Index the rows of ``seg`` that are new; join those whose label waits."""
        waiting, joined, orphans = book.waiting, book.joined, book.orphans
        for row, ident in enumerate(seg.ids):
            if ident in waiting or ident in joined:
                result.duplicates += 1
                continue
            orphan = orphans.pop(ident, None)
            if orphan is not None:
                result.joined.append(seg.pair(row, orphan[1]))
                book.remember(ident, seg.arrived)
                continue
            waiting[ident] = seg.base + row
            seg.waiting += 1

    def _evict(self, book: _Book, excess: int) -> int:
        """Drop the ``excess`` oldest waiting predictions."""
        waiting, segments = book.waiting, book.segments
        evicted = 0
        while evicted < excess and segments:
            seg = next(iter(segments.values()))
            ids, base, row = seg.ids, seg.base, seg.cursor
            if seg.waiting == len(ids) - row:  # every row from the cursor on waits
                take = min(excess - evicted, seg.waiting)
                _drain(map(waiting.__delitem__, ids[row : row + take]))
                seg.cursor = row + take
                book.release(seg, take)
                evicted += take
                continue
            while row < len(ids) and evicted < excess:
                ident = ids[row]
                if waiting.get(ident) == base + row:
                    del waiting[ident]
                    book.release(seg)
                    evicted += 1
                row += 1
            seg.cursor = row
            if row >= len(ids):  # every row seen: none waits any more
                segments.pop(base >> _SHIFT, None)
        return evicted

    # --- labels ---------------------------------------------------------------------------

    def add_labels(self, model: str, labels: Sequence[LabelRecord]) -> StoreResult:
        result = StoreResult()
        if not labels:
            return result
        now = self._clock()
        limit = self._limit(model)
        with self._lock:
            book = self._book(model)
            waiting, joined, orphans = book.waiting, book.joined, book.orphans
            for label in labels:
                ident = label.id
                handle = waiting.pop(ident, None)
                if handle is not None:
                    seg = book.segment(handle)
                    result.joined.append(seg.pair(handle & _ROW, label))
                    book.release(seg)
                    book.remember(ident, seg.arrived)
                elif ident in joined or ident in orphans:
                    result.duplicates += 1
                    result.duplicate_ids.append(ident)
                else:
                    orphans[ident] = (now, label)
            while len(orphans) > self._max_orphans:
                orphans.popitem(last=False)
                result.unmatched += 1
            book.forget_joined(-math.inf, limit.max_pending)
        return result

    # --- expiry ---------------------------------------------------------------------------

    def expire(self) -> ExpireResult:
        result = ExpireResult()
        now = self._clock()
        with self._lock:
            for model in sorted(self._books):
                book = self._books[model]
                limit = self._limit(model)
                cutoff = now - limit.ttl_seconds
                expired = self._expire_waiting(book, cutoff)
                book.forget_joined(cutoff, limit.max_pending)
                unmatched = 0
                orphan_cutoff = now - self._orphan_ttl
                orphans = book.orphans
                while orphans and next(iter(orphans.values()))[0] < orphan_cutoff:
                    orphans.popitem(last=False)
                    unmatched += 1
                if expired:
                    result.expired[model] = expired
                if unmatched:
                    result.unmatched[model] = unmatched
        return result

    def _expire_waiting(self, book: _Book, cutoff: float) -> int:
        waiting, segments = book.waiting, book.segments
        expired = 0
        while segments:
            seg = next(iter(segments.values()))
            if seg.arrived >= cutoff:
                break
            ids, base = seg.ids, seg.base
            if seg.waiting == len(ids) - seg.cursor:  # every row from the cursor on waits
                _drain(map(waiting.__delitem__, ids[seg.cursor :]))
                expired += seg.waiting
                del segments[base >> _SHIFT]
                continue
            for row in range(seg.cursor, len(ids)):
                ident = ids[row]
                if waiting.get(ident) == base + row:
                    del waiting[ident]
                    expired += 1
            del segments[base >> _SHIFT]
        return expired

    def close(self) -> None:
        """Drop everything (nothing is kept: the store lives in memory)."""
        with self._lock:
            self._books.clear()
