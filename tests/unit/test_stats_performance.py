"""Performance statistics against scikit-learn on real data sets, and additivity.

Oracles: sklearn.metrics on the same rows; numpy for the multiclass Brier score. Every
comparison is also made after encoding the data in parts and summing the vectors (what
a sliding window does) and after subtracting one part (a bucket leaving the window).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelmon.stats.performance import (
    OTHER_CLASS,
    ClassificationPerformance,
    RegressionPerformance,
    binned_roc_auc,
)

EXACT = {"rel": 1e-9, "abs": 1e-12}


def _fit_classifier(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and probabilities of a logistic regression fitted on every other row,
    so the rows it was not fitted on give it realistic errors."""
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(x[::2], y[::2])
    return model.predict(x), model.predict_proba(x)


@pytest.fixture(scope="module")
def binary_data() -> tuple[list[str], list[str], np.ndarray]:
    x, y = load_breast_cancer(return_X_y=True)
    pred, proba = _fit_classifier(x[:, :5], y)  # five features: an imperfect model
    return [str(v) for v in y], [str(v) for v in pred], proba[:, 1]


@pytest.fixture(scope="module", params=["wine", "iris"])
def multiclass_data(
    request: pytest.FixtureRequest,
) -> tuple[list[str], list[str], np.ndarray, list[str]]:
    loader = load_wine if request.param == "wine" else load_iris
    data = loader()
    x = data.data[:, :2]  # two features: classes overlap, the model errs
    pred, proba = _fit_classifier(x, data.target)
    names = [str(n) for n in data.target_names]
    return (
        [names[i] for i in data.target],
        [names[i] for i in pred],
        proba,
        names,
    )


def _parts(n: int, k: int, seed: int = 0) -> list[np.ndarray]:
    """Split range(n) into k consecutive parts of random sizes."""
    cuts = np.sort(np.random.default_rng(seed).choice(np.arange(1, n), k - 1, replace=False))
    return np.split(np.arange(n), cuts)


def _take(values: Sequence[str], idx: np.ndarray) -> list[str]:
    return [values[i] for i in idx]


def _check_binary(perf: ClassificationPerformance, vector: np.ndarray, a, p, s) -> None:
    r = perf.metrics(vector)
    y = np.array([v == "1" for v in a])
    assert r.n == len(a)
    assert r.accuracy == pytest.approx(skm.accuracy_score(a, p), **EXACT)
    prec, rec, f1, _ = skm.precision_recall_fscore_support(
        a, p, labels=["0", "1"], average=None, zero_division=0
    )
    assert r.precision == pytest.approx(dict(zip(["0", "1"], prec, strict=True)), **EXACT)
    assert r.recall == pytest.approx(dict(zip(["0", "1"], rec, strict=True)), **EXACT)
    assert r.f1 == pytest.approx(dict(zip(["0", "1"], f1, strict=True)), **EXACT)
    assert r.roc_auc == pytest.approx(skm.roc_auc_score(y, s), abs=0.01)
    assert r.log_loss == pytest.approx(skm.log_loss(y, s), **EXACT)
    assert r.brier_score == pytest.approx(skm.brier_score_loss(y, s), **EXACT)


def test_binary_matches_sklearn(binary_data) -> None:
    a, p, s = binary_data
    perf = ClassificationPerformance(["0", "1"], positive_class="1")
    _check_binary(perf, perf.encode(a, p, s), a, p, s)


def test_binary_sum_of_parts_and_window_removal(binary_data) -> None:
    a, p, s = binary_data
    perf = ClassificationPerformance(["0", "1"], positive_class="1")
    parts = _parts(len(a), 5)
    vectors = [perf.encode(_take(a, i), _take(p, i), s[i]) for i in parts]
    total = np.sum(vectors, axis=0)
    np.testing.assert_allclose(total, perf.encode(a, p, s), rtol=1e-12)
    _check_binary(perf, total, a, p, s)
    rest = np.concatenate(parts[1:])
    _check_binary(perf, total - vectors[0], _take(a, rest), _take(p, rest), s[rest])


def test_binary_confusion_matches_sklearn(binary_data) -> None:
    a, p, s = binary_data
    perf = ClassificationPerformance(["0", "1"], positive_class="1")
    expected = skm.confusion_matrix(a, p, labels=["0", "1", OTHER_CLASS])
    np.testing.assert_array_equal(perf.confusion(perf.encode(a, p, s)), expected)


