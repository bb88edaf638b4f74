"""Performance estimated from calibrated scores before labels arrive, and the reference
baselines of the performance statistics.

Confidence-based performance estimation (the CBPE idea of NannyML): a calibrator learnt
on the reference maps a prediction's score to the probability that the prediction is
correct (multiclass) or that the label is positive (binary). The expected accuracy of a
window is then the mean of those probabilities, with no label needed. It assumes no
concept drift: P(label | features) is the one of the reference, so calibration learnt
there stays valid when the feature distribution shifts (covariate shift). A change of
P(label | features) itself is invisible to the estimate.

The calibrator is isotonic regression on quantile bins: the reference scores are cut at
their ``bins`` quantiles, each bin's share of positives (or of correct predictions) is
made non-decreasing by pool-adjacent-violators weighted by bin size, and the map is the
linear interpolation between (mean score of the bin, pooled share), constant beyond the
first and last bins. It is monotone, has ``bins`` knots at most (small in the profile
JSON) and averages enough rows per knot to be stable on small references.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt

from modelmon.stats.performance import (
    OTHER_CLASS,
    ClassificationPerformance,
    FloatArray,
    RegressionPerformance,
    binned_roc_auc,
    class_indices,
    score_bin_indices,
)

TASKS = ("binary_classification", "multiclass_classification", "regression")
CALIBRATION_METHOD = "binned_isotonic"


def pool_adjacent_violators(values: npt.ArrayLike, weights: npt.ArrayLike) -> FloatArray:
    """Weighted least-squares non-decreasing fit of ``values`` (isotonic regression).

    >>> pool_adjacent_violators([1.0, 3.0, 2.0, 4.0], [1, 1, 1, 1]).tolist()
    [1.0, 2.5, 2.5, 4.0]
    """
    means: list[float] = []
    sizes: list[float] = []
    counts: list[int] = []
    for v, w in zip(
        np.asarray(values, float).tolist(), np.asarray(weights, float).tolist(), strict=True
    ):
        means.append(v)
        sizes.append(w)
        counts.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            w2, m2, c2 = sizes.pop(), means.pop(), counts.pop()
            w1, m1 = sizes[-1], means[-1]
            means[-1] = (m1 * w1 + m2 * w2) / (w1 + w2)
            sizes[-1] = w1 + w2
            counts[-1] += c2
    return np.repeat(np.asarray(means, dtype=np.float64), counts)


@dataclass(frozen=True)
class Calibrator:
    """Monotone map from a score to a probability (see the module docstring).

    >>> cal = Calibrator.fit(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 1, 1, 1]), bins=2)
    >>> cal.knots, cal.rates
    ((0.15000000000000002, 0.8500000000000001), (0.5, 1.0))
    >>> cal.transform(np.array([0.0, 0.5, 1.0])).tolist()
    [0.5, 0.75, 1.0]
    >>> Calibrator.from_dict(cal.to_dict()) == cal
    True
    """

    knots: tuple[float, ...]
    rates: tuple[float, ...]

    @classmethod
    def fit(
        cls, scores: npt.ArrayLike, correct_or_positive: npt.ArrayLike, *, bins: int = 100
    ) -> Calibrator:
        """Learn the map from reference ``scores`` and 0/1 outcomes; NaN scores are
        ignored."""
        s = np.asarray(scores, dtype=np.float64)
        t = np.asarray(correct_or_positive, dtype=np.float64)
        if s.shape != t.shape or s.ndim != 1:
            raise ValueError(f"correct_or_positive: expected shape {s.shape}, got {t.shape}")
        if bins < 1:
            raise ValueError(f"bins: expected a positive integer, got {bins}")
        ok = np.isfinite(s)
        s, t = s[ok], t[ok]
        if s.size == 0:
            raise ValueError("scores: expected at least one finite score to calibrate on")
        edges = np.unique(np.quantile(s, np.arange(1, bins) / bins))
        idx = np.searchsorted(edges, s, side="right")
        count = np.bincount(idx, minlength=edges.size + 1)
        used = count > 0
        count = count[used].astype(np.float64)
        mean_score = np.bincount(idx, weights=s, minlength=edges.size + 1)[used] / count
        rate = np.bincount(idx, weights=t, minlength=edges.size + 1)[used] / count
        pooled = pool_adjacent_violators(rate, count)
        return cls(tuple(mean_score.tolist()), tuple(pooled.tolist()))

    def transform(self, scores: npt.ArrayLike) -> FloatArray:
        """Calibrated probability of each score (NaN stays NaN)."""
        s = np.asarray(scores, dtype=np.float64)
        return np.interp(s, self.knots, self.rates)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the reference profile."""
        return {"method": CALIBRATION_METHOD, "knots": list(self.knots), "rates": list(self.rates)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibrator:
        """Inverse of :meth:`to_dict`; errors name the key and what was expected."""
        if d.get("method") != CALIBRATION_METHOD:
            raise ValueError(f"calibrator.method: expected {CALIBRATION_METHOD!r}")
        knots, rates = d.get("knots"), d.get("rates")
        if not isinstance(knots, list) or not isinstance(rates, list) or not knots:
            raise ValueError("calibrator.knots, calibrator.rates: expected non-empty lists")
        if len(knots) != len(rates):
            raise ValueError("calibrator.rates: expected as many values as calibrator.knots")
        try:
            x = np.asarray(knots, dtype=np.float64)
            y = np.asarray(rates, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("calibrator.knots, calibrator.rates: expected numbers") from None
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise ValueError("calibrator.knots, calibrator.rates: expected finite numbers")
        if np.any(np.diff(x) <= 0) or np.any(np.diff(y) < 0):
            raise ValueError(
                "calibrator.knots: expected increasing, calibrator.rates: non-decreasing"
            )
        if y.min() < 0 or y.max() > 1:
            raise ValueError("calibrator.rates: expected probabilities in [0, 1]")
        return cls(tuple(x.tolist()), tuple(y.tolist()))


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"task: {task!r} is not one of {', '.join(TASKS)}")


class _Confidence:
    """The score that calibration applies to, per row, for one classification task:
    binary -> positive-class probability; multiclass -> probability of the predicted
    class. NaN where the row has no usable score."""

    def __init__(self, task: str, classes: Sequence[str], positive_class: str | None) -> None:
        _check_task(task)
        if task == "regression":
            raise ValueError("task: performance estimation needs a classification task")
        self.binary = task == "binary_classification"
        if self.binary and positive_class not in classes:
            raise ValueError(f"positive_class: {positive_class!r} is not one of {list(classes)}")
        # Score columns: the classes other than __other__, optionally __other__ last
        # (the column order of ClassificationPerformance).
        self.classes = (*(c for c in dict.fromkeys(classes) if c != OTHER_CLASS), OTHER_CLASS)
        self.positive_class = positive_class
        self._index = {name: i for i, name in enumerate(self.classes)}

    def predicted_positive(
        self, predicted: Sequence[str] | None, scores: FloatArray, threshold: float
    ) -> npt.NDArray[np.bool_]:
        """Binary: whether each prediction is the positive class (from ``scores`` and
        ``threshold`` when ``predicted`` is None)."""
        if predicted is None:
            return np.asarray(scores >= threshold)
        same = map(operator.eq, predicted, repeat(self.positive_class))
        return np.fromiter(same, bool, len(predicted))

    def multiclass(self, predicted: Sequence[str] | None, scores: FloatArray) -> FloatArray:
        """Probability of the predicted class per row (argmax when ``predicted`` is
        None); NaN for a row with a NaN score or a prediction without a score column.
        ``scores`` columns: the classes other than ``__other__``, optionally ``__other__``
        last."""
        k = scores.shape[1] if scores.ndim == 2 else -1
        if k not in (len(self.classes) - 1, len(self.classes)):
            raise ValueError(
                f"scores: expected shape (rows, {len(self.classes) - 1}) or "
                f"(rows, {len(self.classes)}), got {scores.shape}"
            )
        rows = np.arange(scores.shape[0])
        usable = ~np.isnan(scores).any(axis=1)
        if predicted is None:
            col = np.argmax(np.where(np.isnan(scores), -np.inf, scores), axis=1)
        else:
            if len(predicted) != scores.shape[0]:
                raise ValueError(f"scores: expected {len(predicted)} rows like predicted")
            col = class_indices(predicted, self._index, len(self.classes) - 1)
            usable &= col < k  # a prediction of __other__ needs the __other__ column
            col = np.minimum(col, k - 1)
        return np.where(usable, scores[rows, col], np.nan)


@dataclass(frozen=True)
class EstimateReading:
    """Estimated performance of one window; ``None`` where undefined."""

    n: int
    estimated_accuracy: float | None
    estimated_roc_auc: float | None = None


class ConfidenceEstimator:
    """Encoder and reader of estimated-performance vectors (additive, like
    :class:`~modelmon.stats.performance.ClassificationPerformance`).

    Vector layout: scored rows, expected correct predictions, then (binary) the expected
    positives and expected negatives per raw-score bin. The ROC AUC estimate ranks rows
    by their raw score (the model's ranking; calibration is monotone) and weighs each
    row as ``c`` positive and ``1 - c`` negative, ``c`` its calibrated probability.
    Without a calibrator the scores are taken as calibrated.

    >>> est = ConfidenceEstimator(task="binary_classification", classes=["0", "1"],
    ...                           positive_class="1", calibrator=None, bins=10)
    >>> r = est.metrics(est.encode(["1", "0"], np.array([0.9, 0.3])))
    >>> r.n, round(r.estimated_accuracy, 4), round(r.estimated_roc_auc, 4)
    (2, 0.8, 0.8125)
    """

    def __init__(
        self,
        *,
        task: str,
        classes: Sequence[str],
        positive_class: str | None,
        calibrator: Calibrator | None,
        threshold: float = 0.5,
        bins: int = 1000,
    ) -> None:
        self._confidence = _Confidence(task, classes, positive_class)
        if bins < 1:
            raise ValueError(f"bins: expected a positive integer, got {bins}")
        self.calibrator = calibrator
        self.threshold = threshold
        self.bins = bins if self._confidence.binary else 0
        self.size = 2 + 2 * self.bins

    def zeros(self) -> FloatArray:
        """The encoding of no rows."""
        return np.zeros(self.size, dtype=np.float64)

    def _calibrate(self, scores: FloatArray) -> FloatArray:
        s = np.clip(scores, 0.0, 1.0)
        return s if self.calibrator is None else self.calibrator.transform(s)

    def encode(self, predicted: Sequence[str] | None, scores: npt.ArrayLike) -> FloatArray:
        """Sum of the encodings of the rows; rows with NaN scores are left out.
        ``predicted`` None: binary predictions follow ``threshold``, multiclass argmax."""
        s = np.asarray(scores, dtype=np.float64)
        out = self.zeros()
        if not self._confidence.binary:
            conf = self._confidence.multiclass(predicted, s)
            ok = ~np.isnan(conf)
            out[0] = float(ok.sum())
            out[1] = float(self._calibrate(conf[ok]).sum())
            return out
        if s.ndim != 1 or (predicted is not None and len(predicted) != s.size):
            raise ValueError(f"scores: expected one score per prediction, got shape {s.shape}")
        positive = self._confidence.predicted_positive(predicted, s, self.threshold)
        ok = ~np.isnan(s)
        c = self._calibrate(s[ok])
        out[0] = float(ok.sum())
        out[1] = float(np.sum(np.where(positive[ok], c, 1.0 - c)))
        bins = score_bin_indices(s[ok], self.bins)
        out[2 : 2 + self.bins] = np.bincount(bins, weights=c, minlength=self.bins)
        out[2 + self.bins :] = np.bincount(bins, weights=1.0 - c, minlength=self.bins)
        return out

    def metrics(self, vector: FloatArray) -> EstimateReading:
        """Estimates for the rows summed in ``vector``."""
        if vector.shape != (self.size,):
            raise ValueError(f"vector: expected shape ({self.size},), got {vector.shape}")
        n = float(vector[0])
        if n < 0.5:
            return EstimateReading(n=0, estimated_accuracy=None)
        auc = None
        if self._confidence.binary:
            auc = binned_roc_auc(vector[2 : 2 + self.bins], vector[2 + self.bins :])
        return EstimateReading(
            n=round(n), estimated_accuracy=float(vector[1]) / n, estimated_roc_auc=auc
        )


def fit_reference_calibration(
    task: str,
    classes: Sequence[str],
    positive_class: str | None,
    actual: Sequence[str],
    predicted: Sequence[str],
    scores: npt.ArrayLike,
    *,
    bins: int = 100,
) -> Calibrator | None:
    """The calibrator of a classification model from reference labels, predictions and
    scores, ``None`` when no row has a usable score. Binary: P(label = positive | score);
    multiclass: P(prediction correct | probability of the predicted class), ``scores``
    being rows x ``classes``."""
    conf = _Confidence(task, classes, positive_class)
    s = np.asarray(scores, dtype=np.float64)
    if len(actual) != len(predicted) or s.shape[:1] != (len(actual),):
        raise ValueError(
            f"actual, predicted, scores: expected {len(actual)} rows each, "
            f"got {len(predicted)} and {s.shape[:1]}"
        )
    if conf.binary:
        confidence = np.clip(s, 0.0, 1.0)
        outcome = np.fromiter((a == positive_class for a in actual), bool, len(actual))
    else:
        confidence = conf.multiclass(predicted, s)
        pairs = zip(actual, predicted, strict=True)
        outcome = np.fromiter((a == p for a, p in pairs), bool, len(actual))
    if not np.isfinite(confidence).any():
        return None
    return Calibrator.fit(confidence, outcome, bins=bins)


def reference_baselines(
    task: str,
    classes: Sequence[str],
    positive_class: str | None,
    actual: Sequence[Any],
    predicted: Sequence[Any],
    scores: npt.ArrayLike | None,
) -> dict[str, float]:
    """Performance on the reference, with the window statistics' definitions (binned ROC
    AUC included): keys ``accuracy``, ``roc_auc``, ``log_loss``, ``brier_score``
    (classification) or ``mae``, ``rmse``, ``mape`` (regression); undefined ones absent.

    >>> reference_baselines("regression", [], None, [1.0, 2.0], [1.5, 2.0], None)
    {'mae': 0.25, 'rmse': 0.3535533905932738, 'mape': 0.25}
    """
    _check_task(task)
    if task == "regression":
        reg = RegressionPerformance()
        r = reg.metrics(reg.encode(np.asarray(actual, float), np.asarray(predicted, float)))
        values = {"mae": r.mae, "rmse": r.rmse, "mape": r.mape}
    else:
        binary = task == "binary_classification"
        perf = ClassificationPerformance(classes, positive_class=positive_class if binary else None)
        c = perf.metrics(perf.encode(actual, predicted, scores))
        values = {
            "accuracy": c.accuracy,
            "roc_auc": c.roc_auc,
            "log_loss": c.log_loss,
            "brier_score": c.brier_score,
        }
    return {key: float(v) for key, v in values.items() if v is not None}
