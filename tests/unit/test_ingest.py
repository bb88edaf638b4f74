"""Record validation (DESIGN.md section 5): a record is rejected only when it cannot be
used at all, with its index and a reason; everything else is accepted."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelmon.bodies import BodyError, decompress, media_type, parse_records
from modelmon.config import config_from_dict
from modelmon.ingest import InvalidLine, parse_predictions
from modelmon.model import ModelMonitor
from modelmon.profile import ColumnProfile, Profile

NOW = 1_764_075_600.0


def parse(records: list[Any], regression: bool = False) -> tuple[Any, Any]:
    return parse_predictions(records, regression=regression, default_version="v1", now=NOW)


GOOD = {"features": {"age": 41}, "prediction": 1, "score": 0.8}


@pytest.mark.parametrize(
    ("record", "reason", "field"),
    [
        (["not", "an", "object"], "not_an_object", "record"),
        ("text", "not_an_object", "record"),
        (None, "not_an_object", "record"),
        ({"prediction": 1}, "invalid_features", "features"),
        ({"features": [1, 2]}, "invalid_features", "features"),
        ({"features": "age=41"}, "invalid_features", "features"),
        ({"features": {}, "timestamp": "yesterday"}, "invalid_timestamp", "timestamp"),
        ({"features": {}, "timestamp": -5}, "invalid_timestamp", "timestamp"),
        ({"features": {}, "timestamp": True}, "invalid_timestamp", "timestamp"),
        ({"features": {}, "prediction": {"class": 1}}, "invalid_prediction", "prediction"),
        ({"features": {}, "prediction": [1]}, "invalid_prediction", "prediction"),
    ],
)
def test_unusable_records_are_rejected_with_reason_and_index(
    record: Any, reason: str, field: str
) -> None:
    batch, result = parse([GOOD, record, GOOD])
    assert (result.accepted, result.rejected) == (2, 1)
    assert len(batch) == 2
    assert batch.indices == [0, 2]
    [error] = result.errors
    assert error["index"] == 1
    assert error["reason"] == reason
    assert error["error"].startswith(f"{field}:")
    assert result.reasons[reason] == 1


@pytest.mark.parametrize("prediction", ["high", True, {"v": 1}])
def test_regression_predictions_must_be_numbers(prediction: Any) -> None:
    _, result = parse([{"features": {}, "prediction": prediction}], regression=True)
    assert result.rejected == 1
    assert result.errors[0]["reason"] == "invalid_prediction"


@pytest.mark.parametrize("prediction", [1, "1", 1.0, "cat", False, None])
def test_classification_accepts_class_values(prediction: Any) -> None:
    _, result = parse([{"features": {}, "prediction": prediction}])
    assert (result.accepted, result.rejected) == (1, 0)


def test_value_problems_are_not_rejections() -> None:
    records = [
        {"features": {"age": "hot", "income": None, "unknown_key": 1}},
        {"features": {"age": float("nan"), "income": float("inf")}},
        {"features": {}},
    ]
    batch, result = parse(records)
    assert (result.accepted, result.rejected) == (3, 0)
    assert batch.features[0]["age"] == "hot"


def test_timestamps_default_to_now_and_parse_rfc3339() -> None:
    records = [
        {"features": {}},
        {"features": {}, "timestamp": 1_764_075_000.5},
        {"features": {}, "timestamp": "2025-11-25T12:50:00Z"},
        {"features": {}, "timestamp": "2025-11-25T13:50:00+01:00"},
    ]
    batch, result = parse(records)
    assert result.rejected == 0
    assert batch.timestamps == [NOW, 1_764_075_000.5, 1_764_075_000.0, 1_764_075_000.0]


def test_versions_default_to_the_configured_one() -> None:
    batch, _ = parse([{"features": {}}, {"features": {}, "version": "v2"}])
    assert batch.versions == ["v1", "v2"]


def test_errors_listed_are_capped_but_all_are_counted() -> None:
    _, result = parse([1] * 500 + [GOOD])
    assert (result.accepted, result.rejected) == (1, 500)
    assert 0 < len(result.errors) < 500
    assert result.reasons["not_an_object"] == 500
    body = result.to_json()
    assert set(body) == {"accepted", "rejected", "errors"}
    assert body["errors"][0]["index"] == 0


def test_invalid_ndjson_lines_are_rejected_alone() -> None:
    records = parse_records(b'{"features": {}}\n{oops\n\n{"features": {"a": 1}}\n', "ndjson")
    assert isinstance(records[1], InvalidLine)
    _batch, result = parse(records)
    assert (result.accepted, result.rejected) == (2, 1)
    assert result.errors[0]["index"] == 1
    assert "line 2" in result.errors[0]["error"]


# --- bodies ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"features": {}}', [{"features": {}}]),
        (b'[{"features": {}}, {"features": {"a": 1}}]', [{"features": {}}, {"features": {"a": 1}}]),
    ],
)
def test_json_bodies(body: bytes, expected: list[Any]) -> None:
    assert parse_records(body, "json") == expected


def test_unparseable_json_body_is_400() -> None:
    with pytest.raises(BodyError) as caught:
        parse_records(b'{"features": ', "json")
    assert caught.value.status == 400


def test_python_json_nan_and_infinity_are_values_not_a_broken_body() -> None:
    """Python's json module writes NaN and Infinity; DESIGN.md counts them as missing and
    out of range, so such a body must parse."""
    body = json.dumps({"features": {"a": float("nan"), "b": float("inf")}}).encode()
    [record] = parse_records(body, "json")
    assert record["features"]["b"] == float("inf")
    assert record["features"]["a"] != record["features"]["a"]  # NaN


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        (None, "json"),
        ("application/json", "json"),
        ("application/json; charset=utf-8", "json"),
        ("application/x-ndjson", "ndjson"),
    ],
)
def test_content_types(content_type: str | None, kind: str) -> None:
    assert media_type(content_type) == kind


def test_unsupported_content_type_is_415() -> None:
    with pytest.raises(BodyError) as caught:
        media_type("text/csv")
    assert caught.value.status == 415


def test_gzip_is_inflated_within_the_limit() -> None:
    raw = b'{"features": {}}' * 100
    assert decompress(gzip.compress(raw), "gzip", len(raw)) == raw
    with pytest.raises(BodyError) as caught:
        decompress(gzip.compress(raw), "gzip", len(raw) - 1)
    assert caught.value.status == 413


def test_unsupported_encoding_is_415_and_corrupt_gzip_400() -> None:
    with pytest.raises(BodyError) as caught:
        decompress(b"x", "br", 100)
    assert caught.value.status == 415
    with pytest.raises(BodyError) as caught:
        decompress(b"not gzip at all", "gzip", 100)
    assert caught.value.status == 400


# --- no record breaks ingest ------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=300),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
record_like = st.fixed_dictionaries(
    {},
    optional={
        "features": st.dictionaries(st.sampled_from(["x", "color", "other"]), json_values)
        | json_values,
        "prediction": json_values,
        "score": json_values,
        "scores": json_values,
        "label": json_values,
        "timestamp": json_values,
        "version": json_values,
        "id": json_values,
        "latency_seconds": json_values,
    },
)


def fuzz_monitor() -> ModelMonitor:
    columns = [
        ColumnProfile(
            "x",
            "feature",
            "numeric",
            count=3,
            missing=0,
            distinct=3,
            min=0.0,
            max=2.0,
            std=1.0,
            coarse_edges=[1.0],
            coarse_ratios=[0.5, 0.5],
            fine_edges=[1.0],
            fine_ratios=[0.5, 0.5],
            fine_means=[0.0, 1.5],
        ),
        ColumnProfile(
            "color",
            "feature",
            "categorical",
            count=3,
            missing=0,
            distinct=2,
            categories={"red": 0.5, "blue": 0.5},
            known_values=["blue", "red"],
        ),
        ColumnProfile(
            "prediction",
            "prediction",
            "categorical",
            count=3,
            missing=0,
            distinct=2,
            categories={"0": 0.5, "1": 0.5},
            known_values=["0", "1"],
        ),
    ]
    profile = Profile("binary_classification", 3, columns, classes=["0", "1"], positive_class="1")
    config = config_from_dict({"models": [{"name": "m", "reference": "p.json", "windows": ["5m"]}]})
    return ModelMonitor(config.models[0], profile, clock=lambda: NOW)


@settings(max_examples=50, deadline=None)
@given(st.lists(record_like | json_values, max_size=12))
def test_no_record_makes_ingest_raise(records: list[Any]) -> None:
    monitor = fuzz_monitor()
    result = monitor.ingest(records)
    assert result.accepted + result.rejected == len(records)
    events = sum(state.cumulative[0] for state in monitor.versions.values())
    assert events == result.accepted
    monitor.readings()  # reading the windows never raises either


def test_a_gzip_body_of_several_members_is_read_whole() -> None:
    """gzip.decompress reads concatenated members; so must the exporter."""
    body = gzip.compress(b'{"features": {"x": 1}}\n') + gzip.compress(b'{"features": {"x": 2}}\n')
    assert parse_records(decompress(body, "gzip", 10_000), "ndjson") == [
        {"features": {"x": 1}},
        {"features": {"x": 2}},
    ]
    with pytest.raises(BodyError) as caught:
        decompress(body[:-4], "gzip", 10_000)
    assert caught.value.status == 400
