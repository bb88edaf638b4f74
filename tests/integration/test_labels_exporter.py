"""Ground truth through the running exporter, against scikit-learn on real data.

Predictions and their delayed labels go over HTTP exactly as a model would send them;
every counter and windowed gauge is compared with scikit-learn's metric on the same
pairs. The last test kills a real ``modelmon serve`` between predictions and labels.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import yaml
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    confusion_matrix,
    log_loss,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    precision_recall_fscore_support,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split

pytestmark = pytest.mark.integration

MODEL = "credit-risk"


def cancer_model() -> tuple[list[str], np.ndarray, np.ndarray, Any, Any]:
    data = load_breast_cancer()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.5, random_state=0
    )
    model = LogisticRegression(max_iter=5000).fit(x_train, y_train)
    names = [f"f{i}" for i in range(data.data.shape[1])]
    return names, x_test, y_test, model, (x_train, y_train)


def rows(names: list[str], x: np.ndarray, y: np.ndarray, model: Any) -> list[dict[str, Any]]:
    proba = model.predict_proba(x)[:, 1]
    out = []
    for i in range(len(y)):
        row: dict[str, Any] = {n: float(v) for n, v in zip(names, x[i], strict=True)}
        row.update(prediction=int(proba[i] >= 0.5), score=float(proba[i]), label=int(y[i]))
        out.append(row)
    return out


def post(url: str, kind: str, records: list[dict[str, Any]], model: str = MODEL) -> Any:
    response = requests.post(f"{url}/v1/models/{model}/{kind}", json=records, timeout=10)
    response.raise_for_status()
    return response.json()


def test_binary_performance_equals_scikit_learn(
    make_profile: Any, exporter_factory: Any, scrape: Any
) -> None:
    names, x_test, y_test, model, (x_train, y_train) = cancer_model()
    built = make_profile(
        rows(names, x_train, y_train, model),
        "cancer",
        prediction="prediction",
        score="score",
        label="label",
    )
    running = exporter_factory(reference=built.path, model={"min_window_events": 10})
    test_rows = rows(names, x_test, y_test, model)
    records = [
        {
            "id": f"r{i}",
            "features": {n: r[n] for n in names},
            "prediction": r["prediction"],
            "score": r["score"],
        }
        for i, r in enumerate(test_rows)
    ]
    # One label arrives before its prediction: it waits and joins when the prediction comes.
    early = post(running.url, "labels", [{"id": "r0", "label": test_rows[0]["label"]}])
    assert early["accepted"] == 1
    post(running.url, "predictions", records)
    order = np.random.default_rng(1).permutation(np.arange(1, len(test_rows)))
    labels = [{"id": f"r{i}", "label": test_rows[i]["label"]} for i in order]
    post(running.url, "labels", labels[: len(labels) // 2])
    post(running.url, "labels", labels[len(labels) // 2 :])
    duplicate = post(running.url, "labels", [labels[1], labels[0], labels[1]])
    assert duplicate["rejected"] == 3
    assert sorted(e["index"] for e in duplicate["errors"]) == [0, 1, 2]
    assert {e["reason"] for e in duplicate["errors"]} == {"duplicate_label"}
    running.app.refresher.refresh()
    s = scrape(running.url)

    y_pred = np.array([r["prediction"] for r in test_rows])
    y_score = np.array([r["score"] for r in test_rows])
    base = {"model": MODEL, "version": "v1"}
    windowed = {**base, "window": "5m"}
    n = len(test_rows)
    assert s.value("modelmon_labels_total", **base) == n
    assert s.value("modelmon_labeled_predictions_total", **base) == n
    assert s.value("modelmon_correct_predictions_total", **base) == int((y_pred == y_test).sum())
    cm = confusion_matrix(y_test, y_pred, labels=[0, 1])
    for a in (0, 1):
        for p in (0, 1):
            got = s.value("modelmon_confusion_total", **base, actual=str(a), predicted=str(p))
            assert got == cm[a, p]
    assert s.value("modelmon_accuracy", **windowed) == pytest.approx(accuracy_score(y_test, y_pred))
    precision, recall, f1, _ = precision_recall_fscore_support(y_test, y_pred, labels=[0, 1])
    for k, cls in enumerate(("0", "1")):
        assert s.value("modelmon_precision", **windowed, **{"class": cls}) == pytest.approx(
            precision[k]
        )
        assert s.value("modelmon_recall", **windowed, **{"class": cls}) == pytest.approx(recall[k])
        assert s.value("modelmon_f1", **windowed, **{"class": cls}) == pytest.approx(f1[k])
    assert s.value("modelmon_roc_auc", **windowed) == pytest.approx(
        roc_auc_score(y_test, y_score), abs=0.01
    )
    assert s.value("modelmon_log_loss", **windowed) == pytest.approx(
        log_loss(y_test, y_score), rel=1e-6
    )
    assert s.value("modelmon_brier_score", **windowed) == pytest.approx(
        brier_score_loss(y_test, y_score), rel=1e-9
    )
    assert s.value("modelmon_rejected_records_total", model=MODEL, reason="duplicate_label") == 3
    assert s.value("modelmon_pending_predictions", model=MODEL) == 0
    # The profile learned the reference baseline and a calibration map: both are exported.
    train_pred = (model.predict_proba(x_train)[:, 1] >= 0.5).astype(int)
    assert s.value("modelmon_reference_accuracy", **base) == pytest.approx(
        accuracy_score(y_train, train_pred)
    )
    estimate = s.value("modelmon_estimated_accuracy", **windowed)
    assert 0.85 < estimate <= 1.0


def test_regression_errors_equal_scikit_learn(
    make_profile: Any, exporter_factory: Any, scrape: Any
) -> None:
    data = load_diabetes()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.5, random_state=0
    )
    model = LinearRegression().fit(x_train, y_train)
    names = list(data.feature_names)

    def as_rows(x: np.ndarray, y: np.ndarray) -> list[dict[str, Any]]:
        pred = model.predict(x)
        return [
            {
                **{n: float(v) for n, v in zip(names, x[i], strict=True)},
                "prediction": float(pred[i]),
                "label": float(y[i]),
            }
            for i in range(len(y))
        ]

    built = make_profile(
        as_rows(x_train, y_train),
        "diabetes",
        prediction="prediction",
        label="label",
        task="regression",
    )
    running = exporter_factory(reference=built.path)
    test_rows = as_rows(x_test, y_test)
    post(
        running.url,
        "predictions",
        [
            {"id": f"d{i}", "features": {n: r[n] for n in names}, "prediction": r["prediction"]}
            for i, r in enumerate(test_rows)
        ],
    )
    post(
        running.url,
        "labels",
        [{"id": f"d{i}", "label": r["label"]} for i, r in enumerate(test_rows)],
    )
    running.app.refresher.refresh()
    s = scrape(running.url)
    y_pred = np.array([r["prediction"] for r in test_rows])
    windowed = {"model": MODEL, "version": "v1", "window": "5m"}
    assert s.value("modelmon_mae", **windowed) == pytest.approx(mean_absolute_error(y_test, y_pred))
    assert s.value("modelmon_rmse", **windowed) == pytest.approx(
        np.sqrt(mean_squared_error(y_test, y_pred))
    )
    assert s.value("modelmon_mape", **windowed) == pytest.approx(
        mean_absolute_percentage_error(y_test, y_pred)
    )
    base = {"model": MODEL, "version": "v1"}
    assert s.value("modelmon_absolute_error_count", **base) == len(y_test)
    assert s.value("modelmon_absolute_error_sum", **base) == pytest.approx(
        np.abs(y_test - y_pred).sum()
    )
    assert s.value("modelmon_squared_error_sum", **base) == pytest.approx(
        ((y_test - y_pred) ** 2).sum()
    )


def test_labels_join_once_after_the_exporter_is_killed(
    make_profile: Any, tmp_path: Path, scrape: Any
) -> None:
    """SIGKILL after the predictions and before their labels: every label still joins,
    exactly once, in the restarted process."""
    names, x_test, y_test, model, (x_train, y_train) = cancer_model()
    built = make_profile(
        rows(names, x_train, y_train, model),
        "cancer",
        prediction="prediction",
        score="score",
        label="label",
    )
    from realbin import free_port, wait_http

    port = free_port()
    config = {
        "listen": f"127.0.0.1:{port}",
        "state_dir": str(tmp_path / "state"),
        "collectors": {"gpu": False},
        "models": [
            {
                "name": MODEL,
                "version": "v1",
                "reference": str(built.path),
                "windows": ["5m"],
                "min_window_events": 10,
            }
        ],
    }
    path = tmp_path / "modelmon.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "modelmon", "serve", "--config", str(path)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    test_rows = rows(names, x_test, y_test, model)

    first = subprocess.Popen(argv, env=env, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"{url}/readyz", timeout=30)
        answer = post(
            url,
            "predictions",
            [
                {
                    "id": f"k{i}",
                    "features": {n: r[n] for n in names},
                    "prediction": r["prediction"],
                    "score": r["score"],
                }
                for i, r in enumerate(test_rows)
            ],
        )
        assert answer["accepted"] == len(test_rows)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)

    second = subprocess.Popen(argv, env=env, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"{url}/readyz", timeout=30)
        assert scrape(url).value("modelmon_pending_predictions", model=MODEL) == len(test_rows)
        labels = [{"id": f"k{i}", "label": r["label"]} for i, r in enumerate(test_rows)]
        assert post(url, "labels", labels)["accepted"] == len(labels)
        assert post(url, "labels", labels[:5])["rejected"] == 5  # resent: not counted again
        s = scrape(url)
        base = {"model": MODEL, "version": "v1"}
        assert s.value("modelmon_labels_total", **base) == len(test_rows)
        y_pred = np.array([r["prediction"] for r in test_rows])
        assert s.value("modelmon_correct_predictions_total", **base) == (y_pred == y_test).sum()
        assert s.value("modelmon_pending_predictions", model=MODEL) == 0
    finally:
        second.terminate()
        assert second.wait(timeout=20) == 0