def _check_multiclass(perf, vector, a, p, proba, names) -> None:
    r = perf.metrics(vector)
    assert r.n == len(a)
    assert r.accuracy == pytest.approx(skm.accuracy_score(a, p), **EXACT)
    prec, rec, f1, _ = skm.precision_recall_fscore_support(
        a, p, labels=names, average=None, zero_division=0
    )
    assert r.precision == pytest.approx(dict(zip(names, prec, strict=True)), **EXACT)
    assert r.recall == pytest.approx(dict(zip(names, rec, strict=True)), **EXACT)
    assert r.f1 == pytest.approx(dict(zip(names, f1, strict=True)), **EXACT)
    assert r.roc_auc is None
    # sklearn orders probability columns by sorted label; target_names are sorted here.
    assert names == sorted(names)
    assert r.log_loss == pytest.approx(skm.log_loss(a, proba, labels=names), **EXACT)
    onehot = (np.array(a)[:, None] == np.array(names)[None, :]).astype(float)
    brier = np.mean(np.sum((proba - onehot) ** 2, axis=1))
    assert r.brier_score == pytest.approx(brier, **EXACT)


def test_multiclass_matches_sklearn(multiclass_data) -> None:
    a, p, proba, names = multiclass_data
    perf = ClassificationPerformance(names)
    assert 0.5 < skm.accuracy_score(a, p) < 0.95  # the model errs: the test has teeth
    _check_multiclass(perf, perf.encode(a, p, proba), a, p, proba, names)


def test_multiclass_sum_of_parts_and_window_removal(multiclass_data) -> None:
    a, p, proba, names = multiclass_data
    perf = ClassificationPerformance(names)
    parts = _parts(len(a), 4, seed=1)
    vectors = [perf.encode(_take(a, i), _take(p, i), proba[i]) for i in parts]
    total = np.sum(vectors, axis=0)
    _check_multiclass(perf, total, a, p, proba, names)
    rest = np.concatenate(parts[:-1])
    _check_multiclass(perf, total - vectors[-1], _take(a, rest), _take(p, rest), proba[rest], names)


def test_unknown_classes_count_as_other() -> None:
    perf = ClassificationPerformance(["cat", "dog"])
    a = ["cat", "dog", "emu", "cat", "yak"]
    p = ["cat", "cat", "dog", "emu", "emu"]
    r = perf.metrics(perf.encode(a, p))
    mapped_a = [v if v in ("cat", "dog") else OTHER_CLASS for v in a]
    mapped_p = [v if v in ("cat", "dog") else OTHER_CLASS for v in p]
    labels = ["cat", "dog", OTHER_CLASS]
    prec, rec, f1, _ = skm.precision_recall_fscore_support(
        mapped_a, mapped_p, labels=labels, average=None, zero_division=0
    )
    assert r.precision == pytest.approx(dict(zip(labels, prec, strict=True)))
    assert r.recall == pytest.approx(dict(zip(labels, rec, strict=True)))
    assert r.f1 == pytest.approx(dict(zip(labels, f1, strict=True)))
    assert r.accuracy == pytest.approx(skm.accuracy_score(mapped_a, mapped_p))
    # __other__ is reported only when it occurs:
    assert OTHER_CLASS not in perf.metrics(perf.encode(["cat"], ["dog"])).precision


def test_multiclass_scores_of_an_unknown_actual_class_count_as_zero() -> None:
    perf = ClassificationPerformance(["a", "b"])
    proba = np.array([[0.7, 0.3], [0.2, 0.8]])
    r = perf.metrics(perf.encode(["a", "zzz"], ["a", "b"], proba))
    eps = np.finfo(float).eps
    assert r.log_loss == pytest.approx((-np.log(0.7) - np.log(eps)) / 2)
    assert r.brier_score == pytest.approx(((0.09 + 0.09) + (0.04 + 0.64 + 1.0)) / 2)


