"""Value normalisation: class values, timestamps and durations.

DESIGN.md section 5: ``1``, ``"1"`` and ``1.0`` are the same class ``"1"``; timestamps
are Unix seconds or RFC 3339. The oracle for timestamps is :mod:`datetime`.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelmon.values import TimestampError, class_value, parse_duration, parse_timestamp


@pytest.mark.parametrize("value", [1, "1", 1.0])
def test_one_string_one_and_float_one_are_class_one(value: object) -> None:
    assert class_value(value) == "1"


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=-(2**52), max_value=2**52))
def test_integer_valued_numbers_and_their_text_are_one_class(n: int) -> None:
    assert class_value(n) == class_value(float(n)) == class_value(str(n)) == str(n)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("cat", "cat"), (0.25, "0.25"), (True, "true"), (False, "false"), (0, "0"), (-3.0, "-3")],
)
def test_class_strings(value: object, expected: str) -> None:
    assert class_value(value) == expected


@pytest.mark.parametrize("value", [None, math.nan, [1], {"a": 1}])
def test_values_that_are_no_class(value: object) -> None:
    assert class_value(value) is None


@settings(max_examples=50, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from(
            [timezone.utc, timezone(timedelta(hours=2)), timezone(timedelta(hours=-7, minutes=-30))]
        ),
    )
)
def test_rfc3339_timestamps_equal_datetime(moment: datetime) -> None:
    text = moment.isoformat()
    assert parse_timestamp(text) == pytest.approx(moment.timestamp(), abs=1e-6)
    if moment.utcoffset() == timedelta(0):
        zulu = moment.replace(tzinfo=None).isoformat() + "Z"
        assert parse_timestamp(zulu) == pytest.approx(moment.timestamp(), abs=1e-6)


def test_naive_rfc3339_is_utc_and_numbers_are_unix_seconds() -> None:
    assert parse_timestamp("2025-11-25T13:00:00") == 1_764_075_600.0
    assert parse_timestamp(1_764_075_600) == 1_764_075_600.0
    assert parse_timestamp(0.5) == 0.5


@pytest.mark.parametrize(
    "value", ["yesterday", "", "2025-13-40T00:00:00Z", -1, math.inf, math.nan, True, [1], None]
)
def test_unparseable_timestamps(value: object) -> None:
    with pytest.raises(TimestampError):
        parse_timestamp(value)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h", 3600),
        ("1h30m", 5400),
        ("7d", 604_800),
        ("1w", 604_800),
        ("250ms", 0.25),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "m", "5x", "1hour", "-5m", "0s", 5])
def test_invalid_durations(text: object) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)
