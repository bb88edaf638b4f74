"""Sliding event-time windows: the running total equals recomputing from the events.

The oracle keeps every event and, at the end, sums those whose bucket (event time over
the resolution, length / buckets) lies within ``buckets`` buckets of the newest one: the
window's span as its docstring defines it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelmon.stats.window import SlidingWindow

events_strategy = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=2_000, allow_nan=False),
        st.lists(st.integers(-5, 20), min_size=3, max_size=3),
    ),
    min_size=1,
    max_size=60,
)


def expected_total(
    events: list[tuple[float, list[int]]], length: float, buckets: int, now: float | None = None
) -> np.ndarray:
    resolution = length / buckets
    bucket = [math.floor(t / resolution) for t, _ in events]
    newest = max(bucket)
    if now is not None:
        newest = max(newest, math.floor(now / resolution))
    total = np.zeros(3)
    for b, (_, vector) in zip(bucket, events, strict=True):
        if newest - buckets < b <= newest:
            total += vector
    return total


@settings(max_examples=50, deadline=None)
@given(
    events_strategy,
    st.sampled_from([60.0, 300.0, 7.5]),
    st.integers(min_value=1, max_value=30),
)
def test_window_total_equals_the_sum_of_events_in_its_span(
    events: list[tuple[float, list[int]]], length: float, buckets: int
) -> None:
    window = SlidingWindow(length, size=3, buckets=buckets)
    for t, vector in events:
        window.add(t, np.asarray(vector, dtype=np.float64))
    np.testing.assert_allclose(window.total(), expected_total(events, length, buckets), atol=1e-9)


@settings(max_examples=50, deadline=None)
@given(events_strategy, st.floats(min_value=0, max_value=3_000, allow_nan=False))
def test_advancing_drops_what_falls_out(events: list[tuple[float, list[int]]], now: float) -> None:
    window = SlidingWindow(300.0, size=3, buckets=30)
    for t, vector in events:
        window.add(t, np.asarray(vector, dtype=np.float64))
    window.advance(now)
    np.testing.assert_allclose(
        window.total(), expected_total(events, 300.0, 30, now=now), atol=1e-9
    )


def test_add_reports_events_older_than_the_window() -> None:
    window = SlidingWindow(60.0, size=1, buckets=6)
    assert window.add(1000.0, np.ones(1))
    assert not window.add(900.0, np.ones(1))  # 100 s before the newest event
    assert window.add(995.0, np.ones(1))
    assert window.total().tolist() == [2.0]
    assert not window.accepts(900.0)
    assert window.accepts(990.0)


def test_window_empties_after_a_quiet_period() -> None:
    window = SlidingWindow(60.0, size=2, buckets=30)
    for t in np.arange(0, 60, 0.7):
        window.add(float(t), np.array([0.1, 0.3]))
    window.advance(200.0)
    assert window.total().tolist() == [0.0, 0.0]


def test_checkpoint_state_restores_the_same_total() -> None:
    window = SlidingWindow(300.0, size=2, buckets=30)
    for t in range(0, 400, 7):
        window.add(float(t), np.array([1.0, float(t)]))
    restored = SlidingWindow(300.0, size=2, buckets=30)
    restored.restore(window.state())
    np.testing.assert_allclose(restored.total(), window.total())
    restored.advance(500.0)
    window.advance(500.0)
    np.testing.assert_allclose(restored.total(), window.total())


@pytest.mark.parametrize(("length", "buckets"), [(0.0, 30), (-1.0, 30), (60.0, 0)])
def test_invalid_window_parameters_name_the_parameter(length: float, buckets: int) -> None:
    with pytest.raises(ValueError, match="length" if length <= 0 else "buckets"):
        SlidingWindow(length, size=1, buckets=buckets)
