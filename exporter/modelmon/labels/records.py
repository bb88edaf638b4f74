"""Records of the join store: what goes in, what comes out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

#: A class (compared as a string) or a regression value.
Value = str | float
#: Positive-class probability (binary), probabilities per class (multiclass) or none.
ScorePayload = float | dict[str, float] | None


class PendingPrediction(NamedTuple):
    """A prediction that waits for its label."""

    id: str
    version: str
    timestamp: float
    prediction: Value
    score: ScorePayload = None


class PendingColumns(NamedTuple):
    """Predictions that wait for their labels, column by column (row i of every column
    is one prediction): what ingest hands the store, without a tuple per record."""

    ids: Sequence[str]
    versions: Sequence[str]
    timestamps: Sequence[float]
    predictions: Sequence[Value]
    scores: Sequence[ScorePayload]

    @classmethod
    def of(cls, items: Sequence[PendingPrediction]) -> PendingColumns:
        if not items:
            return cls([], [], [], [], [])
        ids, versions, stamps, predictions, scores = zip(*items, strict=True)
        return cls(ids, versions, stamps, predictions, scores)

    def rows(self) -> list[PendingPrediction]:
        return list(map(PendingPrediction, *self))


class LabelRecord(NamedTuple):
    """Ground truth for the prediction ``id``."""

    id: str
    label: Value
    timestamp: float


class JoinedPair(NamedTuple):
    """A prediction joined with its label; the timestamps are the records' own."""

    id: str
    version: str
    prediction: Value
    score: ScorePayload
    label: Value
    prediction_ts: float
    label_ts: float


@dataclass
class StoreResult:
    """Outcome of one call.

    ``joined``: the pairs joined by this call. ``evicted``: predictions pushed out by
    ``max_pending`` (oldest first). ``duplicates``: records whose id was already joined or
    already waiting (a label sent twice, a prediction resent), and repeats of an id within
    the call; they are dropped. ``unmatched``: orphan labels pushed out by ``max_orphans``.
    """

    joined: list[JoinedPair] = field(default_factory=list)
    evicted: int = 0
    duplicates: int = 0
    unmatched: int = 0
    duplicate_ids: list[str] = field(default_factory=list)  # add_labels: which ids


@dataclass
class ExpireResult:
    """Per model: predictions that waited longer than their ttl (``expired``) and orphan
    labels that waited longer than orphan_ttl (``unmatched``); models with none absent."""

    expired: dict[str, int] = field(default_factory=dict)
    unmatched: dict[str, int] = field(default_factory=dict)