def test_nan_scores_are_absent(binary_data) -> None:
    a, p, s = binary_data
    s = s.copy()
    s[::3] = np.nan
    keep = ~np.isnan(s)
    perf = ClassificationPerformance(["0", "1"], positive_class="1")
    r = perf.metrics(perf.encode(a, p, s))
    y = np.array([v == "1" for v in a])
    assert r.n == len(a)
    assert r.scored == int(keep.sum())
    assert r.accuracy == pytest.approx(skm.accuracy_score(a, p))
    assert r.log_loss == pytest.approx(skm.log_loss(y[keep], s[keep]), **EXACT)
    assert r.brier_score == pytest.approx(skm.brier_score_loss(y[keep], s[keep]), **EXACT)
    assert r.roc_auc == pytest.approx(skm.roc_auc_score(y[keep], s[keep]), abs=0.01)


def test_log_loss_clips_certain_wrong_scores_like_sklearn() -> None:
    perf = ClassificationPerformance(["0", "1"], positive_class="1")
    s = np.array([0.0, 1.0, 1.0, 0.5])
    a = ["1", "0", "1", "0"]
    r = perf.metrics(perf.encode(a, ["0", "1", "1", "1"], s))
    y = np.array([v == "1" for v in a])
    assert r.log_loss == pytest.approx(skm.log_loss(y, s), **EXACT)


def test_undefined_statistics_are_none() -> None:
    perf = ClassificationPerformance(["0", "1"], positive_class="1")
    empty = perf.metrics(perf.zeros())
    assert (empty.n, empty.accuracy, empty.precision, empty.roc_auc) == (0, None, {}, None)
    one_class = perf.metrics(perf.encode(["1", "1"], ["1", "0"], np.array([0.9, 0.2])))
    assert one_class.roc_auc is None
    assert one_class.accuracy == 0.5
    unscored = perf.metrics(perf.encode(["1", "0"], ["1", "0"]))
    assert (unscored.log_loss, unscored.brier_score, unscored.roc_auc) == (None, None, None)


def test_invalid_input_names_the_argument() -> None:
    perf = ClassificationPerformance(["a", "b", "c"])
    with pytest.raises(ValueError, match="predicted"):
        perf.encode(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="scores"):
        perf.encode(["a"], ["a"], np.ones((1, 5)))
    with pytest.raises(ValueError, match="positive_class"):
        ClassificationPerformance(["a", "b"], positive_class="c")
    with pytest.raises(ValueError, match="vector"):
        perf.metrics(np.zeros(3))


@settings(max_examples=60, deadline=None)
@given(
    a=st.lists(st.sampled_from(["0", "1", "x"]), min_size=1, max_size=40),
    data=st.data(),
)
def test_binned_auc_equals_exact_auc_when_scores_are_bin_centres(a, data) -> None:
    """With every score at a bin centre, bins do not merge distinct scores: the binned
    AUC must equal sklearn's exact AUC (both count ties as half)."""
    bins = 20
    k = data.draw(st.lists(st.integers(0, bins - 1), min_size=len(a), max_size=len(a)))
    s = (np.array(k) + 0.5) / bins
    y = np.array([v == "1" for v in a])
    perf = ClassificationPerformance(["0", "1"], positive_class="1", score_bins=bins)
    r = perf.metrics(perf.encode(a, a, s))
    if y.all() or not y.any():
        assert r.roc_auc is None
    else:
        assert r.roc_auc == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


def test_binned_roc_auc_hand_computed() -> None:
    # positives in bins 1, 2; negatives in bins 0, 1: pairs (1>0), (1=1: half), (2>0),
    # (2>1) -> 3.5 of 4.
    assert binned_roc_auc([0, 1, 1], [1, 1, 0]) == pytest.approx(3.5 / 4)


classes_st = st.lists(st.sampled_from(["a", "b", "c", "zz"]), min_size=0, max_size=30)


