"""Ground truth: the store where predictions wait for their delayed labels."""

from modelmon.labels.records import (
    ExpireResult,
    JoinedPair,
    LabelRecord,
    PendingPrediction,
    StoreResult,
)
from modelmon.labels.store import LabelStore

__all__ = [
    "ExpireResult",
    "JoinedPair",
    "LabelRecord",
    "LabelStore",
    "PendingPrediction",
    "StoreResult",
]
