"""Model performance from joined predictions and labels, as additive vectors.

Every batch of joined (label, prediction, score) rows is *encoded* into a fixed-length
float64 vector of counts and sums; a sliding window adds and subtracts such vectors,
and :meth:`ClassificationPerformance.metrics` / :meth:`RegressionPerformance.metrics`
turn a window's sum into the statistics. Encoding a concatenation equals the sum of the
encodings, so a window is exact whatever its bucketing.

Definitions match scikit-learn on the same rows: precision, recall and F1 per class as
``precision_recall_fscore_support(average=None, zero_division=0)``, ``log_loss`` with
probabilities clipped to ``[LOG_LOSS_EPSILON, 1 - LOG_LOSS_EPSILON]``,
``brier_score_loss``, ``mean_absolute_error``, ``mean_squared_error`` (RMSE is its root)
and ``mean_absolute_percentage_error``. ROC AUC is computed from score histograms
(``score_bins`` equal-width bins on [0, 1]): the trapezoid under the binned ROC curve,
so it differs from the exact value only by pairs of a positive and a negative whose
scores share a bin (counted as half-correct, as ties are).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

#: Probabilities are clipped to [eps, 1 - eps] before the logarithm of the log loss,
#: as scikit-learn does for float64 input (a probability of 0 would make it infinite).
LOG_LOSS_EPSILON = float(np.finfo(np.float64).eps)

#: Denominator floor of the absolute percentage error, as in scikit-learn's MAPE.
MAPE_EPSILON = float(np.finfo(np.float64).eps)

#: Class that every value outside the configured classes is counted as.
OTHER_CLASS = "__other__"


def class_indices(values: Sequence[str], index: dict[str, int], other: int) -> IntArray:
    """Index of each class value in ``index``; values not in it map to ``other``."""
    return np.fromiter((index.get(v, other) for v in values), dtype=np.intp, count=len(values))


def score_bin_indices(scores: FloatArray, bins: int) -> IntArray:
    """Equal-width bin of each probability on [0, 1]: ``[k/bins, (k+1)/bins)``, the last
    bin closed; values outside [0, 1] are clipped into the end bins.

    >>> score_bin_indices(np.array([0.0, 0.249, 0.25, 1.0, 1.5]), 4).tolist()
    [0, 0, 1, 3, 3]
    """
    idx = np.floor(np.clip(scores, 0.0, 1.0) * bins).astype(np.intp)
    return np.minimum(idx, bins - 1)


def binned_roc_auc(positives: npt.ArrayLike, negatives: npt.ArrayLike) -> float | None:
    """ROC AUC from per-bin counts (or expected counts) of positives and negatives, bins
    in increasing score order: P(positive bin > negative bin) + 0.5 * P(same bin), the
    trapezoid under the binned ROC curve. ``None`` without both classes.

    >>> binned_roc_auc([0, 1, 1], [1, 1, 0])
    0.875
    >>> binned_roc_auc([0, 2], [0, 0]) is None
    True
    """
    pos = np.asarray(positives, dtype=np.float64)
    neg = np.asarray(negatives, dtype=np.float64)
    n_pos, n_neg = float(pos.sum()), float(neg.sum())
    if n_pos <= 0 or n_neg <= 0:
        return None
    negatives_below = np.cumsum(neg) - neg
    pairs = float(np.sum(pos * (negatives_below + 0.5 * neg)))
    return pairs / (n_pos * n_neg)


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


@dataclass(frozen=True)
class PerformanceReading:
    """Classification statistics of one window; ``None`` where undefined.

    ``precision``, ``recall`` and ``f1`` hold every configured class, plus
    ``__other__`` when it occurs in the window; they are empty without data.
    """

    n: int
    accuracy: float | None
    precision: dict[str, float] = field(default_factory=dict)
    recall: dict[str, float] = field(default_factory=dict)
    f1: dict[str, float] = field(default_factory=dict)
    scored: int = 0
    roc_auc: float | None = None
    log_loss: float | None = None
    brier_score: float | None = None


class ClassificationPerformance:
    """Encoder and reader of classification performance vectors.

    ``classes`` (the reference's) become ``self.classes``: the same with ``__other__``
    appended (or moved) last; any other value counts as ``__other__``.

    Vector layout (``size`` float64 values): the K x K confusion counts (row = actual,
    column = predicted, K = len(self.classes)), for binary tasks the per-bin counts of
    positive then negative labels over ``score_bins`` score bins, then the log-loss sum,
    the Brier sum and the number of scored rows.

    Binary when ``positive_class`` is given; ``scores`` are then the positive-class
    probability per row and a label is positive when it equals ``positive_class``.
    Multiclass ``scores`` are rows x classes in ``self.classes`` order; the ``__other__``
    column is optional (0 when left out). NaN marks an absent score: the row counts in
    the confusion matrix but not in ROC AUC, log loss or Brier score. Probabilities
    outside [0, 1] are clipped to it. Rows are not renormalised.

    >>> perf = ClassificationPerformance(["no", "yes"], positive_class="yes", score_bins=10)
    >>> v = perf.encode(["yes", "no", "no"], ["yes", "yes", "no"], np.array([0.9, 0.6, 0.2]))
    >>> r = perf.metrics(v)
    >>> r.n, round(r.accuracy, 4), r.precision["yes"], r.recall["yes"], r.roc_auc
    (3, 0.6667, 0.5, 1.0, 1.0)
    """

    def __init__(
        self,
        classes: Sequence[str],
        *,
        positive_class: str | None = None,
        score_bins: int = 1000,
    ) -> None:
        names = list(dict.fromkeys(classes))
        if not names or (len(names) == 1 and names[0] == OTHER_CLASS):
            raise ValueError("classes: expected at least one class")
        if positive_class is not None and positive_class not in names:
            raise ValueError(f"positive_class: {positive_class!r} is not one of {names}")
        if score_bins < 1:
            raise ValueError(f"score_bins: expected a positive integer, got {score_bins}")
        if OTHER_CLASS not in names:
            names.append(OTHER_CLASS)
        else:  # keep the overflow class last, where the vector layout expects it
            names.remove(OTHER_CLASS)
            names.append(OTHER_CLASS)
        self.classes: tuple[str, ...] = tuple(names)
        self.positive_class = positive_class
        self.score_bins = score_bins if positive_class is not None else 0
        self._index = {name: i for i, name in enumerate(self.classes)}
        self._positive = -1 if positive_class is None else self._index[positive_class]
        k = len(self.classes)
        self._k = k
        self._hist = k * k
        self._tail = self._hist + 2 * self.score_bins
        self.size = self._tail + 3

    @property
    def binary(self) -> bool:
        """Whether ROC AUC and binary scores apply (a positive class is set)."""
        return self.positive_class is not None

    def zeros(self) -> FloatArray:
        """The encoding of no rows."""
        return np.zeros(self.size, dtype=np.float64)

    def encode(
        self,
        actual: Sequence[str],
        predicted: Sequence[str],
        scores: npt.ArrayLike | None = None,
    ) -> FloatArray:
        """Sum of the encodings of the rows (``actual[i]``, ``predicted[i]``, ``scores[i]``)."""
        if len(actual) != len(predicted):
            raise ValueError(
                f"predicted: expected {len(actual)} values like actual, got {len(predicted)}"
            )
        a = class_indices(actual, self._index, self._k - 1)
        p = class_indices(predicted, self._index, self._k - 1)
        out = self.zeros()
        out[: self._hist] = np.bincount(a * self._k + p, minlength=self._hist)
        if scores is not None:
            if self.binary:
                self._encode_binary_scores(out, a, np.asarray(scores, dtype=np.float64))
            else:
                self._encode_multiclass_scores(out, a, np.asarray(scores, dtype=np.float64))
        return out

    def _encode_binary_scores(self, out: FloatArray, a: IntArray, s: FloatArray) -> None:
        if s.shape != a.shape:
            raise ValueError(f"scores: expected shape {a.shape}, got {s.shape}")
        ok = ~np.isnan(s)
        s = np.clip(s[ok], 0.0, 1.0)
        y = a[ok] == self._positive
        bins = score_bin_indices(s, self.score_bins)
        b = self.score_bins
        out[self._hist : self._hist + b] = np.bincount(bins[y], minlength=b)
        out[self._hist + b : self._tail] = np.bincount(bins[~y], minlength=b)
        eps = LOG_LOSS_EPSILON
        p_true = np.where(y, np.clip(s, eps, 1 - eps), np.clip(1 - s, eps, 1 - eps))
        out[self._tail] = float(-np.sum(np.log(p_true)))
        out[self._tail + 1] = float(np.sum((s - y) ** 2))
        out[self._tail + 2] = float(s.size)

    def _encode_multiclass_scores(self, out: FloatArray, a: IntArray, s: FloatArray) -> None:
        if s.ndim != 2 or s.shape[0] != a.size or s.shape[1] not in (self._k - 1, self._k):
            raise ValueError(
                f"scores: expected shape ({a.size}, {self._k - 1}) or ({a.size}, {self._k}), "
                f"got {s.shape}"
            )
        if s.shape[1] == self._k - 1:
            s = np.hstack([s, np.zeros((s.shape[0], 1))])
        ok = ~np.isnan(s).any(axis=1)
        s = np.clip(s[ok], 0.0, 1.0)
        onehot = np.zeros_like(s)
        onehot[np.arange(s.shape[0]), a[ok]] = 1.0
        p_true = np.clip(s[np.arange(s.shape[0]), a[ok]], LOG_LOSS_EPSILON, 1 - LOG_LOSS_EPSILON)
        out[self._tail] = float(-np.sum(np.log(p_true)))
        out[self._tail + 1] = float(np.sum((s - onehot) ** 2))
        out[self._tail + 2] = float(s.shape[0])

    def confusion(self, vector: FloatArray) -> FloatArray:
        """The K x K confusion counts (row = actual, column = predicted) of a vector."""
        return np.asarray(vector[: self._hist], dtype=np.float64).reshape(self._k, self._k)

    def metrics(self, vector: FloatArray) -> PerformanceReading:
        """Statistics of the rows summed in ``vector``."""
        if vector.shape != (self.size,):
            raise ValueError(f"vector: expected shape ({self.size},), got {vector.shape}")
        cm = self.confusion(vector)
        n = float(cm.sum())
        if n <= 0:
            return PerformanceReading(n=0, accuracy=None)
        precision, recall, f1 = self._per_class(cm)
        scored = float(vector[self._tail + 2])
        b = self.score_bins
        auc = None
        if self.binary:
            pos = vector[self._hist : self._hist + b]
            auc = binned_roc_auc(pos, vector[self._hist + b : self._tail])
        return PerformanceReading(
            n=round(n),
            accuracy=float(np.trace(cm)) / n,
            precision=precision,
            recall=recall,
            f1=f1,
            scored=round(scored) if scored > 0 else 0,
            roc_auc=auc,
            log_loss=_ratio(float(vector[self._tail]), scored) if scored >= 0.5 else None,
            brier_score=_ratio(float(vector[self._tail + 1]), scored) if scored >= 0.5 else None,
        )

    def _per_class(
        self, cm: FloatArray
    ) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
        tp = np.diag(cm)
        predicted = cm.sum(axis=0)
        actual = cm.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            prec = np.where(predicted > 0, tp / predicted, 0.0)
            rec = np.where(actual > 0, tp / actual, 0.0)
            f1 = np.where(predicted + actual > 0, 2 * tp / (predicted + actual), 0.0)
        shown = [
            i
            for i, name in enumerate(self.classes)
            if name != OTHER_CLASS or predicted[i] + actual[i] > 0
        ]
        return (
            {self.classes[i]: float(prec[i]) for i in shown},
            {self.classes[i]: float(rec[i]) for i in shown},
            {self.classes[i]: float(f1[i]) for i in shown},
        )


@dataclass(frozen=True)
class RegressionReading:
    """Regression statistics of one window; ``None`` where undefined."""

    n: int
    mae: float | None
    rmse: float | None
    mape: float | None


class RegressionPerformance:
    """Encoder and reader of regression performance vectors.

    Vector layout: row count, sum of |y - ŷ|, sum of (y - ŷ)², sum of
    |y - ŷ| / max(|y|, MAPE_EPSILON) over rows with y != 0, and the count of those rows.
    MAPE therefore equals scikit-learn's whenever no actual value is exactly 0; rows with
    y = 0 (where scikit-learn's term is about |y - ŷ| * 4.5e15) are left out of it.

    >>> reg = RegressionPerformance()
    >>> r = reg.metrics(reg.encode(np.array([1.0, 2.0, 0.0]), np.array([2.0, 2.0, 1.0])))
    >>> r.n, round(r.mae, 4), round(r.rmse, 4), r.mape
    (3, 0.6667, 0.8165, 0.5)
    """

    size = 5

    def zeros(self) -> FloatArray:
        """The encoding of no rows."""
        return np.zeros(self.size, dtype=np.float64)

    def encode(self, actual: npt.ArrayLike, predicted: npt.ArrayLike) -> FloatArray:
        """Sum of the encodings of the rows; all values must be finite."""
        y = np.asarray(actual, dtype=np.float64)
        y_hat = np.asarray(predicted, dtype=np.float64)
        if y.shape != y_hat.shape or y.ndim != 1:
            raise ValueError(f"predicted: expected shape {y.shape} like actual, got {y_hat.shape}")
        for name, values in (("actual", y), ("predicted", y_hat)):
            bad = np.flatnonzero(~np.isfinite(values))
            if bad.size:
                raise ValueError(f"{name}: expected finite numbers, rows {bad[:10].tolist()}")
        err = np.abs(y - y_hat)
        nonzero = y != 0
        ape = err[nonzero] / np.maximum(np.abs(y[nonzero]), MAPE_EPSILON)
        return np.array([y.size, err.sum(), np.sum(err**2), ape.sum(), ape.size], dtype=np.float64)

    def metrics(self, vector: FloatArray) -> RegressionReading:
        """Statistics of the rows summed in ``vector``."""
        if vector.shape != (self.size,):
            raise ValueError(f"vector: expected shape ({self.size},), got {vector.shape}")
        n = float(vector[0])
        if n < 0.5:
            return RegressionReading(n=0, mae=None, rmse=None, mape=None)
        mse = max(float(vector[2]), 0.0) / n
        n_ape = float(vector[4])
        return RegressionReading(
            n=round(n),
            mae=float(vector[1]) / n,
            rmse=float(np.sqrt(mse)),
            mape=float(vector[3]) / n_ape if n_ape >= 0.5 else None,
        )
