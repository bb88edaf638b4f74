"""Metrics of ``modelmon evaluate``, computed on the full data or on bootstrap resamples.

Every metric takes the candidate's arrays and an index matrix ``idx`` of shape (k, n)
(k resamples of the n rows; the full data is ``idx = arange(n)[None, :]``) and returns
k values. Definitions follow scikit-learn's functions of the same name:

- ``accuracy``: share of rows whose prediction equals the label;
- ``precision``, ``recall``, ``f1`` (binary): of the positive class; 0 when undefined;
- ``macro_f1`` (multiclass): unweighted mean over the classes of the labels and
  predictions of the per-class F1;
- ``roc_auc`` (binary, with scores): the Mann-Whitney statistic, ties counted 1/2;
  NaN for a resample holding one class only;
- ``log_loss`` (binary, with scores): mean of ``-ln p`` of the true class, p clipped
  to [eps, 1 - eps] with eps the float64 machine epsilon (scikit-learn's clipping);
- ``brier_score`` (binary, with scores): mean of ``(score - y)^2``, y 1 for positive;
- ``mae``, ``rmse`` (regression).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class Arrays:
    """One candidate's outputs beside the labels, all of length n.

    Classification: ``y`` and ``pred`` are class codes (ints), ``positive`` the positive
    class's code (binary), ``score`` the positive-class probability or None.
    Regression: ``y`` and ``pred`` are floats.
    """

    y: np.ndarray
    pred: np.ndarray
    score: np.ndarray | None = None
    positive: int = 1
    classes: int = 2


Metric = Callable[[Arrays, np.ndarray], np.ndarray]


def _mean(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    result: np.ndarray = values[idx].mean(axis=1)
    return result


def accuracy(a: Arrays, idx: np.ndarray) -> np.ndarray:
    return _mean((a.pred == a.y).astype(np.float64), idx)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return out


def _binary_counts(a: Arrays, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pred_pos = (a.pred == a.positive).astype(np.float64)
    true_pos = (a.y == a.positive).astype(np.float64)
    tp = (pred_pos * true_pos)[idx].sum(axis=1)
    return tp, pred_pos[idx].sum(axis=1), true_pos[idx].sum(axis=1)


def precision(a: Arrays, idx: np.ndarray) -> np.ndarray:
    tp, predicted, _ = _binary_counts(a, idx)
    return _ratio(tp, predicted)


def recall(a: Arrays, idx: np.ndarray) -> np.ndarray:
    tp, _, actual = _binary_counts(a, idx)
    return _ratio(tp, actual)


def f1(a: Arrays, idx: np.ndarray) -> np.ndarray:
    tp, predicted, actual = _binary_counts(a, idx)
    return _ratio(2.0 * tp, predicted + actual)


def macro_f1(a: Arrays, idx: np.ndarray) -> np.ndarray:
    """Mean F1 over the classes present in the resample's labels or predictions."""
    total = np.zeros(idx.shape[0])
    present = np.zeros(idx.shape[0])
    for code in range(a.classes):
        pred_c = (a.pred == code).astype(np.float64)
        true_c = (a.y == code).astype(np.float64)
        tp = (pred_c * true_c)[idx].sum(axis=1)
        both = pred_c[idx].sum(axis=1) + true_c[idx].sum(axis=1)
        total += _ratio(2.0 * tp, both)
        present += both > 0
    return _ratio(total, present)


def _score(a: Arrays) -> np.ndarray:
    if a.score is None:  # metric_names offers score metrics only with scores
        raise ValueError("score: this metric needs the candidate's scores")
    return a.score


def roc_auc(a: Arrays, idx: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata  # heavy import, only for scored evaluations

    ranks = rankdata(_score(a)[idx], axis=1)  # ties get their mean rank
    positive = a.y[idx] == a.positive
    n_pos = positive.sum(axis=1).astype(np.float64)
    n_neg = idx.shape[1] - n_pos
    rank_sum = np.where(positive, ranks, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc: np.ndarray = (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def log_loss(a: Arrays, idx: np.ndarray) -> np.ndarray:
    p = np.clip(_score(a), EPS, 1.0 - EPS)
    losses = -np.where(a.y == a.positive, np.log(p), np.log1p(-p))
    return _mean(losses, idx)


def brier_score(a: Arrays, idx: np.ndarray) -> np.ndarray:
    return _mean((_score(a) - (a.y == a.positive)) ** 2, idx)


def mae(a: Arrays, idx: np.ndarray) -> np.ndarray:
    return _mean(np.abs(a.pred - a.y), idx)


def rmse(a: Arrays, idx: np.ndarray) -> np.ndarray:
    result: np.ndarray = np.sqrt(_mean((a.pred - a.y) ** 2, idx))
    return result


#: Metric name -> (function, True when higher is better).
METRICS: dict[str, tuple[Metric, bool]] = {
    "accuracy": (accuracy, True),
    "precision": (precision, True),
    "recall": (recall, True),
    "f1": (f1, True),
    "macro_f1": (macro_f1, True),
    "roc_auc": (roc_auc, True),
    "log_loss": (log_loss, False),
    "brier_score": (brier_score, False),
    "mae": (mae, False),
    "rmse": (rmse, False),
}


def metric_names(task: str, scored: bool) -> tuple[str, ...]:
    """The metrics of a task; the score-based ones only when every candidate has scores.

    >>> metric_names("binary_classification", scored=False)
    ('accuracy', 'precision', 'recall', 'f1')
    >>> metric_names("regression", scored=False)
    ('mae', 'rmse')
    """
    if task == "regression":
        return ("mae", "rmse")
    if task == "multiclass_classification":
        return ("accuracy", "macro_f1")
    base = ("accuracy", "precision", "recall", "f1")
    return (*base, "roc_auc", "log_loss", "brier_score") if scored else base


def full(idx_rows: int) -> np.ndarray:
    """The index matrix of the full data (one 'resample' holding every row once)."""
    return np.arange(idx_rows)[None, :]
