"""``modelmon check`` in process: drift, data quality, performance and gates on real data.

The model is scikit-learn's LogisticRegression on the breast cancer data: the training
half is the reference, the held-out half must pass and a shifted copy must fail.
Expected performance comes from scikit-learn on the same rows; expected quality counts
are counted by hand from the rows written.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    log_loss,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    precision_recall_fscore_support,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelmon.catalogue import BY_NAME
from modelmon.check import check, model_name
from modelmon.checking import METHODS
from modelmon.checking.mapping import score_classes
from modelmon.checking.push import CHECK_BY_NAME, check_registry
from modelmon.checking.values import categorical_column, numeric_column
from modelmon.cli import build_parser, main
from modelmon.config import ModelConfig
from modelmon.ingest import parse_predictions
from modelmon.model import ModelMonitor
from modelmon.profile import load_profile
from modelmon.profiling.builder import Roles, build_profile
from modelmon.stats import drift

FEATURE_SHIFT = 1.5  # the shifted copy multiplies the first 20 features by this


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def profile_of(path: Path, out: Path, **roles: Any) -> Path:
    build_profile([str(path)], Roles(**roles), progress=lambda _m: None).save(out)
    return out


@dataclass(frozen=True)
class Cancer:
    """Breast cancer CSVs: reference (training half), held-out half, shifted held-out."""

    profile: Path
    train: Path
    test: Path
    shifted: Path
    y_train: np.ndarray
    y_test: np.ndarray
    pred_train: np.ndarray
    pred_test: np.ndarray
    proba_test: np.ndarray
    proba_shifted: np.ndarray
    pred_shifted: np.ndarray
    features: list[str]


def _cancer_rows(model: Any, x: np.ndarray, y: np.ndarray) -> tuple[list[list[Any]], Any, Any]:
    pred = model.predict(x)
    proba = model.predict_proba(x)[:, 1]
    rows = [
        [*(repr(float(v)) for v in row), int(p), repr(float(s)), int(t)]
        for row, p, s, t in zip(x, pred, proba, y, strict=True)
    ]
    return rows, pred, proba


@pytest.fixture(scope="module")
def cancer(tmp_path_factory: pytest.TempPathFactory) -> Cancer:
    directory = tmp_path_factory.mktemp("cancer")
    data = load_breast_cancer()
    features = [n.replace(" ", "_") for n in data.feature_names]
    x_tr, x_te, y_tr, y_te = train_test_split(
        data.data, data.target, test_size=0.5, random_state=0, stratify=data.target
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x_tr, y_tr)
    header = [*features, "pred", "proba", "y"]
    train_rows, pred_tr, _ = _cancer_rows(model, x_tr, y_tr)
    test_rows, pred_te, proba_te = _cancer_rows(model, x_te, y_te)
    x_shift = x_te.copy()
    x_shift[:, :20] *= FEATURE_SHIFT
    shifted_rows, pred_sh, proba_sh = _cancer_rows(model, x_shift, y_te)
    train = write_csv(directory / "train.csv", header, train_rows)
    return Cancer(
        profile=profile_of(
            train, directory / "cancer.profile.json", prediction="pred", score="proba", label="y"
        ),
        train=train,
        test=write_csv(directory / "test.csv", header, test_rows),
        shifted=write_csv(directory / "shifted.csv", header, shifted_rows),
        y_train=y_tr,
        y_test=y_te,
        pred_train=pred_tr,
        pred_test=pred_te,
        proba_test=proba_te,
        proba_shifted=proba_sh,
        pred_shifted=pred_sh,
        features=features,
    )


def assert_close(actual: Any, expected: Any, path: str = "report") -> None:
    """Equal JSON documents, floats to 1e-9 relative (sums in another order differ in
    the last bits)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        assert set(actual) == set(expected), path
        for key in expected:
            assert_close(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), path
        assert len(actual) == len(expected), path
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_close(a, e, f"{path}[{i}]")
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, rel=1e-9, abs=1e-12), path
    else:
        assert actual == expected, path


