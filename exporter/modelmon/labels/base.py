"""What every join store shares: limits, their validation, the calls' signatures."""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from modelmon.labels.records import (
    ExpireResult,
    LabelRecord,
    PendingColumns,
    PendingPrediction,
    StoreResult,
)


class StoreUnavailableError(RuntimeError):
    """The join store cannot be reached (a shared store that is down, slow or refusing
    writes). Ingest answers labels with ``503`` and keeps counting predictions; the
    store is tried again at the next call, so service resumes without a restart."""


@dataclass(frozen=True)
class Limits:
    ttl_seconds: float
    max_pending: int


class JoinStore(abc.ABC):
    """Predictions waiting for labels, joined on ``(model, id)``.

    See :mod:`modelmon.labels.store` for the behaviour every store implements:
    :class:`~modelmon.labels.store.LabelStore` (SQLite, durable),
    :class:`~modelmon.labels.memory.MemoryLabelStore` (dictionaries, lost at restart) and
    :class:`~modelmon.labels.redis_store.RedisLabelStore` (Redis, shared by replicas).
    """

    path: str | None = None
    #: True for a store shared by several exporters (Redis): counts are fleet-wide.
    shared: bool = False

    def __init__(
        self,
        *,
        ttl_seconds: float,
        max_pending: int,
        orphan_ttl_seconds: float = 3600.0,
        max_orphans: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for name, seconds in (
            ("ttl_seconds", ttl_seconds),
            ("orphan_ttl_seconds", orphan_ttl_seconds),
        ):
            if not seconds > 0:
                raise ValueError(f"{name}: expected a positive number of seconds, got {seconds}")
        for name, count in (("max_pending", max_pending), ("max_orphans", max_orphans)):
            if count < 1:
                raise ValueError(f"{name}: expected a positive integer, got {count}")
        self._defaults = Limits(float(ttl_seconds), int(max_pending))
        self._limits: dict[str, Limits] = {}
        self._orphan_ttl = float(orphan_ttl_seconds)
        self._max_orphans = int(max_orphans)
        self._clock = clock
        self._lock = threading.Lock()

    def set_limits(self, model: str, *, ttl_seconds: float, max_pending: int) -> None:
        """Per-model ``ttl_seconds`` and ``max_pending`` (the constructor's are defaults)."""
        if not ttl_seconds > 0 or max_pending < 1:
            raise ValueError(
                f"{model}: expected ttl_seconds > 0 and max_pending >= 1, "
                f"got {ttl_seconds} and {max_pending}"
            )
        self._limits[model] = Limits(float(ttl_seconds), int(max_pending))

    def _limit(self, model: str) -> Limits:
        return self._limits.get(model, self._defaults)

    def add_predictions(self, model: str, items: Sequence[PendingPrediction]) -> StoreResult:
        """Store predictions; those whose label already waits join now. A prediction
        whose id is already stored (waiting or joined), or repeated within the call, is a
        duplicate."""
        return self.add_pending(model, PendingColumns.of(items))

    @abc.abstractmethod
    def add_pending(self, model: str, columns: PendingColumns) -> StoreResult:
        """:meth:`add_predictions`, column by column."""

    @abc.abstractmethod
    def add_labels(self, model: str, labels: Sequence[LabelRecord]) -> StoreResult:
        """Join labels with their waiting predictions. A label for an id already joined,
        or already waiting as an orphan, is a duplicate; a label without its prediction
        waits as an orphan."""

    @abc.abstractmethod
    def expire(self) -> ExpireResult:
        """Drop predictions that waited longer than their ttl and orphans older than
        orphan_ttl; forget joined ids whose prediction is older than ttl, and the oldest
        ones beyond max_pending. Call it periodically (e.g. every minute)."""

    @abc.abstractmethod
    def pending(self, model: str) -> int:
        """Predictions of ``model`` waiting for their label (O(1))."""

    @abc.abstractmethod
    def orphans(self, model: str) -> int:
        """Labels of ``model`` waiting for their prediction (O(1))."""

    def check(self) -> None:
        """Raise :class:`StoreUnavailableError` when the store cannot be reached now; the
        embedded stores always can."""
        return None

    @abc.abstractmethod
    def close(self) -> None:
        """Release the store (every call's changes are already applied)."""

    def __enter__(self) -> JoinStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
