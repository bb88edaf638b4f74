"""Confusion matrix, ROC curve and calibration curve of a batch, read from the
performance vector the check accumulated (:class:`ClassificationPerformance`).

The vector holds the confusion counts and, for binary models with scores, the counts of
positive and negative labels per equal-width score bin (1000 bins on [0, 1]); the
curves are read from those histograms, so they cost nothing per row and add across
chunks like every other count:

- ROC: at the threshold ``k / bins``, the true and false positive rates are the shares
  of positives and negatives whose score bin is at least ``k`` (a score ``s`` is in
  bin ``floor(s * bins)``, so this is ``s >= k / bins``); points where no score
  changes bin are left out. The first point (0, 0) is "above every score" (threshold
  null).
- Calibration (reliability) curve: ``CALIBRATION_BINS`` equal-width bins of the score,
  as scikit-learn's ``calibration_curve(strategy="uniform")``: per non-empty bin the
  share of positive labels and the mean score. The mean score is read from the fine
  bins' centres, so it is within half a fine bin (0.0005) of the mean of the scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from modelmon.stats.performance import OTHER_CLASS, ClassificationPerformance, FloatArray

#: Bins of the calibration curve (scikit-learn's default ``n_bins``).
CALIBRATION_BINS = 10


@dataclass(frozen=True)
class ConfusionMatrix:
    """Counts of rows by actual class (rows) and predicted class (columns)."""

    classes: list[str]
    counts: list[list[int]]

    def to_json(self) -> dict[str, Any]:
        return {"classes": self.classes, "counts": self.counts}


@dataclass(frozen=True)
class RocCurve:
    """Points of the binned ROC curve, from the highest threshold to the lowest."""

    thresholds: list[float | None]  # None: above every score
    fpr: list[float]
    tpr: list[float]

    def area(self) -> float:
        """Trapezoid area under the points (the binned ROC AUC of the report).

        >>> RocCurve([None, 0.5, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 1.0]).area()
        1.0
        """
        x, y = np.asarray(self.fpr), np.asarray(self.tpr)
        return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))

    def to_json(self) -> dict[str, Any]:
        return {"thresholds": self.thresholds, "fpr": self.fpr, "tpr": self.tpr}


@dataclass(frozen=True)
class CalibrationBin:
    """One non-empty bin ``[lower, upper)`` of the calibration curve."""

    lower: float
    upper: float
    rows: int
    mean_score: float
    positive_rate: float

    def to_json(self) -> dict[str, Any]:
        return {
            "lower": self.lower,
            "upper": self.upper,
            "rows": self.rows,
            "mean_score": self.mean_score,
            "positive_rate": self.positive_rate,
        }


def confusion_matrix(encoder: ClassificationPerformance, vector: FloatArray) -> ConfusionMatrix:
    """The confusion counts; ``__other__`` only when a row has a class outside the
    profile's."""
    cm = encoder.confusion(vector)
    keep = [
        i
        for i, name in enumerate(encoder.classes)
        if name != OTHER_CLASS or cm[i, :].sum() + cm[:, i].sum() > 0
    ]
    counts = [[round(float(cm[i, j])) for j in keep] for i in keep]
    return ConfusionMatrix([encoder.classes[i] for i in keep], counts)


def score_histograms(
    encoder: ClassificationPerformance, vector: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Counts of positive and of negative labels per score bin (the layout documented
    on :class:`ClassificationPerformance`: after the K x K confusion counts)."""
    start = len(encoder.classes) ** 2
    bins = encoder.score_bins
    return vector[start : start + bins], vector[start + bins : start + 2 * bins]


def roc_curve(encoder: ClassificationPerformance, vector: FloatArray) -> RocCurve | None:
    """The binned ROC curve; None unless the model is binary and the scored rows hold
    both classes."""
    if not encoder.binary:
        return None
    pos, neg = score_histograms(encoder, vector)
    n_pos, n_neg = float(pos.sum()), float(neg.sum())
    if n_pos <= 0 or n_neg <= 0:
        return None
    used = np.flatnonzero(pos + neg)[::-1]  # bins with scores, highest first
    tp = np.cumsum(pos[::-1])[::-1]  # positives with a score bin >= k
    fp = np.cumsum(neg[::-1])[::-1]
    bins = encoder.score_bins
    return RocCurve(
        thresholds=[None, *(float(k) / bins for k in used)],
        fpr=[0.0, *(float(fp[k]) / n_neg for k in used)],
        tpr=[0.0, *(float(tp[k]) / n_pos for k in used)],
    )


def calibration_curve(
    encoder: ClassificationPerformance, vector: FloatArray, bins: int = CALIBRATION_BINS
) -> list[CalibrationBin]:
    """The reliability curve over ``bins`` equal-width score bins (empty bins left out;
    empty list for multiclass models or without scores). ``bins`` must divide the
    encoder's score bins."""
    if not encoder.binary or encoder.score_bins % bins:
        return []
    pos, neg = score_histograms(encoder, vector)
    fine = encoder.score_bins
    centres = (np.arange(fine) + 0.5) / fine
    rows = (pos + neg).reshape(bins, -1)
    out = []
    for j in range(bins):
        n = float(rows[j].sum())
        if n <= 0:
            continue
        group = slice(j * (fine // bins), (j + 1) * (fine // bins))
        out.append(
            CalibrationBin(
                lower=j / bins,
                upper=(j + 1) / bins,
                rows=round(n),
                mean_score=float(np.dot(rows[j], centres[group]) / n),
                positive_rate=float(pos[group].sum() / n),
            )
        )
    return out
