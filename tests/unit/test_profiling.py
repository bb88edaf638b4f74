"""Reference profiles (``modelmon profile``): edges, roles, tasks, classes, input errors,
and the quantile sketch behind them. Expected values come from numpy on the same data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer

from modelmon.profiling.builder import Roles, build_profile
from modelmon.profiling.quantiles import QuantileSketch
from modelmon.profiling.readers import DataError


def build(paths: list[Path], **kwargs: Any) -> Any:
    task = kwargs.pop("task", None)
    return build_profile(
        [str(p) for p in paths], Roles(**kwargs), task=task, progress=lambda _m: None
    )


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


# --- numeric columns: edges and shares are numpy's quantiles -----------------------------


@pytest.mark.parametrize("feature", ["mean radius", "worst concavity", "mean fractal dimension"])
def test_exact_edges_shares_and_moments_equal_numpy(make_profile: Any, feature: str) -> None:
    data = load_breast_cancer()
    values = data.data[:, list(data.feature_names).index(feature)]
    profile = make_profile([{"v": float(v)} for v in values], "cancer").profile
    col = profile.column("feature", "v")
    assert col is not None
    assert profile.quantiles == "exact"
    fine = np.unique(np.quantile(values, np.arange(1, 100) / 100))
    coarse = np.unique(np.quantile(values, np.arange(1, 10) / 10))
    np.testing.assert_allclose(col.fine_edges, fine, rtol=1e-12)
    np.testing.assert_allclose(col.coarse_edges, coarse, rtol=1e-12)
    fine_counts = np.bincount(np.searchsorted(fine, values, side="right"), minlength=fine.size + 1)
    np.testing.assert_allclose(col.fine_ratios, fine_counts / values.size, atol=1e-12)
    assert (col.min, col.max) == (values.min(), values.max())
    assert col.mean == pytest.approx(values.mean(), rel=1e-12)
    assert col.std == pytest.approx(values.std(), rel=1e-2)  # population or sample std
    assert (col.count, col.missing) == (values.size, 0)


def test_missing_values_are_counted_and_left_out_of_the_bins(make_profile: Any) -> None:
    rows = [{"v": "" if i % 4 == 0 else float(i)} for i in range(200)]
    col = make_profile(rows, "gaps").profile.column("feature", "v")
    present = np.array([float(i) for i in range(200) if i % 4])
    assert (col.count, col.missing) == (200, 50)
    np.testing.assert_allclose(
        col.coarse_edges, np.quantile(present, np.arange(1, 10) / 10), rtol=1e-12
    )


# --- roles, tasks and classes ---------------------------------------------------------------


def credit_rows(n: int = 60) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    return [
        {
            "req": f"r{i}",
            "age": int(rng.integers(20, 70)),
            "zip": int(rng.integers(10000, 10100)),
            "internal": float(rng.random()),
            "pred": i % 2,
            "proba": round(float(rng.random()), 3),
            "truth": (i // 2) % 2,
        }
        for i in range(n)
    ]


def test_role_options_assign_every_column(make_profile: Any) -> None:
    built = make_profile(
        credit_rows(),
        "roles",
        prediction="pred",
        score="proba",
        label="truth",
        id="req",
        categorical={"zip"},
        exclude={"internal"},
    )
    by_name = {(c.role, c.name): c for c in built.profile.columns}
    assert set(by_name) == {
        ("feature", "age"),
        ("feature", "zip"),
        ("prediction", "prediction"),
        ("score", "score"),
        ("label", "label"),
    }
    assert by_name[("feature", "zip")].type == "categorical"
    assert by_name[("feature", "age")].type == "numeric"
    assert by_name[("prediction", "prediction")].source == "pred"
    assert by_name[("score", "score")].source == "proba"
    assert by_name[("label", "label")].source == "truth"
    assert built.profile.id_column == "req"


def test_binary_task_classes_and_positive_class_are_inferred(make_profile: Any) -> None:
    profile = make_profile(credit_rows(), "binary", prediction="pred", score="proba").profile
    assert profile.task == "binary_classification"
    assert profile.classes == ["0", "1"]
    assert profile.positive_class == "1"


def test_three_classes_make_a_multiclass_task(make_profile: Any) -> None:
    rows = [{"x": float(i), "pred": ["a", "b", "c"][i % 3]} for i in range(30)]
    profile = make_profile(rows, "three", prediction="pred").profile
    assert profile.task == "multiclass_classification"
    assert profile.classes == ["a", "b", "c"]


def test_a_continuous_prediction_makes_a_regression_task(make_profile: Any) -> None:
    rows = [{"x": float(i), "pred": i * 1.37} for i in range(50)]
    profile = make_profile(rows, "reg", prediction="pred").profile
    assert profile.task == "regression"
    assert profile.classes == []
    prediction = profile.column("prediction", "prediction")
    assert prediction is not None
    assert prediction.type == "numeric"


def test_task_option_overrides_inference(make_profile: Any) -> None:
    rows = [{"x": float(i), "pred": i % 2} for i in range(30)]
    profile = make_profile(rows, "forced", prediction="pred", task="regression").profile
    assert profile.task == "regression"


@pytest.mark.parametrize(
    ("classes", "columns"),
    [
        (["bird", "fish", "mouse"], ["proba_bird", "proba_fish", "proba_mouse"]),
        # the classes share their first letter: the class names are still the classes
        (["camel", "cat", "cow"], ["score_camel", "score_cat", "score_cow"]),
    ],
)
def test_multiclass_score_columns_are_named_by_class(
    make_profile: Any, classes: list[str], columns: list[str]
) -> None:
    rng = np.random.default_rng(1)
    rows = []
    for i in range(60):
        p = rng.dirichlet(np.ones(3))
        row: dict[str, Any] = {"x": float(i), "pred": classes[int(np.argmax(p))]}
        row.update({c: round(float(v), 4) for c, v in zip(columns, p, strict=True)})
        rows.append(row)
    profile = make_profile(rows, "multi", prediction="pred", scores=columns).profile
    assert profile.task == "multiclass_classification"
    assert profile.classes == classes
    scores = {c.name: c.source for c in profile.role_columns("score")}
    assert scores == dict(zip(classes, columns, strict=True))


@pytest.mark.parametrize("ones", [["1", "0"], ["1.0", "0.0"]])
def test_csv_class_text_one_and_one_point_zero_are_class_1(
    make_profile: Any, ones: list[str]
) -> None:
    rows = [{"x": float(i), "pred": ones[i % 2], "y": ones[(i // 2) % 2]} for i in range(40)]
    profile = make_profile(rows, "ones", prediction="pred", label="y").profile
    assert profile.classes == ["0", "1"]
    assert profile.positive_class == "1"


def test_jsonl_class_values_one_string_one_and_float_one_are_one_class(tmp_path: Path) -> None:
    values = [1, "1", 1.0, 0, "0", 0.0]
    records = [
        {"features": {"x": float(i)}, "prediction": values[i % 6], "label": values[(i + 1) % 6]}
        for i in range(60)
    ]
    profile = build(
        [write_jsonl(tmp_path / "ones.jsonl", records)], prediction="prediction", label="label"
    )
    assert profile.classes == ["0", "1"]
    prediction = profile.column("prediction", "prediction")
    assert prediction is not None
    assert prediction.categories == {"0": 0.5, "1": 0.5}


def test_jsonl_and_csv_give_the_same_profile(make_profile: Any, tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    rows = [
        {
            "age": int(rng.integers(18, 90)),
            "income": round(float(rng.lognormal(10, 0.5)), 2),
            "country": str(rng.choice(["DE", "FR", "PL"])),
            "pred": int(rng.integers(2)),
            "proba": round(float(rng.random()), 4),
        }
        for _ in range(150)
    ]
    rows[5]["income"] = None
    csv_rows = [{k: "" if v is None else v for k, v in r.items()} for r in rows]
    from_csv = make_profile(csv_rows, "same", prediction="pred", score="proba").profile
    from_jsonl = build(
        [write_jsonl(tmp_path / "same.jsonl", rows)], prediction="pred", score="proba"
    )
    a, b = from_csv.to_dict(), from_jsonl.to_dict()
    for key in ("created", "sources"):
        a.pop(key), b.pop(key)
    assert a == b


def test_several_files_make_one_profile(tmp_path: Path) -> None:
    first = write_jsonl(tmp_path / "a.jsonl", [{"x": float(i)} for i in range(100)])
    second = write_jsonl(tmp_path / "b.jsonl", [{"x": float(i)} for i in range(100, 300)])
    profile = build([first, second])
    col = profile.column("feature", "x")
    assert profile.rows == 300
    np.testing.assert_allclose(
        col.coarse_edges, np.quantile(np.arange(300.0), np.arange(1, 10) / 10)
    )


# --- input errors name the file, the line and the column ------------------------------------


def test_csv_row_with_a_wrong_field_count(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text("a,b,c\n1,2,3\n4,5\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"short\.csv: line 3: expected 3 fields"):
        build([path])


def test_non_numeric_score(tmp_path: Path) -> None:
    path = tmp_path / "scores.csv"
    path.write_text("x,pred,proba\n1,0,0.2\n2,1,0.9\n3,1,high\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"scores\.csv: line 4, column 'proba': expected a number"):
        build([path], prediction="pred", score="proba")


@pytest.mark.parametrize(
    ("option", "roles"),
    [
        ("--prediction", {"prediction": "pred"}),
        ("--score", {"score": "pred"}),
        ("--label", {"label": "pred"}),
        ("--id", {"id": "pred"}),
        ("--scores", {"scores": ["p_a", "p_b"]}),
    ],
)
def test_a_role_column_that_is_not_in_the_file(
    tmp_path: Path, option: str, roles: dict[str, Any]
) -> None:
    path = tmp_path / "cols.csv"
    path.write_text("x,y\n1,2\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"cols\.csv: column '\w+' \(from {option}\) not found"):
        build([path], **roles)


def test_invalid_jsonl_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text('{"x": 1}\n{"x": 2}\n\n{"x": 3,\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"broken\.jsonl: line 4: not valid JSON"):
        build([path])


def test_jsonl_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "array.jsonl"
    path.write_text('{"x": 1}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"array\.jsonl: line 2: expected a JSON object"):
        build([path])


def test_missing_file_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nowhere\.csv"):
        build([tmp_path / "nowhere.csv"])
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match=r"empty\.csv: line 1"):
        build([empty])


def test_unknown_task_names_the_option(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", [{"x": 1.0}])
    with pytest.raises(ValueError, match=r"--task: 'ranking' is not one of"):
        build([path], task="ranking")


# --- the quantile sketch ---------------------------------------------------------------------

QS = np.linspace(0.0, 1.0, 41)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=30),
        min_size=1,
        max_size=6,
    )
)
def test_exact_sketch_equals_numpy_quantile(chunks: list[list[float]]) -> None:
    sketch = QuantileSketch()
    for chunk in chunks:
        sketch.update(np.asarray(chunk))
    values = np.concatenate([np.asarray(c) for c in chunks])
    assert sketch.exact
    np.testing.assert_allclose(sketch.quantiles(QS), np.quantile(values, QS), rtol=1e-12)


def rank_error(values: np.ndarray, estimates: np.ndarray, qs: np.ndarray) -> float:
    """How far (in rank share) each estimate is from its target rank; ties count as any
    rank they span."""
    ordered = np.sort(values)
    below = np.searchsorted(ordered, estimates, side="left") / ordered.size
    upto = np.searchsorted(ordered, estimates, side="right") / ordered.size
    return float(np.max(np.maximum(0.0, np.maximum(below - qs, qs - upto))))


@settings(max_examples=50, deadline=None)
@given(
    st.integers(min_value=0, max_value=2**32 - 1),
    st.integers(min_value=1, max_value=8),
    st.integers(min_value=20, max_value=200),
)
def test_approximate_sketch_stays_within_its_rank_error(seed: int, chunks: int, size: int) -> None:
    """The docstring's bound is about one group (1/summary_size of the rank) per
    compression; a compression happens at most once per update and once at reading."""
    rng = np.random.default_rng(seed)
    sketch = QuantileSketch(exact_limit=100, summary_size=size)
    sizes = [int(rng.integers(101, 400)), *rng.integers(1, 400, chunks - 1)]
    parts = [rng.normal(rng.normal(), rng.uniform(0.5, 5), n) for n in sizes]
    for part in parts:
        sketch.update(part)
    values = np.concatenate(parts)
    estimates = sketch.quantiles(QS)
    assert not sketch.exact
    compressions = chunks + 1
    interpolation = 1 / values.size  # between two neighbouring values, as numpy's quantile
    assert rank_error(values, estimates, QS) <= 2 * compressions / size + interpolation


def test_approximate_sketch_of_a_large_stream_is_close() -> None:
    rng = np.random.default_rng(5)
    parts = [rng.lognormal(3, 1, 10_000) for _ in range(20)]
    sketch = QuantileSketch(exact_limit=10_000, summary_size=1_000)
    for part in parts:
        sketch.update(part)
    assert not sketch.exact
    qs = np.arange(1, 100) / 100
    assert rank_error(np.concatenate(parts), sketch.quantiles(qs), qs) <= 1 / 1_000


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=40),
    st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=40),
)
def test_merging_exact_sketches_equals_sketching_both(a: list[float], b: list[float]) -> None:
    left, right = QuantileSketch(), QuantileSketch()
    left.update(np.asarray(a))
    right.update(np.asarray(b))
    left.merge(right)
    np.testing.assert_allclose(left.quantiles(QS), np.quantile(a + b, QS), rtol=1e-12)
