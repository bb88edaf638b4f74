"""In-process mode: ``modelmon.Monitor`` runs the same exporter inside the caller."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

import modelmon
from modelmon.profiling.builder import Roles, build_profile

pytestmark = pytest.mark.integration


@pytest.fixture
def profile_path(tmp_path: Path) -> Path:
    rng = np.random.default_rng(5)
    data = tmp_path / "reference.csv"
    with data.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["x", "colour", "pred", "score", "y"])
        for _ in range(2000):
            x = float(rng.normal())
            score = 1 / (1 + np.exp(-2 * x))
            writer.writerow(
                [
                    round(x, 5),
                    rng.choice(["red", "blue"]),
                    int(score > 0.5),
                    round(float(score), 4),
                    int(rng.random() < score),
                ]
            )
    profile = build_profile(
        [str(data)], Roles(prediction="pred", score="score", label="y"), progress=lambda _m: None
    )
    path = tmp_path / "m.profile.json"
    profile.save(path)
    return path


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = requests.get(f"{url}/metrics", timeout=5).text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def config(profile_path: Path) -> dict[str, object]:
    return {
        "collectors": {"gpu": False},
        "models": [
            {
                "name": "m",
                "reference": str(profile_path),
                "version": "v1",
                "windows": ["5m"],
                "min_window_events": 50,
            }
        ],
    }


def test_monitor_serves_metrics_of_logged_records(profile_path: Path) -> None:
    rng = np.random.default_rng(9)
    with modelmon.Monitor(config(profile_path), listen="127.0.0.1:0") as monitor:
        url = f"http://127.0.0.1:{monitor.port}"
        for i in range(400):
            x = float(rng.normal(loc=2.0))  # shifted: drift on x
            monitor.log_prediction({"x": x, "colour": "red"}, prediction=1, score=0.9, id=f"r{i}")
        for i in range(100):
            monitor.log_label(f"r{i}", 1 if i % 4 else 0)
        monitor.flush()
        monitor.exporter.refresher.refresh()
        got = samples(url)
    assert got[("modelmon_events_total", (("model", "m"), ("version", "v1")))] == 400
    assert got[("modelmon_labels_total", (("model", "m"), ("version", "v1")))] == 100
    key = (("model", "m"), ("version", "v1"), ("window", "5m"))
    assert got[("modelmon_accuracy", key)] == pytest.approx(0.75)
    x_drift = (
        ("column", "x"),
        ("model", "m"),
        ("role", "feature"),
        ("version", "v1"),
        ("window", "5m"),
    )
    assert got[("modelmon_drift_detected", x_drift)] == 1.0
    assert monitor.dropped == 0


def test_monitor_drops_and_counts_when_its_queue_is_full(profile_path: Path) -> None:
    monitor = modelmon.Monitor(config(profile_path), listen="127.0.0.1:0", queue_size=10)
    # Not started: nothing drains the queue, so the 11th record on is dropped.
    for _ in range(15):
        monitor.log_prediction({"x": 0.1}, prediction=0, score=0.2)
    assert monitor.dropped == 5
    monitor.flush()
    with monitor.exporter.monitors["m"].lock:
        events = monitor.exporter.monitors["m"].versions["v1"].cumulative[0]
    assert events == 10
