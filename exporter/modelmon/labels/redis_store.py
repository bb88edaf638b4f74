"""The join store in Redis: one store shared by every replica of the exporter.

Same behaviour as the embedded stores (see :mod:`modelmon.labels.store`): at-most-once
joins, ``ttl``, ``max_pending`` with the oldest evicted, orphan labels that wait for
their prediction, duplicates reported. Each call's checks and writes run as one Lua
script in Redis (:mod:`modelmon.labels.redis_scripts`), so that two replicas receiving
labels for one id at the same moment cannot both join it; a large call is cut into
chunks of :data:`CHUNK` ids, sent as several scripts in one pipeline (one round trip).

Whoever makes a join counts it: the pairs come back to the replica that ran the script,
which adds them to its own performance counters; fleet-wide accuracy is the sum over
replicas (Prometheus recording rules).

When Redis cannot be reached, or does not answer within ``timeout`` seconds, a call
raises :class:`~modelmon.labels.base.StoreUnavailableError` (ingest answers ``503`` for labels)
and the following calls fail at once for ``retry_after`` seconds; then Redis is tried
again, so service resumes by itself. A call that timed out may still have been applied
by Redis: its joins are then counted by no replica, and a resent label reports a
duplicate (never a second join). ``pending`` and ``orphans`` answer the last count seen
while Redis is unavailable.

The ``redis`` package is an optional dependency (``pip install modelmon[redis]``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from modelmon.labels.base import JoinStore, StoreUnavailableError
from modelmon.labels.records import (
    ExpireResult,
    JoinedPair,
    LabelRecord,
    PendingColumns,
    StoreResult,
)
from modelmon.labels.redis_scripts import ADD_LABELS, ADD_PENDING, EXPIRE

log = logging.getLogger(__name__)

#: Ids per script: a script holds Redis for about a millisecond per 1000 ids.
CHUNK = 1000
#: Rows dropped per expiry script (the store repeats it until fewer are left).
EXPIRE_LIMIT = 10_000
#: Redis errors that mean "not available now" rather than a bug: a server loading its
#: data, a read-only replica after a failover, out of memory, persistence failing.
_UNAVAILABLE_REPLIES = ("LOADING", "READONLY", "OOM", "MISCONF", "MASTERDOWN", "TRYAGAIN")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def redacted(url: str) -> str:
    """``url`` without a user name (never logged); the config refuses passwords in it."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else url


