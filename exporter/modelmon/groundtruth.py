"""Ground truth for one model: label joins, performance windows and estimates.

Prediction records with an ``id`` wait in the :class:`~modelmon.labels.store.LabelStore`
until their label arrives (``POST .../labels``, or a tailed label line); a record that
carries its ``label`` inline is joined at once. Each joined pair is encoded into an
additive performance vector (:mod:`modelmon.stats.performance`) and added to the
version's cumulative counters and to its sliding windows **by label arrival time**.
Estimated performance (:mod:`modelmon.stats.estimation`) is encoded from every scored
prediction and windowed **by prediction time**, when the profile has a calibration map.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelmon.ingest import Batch, IngestResult, record_time
from modelmon.labels.records import JoinedPair, LabelRecord, PendingColumns, PendingPrediction
from modelmon.profile import Profile
from modelmon.stats.binning import FloatArray
from modelmon.stats.estimation import Calibrator, ConfidenceEstimator, EstimateReading
from modelmon.stats.performance import (
    ClassificationPerformance,
    PerformanceReading,
    RegressionPerformance,
    RegressionReading,
)
from modelmon.stats.window import SlidingWindow
from modelmon.values import TimestampError, as_float, class_value

#: Score payloads a waiting prediction keeps (others are stored as no score).
_SCORE_TYPES = frozenset({float, int, dict, type(None)})

#: Score types numpy converts exactly as :func:`_float` does (None is NaN).
_FLOAT_TYPES = frozenset({float, int, type(None)})

#: Upper bounds of the label delay histogram (seconds): a minute to a month.
DELAY_BUCKETS = (
    1.0,
    10.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    4 * 3600.0,
    86400.0,
    3 * 86400.0,
    7 * 86400.0,
    30 * 86400.0,
)


@dataclass
class VersionTruth:
    """Performance counters and windows of one model version."""

    cumulative: FloatArray
    windows: dict[str, SlidingWindow]
    estimate_windows: dict[str, SlidingWindow]
    delay_buckets: FloatArray
    delay_sum: float = 0.0
    labels: int = 0  # pairs joined from label records (not inline labels)


@dataclass
class TruthReading:
    performance: PerformanceReading | RegressionReading | None = None
    estimate: EstimateReading | None = None


@dataclass
class TruthCounters:
    """Model-level label counters."""

    unmatched: int = 0
    expired: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class GroundTruth:
    """Encoders and per-version state of a model's performance statistics."""

    def __init__(
        self, profile: Profile, positive_class: str | None, windows: Sequence[tuple[str, float]]
    ) -> None:
        self.task = profile.task
        self.regression = profile.task == "regression"
        self.windows = list(windows)
        self.performance: ClassificationPerformance | RegressionPerformance
        self.estimator: ConfidenceEstimator | None = None
        if self.regression:
            self.performance = RegressionPerformance()
        else:
            binary = profile.task == "binary_classification"
            classes = list(profile.classes) or ([positive_class] if positive_class else ["1"])
            positive = positive_class if binary else None
            if positive is not None and positive not in classes:
                classes.append(positive)
            self.performance = ClassificationPerformance(classes, positive_class=positive)
            if profile.calibration:
                self.estimator = ConfidenceEstimator(
                    task=profile.task,
                    classes=classes,
                    positive_class=positive,
                    calibrator=Calibrator.from_dict(profile.calibration),
                )
        self.classes: tuple[str, ...] = getattr(self.performance, "classes", ())
        self.score_classes = [c for c in self.classes if c != "__other__"]
        self.counters = TruthCounters()
        self.max_id_length = 256  # limits.max_id_length (set by the model)
        self.max_class_length = 256  # limits.max_category_length, for label classes

    def new_version(self) -> VersionTruth:
        size = self.performance.size
        est = self.estimator
        return VersionTruth(
            cumulative=np.zeros(size),
            windows={name: SlidingWindow(seconds, size) for name, seconds in self.windows},
            estimate_windows={}
            if est is None
            else {name: SlidingWindow(seconds, est.size) for name, seconds in self.windows},
            delay_buckets=np.zeros(len(DELAY_BUCKETS) + 1),
        )

    # --- predictions --------------------------------------------------------------------

    def on_predictions(self, truth: VersionTruth, batch: Batch, timestamp: float) -> None:
        """Estimates and inline labels of a batch of one version (under the model lock)."""
        if self.estimator is not None and truth.estimate_windows:
            known = batch.classes
            rows: Sequence[int]
            if None not in batch.scores and known is not None and None not in known:
                rows = range(len(batch))  # every row scored and predicted: no copies
                predicted: Sequence[str] = known  # type: ignore[assignment]
                payloads: Sequence[Any] = batch.scores
            else:
                rows = [i for i, s in enumerate(batch.scores) if s is not None]
                predicted = [
                    (known[i] if known is not None else class_value(batch.predictions[i])) or ""
                    for i in rows
                ]
                payloads = [batch.scores[i] for i in rows]
            if rows:
                scores = self._score_matrix(payloads)
                vector = self.estimator.encode(predicted, scores)
                for window in truth.estimate_windows.values():
                    window.add(timestamp, vector)
        inline = [
            JoinedPair(
                batch.ids[i] or "",
                "",
                batch.predictions[i],
                batch.scores[i],
                batch.labels[i],
                batch.timestamps[i],
                batch.timestamps[i],
            )
            for i, label in enumerate(batch.labels)
            if label is not None and batch.predictions[i] is not None
        ]
        if inline:
            self.add_pairs(truth, inline, from_label_records=False)

    def pending(self, batch: Batch) -> PendingColumns:
        """Predictions that wait for a label: an id, a prediction and no inline label."""
        ids, labels, scores = batch.ids, batch.labels, batch.scores
        values = batch.predictions if self.regression else batch.classes
        if (
            ids
            and values is not None
            and None not in ids
            and None not in values
            and labels.count(None) == len(ids)  # the common case, checked in C
        ):
            if self.regression:
                values = list(map(as_float, values))
            if not set(map(type, scores)) <= _SCORE_TYPES:
                scores = [s if type(s) in _SCORE_TYPES else None for s in scores]
            # The checks above ruled out None ids and values.
            return PendingColumns(
                ids,  # type: ignore[arg-type]
                batch.versions,
                batch.timestamps,
                values,  # type: ignore[arg-type]
                scores,
            )
        out = []
        classes = batch.classes
        for i, (ident, pred) in enumerate(zip(ids, batch.predictions, strict=True)):
            if ident is None or pred is None or labels[i] is not None:
                continue
            if self.regression:
                value: str | float | None = as_float(pred)
            else:
                value = classes[i] if classes is not None else class_value(pred)
            if value is None:
                continue
            score = scores[i]
            if type(score) not in _SCORE_TYPES:
                score = None
            out.append(
                PendingPrediction(ident, batch.versions[i], batch.timestamps[i], value, score)
            )
        return PendingColumns.of(out)

    # --- labels -------------------------------------------------------------------------

    def parse_labels(
        self, records: Sequence[Any], now: float
    ) -> tuple[list[LabelRecord], IngestResult]:
        """Validate label records: an ``id``, a ``label`` of the task's kind, a timestamp."""
        result = IngestResult()
        out: list[LabelRecord] = []
        for i, rec in enumerate(records):
            if type(rec) is not dict:
                reason = "invalid_json" if type(rec).__name__ == "InvalidLine" else "not_an_object"
                result.reject(i, reason, getattr(rec, "message", "record: expected a JSON object"))
                continue
            ident = rec.get("id")
            if type(ident) is int:
                ident = str(ident)
            if type(ident) is not str or not ident or len(ident) > self.max_id_length:
                result.reject(
                    i,
                    "invalid_id",
                    "id: expected the prediction's id, a string of 1 to "
                    f"{self.max_id_length} characters",
                )
                continue
            label = self._label_value(rec.get("label"))
            if type(label) is str and len(label) > self.max_class_length:
                result.reject(
                    i,
                    "invalid_label",
                    f"label: a class of {len(label)} characters; at most "
                    f"{self.max_class_length} (limits.max_category_length)",
                )
                continue
            if label is None:
                kind = "a number" if self.regression else "a class (string, number or boolean)"
                result.reject(
                    i, "invalid_label", f"label: expected {kind}, got {rec.get('label')!r:.60}"
                )
                continue
            try:
                ts = record_time(rec.get("timestamp"), now)
            except TimestampError as exc:
                result.reject(i, "invalid_timestamp", f"timestamp: {exc}")
                continue
            out.append(LabelRecord(ident, label, ts))
            result.positions.append(i)
        result.accepted = len(out)
        return out, result

    def _label_value(self, value: Any) -> str | float | None:
        if self.regression:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return None
            number = as_float(value)
            return number if math.isfinite(number) else None
        if isinstance(value, (str, int, float, bool)):
            return class_value(value)
        return None

    # --- joined pairs -------------------------------------------------------------------

    def add_pairs(
        self, truth: VersionTruth, pairs: Sequence[JoinedPair], *, from_label_records: bool = True
    ) -> None:
        """Count joined pairs of one version (under the model lock)."""
        vector = self._encode(pairs)
        if vector is None:
            return
        truth.cumulative += vector
        label_time = max(p.label_ts for p in pairs)
        for window in truth.windows.values():
            window.add(label_time, vector)
        if from_label_records:
            truth.labels += len(pairs)
            delays = np.array([max(0.0, p.label_ts - p.prediction_ts) for p in pairs])
            idx = np.searchsorted(np.asarray(DELAY_BUCKETS), delays, side="left")
            truth.delay_buckets += np.bincount(idx, minlength=len(DELAY_BUCKETS) + 1)
            truth.delay_sum += float(delays.sum())

    def _encode(self, pairs: Sequence[JoinedPair]) -> FloatArray | None:
        if isinstance(self.performance, RegressionPerformance):
            y = np.array([_float(p.label) for p in pairs])
            y_hat = np.array([_float(p.prediction) for p in pairs])
            ok = np.isfinite(y) & np.isfinite(y_hat)
            return self.performance.encode(y[ok], y_hat[ok]) if ok.any() else None
        actual = [class_value(p.label) or "" for p in pairs]
        predicted = [class_value(p.prediction) or "" for p in pairs]
        scores = self._score_matrix([p.score for p in pairs])
        return self.performance.encode(actual, predicted, scores)

    def _score_matrix(self, payloads: Sequence[Any]) -> FloatArray:
        """Binary: a score per row; multiclass: rows x the profile's classes (a class
        missing from a row's ``scores`` is 0); NaN rows where there are no scores."""
        if self.task == "binary_classification":
            if set(map(type, payloads)) <= _FLOAT_TYPES:  # numbers and nulls: convert in C
                try:
                    return np.array(payloads, dtype=np.float64)
                except OverflowError:  # an integer beyond float range: the slow way
                    pass
            return np.array([_float(s) if not isinstance(s, dict) else math.nan for s in payloads])
        classes = self.score_classes
        nan_row = [math.nan] * len(classes)
        rows = [
            [_float(s.get(c, 0.0)) for c in classes] if isinstance(s, dict) else nan_row
            for s in payloads
        ]
        return np.array(rows, dtype=np.float64).reshape(len(payloads), len(classes))

    # --- reading ------------------------------------------------------------------------

    def read(self, vector: FloatArray | None, estimate: FloatArray | None) -> TruthReading:
        reading = TruthReading()
        if vector is not None:
            reading.performance = self.performance.metrics(vector)
        if estimate is not None and self.estimator is not None:
            reading.estimate = self.estimator.metrics(estimate)
        return reading


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return math.nan
    try:
        return float(value)
    except (ValueError, OverflowError):
        return math.nan
