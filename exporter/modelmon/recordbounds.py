"""Per-record bounds: a score of the task's shape, and class values of bounded length.

What a prediction record leaves behind (in the join store, for up to ``labels.ttl``, and
across restarts) must be small whatever the sender puts in it, so a record is rejected
(with its index and reason, the rest of the batch kept) when:

- its score has the wrong shape: ``invalid_score``. Binary classification and
  regression take a number (``score``); binary also takes a class map
  (``scores: {"0": 0.2, "1": 0.8}``), read as the positive class's value. Multiclass
  takes a class map of the model's classes to numbers (``scores``). Anything else, an
  unknown class key, or a non-number probability is refused, so a stored score is one
  float, or one float per known class;
- its prediction or inline label is a class string longer than
  ``limits.max_category_length``: ``invalid_prediction`` / ``invalid_label``.

Ids longer than ``limits.max_id_length`` are refused by :mod:`modelmon.ingest` itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from modelmon.ingest import Batch, IngestResult, take
from modelmon.values import as_float

_NUMBERS = frozenset({float, int})
_NUMBERS_OR_NONE = frozenset({float, int, type(None)})


class ScoreShape:
    """The score payload of one task.

    >>> binary = ScoreShape("binary_classification", ["0", "1"], positive_class="1")
    >>> binary.check(0.8), binary.check({"0": 0.3, "1": 0.7}), binary.check(None)
    (0.8, 0.7, None)
    >>> binary.check({"x": "y" * 10**6})
    Traceback (most recent call last):
    ...
    ValueError: scores: 'x' is not a class of this model (classes: '0', '1')
    >>> multi = ScoreShape("multiclass_classification", ["cat", "dog"])
    >>> multi.check({"cat": 1})
    {'cat': 1.0}
    >>> multi.check(0.5)
    Traceback (most recent call last):
    ...
    ValueError: scores: expected an object of class probabilities, got a number
    """

    def __init__(
        self, task: str, classes: Sequence[str], positive_class: str | None = None
    ) -> None:
        self.task = task
        self.classes = frozenset(classes)
        self.positive_class = positive_class
        self._shown = ", ".join(repr(c) for c in list(classes)[:10])

    def check(self, value: Any) -> float | dict[str, float] | None:
        """The score as it is kept (floats), or ValueError saying what is wrong."""
        if value is None:
            return None
        if type(value) is dict and self.task != "regression":
            scores = self._class_map(value)
            if self.task == "multiclass_classification":
                return scores
            if self.task == "binary_classification":
                return scores.get(self.positive_class or "", math.nan)
        elif self.task != "multiclass_classification" and type(value) in _NUMBERS:
            return as_float(value)
        raise ValueError(self._expected(value))

    def _class_map(self, value: dict[Any, Any]) -> dict[str, float]:
        if len(value) > len(self.classes):
            raise ValueError(
                f"scores: {len(value)} classes, but this model has {len(self.classes)}"
            )
        out = {}
        for key, probability in value.items():
            if key not in self.classes:
                raise ValueError(
                    f"scores: {str(key)[:40]!r} is not a class of this model "
                    f"(classes: {self._shown})"
                )
            if type(probability) not in _NUMBERS:
                raise ValueError(f"scores.{str(key)[:40]}: expected a number")
            out[key] = as_float(probability)
        return out

    def _expected(self, value: Any) -> str:
        kind = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
        got = kind.get(type(value), "a number")
        if self.task == "multiclass_classification":
            return f"scores: expected an object of class probabilities, got {got}"
        return f"score: expected a number, got {got}"


class RecordBounds:
    """Applies the bounds to a checked batch, rejecting the records that break them."""

    def __init__(self, shape: ScoreShape, max_class_length: int) -> None:
        self.shape = shape
        self.max_class_length = max_class_length

    def apply(self, batch: Batch, result: IngestResult) -> Batch:
        """``batch`` without the records that break a bound (each rejected in
        ``result``); the scores kept are floats or maps of floats."""
        bad: dict[int, tuple[str, str]] = {}
        self._scores(batch, bad)
        if self.shape.task != "regression":
            self._classes(batch.predictions, "prediction", "invalid_prediction", bad)
            self._classes(batch.labels, "label", "invalid_label", bad)
        if not bad:
            return batch
        for row in sorted(bad):
            reason, message = bad[row]
            result.reject(batch.indices[row], reason, message)
        result.accepted -= len(bad)
        return take(batch, [row for row in range(len(batch)) if row not in bad])

    def _scores(self, batch: Batch, bad: dict[int, tuple[str, str]]) -> None:
        scores = batch.scores
        kinds = set(map(type, scores))
        if self.shape.task != "multiclass_classification" and kinds <= _NUMBERS_OR_NONE:
            if int in kinds:  # an integer beyond float range must not reach a store
                batch.scores = [as_float(s) if type(s) is int else s for s in scores]
            return
        checked: list[Any] = []
        for row, score in enumerate(scores):
            try:
                checked.append(self.shape.check(score))
            except ValueError as exc:
                bad.setdefault(row, ("invalid_score", str(exc)))
                checked.append(None)
        batch.scores = checked

    def _classes(
        self, values: list[Any], field: str, reason: str, bad: dict[int, tuple[str, str]]
    ) -> None:
        limit = self.max_class_length
        if str not in set(map(type, values)):
            return
        if max(len(v) for v in values if type(v) is str) <= limit:
            return
        for row, value in enumerate(values):
            if type(value) is str and len(value) > limit:
                bad.setdefault(
                    row,
                    (
                        reason,
                        f"{field}: a class of {len(value)} characters; at most {limit} "
                        "(limits.max_category_length)",
                    ),
                )
