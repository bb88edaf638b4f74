"""Ground truth: the store where predictions wait for their delayed labels."""

from __future__ import annotations

import os
from typing import Any

from modelmon.labels.base import JoinStore, StoreUnavailableError
from modelmon.labels.memory import MemoryLabelStore
from modelmon.labels.records import (
    ExpireResult,
    JoinedPair,
    LabelRecord,
    PendingColumns,
    PendingPrediction,
    StoreResult,
)
from modelmon.labels.store import LabelStore


def open_store(path: str | os.PathLike[str] | None, **options: Any) -> JoinStore:
    """The SQLite store at ``path`` (durable), or the in-memory one for ``None``."""
    if path is None:
        return MemoryLabelStore(**options)
    return LabelStore(path, **options)


__all__ = [
    "ExpireResult",
    "JoinStore",
    "JoinedPair",
    "LabelRecord",
    "LabelStore",
    "MemoryLabelStore",
    "PendingColumns",
    "PendingPrediction",
    "StoreResult",
    "StoreUnavailableError",
    "open_store",
]
