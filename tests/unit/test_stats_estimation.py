"""Estimated performance: calibration, covariate shift, concept drift, baselines.

The synthetic streams have a known P(y | x) (logistic / softmax in x), so two oracles
exist: the realized accuracy of the window (sampling noise included) and the expected
accuracy mean(P(prediction correct | x)) that the estimate targets. The model's scores
are deliberately miscalibrated (a different slope than the truth), so the calibrator has
work to do.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelmon.stats.estimation import (
    Calibrator,
    ConfidenceEstimator,
    fit_reference_calibration,
    pool_adjacent_violators,
    reference_baselines,
)

WINDOW = 2000
BINARY = {"task": "binary_classification", "classes": ["0", "1"], "positive_class": "1"}


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


class BinaryWorld:
    """x ~ N(mu, sd); P(y=1 | x) = sigmoid(-0.5 + 2x) (the truth, optionally changed);
    the model's score sigmoid(-0.5 + 4x) ranks and thresholds like the truth but is
    overconfident."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def sample(
        self, n: int, mu: float = 0.0, sd: float = 1.0, truth: tuple[float, float] = (-0.5, 2.0)
    ) -> tuple[np.ndarray, list[str], list[str], np.ndarray]:
        x = self.rng.normal(mu, sd, n)
        p_true = _sigmoid(truth[0] + truth[1] * x)
        y = self.rng.random(n) < p_true
        score = _sigmoid(-0.5 + 4.0 * x)
        predicted = np.where(score >= 0.5, "1", "0")
        return p_true, list(np.where(y, "1", "0")), list(predicted), score


def _fit_binary(world: BinaryWorld) -> ConfidenceEstimator:
    _, actual, predicted, score = world.sample(20_000)
    calibrator = fit_reference_calibration(
        **BINARY, actual=actual, predicted=predicted, scores=score
    )
    assert calibrator is not None
    return ConfidenceEstimator(**BINARY, calibrator=calibrator)


def test_binary_estimate_tracks_realized_accuracy_under_covariate_shift() -> None:
    world = BinaryWorld(seed=11)
    est = _fit_binary(world)
    errors = []
    for mu, sd in [(1.0, 1.5), (-0.8, 0.8), (0.5, 2.0)]:
        for _ in range(4):
            p_true, actual, predicted, score = world.sample(WINDOW, mu, sd)
            r = est.metrics(est.encode(predicted, score))
            realized = skm.accuracy_score(actual, predicted)
            pred_pos = np.array(predicted) == "1"
            expected = np.mean(np.where(pred_pos, p_true, 1 - p_true))
            assert r.n == WINDOW
            assert r.estimated_accuracy == pytest.approx(realized, abs=0.02)
            assert r.estimated_accuracy == pytest.approx(expected, abs=0.01)
            y = np.array(actual) == "1"
            assert r.estimated_roc_auc == pytest.approx(skm.roc_auc_score(y, score), abs=0.02)
            errors.append(r.estimated_accuracy - realized)
    assert abs(np.mean(errors)) < 0.006  # no systematic bias across the windows


def test_uncalibrated_scores_would_miss_the_realized_accuracy() -> None:
    """The control for the test above: the raw, overconfident scores overstate the
    accuracy, so the calibrator is what makes the estimate work."""
    world = BinaryWorld(seed=12)
    raw = ConfidenceEstimator(**BINARY, calibrator=None)
    _, actual, predicted, score = world.sample(20_000, 1.0, 1.5)
    r = raw.metrics(raw.encode(predicted, score))
    assert r.estimated_accuracy > skm.accuracy_score(actual, predicted) + 0.04


def test_concept_drift_is_invisible_to_the_estimate() -> None:
    world = BinaryWorld(seed=13)
    est = _fit_binary(world)
    _, actual, predicted, score = world.sample(20_000)
    reference = skm.accuracy_score(actual, predicted)
    for _ in range(3):  # same x distribution, P(y | x) flattened and shifted
        _, actual, predicted, score = world.sample(WINDOW, truth=(1.0, 0.5))
        r = est.metrics(est.encode(predicted, score))
        realized = skm.accuracy_score(actual, predicted)
        assert realized < reference - 0.15
        assert r.estimated_accuracy == pytest.approx(reference, abs=0.02)


