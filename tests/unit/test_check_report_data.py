"""The numbers the HTML report draws, in the check's data model and JSON report:
per-bin distributions, noise floors, confusion matrix, ROC and calibration curves.

Oracles: numpy on the rows written (bins), scikit-learn on the same rows (confusion
matrix, ROC points, calibration curve).
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from test_check import Cancer, cancer, check_json, diabetes, profile_of, write_csv

from modelmon.profile import load_profile

__all__ = ["cancer", "diabetes"]  # fixtures shared with test_check


def _column(report: dict[str, Any], role: str, name: str) -> dict[str, Any]:
    return next(c for c in report["columns"] if (c["role"], c["column"]) == (role, name))


def _csv_column(path: Path, name: str) -> list[str]:
    with path.open(encoding="utf-8") as handle:
        return [row[name] for row in csv.DictReader(handle)]


def test_numeric_distribution_equals_numpy_bins(cancer: Cancer, capsys: Any) -> None:
    _, report = check_json(capsys, "--profile", cancer.profile, cancer.shifted)
    profile = load_profile(cancer.profile)
    for name in ("mean_radius", "worst_area", "mean_symmetry"):
        col = profile.column("feature", name)
        assert col is not None
        values = np.array([float(v) for v in _csv_column(cancer.shifted, name)])
        bins = np.searchsorted(col.coarse_edges, values, side="right")
        expected = np.bincount(bins, minlength=len(col.coarse_edges) + 1)
        d = _column(report, "feature", name)["distribution"]
        assert d["counts"] == expected.tolist()
        assert d["edges"] == col.coarse_edges
        assert d["reference"] == col.coarse_ratios
        assert d["bins"] == [str(i) for i in range(len(expected))]
        assert sum(d["counts"]) == _column(report, "feature", name)["values"]


def test_categorical_distribution_counts_each_class(cancer: Cancer, capsys: Any) -> None:
    _, report = check_json(capsys, "--profile", cancer.profile, cancer.test)
    d = _column(report, "prediction", "prediction")["distribution"]
    counts = Counter(str(int(p)) for p in cancer.pred_test)
    assert d["edges"] == []
    assert dict(zip(d["bins"], d["counts"], strict=True)) == {**counts, "__other__": 0}
    train = Counter(str(int(p)) for p in cancer.pred_train)
    shares = {k: v / cancer.pred_train.size for k, v in train.items()}
    for name, share in zip(d["bins"], d["reference"], strict=True):
        assert share == pytest.approx(shares.get(name, 0.0), abs=1e-12)


def test_noise_floor_is_the_effective_threshold_when_larger(cancer: Cancer, capsys: Any) -> None:
    """Distances: threshold = max(effect threshold, noise floor); with 285 values the
    floor of the Wasserstein distance is above 0.1 (docs/drift.md), so it decides."""
    _, report = check_json(
        capsys, "--profile", cancer.profile, cancer.test, "--method", "wasserstein"
    )
    floors = []
    for c in report["columns"]:
        drift = c["drift"]
        if drift["method"] != "wasserstein":
            assert drift["noise_floor"] is None  # p-value methods have no floor
            continue
        floors.append(drift["noise_floor"])
        assert drift["threshold"] == max(drift["effect_threshold"], drift["noise_floor"])
    assert floors
    assert all(f > 0.1 for f in floors)


def test_confusion_matrix_equals_sklearn(cancer: Cancer, capsys: Any) -> None:
    _, report = check_json(capsys, "--profile", cancer.profile, cancer.shifted)
    cm = report["performance"]["confusion_matrix"]
    assert cm["classes"] == ["0", "1"]  # no __other__: every class is the profile's
    expected = confusion_matrix(cancer.y_test, cancer.pred_shifted, labels=[0, 1])
    assert cm["counts"] == expected.tolist()


def test_roc_curve_points_equal_sklearn_at_their_thresholds(cancer: Cancer, capsys: Any) -> None:
    _, report = check_json(capsys, "--profile", cancer.profile, cancer.shifted)
    roc = report["performance"]["roc_curve"]
    y, proba = cancer.y_test, cancer.proba_shifted
    assert (roc["thresholds"][0], roc["fpr"][0], roc["tpr"][0]) == (None, 0.0, 0.0)
    assert (roc["fpr"][-1], roc["tpr"][-1]) == (1.0, 1.0)
    assert len(roc["fpr"]) == len(roc["tpr"]) == len(roc["thresholds"])
    for t, fpr, tpr in zip(roc["thresholds"][1:], roc["fpr"][1:], roc["tpr"][1:], strict=True):
        tn, fp, fn, tp = confusion_matrix(y, proba >= t, labels=[False, True]).ravel()
        assert (fpr, tpr) == (pytest.approx(fp / (fp + tn)), pytest.approx(tp / (tp + fn)))
    x, z = np.array(roc["fpr"]), np.array(roc["tpr"])
    area = float(np.sum(np.diff(x) * (z[1:] + z[:-1]) / 2))
    assert area == pytest.approx(report["performance"]["metrics"]["roc_auc"], abs=1e-12)
    assert area == pytest.approx(roc_auc_score(y, proba), abs=5e-3)


def test_calibration_curve_equals_sklearn(cancer: Cancer, capsys: Any) -> None:
    _, report = check_json(capsys, "--profile", cancer.profile, cancer.shifted)
    bins = report["performance"]["calibration_curve"]
    y, proba = cancer.y_test, cancer.proba_shifted
    prob_true, prob_pred = calibration_curve(y, proba, n_bins=10, strategy="uniform")
    assert [b["positive_rate"] for b in bins] == pytest.approx(prob_true.tolist(), abs=1e-12)
    # Mean scores come from the centres of 1000 score bins: within half a bin.
    assert [b["mean_score"] for b in bins] == pytest.approx(prob_pred.tolist(), abs=5e-4)
    rows, _ = np.histogram(proba, bins=np.linspace(0, 1, 11))
    assert [b["rows"] for b in bins] == rows[rows > 0].tolist()
    assert all(b["upper"] - b["lower"] == pytest.approx(0.1) for b in bins)


def test_multiclass_has_a_confusion_matrix_but_no_curves(tmp_path: Path, capsys: Any) -> None:
    data = load_iris()
    names = [str(n) for n in data.target_names]
    x_tr, x_te, y_tr, y_te = train_test_split(
        data.data, data.target, test_size=0.5, random_state=3, stratify=data.target
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05)).fit(x_tr, y_tr)
    header = ["a", "b", "c", "d", "pred", "y"]

    def rows(x: np.ndarray, y: np.ndarray) -> list[list[str]]:
        return [
            [*(repr(float(v)) for v in r), names[p], names[t]]
            for r, p, t in zip(x, model.predict(x), y, strict=True)
        ]

    train = write_csv(tmp_path / "train.csv", header, rows(x_tr, y_tr))
    test = write_csv(tmp_path / "test.csv", header, rows(x_te, y_te))
    profile = profile_of(train, tmp_path / "iris.profile.json", prediction="pred", label="y")
    _, report = check_json(capsys, "--profile", profile, test)
    perf = report["performance"]
    truth = [names[t] for t in y_te]
    predicted = [names[p] for p in model.predict(x_te)]
    classes = perf["confusion_matrix"]["classes"]
    assert sorted(classes) == sorted(names)
    assert (
        perf["confusion_matrix"]["counts"]
        == confusion_matrix(truth, predicted, labels=classes).tolist()
    )
    assert (perf["roc_curve"], perf["calibration_curve"]) == (None, [])


def test_regression_has_no_confusion_matrix(diabetes: Any, capsys: Any) -> None:
    profile, test, _, _ = diabetes
    _, report = check_json(capsys, "--profile", profile, test)
    perf = report["performance"]
    assert (perf["confusion_matrix"], perf["roc_curve"], perf["calibration_curve"]) == (
        None,
        None,
        [],
    )
