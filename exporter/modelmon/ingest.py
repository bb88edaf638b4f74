"""Validation of prediction records into column batches (DESIGN.md section 5).

A record is *rejected* only when it cannot be used at all: not an object, no usable
``features`` object, an unparseable timestamp, a version or id that is not a string,
a prediction of the wrong kind for the task. Problems with single values are data
quality, counted per column by the binning code; the rest of such a record is used.
"""

from __future__ import annotations

import math
import operator
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import numpy as np

from modelmon.values import TimestampError, as_float, parse_timestamp

MAX_ERRORS_LISTED = 100
MAX_VERSION_LENGTH = 128
MAX_ID_LENGTH = 256

#: Values of the ``reason`` label of modelmon_rejected_records_total.
REASONS = (
    "not_an_object",
    "invalid_features",
    "invalid_timestamp",
    "invalid_version",
    "invalid_id",
    "invalid_prediction",
    "invalid_label",
    "invalid_score",
    "invalid_json",
    "too_many_versions",
    "duplicate_label",
    # from tailed JSONL files (modelmon.sources)
    "not_a_record",
    "line_too_long",
    "incomplete_line",
)


@dataclass
class IngestResult:
    """What the sender is told: accepted and rejected counts, and the first errors."""

    accepted: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)  # every rejection, listed or not
    positions: list[int] = field(default_factory=list)  # body index of each accepted label

    def reject(self, index: int, reason: str, message: str) -> None:
        self.rejected += 1
        self.reasons[reason] += 1
        if len(self.errors) < MAX_ERRORS_LISTED:
            self.errors.append({"index": index, "reason": reason, "error": message})

    def to_json(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "rejected": self.rejected, "errors": self.errors}


@dataclass(frozen=True)
class InvalidLine:
    """A line of an NDJSON body or a tailed file that is not valid JSON."""

    message: str


@dataclass
class Batch:
    """Accepted prediction records, column by column; row i of every list is record i."""

    indices: list[int]  # position of each row in the request body
    versions: list[str]
    timestamps: list[float]
    features: list[dict[str, Any]]
    predictions: list[Any]
    scores: list[Any]  # binary: the score value; multiclass: the scores object or None
    labels: list[Any]
    ids: list[str | None]
    latencies: list[Any]
    #: Prediction class strings, filled in by the encoder so later steps need not redo it.
    classes: list[str | None] | None = None
    #: Feature values column by column where every record has the same keys (see
    #: :func:`modelmon.model.ModelMonitor.ingest`), so that it is gathered once.
    feature_columns: dict[str, Sequence[Any]] | None = None

    def __len__(self) -> int:
        return len(self.indices)


_NUMBER = (int, float)
_SCALAR = (str, int, float, bool)


def record_time(value: Any, now: float) -> float:
    """A record's ``timestamp``: ``now`` when absent or later than now."""
    if value is None:
        return now
    if type(value) is float or type(value) is int:
        # An integer beyond float range is far in the future: now, as any later time.
        seconds = as_float(value)
        if seconds >= 0 and (math.isfinite(seconds) or type(value) is int):
            return min(seconds, now)
        raise TimestampError(f"expected finite, non-negative Unix seconds, got {seconds!r}")
    return min(parse_timestamp(value), now)


def _version(value: Any, default: str) -> str:
    if value is None:
        return default
    if type(value) is str and 0 < len(value) <= MAX_VERSION_LENGTH:
        return value
    if type(value) is int:
        return str(value)
    raise ValueError(f"expected a string of 1 to {MAX_VERSION_LENGTH} characters")


def _ident(value: Any, longest: int = MAX_ID_LENGTH) -> str | None:
    if value is None:
        return None
    if type(value) is str and len(value) <= longest:
        return value
    if type(value) is int and len(str(value)) <= longest:
        return str(value)
    raise ValueError(f"expected a string of at most {longest} characters")