class MulticlassWorld:
    """x ~ N(mu, 1) in 2-D; P(y | x) = softmax(W x + b); the model's probabilities are
    softmax(1.7 (W x + b)): right ranking, overconfident."""

    W = np.array([[2.0, 0.0], [0.0, 2.0], [-1.5, -1.5]])
    b = np.array([0.0, 0.3, 0.0])
    classes = ("a", "b", "c")

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    @staticmethod
    def _softmax(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def sample(
        self, n: int, mu: tuple[float, float] = (0.0, 0.0), permute: bool = False
    ) -> tuple[list[str], list[str], np.ndarray]:
        x = self.rng.normal(mu, 1.0, (n, 2))
        w_true = self.W[[1, 0, 2]] if permute else self.W
        p = self._softmax(x @ w_true.T + self.b)
        y = (self.rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
        scores = self._softmax(1.7 * (x @ self.W.T + self.b))
        names = np.array(self.classes)
        return list(names[y]), list(names[scores.argmax(axis=1)]), scores


def test_multiclass_estimate_under_covariate_shift_and_concept_drift() -> None:
    world = MulticlassWorld(seed=21)
    spec = {"task": "multiclass_classification", "classes": world.classes, "positive_class": None}
    actual, predicted, scores = world.sample(20_000)
    reference = skm.accuracy_score(actual, predicted)
    calibrator = fit_reference_calibration(
        **spec, actual=actual, predicted=predicted, scores=scores
    )
    est = ConfidenceEstimator(**spec, calibrator=calibrator)
    for mu in [(1.0, -0.5), (-1.0, -1.0), (0.5, 0.5)]:
        actual, predicted, scores = world.sample(WINDOW, mu)
        r = est.metrics(est.encode(predicted, scores))
        assert r.estimated_roc_auc is None
        assert r.estimated_accuracy == pytest.approx(
            skm.accuracy_score(actual, predicted), abs=0.02
        )
    actual, predicted, scores = world.sample(WINDOW, permute=True)
    r = est.metrics(est.encode(predicted, scores))
    assert skm.accuracy_score(actual, predicted) < reference - 0.2
    assert r.estimated_accuracy == pytest.approx(reference, abs=0.02)


def test_estimator_without_calibrator_uses_scores_as_probabilities() -> None:
    est = ConfidenceEstimator(**BINARY, calibrator=None, bins=10)
    s = np.array([0.9, 0.3, 0.6, np.nan, 0.05])
    predicted = ["1", "0", "0", "1", "1"]
    r = est.metrics(est.encode(predicted, s))
    ok = ~np.isnan(s)
    pos = np.array(predicted)[ok] == "1"
    assert r.n == 4
    assert r.estimated_accuracy == pytest.approx(np.mean(np.where(pos, s[ok], 1 - s[ok])))
    by_threshold = est.metrics(est.encode(None, s))  # predictions from threshold 0.5
    pos_t = s[ok] >= 0.5
    assert by_threshold.estimated_accuracy == pytest.approx(
        np.mean(np.where(pos_t, s[ok], 1 - s[ok]))
    )


def test_multiclass_confidence_is_the_predicted_class_probability() -> None:
    est = ConfidenceEstimator(
        task="multiclass_classification",
        classes=["a", "b", "c"],
        positive_class=None,
        calibrator=None,
    )
    scores = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [np.nan, 0.5, 0.5], [0.1, 0.1, 0.8]])
    r = est.metrics(est.encode(["a", "c", "b", "zzz"], scores))
    assert r.n == 2  # NaN row and a prediction outside the classes are left out
    assert r.estimated_accuracy == pytest.approx((0.6 + 0.3) / 2)
    argmax = est.metrics(est.encode(None, scores))
    assert argmax.estimated_accuracy == pytest.approx((0.6 + 0.5 + 0.8) / 3)
    with_other = np.array([[0.5, 0.2, 0.1, 0.2], [0.1, 0.1, 0.1, 0.7]])  # __other__ last
    r = est.metrics(est.encode(["a", "zzz"], with_other))
    assert (r.n, r.estimated_accuracy) == (2, pytest.approx((0.5 + 0.7) / 2))
    with pytest.raises(ValueError, match=r"scores: expected shape \(rows, 3\) or \(rows, 4\)"):
        est.encode(["a"], np.ones((1, 2)))


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["0", "1"]), st.floats(0, 1)), max_size=30),
    st.lists(st.tuples(st.sampled_from(["0", "1"]), st.floats(0, 1)), max_size=30),
)
def test_estimator_encoding_is_additive(rows1, rows2) -> None:
    calibrator = Calibrator((0.2, 0.5, 0.9), (0.1, 0.4, 0.95))
    est = ConfidenceEstimator(**BINARY, calibrator=calibrator, bins=40)

    def enc(rows: list[tuple[str, float]]) -> np.ndarray:
        return est.encode([r[0] for r in rows], np.array([r[1] for r in rows], dtype=float))

    np.testing.assert_allclose(enc(rows1 + rows2), enc(rows1) + enc(rows2), atol=1e-9)


