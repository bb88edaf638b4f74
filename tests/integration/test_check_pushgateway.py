"""``modelmon check --push-gateway`` against the real Prometheus Pushgateway.

The check runs as a subprocess and pushes; the test then reads the Pushgateway's own
``/metrics`` and checks the grouping labels (job ``modelmon_check``, model, version),
the ``window="check"`` label and the values, against the JSON report of the same run and
against scikit-learn. Without the ``prometheus-pushgateway`` binary the tests skip, and
fail under ``CI=true``.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from realbin import free_port, require_binary, running, wait_http
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def modelmon(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelmon", *(str(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = require_binary("prometheus-pushgateway", "pushgateway")
    port = free_port()
    # Its own persistence file: Debian's build may default to a shared one, and pushes
    # of an earlier run must not reappear here.
    state = tmp_path_factory.mktemp("pushgateway") / "pushgateway.data"
    argv = [binary, f"--web.listen-address=127.0.0.1:{port}", f"--persistence.file={state}"]
    with running(argv) as process:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/-/ready", timeout=20, process=process)
        yield url


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("check-push")
    data = load_breast_cancer()
    x_tr, x_te, y_tr, y_te = train_test_split(
        data.data, data.target, test_size=0.5, random_state=0, stratify=data.target
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x_tr, y_tr)
    header = [*(n.replace(" ", "_") for n in data.feature_names), "pred", "proba", "y"]

    def write(name: str, x: np.ndarray, y: np.ndarray) -> Path:
        path = directory / name
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            proba = model.predict_proba(x)[:, 1]
            for r, p, s, t in zip(x, model.predict(x), proba, y, strict=True):
                writer.writerow([*(repr(float(v)) for v in r), p, repr(float(s)), t])
        return path

    shifted = x_te.copy()
    shifted[:, :20] *= 1.5
    train = write("train.csv", x_tr, y_tr)
    profile = directory / "cancer.profile.json"
    made = modelmon(
        "profile", train, "-o", profile, "--prediction", "pred", "--score", "proba", "--label", "y"
    )
    assert made.returncode == 0, made.stderr
    return {
        "profile": profile,
        "test": write("test.csv", x_te, y_te),
        "shifted": write("shifted.csv", shifted, y_te),
        "accuracy_test": float(accuracy_score(y_te, model.predict(x_te))),
        "accuracy_shifted": float(accuracy_score(y_te, model.predict(shifted))),
    }


def gateway_samples(url: str) -> Samples:
    response = requests.get(f"{url}/metrics", timeout=10)
    response.raise_for_status()
    out: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = float(s.value)
    return out


def group(samples: Samples, name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
    """Series of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return {lbl: v for (n, lbl), v in samples.items() if n == name and want <= set(lbl)}


def push_check(url: str, data: Path, profile: Path, version: str) -> tuple[int, Any]:
    result = modelmon(
        "check", "--profile", profile, data, "--format", "json", "--push-gateway", url,
        "--model", "cancer", "--version", version,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def test_push_exposes_results_under_the_grouping_key(gateway: str, files: dict[str, Any]) -> None:
    before = time.time()
    code, report = push_check(gateway, files["shifted"], files["profile"], "v9")
    after = time.time()
    assert code == 1
    samples = gateway_samples(gateway)
    key = {"job": "modelmon_check", "model": "cancer", "version": "v9"}
    passed = group(samples, "modelmon_check_passed", **key)
    assert list(passed.values()) == [0.0]
    (stamp,) = group(samples, "modelmon_check_timestamp_seconds", **key).values()
    assert before <= stamp <= after
    (accuracy,) = group(samples, "modelmon_accuracy", **key, window="check").values()
    assert accuracy == pytest.approx(files["accuracy_shifted"], abs=1e-12)
    (share,) = group(samples, "modelmon_dataset_drift_share", **key, window="check").values()
    assert share == pytest.approx(report["drift"]["drift_share"], rel=1e-12)
    (events,) = group(samples, "modelmon_window_events", **key, window="check").values()
    assert events == report["data"]["rows"]
    detected = group(samples, "modelmon_drift_detected", **key, window="check")
    flagged = {dict(lbl)["column"] for lbl, v in detected.items() if v == 1.0}
    assert flagged == {c["column"] for c in report["drift"]["drifted_columns"]}
    for column in report["columns"]:
        labels = {**key, "window": "check", "role": column["role"], "column": column["column"]}
        for stat, value in column["drift"]["statistics"].items():
            (pushed,) = group(samples, f"modelmon_drift_{stat}", **labels).values()
            assert pushed == pytest.approx(value, rel=1e-12, abs=1e-300)
    precision = group(samples, "modelmon_precision", **key, window="check")
    assert {dict(lbl)["class"] for lbl in precision} == {"0", "1"}


def test_a_second_push_replaces_its_group_only(gateway: str, files: dict[str, Any]) -> None:
    push_check(gateway, files["shifted"], files["profile"], "v10")
    push_check(gateway, files["shifted"], files["profile"], "v11")
    code, _ = push_check(gateway, files["test"], files["profile"], "v11")
    assert code == 0
    samples = gateway_samples(gateway)
    for version, value in (("v10", 0.0), ("v11", 1.0)):
        key = {"job": "modelmon_check", "model": "cancer", "version": version}
        assert list(group(samples, "modelmon_check_passed", **key).values()) == [value]
    key = {"job": "modelmon_check", "model": "cancer", "version": "v11", "window": "check"}
    (accuracy,) = group(samples, "modelmon_accuracy", **key).values()
    assert accuracy == pytest.approx(files["accuracy_test"], abs=1e-12)


def test_unreachable_gateway_exits_2_after_the_report(files: dict[str, Any]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = modelmon("check", "--profile", files["profile"], files["test"], "--push-gateway", url)
    assert result.returncode == 2
    assert "modelmon check: PASS" in result.stdout
    assert f"--push-gateway {url}" in result.stderr
