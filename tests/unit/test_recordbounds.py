"""Per-record bounds (modelmon.recordbounds): scores of the task's shape, short classes."""

from __future__ import annotations

import math
from typing import Any

import pytest

from modelmon.ingest import parse_predictions
from modelmon.recordbounds import RecordBounds, ScoreShape

BINARY = ScoreShape("binary_classification", ["0", "1"], positive_class="1")
MULTI = ScoreShape("multiclass_classification", ["cat", "dog", "owl"])
REGRESSION = ScoreShape("regression", [])


@pytest.mark.parametrize(
    ("shape", "value", "kept"),
    [
        (BINARY, 0.25, 0.25),
        (BINARY, 1, 1.0),
        (BINARY, 10**400, math.inf),  # an integer beyond float range: inf, never an int
        (BINARY, {"0": 0.4, "1": 0.6}, 0.6),
        (MULTI, {"cat": 0.5, "dog": 0.5}, {"cat": 0.5, "dog": 0.5}),
        (REGRESSION, 3, 3.0),
        (MULTI, None, None),
    ],
)
def test_scores_of_the_right_shape_are_kept_as_floats(
    shape: ScoreShape, value: Any, kept: Any
) -> None:
    assert shape.check(value) == kept


@pytest.mark.parametrize(
    ("shape", "value"),
    [
        (BINARY, {"blob": "x" * 1_000_000}),  # the finding: a 1 MiB score object
        (BINARY, "0.5"),
        (BINARY, [0.5]),
        (BINARY, True),
        (MULTI, 0.5),
        (MULTI, {"cat": 0.5, "zebra": 0.5}),
        (MULTI, {"cat": "high"}),
        (MULTI, {"cat": 0.1, "dog": 0.1, "owl": 0.1, "x": 0.1}),
        (REGRESSION, {"a": 1.0}),
    ],
)
def test_misshapen_scores_are_refused(shape: ScoreShape, value: Any) -> None:
    with pytest.raises(ValueError, match="score"):
        shape.check(value)


def test_bounds_reject_only_the_bad_records_and_keep_their_positions() -> None:
    records = [
        {"features": {}, "prediction": 1, "score": 0.5},
        {"features": {}, "prediction": 1, "score": {"blob": "x" * 1000}},
        {"features": {}, "prediction": "x" * 300, "score": 0.5},
        {"features": {}, "prediction": 0, "label": "y" * 300},
        {"features": {}, "prediction": 0, "score": 7},
    ]
    batch, result = parse_predictions(records, regression=False, default_version="v", now=1.0)
    batch = RecordBounds(BINARY, max_class_length=256).apply(batch, result)
    assert batch.indices == [0, 4]
    assert batch.scores == [0.5, 7.0]
    assert (result.accepted, result.rejected) == (2, 3)
    assert [(e["index"], e["reason"]) for e in result.errors] == [
        (1, "invalid_score"),
        (2, "invalid_prediction"),
        (3, "invalid_label"),
    ]


def test_ids_over_max_id_length_are_rejected() -> None:
    records = [{"features": {}, "id": "a" * 10}, {"features": {}, "id": "b" * 11}]
    batch, result = parse_predictions(
        records, regression=False, default_version="v", now=1.0, max_id_length=10
    )
    assert batch.indices == [0]
    assert result.errors[0]["reason"] == "invalid_id"
