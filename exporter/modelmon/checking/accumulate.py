"""Streaming a batch into the exporter's additive vectors, one chunk at a time.

Every chunk is encoded with the profile's frozen binning
(:mod:`modelmon.stats.binning`) and, where the batch has labels and predictions, with
the performance encoders (:mod:`modelmon.stats.performance`); the vectors of all chunks
are summed. Memory is the chunk plus fixed-size vectors, whatever the size of the input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import numpy as np

from modelmon.checking.mapping import ColumnMap, Key
from modelmon.checking.values import categorical_column, numeric_column
from modelmon.profile import Profile
from modelmon.profiling.readers import Chunk
from modelmon.stats.binning import (
    EVENTS_SLOT,
    ColumnSlots,
    FloatArray,
    Layout,
    encode_categorical,
    encode_numeric,
)
from modelmon.stats.estimation import Calibrator, ConfidenceEstimator
from modelmon.stats.performance import ClassificationPerformance, RegressionPerformance

Encoder = ClassificationPerformance | RegressionPerformance


@dataclass
class _ChunkValues:
    """Normalised values of one chunk's prediction, label and score columns."""

    classes: dict[Key, list[str | None]] = field(default_factory=dict)
    numbers: dict[Key, FloatArray] = field(default_factory=dict)


def performance_encoder(profile: Profile) -> Encoder | None:
    """The performance encoder of the profile's task (None: a classifier without classes)."""
    if profile.task == "regression":
        return RegressionPerformance()
    if not profile.classes:
        return None
    binary = profile.task == "binary_classification"
    return ClassificationPerformance(
        profile.classes, positive_class=profile.positive_class if binary else None
    )


def confidence_estimator(profile: Profile) -> ConfidenceEstimator | None:
    """Estimated performance from calibrated scores, for classifiers with a score column
    and a calibration map in the profile."""
    if profile.task == "regression" or profile.calibration is None or not profile.classes:
        return None
    if not profile.role_columns("score"):
        return None
    return ConfidenceEstimator(
        task=profile.task,
        classes=profile.classes,
        positive_class=profile.positive_class,
        calibrator=Calibrator.from_dict(profile.calibration),
    )


class BatchAccumulator:
    """Sums of the drift, performance and estimate vectors of every chunk added."""

    def __init__(self, profile: Profile, columns: ColumnMap) -> None:
        self.profile = profile
        self.columns = columns
        self.layout = Layout(profile)
        self.vector = self.layout.zeros()
        self.performance = performance_encoder(profile)
        self.performance_vector = None if self.performance is None else self.performance.zeros()
        self.estimator = confidence_estimator(profile)
        self.estimate_vector = None if self.estimator is None else self.estimator.zeros()
        self.present: set[Key] = set()  # profile columns found in at least one file
        self.absent: set[Key] = set()  # profile columns missing from at least one file
        self.unknown: dict[str, None] = {}  # data columns that feed no profile column
        self.labeled_rows = 0  # rows with both a label and a prediction
        self._checked: set[str] = set()

    @property
    def rows(self) -> int:
        return int(self.vector[EVENTS_SLOT])

    def add(self, chunk: Chunk) -> None:
        """Count one chunk of a data file."""
        if chunk.path not in self._checked:
            self.columns.check(chunk)
            self.unknown.update(dict.fromkeys(self.columns.unknown(chunk.columns)))
            self._checked.add(chunk.path)
        self.vector[EVENTS_SLOT] += chunk.rows
        values = _ChunkValues()
        for slots in self.layout.columns:
            self._encode_column(slots, chunk, values)
        self._encode_performance(values)

    def _encode_column(self, slots: ColumnSlots, chunk: Chunk, values: _ChunkValues) -> None:
        col = slots.column
        key = (col.role, col.name)
        raw = chunk.columns.get(self.columns.source(col))
        if raw is None:
            self.absent.add(key)
            if col.role == "feature":  # as in the exporter: an absent feature is missing
                self.vector[slots.quality("missing")] += chunk.rows
            return
        self.present.add(key)
        if slots.numeric:
            numbers, errors = numeric_column(raw)
            encode_numeric(slots, numbers, errors, self.vector)
            values.numbers[key] = numbers
        else:
            cats, errors = categorical_column(raw, classes=col.role in ("prediction", "label"))
            encode_categorical(slots, cats, errors, self.vector)
            values.classes[key] = cats

    def _encode_performance(self, values: _ChunkValues) -> None:
        if isinstance(self.performance, RegressionPerformance):
            self._encode_regression(self.performance, values)
        elif isinstance(self.performance, ClassificationPerformance):
            self._encode_classification(self.performance, values)
        if self.estimator is not None:
            self._encode_estimate(self.estimator, values)

    def _encode_regression(self, encoder: RegressionPerformance, values: _ChunkValues) -> None:
        actual = values.numbers.get(("label", "label"))
        predicted = values.numbers.get(("prediction", "prediction"))
        if actual is None or predicted is None or self.performance_vector is None:
            return
        keep = np.isfinite(actual) & np.isfinite(predicted)
        self.labeled_rows += int(keep.sum())
        self.performance_vector += encoder.encode(actual[keep], predicted[keep])

    def _encode_classification(
        self, encoder: ClassificationPerformance, values: _ChunkValues
    ) -> None:
        actual = values.classes.get(("label", "label"))
        predicted = values.classes.get(("prediction", "prediction"))
        if actual is None or predicted is None or self.performance_vector is None:
            return
        scores = self._scores(values)
        if None in actual or None in predicted:  # keep the rows with both
            rows = [
                i
                for i, (a, p) in enumerate(zip(actual, predicted, strict=True))
                if a is not None and p is not None
            ]
            actual = [actual[i] for i in rows]
            predicted = [predicted[i] for i in rows]
            scores = None if scores is None else scores[rows]
        self.labeled_rows += len(actual)
        self.performance_vector += encoder.encode(
            cast(list[str], actual), cast(list[str], predicted), scores
        )

    def _scores(self, values: _ChunkValues) -> FloatArray | None:
        """Binary: the positive-class score per row; multiclass: rows x classes, when
        every class has a score column in the data."""
        if self.profile.task == "binary_classification":
            return values.numbers.get(("score", "score"))
        by_class = [values.numbers.get(("score", c)) for c in self.profile.classes]
        present = [s for s in by_class if s is not None]
        if not present or len(present) != len(by_class):
            return None
        return np.column_stack(present)

    def _encode_estimate(self, estimator: ConfidenceEstimator, values: _ChunkValues) -> None:
        scores = self._scores(values)
        if scores is None or self.estimate_vector is None:
            return
        predicted = values.classes.get(("prediction", "prediction"))
        if predicted is None:
            self.estimate_vector += estimator.encode(None, scores)
            return
        if None in predicted:
            rows = [i for i, p in enumerate(predicted) if p is not None]
            predicted = [predicted[i] for i in rows]
            scores = scores[rows]
        self.estimate_vector += estimator.encode(cast(list[str], predicted), scores)
