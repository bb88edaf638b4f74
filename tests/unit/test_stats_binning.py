"""Frozen reference binning (DESIGN.md section 6) and the additive vectors built from it.

The profile here is written by hand, so every expected count follows from the bin rule
``(-inf, e1), [e1, e2), ..., [e_last, +inf)`` counted with plain comparisons in the
test, never with the code under test.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelmon.config import config_from_dict
from modelmon.ingest import parse_predictions
from modelmon.model import ModelMonitor
from modelmon.profile import OTHER, ColumnProfile, Profile
from modelmon.stats.binning import (
    EVENTS_SLOT,
    Layout,
    NumericBlock,
    encode_block,
    encode_categorical,
    encode_numeric,
)

FINE = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
COARSE = [2.0, 4.0, 6.0]
NOW = 1_764_075_600.0


def numeric_column(name: str = "x") -> ColumnProfile:
    return ColumnProfile(
        name,
        "feature",
        "numeric",
        count=100,
        missing=0,
        distinct=100,
        min=0.5,
        max=6.5,
        mean=3.5,
        std=1.7,
        coarse_edges=list(COARSE),
        coarse_ratios=[0.2, 0.3, 0.3, 0.2],
        fine_edges=list(FINE),
        fine_ratios=[0.1, 0.1, 0.15, 0.15, 0.15, 0.15, 0.2],
        fine_means=[0.8, 1.5, 2.5, 3.5, 4.5, 5.5, 6.2],
    )


def categorical_column(name: str = "color") -> ColumnProfile:
    return ColumnProfile(
        name,
        "feature",
        "categorical",
        count=100,
        missing=0,
        distinct=3,
        categories={"red": 0.5, "green": 0.3},
        other_ratio=0.2,
        known_values=["blue", "green", "red"],
        known_values_complete=True,
    )


PROFILE = Profile(
    task="binary_classification",
    rows=100,
    columns=[numeric_column(), categorical_column()],
    classes=["0", "1"],
    positive_class="1",
)
LAYOUT = Layout(PROFILE)
X = LAYOUT.by_key[("feature", "x")]
COLOR = LAYOUT.by_key[("feature", "color")]


def bin_by_comparison(value: float, edges: list[float]) -> int:
    """Index of the bin holding ``value``: the number of edges at or below it."""
    return sum(1 for e in edges if e <= value)


def encoded_numeric(values: list[float], type_errors: int = 0) -> np.ndarray:
    vector = LAYOUT.zeros()
    encode_numeric(X, np.asarray(values, dtype=np.float64), type_errors, vector)
    return vector


def quality(vector: np.ndarray, slots: Any) -> dict[str, float]:
    names = ("missing", "out_of_range", "unseen", "type_errors")
    return {q: float(vector[slots.quality(q)]) for q in names}


# --- numeric bins ----------------------------------------------------------------------------


def test_a_value_on_an_edge_goes_to_the_bin_on_its_right() -> None:
    vector = encoded_numeric([1.0, 2.0, 6.0, 0.999, 5.999])
    assert vector[X.counts].tolist() == [1, 1, 1, 0, 0, 1, 1]
    assert X.coarse_counts(vector).tolist() == [2, 1, 1, 1]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-2, 9, allow_nan=False), max_size=50))
def test_fine_and_coarse_counts_follow_the_bin_rule(values: list[float]) -> None:
    vector = encoded_numeric(values)
    fine = np.zeros(len(FINE) + 1)
    coarse = np.zeros(len(COARSE) + 1)
    for v in values:
        fine[bin_by_comparison(v, FINE)] += 1
        coarse[bin_by_comparison(v, COARSE)] += 1
    np.testing.assert_array_equal(vector[X.counts], fine)
    np.testing.assert_array_equal(X.coarse_counts(vector), coarse)


@st.composite
def nested_edges(draw: st.DrawFn) -> tuple[list[float], list[float]]:
    fine = sorted(
        set(draw(st.lists(st.floats(-100, 100, allow_nan=False), min_size=1, max_size=20)))
    )
    coarse = sorted(set(draw(st.lists(st.sampled_from(fine), max_size=len(fine)))))
    return fine, coarse


@settings(max_examples=50, deadline=None)
@given(nested_edges(), st.lists(st.floats(-150, 150, allow_nan=False), max_size=60))
def test_coarse_counts_derived_from_fine_equal_direct_coarse_binning(
    edges: tuple[list[float], list[float]], values: list[float]
) -> None:
    fine, coarse = edges
    column = ColumnProfile(
        "v",
        "feature",
        "numeric",
        count=1,
        missing=0,
        min=-100,
        max=100,
        std=1.0,
        fine_edges=fine,
        fine_ratios=[1.0 / (len(fine) + 1)] * (len(fine) + 1),
        fine_means=[0.0] * (len(fine) + 1),
        coarse_edges=coarse,
        coarse_ratios=[1.0 / (len(coarse) + 1)] * (len(coarse) + 1),
    )
    layout = Layout(Profile("regression", 1, [column]))
    slots = layout.columns[0]
    vector = layout.zeros()
    encode_numeric(slots, np.asarray(values, dtype=np.float64), 0, vector)
    direct = np.zeros(len(coarse) + 1)
    for v in values:
        direct[bin_by_comparison(v, coarse)] += 1
    np.testing.assert_array_equal(slots.coarse_counts(vector), direct)


# --- the block encoder: all numeric features of a batch at once -------------------------


def edge_column(name: str, fine: list[float]) -> ColumnProfile:
    lo, hi = (fine[0], fine[-1]) if fine else (0.0, 1.0)
    return ColumnProfile(
        name,
        "feature",
        "numeric",
        count=1,
        missing=0,
        min=lo,
        max=hi,
        std=1.0,
        fine_edges=fine,
        fine_ratios=[1.0 / (len(fine) + 1)] * (len(fine) + 1),
        fine_means=[0.0] * (len(fine) + 1),
        coarse_edges=fine[:1],
        coarse_ratios=[0.5, 0.5] if fine else [1.0],
    )


#: Edge sets of every shape the grid must cope with: evenly spread, crowded into a
#: sliver of a wide span (heavy tails), a single edge, huge and tiny magnitudes.
edge_sets = st.one_of(
    st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=40),
    st.lists(st.floats(0, 1e-3), min_size=2, max_size=40).map(lambda e: [*e, 1e9]),
    st.lists(st.floats(-1e300, 1e300, allow_nan=False), min_size=1, max_size=10),
    st.lists(st.floats(1.0, 1.0 + 1e-12), min_size=1, max_size=10),
).map(lambda e: sorted(set(e)))


@settings(max_examples=150, deadline=None)
@given(st.lists(edge_sets, min_size=1, max_size=4), st.data())
def test_the_block_encoder_gives_what_each_column_gives_alone(
    edges: list[list[float]], data: st.DataObject
) -> None:
    layout = Layout(
        Profile("regression", 1, [edge_column(f"c{i}", e) for i, e in enumerate(edges)])
    )
    n = data.draw(st.integers(1, 30))
    rows = []
    for fine in edges:
        # Values on the edges, next to them and anywhere between the extremes.
        near = st.sampled_from(fine).map(
            lambda e: data.draw(
                st.sampled_from([e, np.nextafter(e, -np.inf), np.nextafter(e, np.inf)])
            )
        )
        anywhere = st.floats(-1e308, 1e308, allow_nan=False)
        rows.append(data.draw(st.lists(st.one_of(near, anywhere), min_size=n, max_size=n)))
    values = np.array(rows, dtype=np.float64)
    block = NumericBlock(layout.columns)
    together = layout.zeros()
    assert encode_block(block, values, together)
    alone = layout.zeros()
    for slots, column in zip(layout.columns, values, strict=True):
        encode_numeric(slots, column, 0, alone)
    np.testing.assert_array_equal(together, alone)
    for slots, column, fine in zip(layout.columns, values, edges, strict=True):
        expected = np.zeros(len(fine) + 1)
        for v in column:
            expected[bin_by_comparison(v, fine)] += 1
        np.testing.assert_array_equal(together[slots.counts], expected)


def test_the_block_encoder_leaves_missing_and_infinite_values_to_the_columns() -> None:
    layout = Layout(Profile("regression", 1, [edge_column("a", FINE), edge_column("b", FINE)]))
    block = NumericBlock(layout.columns)
    for bad in (math.nan, math.inf):
        vector = layout.zeros()
        assert not encode_block(block, np.array([[1.0, 2.0], [3.0, bad]]), vector)
        assert not vector.any()


def test_the_grid_bins_a_real_heavy_tailed_column_as_searchsorted_does() -> None:
    """Income-like data: edges crowd at the low end of a span a thousand times wider."""
    rng = np.random.default_rng(5)
    reference = np.sort(rng.lognormal(10, 1.5, 20_000))
    fine = sorted(set(np.quantile(reference, np.linspace(0.01, 0.99, 99)).tolist()))
    layout = Layout(Profile("regression", 1, [edge_column("income", fine)]))
    block = NumericBlock(layout.columns)
    values = rng.lognormal(10, 1.5, (1, 5000))
    np.testing.assert_array_equal(
        block.bin_indices(values)[0], np.searchsorted(fine, values[0], side="right")
    )


def test_nan_is_missing_and_not_binned() -> None:
    vector = encoded_numeric([math.nan, 3.0, math.nan])
    assert quality(vector, X)["missing"] == 2
    assert vector[X.counts].sum() == 1


def test_infinities_are_out_of_range_and_not_binned() -> None:
    vector = encoded_numeric([math.inf, -math.inf, 3.0])
    q = quality(vector, X)
    assert (q["out_of_range"], q["missing"]) == (2, 0)
    assert vector[X.counts].sum() == 1


def test_values_beyond_the_reference_min_and_max_are_out_of_range_and_binned() -> None:
    # reference min 0.5, max 6.5: the bounds themselves are in range
    vector = encoded_numeric([0.4, 0.5, 6.5, 6.6, 100.0, -3.0])
    assert quality(vector, X)["out_of_range"] == 4
    assert vector[X.counts].tolist() == [3, 0, 0, 0, 0, 0, 3]


def test_type_errors_are_not_also_missing() -> None:
    # the caller turns values of the wrong type into NaN and counts them
    vector = encoded_numeric([math.nan, math.nan, math.nan, 3.0], type_errors=2)
    q = quality(vector, X)
    assert (q["type_errors"], q["missing"]) == (2, 1)


def test_duplicate_edges_collapse(make_profile: Any) -> None:
    values = [0.0] * 60 + [1.0] * 30 + [2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0]
    profile = make_profile([{"v": v} for v in values], "dupes").profile
    col = profile.column("feature", "v")
    assert col is not None
    for edges in (col.fine_edges, col.coarse_edges):
        assert edges == sorted(set(edges)), "edges must be strictly increasing"
    assert set(col.coarse_edges) <= set(col.fine_edges)
    assert len(col.fine_ratios) == len(col.fine_edges) + 1
    assert col.bin_names() == [str(i) for i in range(len(col.coarse_edges) + 1)]
    expected = np.unique(np.quantile(values, np.arange(1, 10) / 10))
    np.testing.assert_allclose(col.coarse_edges, expected)
    assert sum(col.coarse_ratios) == pytest.approx(1.0)


# --- categorical bins --------------------------------------------------------------------


def encoded_categories(values: list[str | None], type_errors: int = 0) -> np.ndarray:
    vector = LAYOUT.zeros()
    encode_categorical(COLOR, values, type_errors, vector)
    return vector


def test_categories_count_into_their_bin_and_the_rest_into_other() -> None:
    vector = encoded_categories(["red", "red", "green", "blue", "purple", None])
    assert COLOR.column.bin_names() == ["red", "green", OTHER]
    assert COLOR.coarse_counts(vector).tolist() == [2, 1, 2]
    q = quality(vector, COLOR)
    assert q["missing"] == 1
    # blue is a known reference value outside the top categories: __other__, not unseen
    assert q["unseen"] == 1


def test_other_holds_the_share_beyond_the_top_categories(make_profile: Any) -> None:
    counts = {f"c{i:02d}": 60 - i for i in range(60)}
    rows = [{"cat": name} for name, n in counts.items() for _ in range(n)]
    profile = make_profile(rows, "many").profile
    col = profile.column("feature", "cat")
    assert col is not None
    total = sum(counts.values())
    assert list(col.categories) == [f"c{i:02d}" for i in range(50)]
    assert col.other_ratio == pytest.approx(sum(60 - i for i in range(50, 60)) / total)
    assert col.reference_ratios()[-1] == col.other_ratio
    assert col.bin_names()[-1] == OTHER


# --- whole records through ModelMonitor.encode -----------------------------------------------


def monitor() -> ModelMonitor:
    config = config_from_dict({"models": [{"name": "m", "reference": "hand.profile.json"}]})
    return ModelMonitor(config.models[0], PROFILE, clock=lambda: NOW)


def encode(records: list[dict[str, Any]]) -> np.ndarray:
    m = monitor()
    batch, result = parse_predictions(records, regression=False, default_version="v", now=NOW)
    assert result.rejected == 0
    return m.encode(batch)


QUALITY_RECORDS: list[dict[str, Any]] = [
    {"features": {"x": "hot", "color": "red"}},  # text in a numeric column
    {"features": {"x": "2.5", "color": {"nested": 1}}},  # numeric text; an object
    {"features": {"color": 1}},  # x absent; a number as a category
    {"features": {"x": None, "color": None}},
]


def test_numeric_data_quality_of_single_values() -> None:
    vector = encode(QUALITY_RECORDS)
    assert vector[EVENTS_SLOT] == 4
    qx = quality(vector, X)
    assert qx["type_errors"] == 1
    assert vector[X.counts].tolist() == [0, 0, 1, 0, 0, 0, 0]  # 2.5 in [2, 3)
    # missing means absent, null or NaN (the HELP of modelmon_column_missing_total);
    # "hot" is a type error, not also a missing value
    assert qx["missing"] == 2


def test_categorical_data_quality_of_single_values() -> None:
    vector = encode(QUALITY_RECORDS)
    qc = quality(vector, COLOR)
    assert qc["type_errors"] == 1
    assert qc["unseen"] == 1  # 1 -> "1", never seen in the reference
    assert COLOR.coarse_counts(vector).tolist() == [1, 0, 1]
    assert qc["missing"] == 1  # the null; the object is a type error, not also missing


def test_class_like_values_are_one_category() -> None:
    column = ColumnProfile(
        "code",
        "feature",
        "categorical",
        count=10,
        missing=0,
        categories={"1": 0.5, "2": 0.5},
        known_values=["1", "2"],
    )
    layout = Layout(Profile("binary_classification", 10, [column]))
    slots = layout.columns[0]
    config = config_from_dict({"models": [{"name": "m", "reference": "p.json"}]})
    m = ModelMonitor(config.models[0], Profile("binary_classification", 10, [column]))
    batch, _ = parse_predictions(
        [{"features": {"code": v}} for v in (1, "1", 1.0, 2, True)],
        regression=False,
        default_version="v",
        now=NOW,
    )
    vector = m.encode(batch)
    assert slots.coarse_counts(vector).tolist() == [3, 1, 1]


values_strategy = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-10, 10),
    st.sampled_from(["red", "green", "blue", "teal", "3.5", "hot"]),
)
record_strategy = st.fixed_dictionaries(
    {"features": st.dictionaries(st.sampled_from(["x", "color", "extra"]), values_strategy)}
)


@settings(max_examples=50, deadline=None)
@given(st.lists(record_strategy, max_size=20), st.lists(record_strategy, max_size=20))
def test_vectors_of_two_batches_add_up_to_the_vector_of_both(
    first: list[dict[str, Any]], second: list[dict[str, Any]]
) -> None:
    together = encode(first + second)
    np.testing.assert_allclose(encode(first) + encode(second), together, atol=1e-6, rtol=1e-12)


def test_layout_of_a_saved_and_loaded_profile_is_the_same(tmp_path: Path) -> None:
    from modelmon.profile import load_profile

    path = tmp_path / "hand.profile.json"
    PROFILE.save(path)
    loaded = Layout(load_profile(path))
    assert loaded.size == LAYOUT.size
    assert [s.counts for s in loaded.columns] == [s.counts for s in LAYOUT.columns]
