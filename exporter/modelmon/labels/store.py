"""The join store: predictions wait here for their delayed ground-truth labels.

A prediction with an ``id`` waits as *pending* until its label arrives (joined), its
``ttl`` passes (expired) or ``max_pending`` newer ones push it out (evicted, oldest
first). A label whose prediction has not arrived yet waits as an *orphan* up to
``orphan_ttl_seconds`` (bounded by ``max_orphans``, oldest evicted and counted as
unmatched) and joins when the prediction comes. A joined id is remembered until its
prediction's ``ttl`` ends (at most ``max_pending`` of them per model), so a second label
or a resent prediction for it counts as a duplicate instead of joining twice, across
restarts too.

Backed by SQLite (see :mod:`modelmon.labels.database`): a file, or an in-memory
database for ``path=None``. Every call is one transaction. Waiting times count from
arrival at the store (the injected clock), not from the records' own timestamps, so a
replayed old prediction still gets its full ``ttl``. Thread-safe: one lock serialises
the calls.

>>> store = LabelStore(None, ttl_seconds=60, max_pending=10, clock=lambda: 100.0)
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

import json
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from itertools import repeat
from typing import Any

from modelmon.labels.base import JoinStore
from modelmon.labels.database import open_database
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

#: Ids per ``IN (...)`` query: below SQLite's smallest variable limit (999).
_CHUNK = 500
#: Row conditions of predictions still waiting for their label, and of joined ones.
_WAITING = "joined_at IS NULL"
_JOINED = "joined_at IS NOT NULL"


def _encode_score(score: ScorePayload) -> float | str | None:
    return json.dumps(score, separators=(",", ":")) if isinstance(score, dict) else score


def _decode_score(raw: Any) -> ScorePayload:
    return json.loads(raw) if isinstance(raw, str) else raw  # type: ignore[no-any-return]


def _value(raw: Any) -> Value:
    """A class (string) or a number as SQLite returns it."""
    return raw if isinstance(raw, str) else float(raw)


def _prediction_row(model: str, p: PendingPrediction, now: float, joined: bool) -> tuple[Any, ...]:
    """The ``predictions`` row of ``p``; a joined one keeps no payload."""
    if joined:
        return (model, p.id, p.version, p.timestamp, now, None, None, now)
    return (model, p.id, p.version, p.timestamp, now, p.prediction, _encode_score(p.score), None)


def _first_by_id(items: Sequence[PendingPrediction | LabelRecord]) -> dict[str, int]:
    """Index of the first item of each id, in order; later repeats are duplicates."""
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        first.setdefault(item.id, i)
    return first


class LabelStore(JoinStore):
    """Predictions waiting for labels in SQLite, joined on ``(model, id)``; see the
    module doc."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        *,
        ttl_seconds: float,
        max_pending: int,
        orphan_ttl_seconds: float = 3600.0,
        max_orphans: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            ttl_seconds=ttl_seconds,
            max_pending=max_pending,
            orphan_ttl_seconds=orphan_ttl_seconds,
            max_orphans=max_orphans,
            clock=clock,
        )
        self.path = None if path is None else os.fspath(path)
        self._conn = open_database(self.path)
        self._reload_counts()

    def _reload_counts(self) -> None:
        """Rows per model: the O(1) counters, restored at open (and after a rollback)."""
        self._evicted_upto: dict[str, int] = {}  # model -> seq of the last row evicted
        self._pending: Counter[str] = Counter()
        self._joined: Counter[str] = Counter()
        sql = "SELECT model, COUNT(*), COUNT(joined_at) FROM predictions GROUP BY model"
        for model, rows, joined in self._conn.execute(sql):
            self._pending[str(model)] = int(rows) - int(joined)
            self._joined[str(model)] = int(joined)
        sql = "SELECT model, COUNT(*) FROM orphans GROUP BY model"
        self._orphans = Counter({str(model): int(n) for model, n in self._conn.execute(sql)})

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                self._reload_counts()  # the counters followed changes that were undone
                raise

    # --- limits and counts ----------------------------------------------------------------

    def pending(self, model: str) -> int:
        """Predictions of ``model`` waiting for their label (O(1))."""
        return self._pending[model]

    def orphans(self, model: str) -> int:
        """Labels of ``model`` waiting for their prediction (O(1))."""
        return self._orphans[model]

    # --- building blocks (inside a transaction) ------------------------------------------

    def _select(self, sql: str, model: str, ids: Sequence[str]) -> list[tuple[Any, ...]]:
        """Rows of ``sql`` (``{ids}`` marks the placeholder list) for ``ids``, in chunks."""
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            query = sql.format(ids=",".join("?" * len(chunk)))
            rows.extend(self._conn.execute(query, (model, *chunk)))
        return rows

    def _delete_seqs(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        self._conn.executemany(f"DELETE FROM {table} WHERE seq = ?", [(r[0],) for r in rows])

    def _evict_oldest(self, table: str, condition: str, model: str, excess: int) -> int:
        """Delete the ``excess`` oldest rows of ``model`` matching ``condition`` (orphans
        by arrival time, predictions in arrival order: the ``seq`` they were given)."""
        order = "arrived, seq" if table == "orphans" else "seq"
        cur = self._conn.execute(
            f"DELETE FROM {table} WHERE seq IN (SELECT seq FROM {table} "
            f"WHERE model = ? AND {condition} ORDER BY {order} LIMIT ?)",
            (model, excess),
        )
        return max(cur.rowcount, 0)

    def _evict_waiting(self, model: str, excess: int) -> int:
        """Delete the ``excess`` oldest waiting predictions of ``model``.

        The scan in arrival order starts after the last row evicted before: every waiting
        row older than it is gone, so the joined rows kept there (for duplicate
        detection) are skipped once, not at every call at full capacity.
        """
        seq = self._evicted_upto.get(model, 0)
        rows = self._conn.execute(
            "SELECT seq FROM predictions WHERE seq > ? AND model = ? AND joined_at IS NULL "
            "ORDER BY seq LIMIT ?",
            (seq, model, excess),
        ).fetchall()
        self._delete_seqs("predictions", rows)
        if rows:
            self._evicted_upto[model] = int(rows[-1][0])
        return len(rows)

    def _insert(self, sql: str, rows: list[tuple[Any, ...]]) -> int:
        """Run an ``INSERT OR IGNORE`` for ``rows``; the number actually inserted."""
        return max(self._conn.executemany(sql, rows).rowcount, 0) if rows else 0

    # --- predictions ----------------------------------------------------------------------

    def add_pending(self, model: str, columns: PendingColumns) -> StoreResult:
        """Store predictions in one transaction; those whose label already waits join now.
        A prediction whose id is already stored (waiting or joined) is a duplicate."""
        now = self._clock()
        rows = self._fast_rows(columns, model, now)
        with self._transaction():
            if rows is not None and self._orphans[model] == 0:  # checked under the lock
                result = StoreResult()
                self._add_rows(model, rows, set(), result)
                return result
            items = columns.rows()
            first = _first_by_id(items)
            result = StoreResult(duplicates=len(items) - len(first))
            if not first:
                return result
            unique = [items[i] for i in first.values()]
            if self._orphans[model] > 0:  # no label waits: skip the lookup
                result.joined = self._join_orphans(model, unique)
            joined = {pair.id for pair in result.joined}
            rows = [_prediction_row(model, p, now, p.id in joined) for p in unique]
            self._add_rows(model, rows, joined, result)
        return result

    @staticmethod
    def _fast_rows(columns: PendingColumns, model: str, now: float) -> list[tuple[Any, ...]] | None:
        """The rows of ``columns`` built in C when no row needs a look of its own: ids
        unique in the call, no score object to encode."""
        ids = columns.ids
        if dict in set(map(type, columns.scores)) or len(set(ids)) != len(ids):
            return None
        n = len(ids)
        return list(
            zip(
                repeat(model, n),
                ids,
                columns.versions,
                columns.timestamps,
                repeat(now, n),
                columns.predictions,
                columns.scores,
                repeat(None, n),
                strict=True,
            )
        )

    def _add_rows(
        self, model: str, rows: list[tuple[Any, ...]], joined: set[str], result: StoreResult
    ) -> None:
        """Insert prediction rows (in a transaction); count, and evict beyond max_pending."""
        if rows:
            inserted = self._insert(
                "INSERT OR IGNORE INTO predictions (model, id, version, ts, arrived, "
                "prediction, score, joined_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            # Ids joined here are new (their label was an orphan), so every ignored row
            # is a waiting prediction's id.
            result.duplicates += len(rows) - inserted
            self._joined[model] += len(joined)
            self._pending[model] += inserted - len(joined)
        excess = self._pending[model] - self._limit(model).max_pending
        if excess > 0:
            result.evicted = self._evict_waiting(model, excess)
            self._pending[model] -= result.evicted

    def _join_orphans(self, model: str, items: list[PendingPrediction]) -> list[JoinedPair]:
        """Join predictions with the labels already waiting for them; drop those labels."""
        by_id = {p.id: p for p in items}
        sql = "SELECT seq, id, label, ts FROM orphans WHERE model = ? AND id IN ({ids})"
        rows = self._select(sql, model, list(by_id))
        self._delete_seqs("orphans", rows)
        self._orphans[model] -= len(rows)
        pairs = []
        for _seq, pid, label, label_ts in rows:
            p = by_id[str(pid)]
            pairs.append(
                JoinedPair(
                    id=p.id,
                    version=p.version,
                    prediction=p.prediction,
                    score=p.score,
                    label=_value(label),
                    prediction_ts=p.timestamp,
                    label_ts=float(label_ts),
                )
            )
        return pairs

    # --- labels ---------------------------------------------------------------------------

    def add_labels(self, model: str, labels: Sequence[LabelRecord]) -> StoreResult:
        """Join labels with their waiting predictions in one transaction. A label for an
        id already joined, or already waiting as an orphan, is a duplicate; a label
        without its prediction waits as an orphan."""
        first = _first_by_id(labels)
        result = StoreResult(duplicates=len(labels) - len(first))
        result.duplicate_ids = [lab.id for i, lab in enumerate(labels) if first[lab.id] != i]
        if not first:
            return result
        now = self._clock()
        with self._transaction():
            unique = [labels[i] for i in first.values()]
            result.joined, seen = self._join_waiting(model, unique, now)
            result.duplicate_ids += sorted(seen - {pair.id for pair in result.joined})
            rows = [
                (model, lab.id, lab.label, lab.timestamp, now)
                for lab in unique
                if lab.id not in seen
            ]
            if rows and self._orphans[model] > 0:
                sql = "SELECT id FROM orphans WHERE model = ? AND id IN ({ids})"
                waiting = self._select(sql, model, [row[1] for row in rows])
                result.duplicate_ids += [str(row[0]) for row in waiting]
            inserted = self._insert(
                "INSERT OR IGNORE INTO orphans (model, id, label, ts, arrived) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            result.duplicates += len(seen) - len(result.joined) + len(rows) - inserted
            self._orphans[model] += inserted
            excess = self._orphans[model] - self._max_orphans
            if excess > 0:
                result.unmatched = self._evict_oldest("orphans", "1", model, excess)
                self._orphans[model] -= result.unmatched
        return result

    def _join_waiting(
        self, model: str, labels: list[LabelRecord], now: float
    ) -> tuple[list[JoinedPair], set[str]]:
        """Join labels with their waiting predictions, marking those joined; the pairs and
        every id found among the predictions (joined now or before)."""
        by_id = {lab.id: lab for lab in labels}
        sql = (
            "SELECT seq, id, version, ts, prediction, score, joined_at FROM predictions "
            "WHERE model = ? AND id IN ({ids})"
        )
        rows = self._select(sql, model, list(by_id))
        waiting = [row for row in rows if row[6] is None]
        self._conn.executemany(
            "UPDATE predictions SET joined_at = ?, prediction = NULL, score = NULL WHERE seq = ?",
            [(now, row[0]) for row in waiting],
        )
        self._pending[model] -= len(waiting)
        self._joined[model] += len(waiting)
        pairs = []
        for _seq, pid, version, ts, prediction, score, _ in waiting:
            lab = by_id[str(pid)]
            pairs.append(
                JoinedPair(
                    id=lab.id,
                    version=str(version),
                    prediction=_value(prediction),
                    score=_decode_score(score),
                    label=lab.label,
                    prediction_ts=float(ts),
                    label_ts=lab.timestamp,
                )
            )
        return pairs, {str(row[1]) for row in rows}

    # --- expiry ---------------------------------------------------------------------------

    def expire(self) -> ExpireResult:
        """Drop predictions that waited longer than their ttl and orphans older than
        orphan_ttl; forget joined ids whose prediction is older than ttl, and the oldest
        ones beyond max_pending. Call it periodically (e.g. every minute)."""
        result = ExpireResult()
        now = self._clock()
        with self._transaction():
            models = set(self._pending) | set(self._orphans) | set(self._joined)
            for model in sorted(models):
                limit = self._limit(model)
                cutoff = now - limit.ttl_seconds
                # Predictions in arrival order, up to the first young enough (rows
                # after it wait, as in the memory store, if the clock went back).
                young = self._conn.execute(
                    "SELECT seq FROM predictions WHERE model = ? AND arrived >= ? "
                    "ORDER BY seq LIMIT 1",
                    (model, cutoff),
                ).fetchone()
                upto = math.inf if young is None else int(young[0])
                expired = self._conn.execute(
                    f"SELECT COUNT(*) FROM predictions WHERE seq < ? AND model = ? AND {_WAITING}",
                    (upto, model),
                ).fetchone()[0]
                forgotten = (
                    max(
                        self._conn.execute(
                            "DELETE FROM predictions WHERE seq < ? AND model = ?", (upto, model)
                        ).rowcount,
                        0,
                    )
                    - expired
                )
                unmatched = self._delete_older("orphans", model, now - self._orphan_ttl)
                self._pending[model] -= expired
                self._joined[model] -= forgotten
                self._orphans[model] -= unmatched
                excess = self._joined[model] - limit.max_pending
                if excess > 0:
                    self._joined[model] -= self._evict_oldest("predictions", _JOINED, model, excess)
                if expired:
                    result.expired[model] = expired
                if unmatched:
                    result.unmatched[model] = unmatched
        return result

    def _delete_older(self, table: str, model: str, cutoff: float) -> int:
        sql = f"DELETE FROM {table} WHERE model = ? AND arrived < ?"
        return max(self._conn.execute(sql, (model, cutoff)).rowcount, 0)

    def close(self) -> None:
        """Close the database (every call's changes are already committed)."""
        with self._lock:
            self._conn.close()