def parse_predictions(
    records: Sequence[Any],
    *,
    regression: bool,
    default_version: str,
    now: float,
    max_id_length: int = MAX_ID_LENGTH,
) -> tuple[Batch, IngestResult]:
    """Split ``records`` into a :class:`Batch` of usable rows and the rejections.

    The loop checks the common shape inline (this is the ingest hot path); a record
    that does not fit it goes through :func:`_check`, which accepts the other valid
    forms (RFC 3339 times, integer versions and ids) or says exactly what is wrong.
    """
    batch = _parse_columns(records, regression, default_version, now, max_id_length)
    if batch is not None:
        return batch, IngestResult(accepted=len(batch))
    result = IngestResult()
    kinds = _NUMBER_TYPES if regression else _CLASS_TYPES
    rows: list[int] = []
    stamps: list[float] = []
    versions: list[str] = []
    ids: list[str | None] = []
    for i, rec in enumerate(records):
        if type(rec) is dict:
            ts = rec.get("timestamp")
            version = rec.get("version")
            ident = rec.get("id")
            pred = rec.get("prediction")
            label = rec.get("label")
            if (
                type(rec.get("features")) is dict
                and (ts is None or ((type(ts) is float or type(ts) is int) and 0 <= ts < _INF))
                and (version is None or (type(version) is str and 0 < len(version) <= _VLEN))
                and (ident is None or (type(ident) is str and len(ident) <= max_id_length))
                and (pred is None or type(pred) in kinds)
                and (label is None or type(label) in kinds)
            ):
                rows.append(i)
                stamps.append(now if ts is None or ts > now else float(ts))
                versions.append(default_version if version is None else version)
                ids.append(ident)
                continue
        checked = _check(i, rec, result, regression, default_version, now, max_id_length)
        if checked is not None:
            rows.append(i)
            stamps.append(checked[0])
            versions.append(checked[1])
            ids.append(checked[2])
    accepted = [records[i] for i in rows]
    batch = Batch(
        rows,
        versions,
        stamps,
        [r["features"] for r in accepted],
        [r.get("prediction") for r in accepted],
        [r.get("scores") if "scores" in r else r.get("score") for r in accepted],
        [r.get("label") for r in accepted],
        ids,
        [r.get("latency_seconds") for r in accepted],
    )
    result.accepted = len(rows)
    return batch, result


def _parse_columns(
    records: Sequence[Any], regression: bool, default_version: str, now: float, max_id: int
) -> Batch | None:
    """The batch of ``records`` checked column by column, each check one pass in C;
    None when any record needs the per-record path (a rejection, an RFC 3339 time, an
    integer id or version, some records with a timestamp and others without ...)."""
    n = len(records)
    if not n or set(map(type, records)) != _DICT:
        return None
    get = dict.get
    features = list(map(get, records, repeat("features", n)))
    if set(map(type, features)) != _DICT:
        return None
    stamps = _stamps(list(map(get, records, repeat("timestamp", n))), now)
    versions = _strings(list(map(get, records, repeat("version", n))), 1, _VLEN)
    ids = _strings(list(map(get, records, repeat("id", n))), 0, max_id)
    if stamps is None or versions is None or ids is None:
        return None
    if versions.count(None) == n:
        versions = [default_version] * n
    elif None in versions:
        versions = [default_version if v is None else v for v in versions]
    kinds = _NUMBER_OR_NONE if regression else _CLASS_OR_NONE
    predictions = list(map(get, records, repeat("prediction", n)))
    labels = list(map(get, records, repeat("label", n)))
    if not (set(map(type, predictions)) <= kinds and set(map(type, labels)) <= kinds):
        return None
    if any(map(operator.contains, records, repeat("scores", n))):
        scores = [r.get("scores") if "scores" in r else r.get("score") for r in records]
    else:
        scores = list(map(get, records, repeat("score", n)))
    return Batch(
        list(range(n)),
        versions,  # type: ignore[arg-type]
        stamps,
        features,  # type: ignore[arg-type]
        predictions,
        scores,
        labels,
        ids,
        list(map(get, records, repeat("latency_seconds", n))),
    )