# --- calibration --------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.floats(-100, 100), st.floats(0.1, 10)), min_size=1, max_size=40))
def test_pool_adjacent_violators_matches_sklearn_isotonic(rows) -> None:
    values = np.array([r[0] for r in rows])
    weights = np.array([r[1] for r in rows])
    x = np.arange(values.size, dtype=float)
    expected = IsotonicRegression().fit(x, values, sample_weight=weights).predict(x)
    np.testing.assert_allclose(pool_adjacent_violators(values, weights), expected, atol=1e-9)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=1, max_size=200),
    st.integers(1, 30),
)
def test_calibrator_is_monotone_and_a_probability(rows, bins) -> None:
    s = np.array([r[0] for r in rows])
    cal = Calibrator.fit(s, np.array([r[1] for r in rows]), bins=bins)
    grid = np.linspace(-0.5, 1.5, 401)
    out = cal.transform(grid)
    assert np.all(np.diff(out) >= -1e-12)
    assert np.all((out >= 0) & (out <= 1))
    assert len(cal.knots) <= bins


def test_calibrator_recovers_a_known_calibration_curve() -> None:
    rng = np.random.default_rng(5)
    s = rng.random(50_000)
    truth = s**2  # the score overstates: P(y=1 | s) = s^2
    cal = Calibrator.fit(s, rng.random(s.size) < truth)
    grid = np.linspace(0.05, 0.95, 19)
    np.testing.assert_allclose(cal.transform(grid), grid**2, atol=0.03)


def test_calibrator_round_trips_through_json() -> None:
    rng = np.random.default_rng(6)
    s = rng.random(500)
    cal = Calibrator.fit(s, rng.random(500) < s, bins=10)
    again = Calibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert again == cal
    np.testing.assert_array_equal(again.transform(s), cal.transform(s))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"method": "platt", "knots": [0.5], "rates": [0.5]}, "calibrator.method"),
        ({"method": "binned_isotonic", "knots": [], "rates": []}, "non-empty"),
        ({"method": "binned_isotonic", "knots": [0.1, 0.2], "rates": [0.5]}, "as many"),
        ({"method": "binned_isotonic", "knots": [0.2, 0.1], "rates": [0.1, 0.5]}, "increasing"),
        ({"method": "binned_isotonic", "knots": [0.1, 0.2], "rates": [0.5, 0.1]}, "increasing"),
        ({"method": "binned_isotonic", "knots": [0.1], "rates": [1.5]}, r"\[0, 1\]"),
        ({"method": "binned_isotonic", "knots": ["x"], "rates": [0.5]}, "numbers"),
    ],
)
def test_calibrator_from_dict_rejects_bad_payloads(payload, message) -> None:
    with pytest.raises(ValueError, match=message):
        Calibrator.from_dict(payload)


def test_fit_reference_calibration_edge_cases() -> None:
    nan = np.full(3, np.nan)
    assert (
        fit_reference_calibration(**BINARY, actual=["0"] * 3, predicted=["0"] * 3, scores=nan)
        is None
    )
    with pytest.raises(ValueError, match="classification"):
        fit_reference_calibration("regression", [], None, ["1"], ["1"], np.ones(1))
    with pytest.raises(ValueError, match="task: 'ranking' is not one of"):
        fit_reference_calibration("ranking", [], None, ["1"], ["1"], np.ones(1))
    with pytest.raises(ValueError, match="rows"):
        fit_reference_calibration(**BINARY, actual=["0"], predicted=["0"], scores=np.ones(2))


# --- reference baselines ------------------------------------------------------------------


def test_reference_baselines_binary_match_sklearn() -> None:
    x, y = load_breast_cancer(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x[::2], y[::2])
    s = model.predict_proba(x)[:, 1]
    pred = model.predict(x)
    base = reference_baselines(
        "binary_classification", ["0", "1"], "1", [str(v) for v in y], [str(v) for v in pred], s
    )
    assert set(base) == {"accuracy", "roc_auc", "log_loss", "brier_score"}
    assert base["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), rel=1e-12)
    assert base["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s), abs=0.01)
    assert base["log_loss"] == pytest.approx(skm.log_loss(y, s), rel=1e-9)
    assert base["brier_score"] == pytest.approx(skm.brier_score_loss(y, s), rel=1e-9)
    no_scores = reference_baselines(
        "binary_classification", ["0", "1"], "1", ["0", "1"], ["0", "0"], None
    )
    assert no_scores == {"accuracy": 0.5}


def test_reference_baselines_regression_match_sklearn() -> None:
    x, y = load_diabetes(return_X_y=True)
    y_hat = LinearRegression().fit(x[::2], y[::2]).predict(x)
    base = reference_baselines("regression", [], None, y, y_hat, None)
    assert base["mae"] == pytest.approx(skm.mean_absolute_error(y, y_hat), rel=1e-12)
    assert base["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, y_hat)), rel=1e-12)
    assert base["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, y_hat), rel=1e-12)