@settings(max_examples=60, deadline=None)
@given(a1=classes_st, a2=classes_st, data=st.data())
def test_binary_encoding_is_additive(a1, a2, data) -> None:
    perf = ClassificationPerformance(["a", "b", "c"], positive_class="b", score_bins=50)
    prob = st.one_of(st.floats(0, 1), st.just(float("nan")))

    def batch(actual: list[str]) -> tuple[list[str], list[str], np.ndarray]:
        n = len(actual)
        pred = data.draw(st.lists(st.sampled_from(["a", "b", "zz"]), min_size=n, max_size=n))
        s = data.draw(st.lists(prob, min_size=n, max_size=n))
        return actual, pred, np.array(s, dtype=float)

    b1, b2 = batch(a1), batch(a2)
    joined = perf.encode(b1[0] + b2[0], b1[1] + b2[1], np.concatenate([b1[2], b2[2]]))
    np.testing.assert_allclose(joined, perf.encode(*b1) + perf.encode(*b2), rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(a1=classes_st, a2=classes_st, data=st.data())
def test_multiclass_encoding_is_additive(a1, a2, data) -> None:
    perf = ClassificationPerformance(["a", "b", "c"])

    def batch(actual: list[str]) -> tuple[list[str], list[str], np.ndarray]:
        n = len(actual)
        pred = data.draw(st.lists(st.sampled_from(["a", "c", "zz"]), min_size=n, max_size=n))
        raw = data.draw(st.lists(st.floats(0.01, 1), min_size=3 * n, max_size=3 * n))
        proba = np.array(raw, dtype=float).reshape(n, 3)
        return actual, pred, proba / proba.sum(axis=1, keepdims=True)

    b1, b2 = batch(a1), batch(a2)
    joined = perf.encode(b1[0] + b2[0], b1[1] + b2[1], np.vstack([b1[2], b2[2]]))
    np.testing.assert_allclose(joined, perf.encode(*b1) + perf.encode(*b2), rtol=1e-12)


# --- regression ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def regression_data() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_diabetes(return_X_y=True)
    model = LinearRegression().fit(x[::2], y[::2])
    return y, model.predict(x)


def _check_regression(reg: RegressionPerformance, vector, y, y_hat) -> None:
    r = reg.metrics(vector)
    assert r.n == y.size
    assert r.mae == pytest.approx(skm.mean_absolute_error(y, y_hat), **EXACT)
    assert r.rmse == pytest.approx(np.sqrt(skm.mean_squared_error(y, y_hat)), **EXACT)
    assert r.mape == pytest.approx(skm.mean_absolute_percentage_error(y, y_hat), **EXACT)


def test_regression_matches_sklearn(regression_data) -> None:
    y, y_hat = regression_data
    reg = RegressionPerformance()
    _check_regression(reg, reg.encode(y, y_hat), y, y_hat)


def test_regression_sum_of_parts_and_window_removal(regression_data) -> None:
    y, y_hat = regression_data
    reg = RegressionPerformance()
    parts = _parts(y.size, 6, seed=2)
    vectors = [reg.encode(y[i], y_hat[i]) for i in parts]
    total = np.sum(vectors, axis=0)
    _check_regression(reg, total, y, y_hat)
    rest = np.concatenate(parts[:2] + parts[3:])
    _check_regression(reg, total - vectors[2], y[rest], y_hat[rest])


def test_mape_leaves_out_zero_actuals() -> None:
    y = np.array([0.0, 2.0, -4.0, 0.0])
    y_hat = np.array([1.0, 1.0, -3.0, 0.0])
    reg = RegressionPerformance()
    r = reg.metrics(reg.encode(y, y_hat))
    nz = y != 0
    assert r.mape == pytest.approx(skm.mean_absolute_percentage_error(y[nz], y_hat[nz]))
    assert r.mae == pytest.approx(skm.mean_absolute_error(y, y_hat))
    only_zero = reg.metrics(reg.encode(np.zeros(2), np.ones(2)))
    assert (only_zero.mae, only_zero.mape) == (1.0, None)


def test_regression_rejects_non_finite_values() -> None:
    reg = RegressionPerformance()
    with pytest.raises(ValueError, match=r"predicted: expected finite numbers, rows \[1\]"):
        reg.encode(np.array([1.0, 2.0]), np.array([1.0, np.inf]))
    assert reg.metrics(reg.zeros()).n == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)), min_size=0, max_size=30),
    st.lists(st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)), min_size=0, max_size=30),
)
def test_regression_encoding_is_additive(rows1, rows2) -> None:
    reg = RegressionPerformance()

    def enc(rows: list[tuple[float, float]]) -> np.ndarray:
        arr = np.array(rows, dtype=float).reshape(-1, 2)
        return reg.encode(arr[:, 0], arr[:, 1])

    np.testing.assert_allclose(enc(rows1 + rows2), enc(rows1) + enc(rows2), rtol=1e-9, atol=1e-6)