def _stamps(values: list[Any], now: float) -> list[float] | None:
    """Unix-second timestamps (a record without one is ``now``, a later one too)."""
    if values.count(None) == len(values):
        return [now] * len(values)
    if not set(map(type, values)) <= _NUMBER_TYPES:
        return None
    try:
        arr = np.array(values, dtype=np.float64)
    except OverflowError:
        return None
    if not (arr >= 0).all() or not (arr < _INF).all():  # NaN fails both
        return None
    stamps: list[float] = np.minimum(arr, now).tolist()
    return stamps


def _strings(values: list[Any], shortest: int, longest: int) -> list[str | None] | None:
    """``values`` when each is null or a string of ``shortest`` to ``longest`` characters."""
    kinds = set(map(type, values))
    if kinds == _NONE:
        return values
    if not kinds <= _STR_OR_NONE:
        return None
    present = values if None not in values else [v for v in values if v is not None]
    if min(map(len, present)) < shortest or max(map(len, present)) > longest:
        return None
    return values


_DICT = {dict}
_NONE = {type(None)}
_STR_OR_NONE = frozenset({str, type(None)})
_INF = float("inf")
_VLEN = MAX_VERSION_LENGTH
_NUMBER_TYPES = frozenset({int, float})
_CLASS_TYPES = frozenset({str, int, float, bool})
_NUMBER_OR_NONE = _NUMBER_TYPES | {type(None)}
_CLASS_OR_NONE = _CLASS_TYPES | {type(None)}


def _check(
    i: int,
    rec: Any,
    result: IngestResult,
    regression: bool,
    default_version: str,
    now: float,
    max_id_length: int = MAX_ID_LENGTH,
) -> tuple[float, str, str | None] | None:
    """Validate one record the slow way: (timestamp, version, id), or None after
    rejecting it with its reason."""
    if type(rec) is not dict:
        if type(rec) is InvalidLine:
            result.reject(i, "invalid_json", rec.message)
        else:
            result.reject(
                i, "not_an_object", f"record: expected a JSON object, got {_json_type(rec)}"
            )
        return None
    feats = rec.get("features")
    if type(feats) is not dict:
        result.reject(
            i,
            "invalid_features",
            f"features: expected a JSON object of feature values, got {_json_type(feats)}",
        )
        return None
    try:
        ts = record_time(rec.get("timestamp"), now)
    except TimestampError as exc:
        result.reject(i, "invalid_timestamp", f"timestamp: {exc}")
        return None
    try:
        version = _version(rec.get("version"), default_version)
    except ValueError as exc:
        result.reject(i, "invalid_version", f"version: {exc}")
        return None
    try:
        ident = _ident(rec.get("id"), max_id_length)
    except ValueError as exc:
        result.reject(i, "invalid_id", f"id: {exc}")
        return None
    kind = "a number" if regression else "a class (string, number or boolean)"
    pred = rec.get("prediction")
    if pred is not None and not _prediction_ok(pred, regression):
        result.reject(
            i,
            "invalid_prediction",
            f"prediction: expected {kind} for this model's task, got {_json_type(pred)}",
        )
        return None
    label = rec.get("label")
    if label is not None and not _prediction_ok(label, regression):
        result.reject(i, "invalid_label", f"label: expected {kind}, got {_json_type(label)}")
        return None
    return ts, version, ident


def _prediction_ok(value: Any, regression: bool) -> bool:
    if regression:
        return isinstance(value, _NUMBER) and not isinstance(value, bool)
    return isinstance(value, _SCALAR)


def _json_type(value: Any) -> str:
    names = {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


def take(batch: Batch, rows: list[int]) -> Batch:
    """The sub-batch of the given row positions."""
    return Batch(*([getattr(batch, f)[r] for r in rows] for f in _ROW_FIELDS))  # type: ignore[arg-type]


_ROW_FIELDS = [f for f in Batch.__dataclass_fields__ if f not in ("classes", "feature_columns")]