def run_check(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main(["check", *(str(a) for a in args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def check_json(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, Any]:
    code, out, err = run_check(capsys, *args, "--format", "json")
    assert code in (0, 1), err
    return code, json.loads(out)


# --- the breast cancer model: pass, fail, and sklearn's numbers -------------------------------


def test_held_out_half_passes_without_dataset_drift(cancer: Cancer, capsys: Any) -> None:
    code, report = check_json(capsys, "--profile", cancer.profile, cancer.test)
    assert code == 0
    assert report["passed"] is True
    assert report["drift"]["dataset_drift"] is False
    assert report["drift"]["drift_share"] < 0.5
    assert report["data"]["rows"] == cancer.y_test.size
    assert report["drift"]["features"] == len(cancer.features)


def test_shifted_copy_drifts_and_fails(cancer: Cancer, capsys: Any) -> None:
    code, report = check_json(capsys, "--profile", cancer.profile, cancer.shifted)
    assert code == 1
    assert report["passed"] is False
    assert report["drift"]["dataset_drift"] is True
    drifted = {c["column"] for c in report["drift"]["drifted_columns"] if c["role"] == "feature"}
    # 20 of 30 features were scaled by 1.5: all of them must be flagged, and they are
    # enough for the default dataset share of 0.5.
    assert set(cancer.features[:20]) <= drifted
    assert report["gates"] == [
        {"name": "dataset-drift", "passed": False, "detail": report["gates"][0]["detail"]}
    ]


def test_fail_on_none_passes_drifted_data(cancer: Cancer, capsys: Any) -> None:
    code, report = check_json(
        capsys, "--profile", cancer.profile, cancer.shifted, "--fail-on", "none"
    )
    assert code == 0
    assert report["gates"] == []
    assert report["drift"]["dataset_drift"] is True


def test_method_and_threshold_options(cancer: Cancer, capsys: Any) -> None:
    _, report = check_json(
        capsys, "--profile", cancer.profile, cancer.test, "--method", "psi", "--threshold", "0.3"
    )
    for column in report["columns"]:
        assert (column["drift"]["method"], column["drift"]["threshold"]) == ("psi", 0.3)
        value = column["drift"]["statistics"]["psi"]
        assert column["drift"]["drifted"] is (value >= 0.3)
    _, report = check_json(capsys, "--profile", cancer.profile, cancer.test, "--method", "ks")
    methods = {c["role"]: c["drift"]["method"] for c in report["columns"]}
    # ks does not apply to the categorical prediction and label: they keep auto (chi2).
    assert methods == {"feature": "ks", "score": "ks", "prediction": "chi2", "label": "chi2"}


def test_fail_on_drift_fails_on_a_single_drifted_feature(cancer: Cancer, capsys: Any) -> None:
    code, report = check_json(capsys, "--profile", cancer.profile, cancer.shifted, "--share", "0.9")
    assert (code, report["drift"]["dataset_drift"]) == (0, False)  # 20/30 < 0.9
    code, report = check_json(
        capsys, "--profile", cancer.profile, cancer.shifted, "--share", "0.9", "--fail-on", "drift"
    )
    assert code == 1
    assert report["gates"][0]["name"] == "drift"


def test_drift_equals_the_exporter_on_the_same_records(cancer: Cancer, capsys: Any) -> None:
    """The check's numbers are the exporter's: a ModelMonitor fed the same rows as
    prediction records reads the same statistics from its vector."""
    _, report = check_json(capsys, "--profile", cancer.profile, cancer.shifted)
    profile = load_profile(cancer.profile)
    monitor = ModelMonitor(ModelConfig(name="cancer", reference=cancer.profile), profile)
    with cancer.shifted.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    records = [
        {
            "features": {k: float(v) for k, v in r.items() if k in cancer.features},
            "prediction": int(r["pred"]),
            "score": float(r["proba"]),
            "label": int(r["y"]),
        }
        for r in rows
    ]
    batch, _ = parse_predictions(records, regression=False, default_version="v", now=0.0)
    exporter = monitor.verdicts.report(monitor.encode(batch), 0.5)
    assert len(exporter.columns) == len(report["columns"])
    for reading, column in zip(exporter.columns, report["columns"], strict=True):
        assert (reading.role, reading.column) == (column["role"], column["column"])
        assert column["drift"]["drifted"] is reading.drifted
        for name, value in reading.statistics.items():
            assert column["drift"]["statistics"][name] == pytest.approx(value, rel=1e-12)


def test_psi_of_a_feature_by_hand(cancer: Cancer, capsys: Any) -> None:
    _, report = check_json(capsys, "--profile", cancer.profile, cancer.shifted)
    col = load_profile(cancer.profile).column("feature", "mean_radius")
    assert col is not None
    with cancer.shifted.open(encoding="utf-8") as handle:
        values = np.array([float(r["mean_radius"]) for r in csv.DictReader(handle)])
    counts = np.bincount(
        np.searchsorted(col.coarse_edges, values, side="right"), minlength=len(col.coarse_ratios)
    )
    c = np.maximum(counts / counts.sum(), 1e-4)
    r = np.maximum(np.array(col.coarse_ratios), 1e-4)
    psi = float(np.sum((c - r) * np.log(c / r)))
    reported = next(x for x in report["columns"] if x["column"] == "mean_radius")
    assert reported["drift"]["statistics"]["psi"] == pytest.approx(psi, rel=1e-12)


def test_performance_equals_sklearn(cancer: Cancer, capsys: Any) -> None:
    _, report = check_json(capsys, "--profile", cancer.profile, cancer.test)
    perf = report["performance"]
    y, pred, proba = cancer.y_test, cancer.pred_test, cancer.proba_test
    assert perf["rows"] == y.size
    assert perf["metrics"]["accuracy"] == pytest.approx(accuracy_score(y, pred), abs=1e-12)
    assert perf["metrics"]["log_loss"] == pytest.approx(log_loss(y, proba), rel=1e-9)
    assert perf["metrics"]["brier_score"] == pytest.approx(brier_score_loss(y, proba), rel=1e-9)
    # ROC AUC is read from 1000 equal-width score bins: it is sklearn's AUC of the bin
    # indices (ties count half), and close to the exact AUC.
    bins = np.minimum(np.floor(np.clip(proba, 0, 1) * 1000), 999)
    assert perf["metrics"]["roc_auc"] == pytest.approx(roc_auc_score(y, bins), abs=1e-12)
    assert perf["metrics"]["roc_auc"] == pytest.approx(roc_auc_score(y, proba), abs=5e-3)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y, pred, labels=[0, 1], average=None, zero_division=0
    )
    for i, cls in enumerate(("0", "1")):
        assert perf["classes"][cls]["precision"] == pytest.approx(precision[i], abs=1e-12)
        assert perf["classes"][cls]["recall"] == pytest.approx(recall[i], abs=1e-12)
        assert perf["classes"][cls]["f1"] == pytest.approx(f1[i], abs=1e-12)


def test_reference_baselines_and_deltas(cancer: Cancer, capsys: Any) -> None:
    _, report = check_json(capsys, "--profile", cancer.profile, cancer.test)
    perf = report["performance"]
    reference = accuracy_score(cancer.y_train, cancer.pred_train)
    now = accuracy_score(cancer.y_test, cancer.pred_test)
    assert perf["reference"]["accuracy"] == pytest.approx(reference, abs=1e-12)
    assert perf["delta"]["accuracy"] == pytest.approx(now - reference, abs=1e-12)


def test_estimated_performance_is_reported_with_scores(cancer: Cancer, capsys: Any) -> None:
    _, report = check_json(capsys, "--profile", cancer.profile, cancer.test)
    est = report["estimated_performance"]
    assert est["rows"] == cancer.y_test.size
    # A well calibrated model on unshifted data: the estimate is near the real accuracy.
    assert est["accuracy"] == pytest.approx(
        accuracy_score(cancer.y_test, cancer.pred_test), abs=0.03
    )


# --- performance gates, both sides of each bound ---------------------------------------------


def test_min_accuracy_gate_both_sides(cancer: Cancer, capsys: Any) -> None:
    accuracy = accuracy_score(cancer.y_test, cancer.pred_test)
    base = ["--profile", cancer.profile, cancer.test]
    code, report = check_json(capsys, *base, "--min-accuracy", repr(float(accuracy) - 1e-6))
    assert code == 0
    assert report["gates"][-1]["name"] == "min-accuracy"
    assert report["gates"][-1]["passed"] is True
    code, report = check_json(capsys, *base, "--min-accuracy", repr(float(accuracy) + 1e-6))
    assert code == 1
    assert report["gates"][-1]["passed"] is False
    assert report["gates"][0]["passed"] is True  # the drift gate still passes


def test_max_accuracy_drop_gate_both_sides(cancer: Cancer, capsys: Any) -> None:
    drop = accuracy_score(cancer.y_train, cancer.pred_train) - accuracy_score(
        cancer.y_test, cancer.pred_test
    )
    assert drop > 0  # the held-out half is a little worse than the training half
    base = ["--profile", cancer.profile, cancer.test]
    assert check_json(capsys, *base, "--max-accuracy-drop", repr(float(drop) + 1e-6))[0] == 0
    assert check_json(capsys, *base, "--max-accuracy-drop", repr(float(drop) - 1e-6))[0] == 1


def test_min_roc_auc_gate_both_sides(cancer: Cancer, capsys: Any) -> None:
    bins = np.minimum(np.floor(cancer.proba_test * 1000), 999)
    auc = roc_auc_score(cancer.y_test, bins)
    base = ["--profile", cancer.profile, cancer.test]
    assert check_json(capsys, *base, "--min-roc-auc", repr(float(auc) - 1e-6))[0] == 0
    assert check_json(capsys, *base, "--min-roc-auc", repr(float(auc) + 1e-6))[0] == 1


def test_prediction_drift_gate_for_a_candidate(cancer: Cancer, capsys: Any) -> None:
    # The shifted copy changes the model's predictions and scores: pre-launch validation
    # of such a candidate fails on prediction drift, even with dataset drift ignored.
    # With a 284-row reference the score's shift (KS p about 0.003) is significant at a
    # 5% family-wise level over the 33 columns, not at the default 1%.
    code, report = check_json(
        capsys,
        "--profile",
        cancer.profile,
        cancer.shifted,
        "--fail-on",
        "prediction-drift",
        "--alpha",
        "0.05",
    )
    assert code == 1
    assert [g["name"] for g in report["gates"]] == ["prediction-drift"]
    code, report = check_json(
        capsys, "--profile", cancer.profile, cancer.test, "--fail-on", "prediction-drift"
    )
    assert code == 0


# --- regression and multiclass ----------------------------------------------------------------


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray, Any]:
    directory = tmp_path_factory.mktemp("diabetes")
    data = load_diabetes()
    x_tr, x_te, y_tr, y_te = train_test_split(data.data, data.target, test_size=0.5, random_state=1)
    model = LinearRegression().fit(x_tr, y_tr)
    header = [*data.feature_names, "pred", "y"]

    def rows(x: np.ndarray, y: np.ndarray) -> list[list[str]]:
        return [
            [*(repr(float(v)) for v in r), repr(float(p)), repr(float(t))]
            for r, p, t in zip(x, model.predict(x), y, strict=True)
        ]

    train = write_csv(directory / "train.csv", header, rows(x_tr, y_tr))
    test = write_csv(directory / "test.csv", header, rows(x_te, y_te))
    profile = profile_of(train, directory / "diabetes.profile.json", prediction="pred", label="y")
    return profile, test, y_te, model.predict(x_te)


def test_regression_metrics_equal_sklearn(diabetes: Any, capsys: Any) -> None:
    profile, test, y, pred = diabetes
    _, report = check_json(capsys, "--profile", profile, test)
    metrics = report["performance"]["metrics"]
    assert set(metrics) == {"mae", "rmse", "mape"}
    assert metrics["mae"] == pytest.approx(mean_absolute_error(y, pred), rel=1e-9)
    assert metrics["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y, pred)), rel=1e-9)
    assert metrics["mape"] == pytest.approx(mean_absolute_percentage_error(y, pred), rel=1e-9)


@pytest.mark.parametrize(("option", "oracle"), [("--max-mae", "mae"), ("--max-rmse", "rmse")])
def test_regression_gates_both_sides(diabetes: Any, capsys: Any, option: str, oracle: str) -> None:
    profile, test, y, pred = diabetes
    value = (
        mean_absolute_error(y, pred) if oracle == "mae" else np.sqrt(mean_squared_error(y, pred))
    )
    base = ["--profile", profile, test]
    assert check_json(capsys, *base, option, repr(float(value) * (1 + 1e-6)))[0] == 0
    assert check_json(capsys, *base, option, repr(float(value) * (1 - 1e-6)))[0] == 1


def test_multiclass_scores_metrics_equal_sklearn(tmp_path: Path, capsys: Any) -> None:
    data = load_iris()
    names = [str(n) for n in data.target_names]
    x_tr, x_te, y_tr, y_te = train_test_split(
        data.data, data.target, test_size=0.5, random_state=2, stratify=data.target
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x_tr, y_tr)
    header = ["a", "b", "c", "d", "pred", *(f"proba_{n}" for n in names), "y"]

    def rows(x: np.ndarray, y: np.ndarray) -> list[list[str]]:
        proba = model.predict_proba(x)
        return [
            [*(repr(float(v)) for v in r), names[p], *(repr(float(s)) for s in ps), names[t]]
            for r, p, ps, t in zip(x, model.predict(x), proba, y, strict=True)
        ]

    train = write_csv(tmp_path / "train.csv", header, rows(x_tr, y_tr))
    test = write_csv(tmp_path / "test.csv", header, rows(x_te, y_te))
    scores = [f"proba_{n}" for n in names]
    profile = profile_of(
        train, tmp_path / "iris.profile.json", prediction="pred", scores=scores, label="y"
    )
    _, report = check_json(capsys, "--profile", profile, test)
    perf = report["performance"]
    truth = [names[t] for t in y_te]
    predicted = [names[p] for p in model.predict(x_te)]
    assert perf["metrics"]["accuracy"] == pytest.approx(accuracy_score(truth, predicted), abs=1e-12)
    assert perf["metrics"]["log_loss"] == pytest.approx(
        log_loss(truth, model.predict_proba(x_te), labels=names), rel=1e-9
    )
    assert perf["metrics"]["roc_auc"] is None  # binary only
    precision, recall, _, _ = precision_recall_fscore_support(
        truth, predicted, labels=names, average=None, zero_division=0
    )
    for i, cls in enumerate(names):
        assert perf["classes"][cls]["precision"] == pytest.approx(precision[i], abs=1e-12)
        assert perf["classes"][cls]["recall"] == pytest.approx(recall[i], abs=1e-12)
    assert {c["column"] for c in report["columns"] if c["role"] == "score"} == set(names)


# --- data quality, absent and renamed columns ------------------------------------------------


@pytest.fixture
def small_profile(tmp_path: Path) -> Path:
    """age 20..69 (numeric), country DE/FR (categorical), prediction, score, label."""
    rows = [
        [20 + i % 50, "DE" if i % 3 else "FR", i % 2, repr((i % 10) / 10 + 0.05), i % 2]
        for i in range(300)
    ]
    data = write_csv(tmp_path / "ref.csv", ["age", "country", "pred", "proba", "y"], rows)
    return profile_of(
        data, tmp_path / "small.profile.json", prediction="pred", score="proba", label="y"
    )


def test_data_quality_counts(small_profile: Path, tmp_path: Path, capsys: Any) -> None:
    rows = [
        ["30", "DE", "1", "0.5", "1"],
        ["", "FR", "0", "0.5", ""],  # age missing, label missing
        ["NA", "", "0", "0.5", "0"],  # age missing, country missing
        ["hot", "DE", "", "0.5", "1"],  # age type error, prediction missing
        ["200", "IT", "1", "0.5", "1"],  # age out of range, country unseen
        ["-5", "ES", "1", "0.5", "0"],  # age out of range, country unseen
        ["inf", "DE", "1", "0.5", "0"],  # age out of range (infinite)
    ]
    data = write_csv(tmp_path / "batch.csv", ["age", "country", "pred", "proba", "y"], rows)
    _, report = check_json(capsys, "--profile", small_profile, data, "--fail-on", "none")
    by_name = {(c["role"], c["column"]): c for c in report["columns"]}
    age = by_name[("feature", "age")]["quality"]
    country = by_name[("feature", "country")]["quality"]
    assert {k: age[k] for k in ("missing", "out_of_range", "type_errors")} == {
        "missing": 2,
        "out_of_range": 3,
        "type_errors": 1,
    }
    assert age["missing_share"] == pytest.approx(2 / 7)
    assert {k: country[k] for k in ("missing", "unseen", "type_errors")} == {
        "missing": 1,
        "unseen": 2,
        "type_errors": 0,
    }
    assert by_name[("feature", "age")]["values"] == 3  # 30, 200, -5 are binned
    assert by_name[("label", "label")]["quality"]["missing"] == 1
    assert by_name[("prediction", "prediction")]["quality"]["missing"] == 1
    # Rows without a label or a prediction are left out of performance; rows without a
    # prediction out of the estimate.
    assert report["performance"]["rows"] == 5
    assert report["estimated_performance"]["rows"] == 6


def test_absent_feature_counts_as_missing_and_is_listed(
    small_profile: Path, tmp_path: Path, capsys: Any
) -> None:
    rows = [["DE", "1", "0.5", "1", "x"]] * 4
    data = write_csv(tmp_path / "batch.csv", ["country", "pred", "proba", "y", "extra"], rows)
    _, report = check_json(capsys, "--profile", small_profile, data, "--fail-on", "none")
    age = next(c for c in report["columns"] if c["column"] == "age")
    assert (age["present"], age["values"], age["drift"]) == (False, 0, None)
    assert age["quality"]["missing"] == 4
    assert report["data"]["absent_columns"] == [
        {"role": "feature", "column": "age", "source": "age"}
    ]
    assert report["data"]["unknown_columns"] == ["extra"]


def test_renamed_columns_are_mapped_with_options(
    cancer: Cancer, tmp_path: Path, capsys: Any
) -> None:
    with cancer.test.open(encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    renamed = [{"pred": "pred_v2", "proba": "p_v2", "y": "target"}.get(h, h) for h in header]
    batch = write_csv(tmp_path / "renamed.csv", renamed, rows)
    _, plain = check_json(capsys, "--profile", cancer.profile, batch, "--fail-on", "none")
    assert plain["performance"] is None
    assert {c["source"] for c in plain["data"]["absent_columns"]} == {"pred", "proba", "y"}
    options = ["--prediction", "pred_v2", "--score", "p_v2", "--label", "target"]
    _, mapped = check_json(capsys, "--profile", cancer.profile, batch, *options)
    _, original = check_json(capsys, "--profile", cancer.profile, cancer.test)
    assert_close(mapped["performance"], original["performance"])
    assert mapped["columns"][-3:] == [
        {**c, "source": {"pred": "pred_v2", "proba": "p_v2", "y": "target"}[c["source"]]}
        for c in original["columns"][-3:]
    ]


def test_jsonl_input_gives_the_same_report_as_csv(
    cancer: Cancer, tmp_path: Path, capsys: Any
) -> None:
    with cancer.test.open(encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    jsonl = tmp_path / "test.jsonl"
    typed = [
        {k: (int(v) if k in ("pred", "y") else float(v)) for k, v in r.items()} for r in records
    ]
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in typed), encoding="utf-8")
    _, from_csv = check_json(capsys, "--profile", cancer.profile, cancer.test)
    _, from_jsonl = check_json(capsys, "--profile", cancer.profile, jsonl)
    for report in (from_csv, from_jsonl):
        report["data"]["files"] = []
    assert_close(from_jsonl, from_csv)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_chunking_does_not_change_the_report(
    cancer: Cancer, tmp_path: Path, capsys: Any, suffix: str
) -> None:
    """Vectors are additive: reading in chunks of 7 rows gives the one-chunk report."""
    data = cancer.test
    if suffix == ".jsonl":
        with cancer.test.open(encoding="utf-8") as handle:
            records = list(csv.DictReader(handle))
        data = tmp_path / "test.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    _, whole = check_json(capsys, "--profile", cancer.profile, data, "--chunk-rows", "100000")
    _, chunked = check_json(capsys, "--profile", cancer.profile, data, "--chunk-rows", "7")
    assert_close(chunked, whole)


def test_several_files_add_up(cancer: Cancer, tmp_path: Path, capsys: Any) -> None:
    with cancer.test.open(encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    first = write_csv(tmp_path / "a.csv", header, rows[:100])
    second = write_csv(tmp_path / "b.csv", header, rows[100:])
    _, split = check_json(capsys, "--profile", cancer.profile, first, second)
    _, whole = check_json(capsys, "--profile", cancer.profile, cancer.test)
    assert split["data"]["rows"] == whole["data"]["rows"]
    assert_close(split["columns"], whole["columns"])
    assert_close(split["performance"], whole["performance"])


# --- JSON schema, Markdown and text ----------------------------------------------------------

TOP_KEYS = {
    "schema_version",
    "modelmon_version",
    "passed",
    "exit_code",
    "model",
    "version",
    "profile",
    "data",
    "drift",
    "columns",
    "performance",
    "estimated_performance",
    "gates",
}
COLUMN_KEYS = {
    "role",
    "column",
    "source",
    "type",
    "present",
    "values",
    "drift",
    "quality",
    "distribution",
}
DRIFT_KEYS = {
    "method",
    "statistic",
    "value",
    "threshold",
    "effect_threshold",
    "pvalue",
    "level",
    "noise_floor",
    "drifted",
    "statistics",
}


def test_json_schema_is_stable(cancer: Cancer, capsys: Any) -> None:
    _, report = check_json(
        capsys, "--profile", cancer.profile, cancer.test, "--min-accuracy", "0.5"
    )
    assert set(report) == TOP_KEYS
    assert report["schema_version"] == 1
    assert (report["passed"], report["exit_code"]) == (True, 0)
    assert report["model"] == "cancer"  # cancer.profile.json less .profile.json
    assert report["version"] == "candidate"
    assert set(report["profile"]) == {"path", "task", "rows"}
    assert set(report["data"]) == {"files", "rows", "absent_columns", "unknown_columns"}
    assert set(report["drift"]) == {
        "method",
        "threshold",
        "share_threshold",
        "alpha",
        "features",
        "drifted_features",
        "drift_share",
        "dataset_drift",
        "drifted_columns",
    }
    for column in report["columns"]:
        assert set(column) == COLUMN_KEYS
        assert set(column["drift"]) == DRIFT_KEYS
        kinds = ("out_of_range",) if column["type"] == "numeric" else ("unseen",)
        names = {"missing", "type_errors", *kinds}
        assert set(column["quality"]) == names | {f"{n}_share" for n in names}
    assert [c["role"] for c in report["columns"]].count("feature") == 30
    assert set(report["performance"]) == {
        "rows",
        "metrics",
        "reference",
        "delta",
        "classes",
        "confusion_matrix",
        "roc_curve",
        "calibration_curve",
    }
    for part in ("metrics", "reference", "delta"):
        assert set(report["performance"][part]) == {
            "accuracy",
            "roc_auc",
            "log_loss",
            "brier_score",
        }
    assert set(report["performance"]["classes"]["1"]) == {"precision", "recall", "f1"}
    assert set(report["estimated_performance"]) == {"rows", "accuracy", "roc_auc", "reference"}
    for gate in report["gates"]:
        assert set(gate) == {"name", "passed", "detail"}
    assert [g["name"] for g in report["gates"]] == ["dataset-drift", "min-accuracy"]


def _tables(markdown: str) -> list[list[str]]:
    """Consecutive ``|`` lines of a Markdown document, table by table."""
    tables: list[list[str]] = []
    current: list[str] = []
    for line in markdown.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def _cells(line: str) -> int:
    return len(line.replace("\\|", "").strip().strip("|").split("|"))


def test_markdown_puts_the_verdict_and_drifted_columns_first(cancer: Cancer, capsys: Any) -> None:
    code, out, _ = run_check(
        capsys, "--profile", cancer.profile, cancer.shifted, "--format", "markdown"
    )
    assert code == 1
    assert out.startswith("**FAIL**")
    assert "dataset-drift" in out.splitlines()[0]
    assert out.index("### Drifted columns") < out.index("### Performance") < out.index("### Gates")
    tables = _tables(out)
    for table in tables:
        assert table[1].startswith("| ---")
        assert len({_cells(row) for row in table}) == 1, table
    _, report = check_json(capsys, "--profile", cancer.profile, cancer.shifted)
    drifted = tables[0][2:]
    assert len(drifted) == len(report["drift"]["drifted_columns"])
    assert {row.split("|")[2].strip() for row in drifted} >= set(cancer.features[:20])


def test_markdown_pass_says_no_column_drifted(cancer: Cancer, capsys: Any) -> None:
    code, out, _ = run_check(
        capsys, "--profile", cancer.profile, cancer.test, "--format", "markdown"
    )
    lines = out.splitlines()
    assert code == 0
    assert lines[0].startswith("**PASS**")
    _, report = check_json(capsys, "--profile", cancer.profile, cancer.test)
    assert report["drift"]["drifted_columns"] == []
    assert lines[lines.index("### Drifted columns") + 2] == "No column drifted."


def test_markdown_tables_stop_at_200_rows(tmp_path: Path, capsys: Any) -> None:
    rng = np.random.default_rng(5)
    names = [f"f{i:03d}" for i in range(210)]
    reference = write_csv(tmp_path / "wide.csv", names, rng.normal(size=(60, 210)).tolist())
    batch = write_csv(tmp_path / "batch.csv", names, (rng.normal(size=(60, 210)) + 5).tolist())
    profile = profile_of(reference, tmp_path / "wide.profile.json")
    code, out, _ = run_check(capsys, "--profile", profile, batch, "--format", "markdown")
    assert code == 1
    tables = _tables(out)
    assert [len(t) - 2 for t in tables] == [200, 1, 200]  # drifted, gates, all columns
    assert out.count("... and 10 more columns: see the JSON report") == 2


def test_text_report_lists_every_column_and_the_verdict(cancer: Cancer, capsys: Any) -> None:
    code, out, _ = run_check(capsys, "--profile", cancer.profile, cancer.test)
    assert code == 0
    assert out.splitlines()[0].startswith("modelmon check: PASS")
    assert out.rstrip().endswith("modelmon check: PASS")
    for name in cancer.features:
        assert f" {name} " in out
    assert "prediction (pred)" in out


def test_output_option_writes_the_report(cancer: Cancer, tmp_path: Path, capsys: Any) -> None:
    target = tmp_path / "report.json"
    code, out, _ = run_check(
        capsys, "--profile", cancer.profile, cancer.test, "--format", "json", "-o", target
    )
    assert (code, out) == (0, "")
    assert json.loads(target.read_text(encoding="utf-8"))["passed"] is True


# --- usage and input errors: exit 2 with the file, line and column named ---------------------


def test_bad_row_names_file_and_line(cancer: Cancer, tmp_path: Path, capsys: Any) -> None:
    lines = cancer.test.read_text(encoding="utf-8").splitlines()
    lines[4] = "1,2,3"
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out, err = run_check(capsys, "--profile", cancer.profile, bad)
    assert (code, out) == (2, "")
    assert str(bad) in err
    assert "line 5" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--prediction", "nope"], "'nope' (from --prediction) not found"),
        (["--scores", "a,b"], "--scores: the profile has no multiclass score columns"),
        (["--max-mae", "3"], "--max-mae: applies to regression models"),
        (["--fail-on", "dataset-drift,bogus"], "--fail-on: 'bogus' is not one of"),
        (["--fail-on", "none,drift"], "'none' cannot be combined"),
        (["--threshold", "0.3"], "--threshold: give --method too"),
    ],
)
def test_usage_errors_exit_2(cancer: Cancer, capsys: Any, extra: list[str], message: str) -> None:
    code, out, err = run_check(capsys, "--profile", cancer.profile, cancer.test, *extra)
    assert (code, out) == (2, "")
    assert message in err


def test_gate_without_labels_is_a_usage_error(cancer: Cancer, tmp_path: Path, capsys: Any) -> None:
    with cancer.test.open(encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    unlabeled = write_csv(tmp_path / "unlabeled.csv", header[:-1], [r[:-1] for r in rows])
    code, _, err = run_check(
        capsys, "--profile", cancer.profile, unlabeled, "--min-accuracy", "0.9"
    )
    assert code == 2
    assert "--min-accuracy: the data gives no accuracy" in err


def test_missing_profile_and_data_exit_2(cancer: Cancer, tmp_path: Path, capsys: Any) -> None:
    code, _, err = run_check(capsys, "--profile", tmp_path / "none.json", cancer.test)
    assert code == 2
    assert "none.json" in err
    code, _, err = run_check(capsys, "--profile", cancer.profile, tmp_path / "none.csv")
    assert code == 2
    assert "none.csv: no such file" in err


# --- small pieces -----------------------------------------------------------------------------


def test_numeric_column_reads_profile_text() -> None:
    values, errors = numeric_column(["1.5", " 2 ", "", "NA", "null", "x", "inf", "nan"])
    assert errors == 1
    np.testing.assert_array_equal(
        values, [1.5, 2.0, np.nan, np.nan, np.nan, np.nan, np.inf, np.nan]
    )
    values, errors = numeric_column([1, 2.5, None, True])  # JSON values
    np.testing.assert_array_equal(values, [1.0, 2.5, np.nan, 1.0])
    assert errors == 0


def test_class_columns_read_numbers_as_classes() -> None:
    assert categorical_column(["1.0", "1", 1, 1.0, "yes", "", True], classes=True) == (
        ["1", "1", "1", "1", "yes", None, "true"],
        0,
    )
    assert categorical_column(["1.0", "x" * 300, [1]], classes=False) == (["1.0", None, None], 2)


def test_score_classes_strip_the_common_prefix() -> None:
    assert score_classes(["p_a", "p_b", "c=q"]) == {"a": "p_a", "b": "p_b", "c": "q"}
    assert score_classes(["x"]) == {"x": "x"}


def test_cli_choices_match_the_core() -> None:
    assert METHODS == drift.METHODS


def test_model_name_defaults_to_the_profile_stem() -> None:
    assert model_name("/a/b/credit-risk.profile.json") == "credit-risk"
    assert model_name("m.v2.json") == "m.v2"


def test_pushed_families_use_catalogue_names_and_labels(cancer: Cancer, capsys: Any) -> None:
    args = build_parser().parse_args(
        ["check", "--profile", str(cancer.profile), str(cancer.shifted)]
    )
    result = check(args)
    text = generate_latest(check_registry(result, 1_700_000_000.0)).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name, family in families.items():
        spec = BY_NAME.get(name) or CHECK_BY_NAME[name]
        assert family.documentation == spec.help
        for sample in family.samples:
            assert set(sample.labels) == set(spec.labels)
            assert sample.labels["model"] == "cancer"
            if "window" in spec.labels:
                assert sample.labels["window"] == "check"
    assert families["modelmon_check_passed"].samples[0].value == 0.0
    assert families["modelmon_dataset_drift_detected"].samples[0].value == 1.0
    drifted = {
        s.labels["column"]
        for s in families["modelmon_drift_detected"].samples
        if s.value == 1.0 and s.labels["role"] == "feature"
    }
    assert set(cancer.features[:20]) <= drifted
    accuracy = accuracy_score(cancer.y_test, cancer.pred_shifted)
    assert families["modelmon_accuracy"].samples[0].value == pytest.approx(accuracy, abs=1e-12)