class RedisLabelStore(JoinStore):
    """Predictions waiting for labels in Redis, joined on ``(model, id)``; see the
    module doc. ``client`` is a ``redis.Redis`` (or anything with its ``register_script``,
    ``pipeline``, ``zcard`` and ``ping``)."""

    shared = True

    def __init__(
        self,
        client: Any,
        *,
        ttl_seconds: float,
        max_pending: int,
        orphan_ttl_seconds: float = 3600.0,
        max_orphans: int = 100_000,
        clock: Callable[[], float] = time.time,
        name: str = "redis",
        key_prefix: str = "modelmon",
        retry_after: float = 1.0,
        expire_batch: int = EXPIRE_LIMIT,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            ttl_seconds=ttl_seconds,
            max_pending=max_pending,
            orphan_ttl_seconds=orphan_ttl_seconds,
            max_orphans=max_orphans,
            clock=clock,
        )
        self.name = name
        self.client = client  # the redis.Redis: for benchmarks and operators' checks
        self._prefix = key_prefix
        self._scripts = {
            "add_pending": client.register_script(ADD_PENDING),
            "add_labels": client.register_script(ADD_LABELS),
            "expire": client.register_script(EXPIRE),
        }
        self._retry_after = retry_after
        self._expire_batch = expire_batch
        self._monotonic = monotonic
        self._down_until = -float("inf")
        self._last_error: str | None = None
        self._models: set[str] = set()
        self._counts: dict[tuple[str, str], int] = {}
        self._state_lock = threading.Lock()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        password: str | None = None,
        ca_file: str | None = None,
        timeout: float = 1.0,
        **options: Any,
    ) -> RedisLabelStore:
        """A store on the Redis at ``redis://HOST:PORT/DB`` or ``rediss://`` (TLS)."""
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError:  # pragma: no cover - depends on the installed extras
            raise RuntimeError(
                f"labels.store: {redacted(url)} needs the redis package: "
                "pip install 'modelmon[redis]'"
            ) from None
        extra: dict[str, Any] = {}
        if ca_file is not None:
            extra["ssl_ca_certs"] = ca_file
        client = redis.Redis.from_url(
            url,
            password=password,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # One immediate retry: a pooled connection that died with a Redis restart
            # fails once, then a fresh one is dialled. Never a backoff inside a request.
            retry=Retry(NoBackoff(), 1),
            health_check_interval=30,
            **extra,
        )
        return cls(client, name=redacted(url), **options)

    # --- availability ---------------------------------------------------------------------

    @contextmanager
    def _redis(self, what: str) -> Iterator[None]:
        """Run Redis calls; turn "cannot reach it" into :class:`StoreUnavailableError`."""
        from redis import exceptions

        if self._monotonic() < self._down_until:
            raise StoreUnavailableError(self._unavailable_message(what))
        try:
            yield
        except (exceptions.ConnectionError, exceptions.TimeoutError) as err:
            self._mark_down(err)
            raise StoreUnavailableError(self._unavailable_message(what)) from err
        except exceptions.ResponseError as err:
            if not str(err).startswith(_UNAVAILABLE_REPLIES):
                raise
            self._mark_down(err)
            raise StoreUnavailableError(self._unavailable_message(what)) from err
        if self._last_error is not None:
            log.info("label store %s: reachable again", self.name)
            self._last_error = None

    def _mark_down(self, err: Exception) -> None:
        message = f"{type(err).__name__}: {err}"
        with self._state_lock:
            self._down_until = self._monotonic() + self._retry_after
            if message != self._last_error:
                log.warning("label store %s unavailable: %s", self.name, message)
            self._last_error = message

    def _unavailable_message(self, what: str) -> str:
        return f"label store {self.name} unavailable ({self._last_error}); {what} retry later"

    def check(self) -> None:
        """Ping Redis; :class:`StoreUnavailableError` when it does not answer."""
        with self._redis("the store was not checked;"):
            self.client.ping()

    # --- keys and counts ------------------------------------------------------------------

    def _keys(self, model: str) -> list[str]:
        base = f"{self._prefix}:{{{model}}}:"
        return [base + suffix for suffix in ("p", "pa", "j", "o", "oa")]

    def set_limits(self, model: str, *, ttl_seconds: float, max_pending: int) -> None:
        super().set_limits(model, ttl_seconds=ttl_seconds, max_pending=max_pending)
        self._models.add(model)

    def pending(self, model: str) -> int:
        """Predictions of ``model`` waiting for their label, fleet-wide (one ZCARD; the
        last count seen while Redis is unavailable)."""
        return self._count(model, 1)

    def orphans(self, model: str) -> int:
        """Labels of ``model`` waiting for their prediction, fleet-wide."""
        return self._count(model, 4)

    def _count(self, model: str, key: int) -> int:
        try:
            with self._redis(""):
                count = int(self.client.zcard(self._keys(model)[key]))
        except StoreUnavailableError:
            return self._counts.get((model, str(key)), 0)
        self._counts[(model, str(key))] = count
        return count

    def _run(self, script: str, model: str, calls: list[list[Any]], what: str) -> list[Any]:
        """Run ``script`` once per argument list, in one pipeline; the replies."""
        self._models.add(model)
        keys = self._keys(model)
        run = self._scripts[script]
        with self._redis(what):
            if len(calls) == 1:  # EVALSHA alone (a pipeline first asks SCRIPT EXISTS)
                return [run(keys=keys, args=calls[0])]
            pipe = self.client.pipeline(transaction=False)
            for args in calls:
                run(keys=keys, args=args, client=pipe)
            return list(pipe.execute())

    # --- predictions ----------------------------------------------------------------------

    def add_pending(self, model: str, columns: PendingColumns) -> StoreResult:
        items = columns.rows()
        first: dict[str, int] = {}
        for i, item in enumerate(items):
            first.setdefault(item.id, i)
        result = StoreResult(duplicates=len(items) - len(first))
        if not first:
            return result
        now = repr(float(self._clock()))
        limit = str(self._limit(model).max_pending)
        rows = [items[i] for i in first.values()]
        calls = []
        for lo in range(0, len(rows), CHUNK):
            args: list[Any] = [now, limit]
            for p in rows[lo : lo + CHUNK]:
                args.append(p.id)
                args.append(_dumps([p.version, p.timestamp, p.prediction, p.score]))
            calls.append(args)
        replies = self._run(
            "add_pending", model, calls, "these predictions were counted but cannot be joined;"
        )
        by_id = {p.id: p for p in rows}
        for duplicates, evicted, joined in replies:
            result.duplicates += int(duplicates)
            result.evicted += int(evicted)
            for k in range(0, len(joined), 2):
                p = by_id[joined[k].decode()]
                label, label_ts = json.loads(joined[k + 1])
                result.joined.append(
                    JoinedPair(p.id, p.version, p.prediction, p.score, label, p.timestamp, label_ts)
                )
        return result

    # --- labels ---------------------------------------------------------------------------

    def add_labels(self, model: str, labels: Sequence[LabelRecord]) -> StoreResult:
        first: dict[str, int] = {}
        for i, lab in enumerate(labels):
            first.setdefault(lab.id, i)
        result = StoreResult(duplicates=len(labels) - len(first))
        result.duplicate_ids = [lab.id for i, lab in enumerate(labels) if first[lab.id] != i]
        if not first:
            return result
        now = repr(float(self._clock()))
        limits = [str(self._max_orphans), str(self._limit(model).max_pending)]
        unique = [labels[i] for i in first.values()]
        calls = []
        for lo in range(0, len(unique), CHUNK):
            args: list[Any] = [now, *limits]
            for lab in unique[lo : lo + CHUNK]:
                args.append(lab.id)
                args.append(_dumps([lab.label, lab.timestamp]))
            calls.append(args)
        replies = self._run("add_labels", model, calls, "no label of this request was counted;")
        by_id = {lab.id: lab for lab in unique}
        for joined, duplicates, unmatched in replies:
            for k in range(0, len(joined), 2):
                lab = by_id[joined[k].decode()]
                version, ts, prediction, score = json.loads(joined[k + 1])
                result.joined.append(
                    JoinedPair(lab.id, version, prediction, score, lab.label, ts, lab.timestamp)
                )
            ids = [ident.decode() for ident in duplicates]
            result.duplicates += len(ids)
            result.duplicate_ids += ids
            result.unmatched += int(unmatched)
        return result

    # --- expiry ---------------------------------------------------------------------------

    def expire(self) -> ExpireResult:
        """Expire every model this store has seen or been given limits for. Each expired
        prediction is removed by one script on one replica, so the replicas' counts add
        up to the fleet's."""
        result = ExpireResult()
        now = self._clock()
        for model in sorted(self._models):
            limit = self._limit(model)
            args = [
                repr(now - limit.ttl_seconds),
                repr(now - self._orphan_ttl),
                str(limit.max_pending),
                str(self._expire_batch),
            ]
            expired = unmatched = 0
            while True:
                ((gone, orphans),) = self._run("expire", model, [args], "expiry postponed;")
                expired += int(gone)
                unmatched += int(orphans)
                if max(int(gone), int(orphans)) < self._expire_batch:
                    break
            if expired:
                result.expired[model] = expired
            if unmatched:
                result.unmatched[model] = unmatched
        return result

    def close(self) -> None:
        """Close the connections (every call's changes are already in Redis)."""
        self.client.close()
