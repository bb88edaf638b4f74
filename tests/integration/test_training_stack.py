"""Training runs and evaluations in a real Prometheus stack.

A real scikit-learn training loop (``partial_fit`` on the bundled digits data set) reports
through ``modelmon.TrainingRun`` to a real Pushgateway, scraped every second by a real
Prometheus. Checked:

- the learning curve in Prometheus (validation loss by epoch) equals what the test
  computes with scikit-learn after each epoch, exactly;
- every panel query of the ``modelmon-training`` dashboard returns data, and, after
  ``modelmon evaluate --push-gateway`` on the trained candidates, every panel query of
  ``modelmon-evaluations``;
- a training process killed with SIGKILL leaves its last pushed state (status running) on
  the Pushgateway, and the ModelmonTrainingRunLost rule turns it into a firing alert (its
  600 s silence threshold shortened to 3 s for the test; promtool tests check the real
  one).

GPU gauges come from a fake NVML module (no GPU here); the real module is used where
hardware allows. Without the prometheus and prometheus-pushgateway binaries the tests
skip, and fail under ``CI=true``.
"""

# The fake mirrors pynvml's camelCase function names.
# ruff: noqa: N802

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pynvml
import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families
from realbin import free_port, require_binary, running, wait_http
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from modelmon import TrainingRun
from modelmon.training.partial_fit import partial_fit_epoch

ROOT = Path(__file__).resolve().parents[2]
from dashgen.queries import iter_queries, substitute  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

EPOCHS = 6
MODEL = "digits"


class FakeNvml:
    """One GPU, 80% busy; the NVML calls the GPU collector makes."""

    NVMLError = pynvml.NVMLError
    NVML_ERROR_GPU_IS_LOST = pynvml.NVML_ERROR_GPU_IS_LOST
    NVML_TEMPERATURE_GPU = pynvml.NVML_TEMPERATURE_GPU
    nvmlMemory_v2 = pynvml.nvmlMemory_v2  # noqa: N815

    def nvmlInit(self) -> None: ...
    def nvmlShutdown(self) -> None: ...
    def nvmlSystemGetDriverVersion(self) -> str:
        return "550.54.15"

    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return "GPU-fake-0"

    def nvmlDeviceGetName(self, handle: int) -> str:
        return "NVIDIA H200"

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:
        return SimpleNamespace(gpu=80, memory=10)

    def nvmlDeviceGetMemoryInfo(self, handle: int, version: int | None = None) -> Any:
        return SimpleNamespace(total=141 * 2**30, reserved=615 * 2**20, used=2**30, free=0)

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        return 40

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return 300_000

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        return 1_000_000

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[Any]:
        import os

        return [SimpleNamespace(pid=os.getpid(), usedGpuMemory=2**29)]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: int) -> list[Any]:
        return []


@dataclass
class Stack:
    gateway: str
    prometheus: str
    started: float

    def query(self, expr: str, **params: Any) -> list[Any]:
        response = requests.get(
            f"{self.prometheus}/api/v1/query", params={"query": expr, **params}, timeout=30
        )
        body = response.json()
        assert body["status"] == "success", (expr, body)
        result: list[Any] = body["data"]["result"]
        return result

    def query_range(self, expr: str, step: float = 1.0) -> list[Any]:
        now = time.time()
        params = {"query": expr, "start": self.started - 5, "end": now, "step": step}
        response = requests.get(f"{self.prometheus}/api/v1/query_range", params=params, timeout=30)
        body = response.json()
        assert body["status"] == "success", (expr, body)
        result: list[Any] = body["data"]["result"]
        return result

    def wait_for(self, expr: str, timeout: float = 30.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result:
                return result
            assert time.monotonic() < deadline, f"no data for {expr} within {timeout}s"
            time.sleep(0.25)


def rules_for_the_test(directory: Path) -> Path:
    """The shipped training rules, ModelmonTrainingRunLost with a 3 s silence and for 1s."""
    document = yaml.safe_load((ROOT / "prometheus" / "rules" / "modelmon-training.yml").read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == "ModelmonTrainingRunLost":
                assert "> 600" in rule["expr"]
                rule["expr"] = rule["expr"].replace("> 600", "> 3")
                rule["for"] = "1s"
    path = directory / "training-rules.yml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    pushgateway = require_binary("prometheus-pushgateway", "pushgateway")
    prometheus = require_binary("prometheus")
    directory = tmp_path_factory.mktemp("training-stack")
    gateway_port, prometheus_port = free_port(), free_port()
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules_for_the_test(directory))],
        "scrape_configs": [
            {
                "job_name": "pushgateway",
                # Keep the pushed job and grouping labels (job="modelmon_training").
                "honor_labels": True,
                "static_configs": [{"targets": [f"127.0.0.1:{gateway_port}"]}],
            }
        ],
    }
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
    gateway_cmd = [
        pushgateway,
        f"--web.listen-address=127.0.0.1:{gateway_port}",
        # Debian's build persists to /var/lib/prometheus/pushgateway.data by default,
        # which every Pushgateway started on the machine would then share and reload.
        f"--persistence.file={directory / 'pushgateway.data'}",
    ]
    server = [
        prometheus,
        f"--config.file={directory / 'prometheus.yml'}",
        f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{prometheus_port}",
    ]
    with running(gateway_cmd, log_path=directory / "gateway.log") as gateway_process:
        gateway = f"http://127.0.0.1:{gateway_port}"
        wait_http(f"{gateway}/-/ready", timeout=20, process=gateway_process)
        with running(server, log_path=directory / "prometheus.log") as process:
            base = f"http://127.0.0.1:{prometheus_port}"
            wait_http(f"{base}/-/ready", timeout=30, process=process)
            yield Stack(gateway, base, time.time())


@dataclass
class Trained:
    validation_loss: dict[int, float]  # epoch -> what the test computed
    validation_accuracy: dict[int, float]
    run: str
    holdout: Path


def batches(x: np.ndarray, y: np.ndarray, size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for start in range(0, len(y), size):
        yield x[start : start + size], y[start : start + size]


@pytest.fixture(scope="module")
def trained(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    digits = load_digits()
    x = StandardScaler().fit_transform(digits.data)
    x_tr, x_val, y_tr, y_val = train_test_split(
        x, digits.target, test_size=0.3, random_state=0, stratify=digits.target
    )
    model = SGDClassifier(loss="log_loss", alpha=1e-3, learning_rate="constant", eta0=0.01,
                          random_state=0)  # fmt: skip
    classes = np.unique(digits.target)
    losses, accuracies = {}, {}
    with TrainingRun(
        MODEL, "sgd-a", version="v2", params={"alpha": 1e-3, "eta0": 0.01},
        push_gateway=stack.gateway, push_interval=0.2, heartbeat=1.0, gpu="true",
        nvml=FakeNvml(),
    ) as run:  # fmt: skip
        step = 0
        for epoch in range(EPOCHS):
            step = partial_fit_epoch(
                run, model, batches(x_tr, y_tr, 64), epoch=epoch, step=step, classes=classes,
                validation=(x_val, y_val),
            )  # fmt: skip
            losses[epoch] = float(log_loss(y_val, model.predict_proba(x_val), labels=classes))
            accuracies[epoch] = float(accuracy_score(y_val, model.predict(x_val)))
            run.log(learning_rate=0.01)
            assert run.flush()
            # The next epoch starts once Prometheus has scraped this one.
            stack.wait_for(f'modelmon_training_epoch{{run="sgd-a"}} == {epoch}')
            time.sleep(1.5)
    holdout = tmp_path_factory.mktemp("holdout") / "digits-holdout.csv"
    other = SGDClassifier(loss="log_loss", random_state=1, max_iter=3, tol=None).fit(x_tr, y_tr)
    with holdout.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["y", "pred_a", "pred_b", "ink"])
        ink = np.where(x_val.sum(axis=1) > np.median(x_val.sum(axis=1)), "dark", "light")
        for row in zip(y_val, model.predict(x_val), other.predict(x_val), ink, strict=True):
            writer.writerow(row)
    return Trained(losses, accuracies, "sgd-a", holdout)


def samples_by_time(stack: Stack, selector: str) -> dict[float, float]:
    (series,) = stack.query(f"{selector}[10m]")
    return {float(t): float(v) for t, v in series["values"]}


def test_learning_curve_in_prometheus_equals_the_loop(stack: Stack, trained: Trained) -> None:
    loss = samples_by_time(
        stack, f'modelmon_training_loss{{run="{trained.run}", split="validation"}}'
    )
    epoch = samples_by_time(stack, f'modelmon_training_epoch{{run="{trained.run}"}}')
    curve: dict[int, set[float]] = {}
    for t, value in loss.items():
        if t in epoch:
            curve.setdefault(int(epoch[t]), set()).add(value)
    # After each epoch the loop waited for a scrape: each epoch's validation loss was
    # scraped, and while an epoch trains the gauge still holds the previous epoch's.
    for e, expected in trained.validation_loss.items():
        assert expected in curve[e], (e, expected, curve.get(e))
    accuracy = samples_by_time(
        stack, f'modelmon_training_metric{{run="{trained.run}", metric="accuracy"}}'
    )
    assert set(trained.validation_accuracy.values()) <= set(accuracy.values())
    stack.wait_for(f'modelmon_training_status{{run="{trained.run}", status="succeeded"}} == 1')
    status = stack.query(f'modelmon_training_status{{run="{trained.run}"}} == 1')
    assert [s["metric"]["status"] for s in status] == ["succeeded"]


def dashboard_values(name: str, extra: dict[str, str]) -> dict[str, str]:
    board = json.loads((ROOT / "grafana" / "dashboards" / name).read_text())
    values = {v["name"]: ".*" for v in board["templating"]["list"] if v.get("multi")}
    values.update(datasource="prometheus", __rate_interval="4s", __interval="1s",
                  __range="10m", __range_s="600", **extra)  # fmt: skip
    return values


def empty_panel_queries(stack: Stack, name: str, values: dict[str, str]) -> list[str]:
    board = json.loads((ROOT / "grafana" / "dashboards" / name).read_text())
    empty = []
    for query in iter_queries(board):
        if query.panel_type in ("variable", "annotation"):
            continue
        expr = substitute(query.expr, values)
        result = stack.query(expr) if query.instant else stack.query_range(expr)
        if not result:
            empty.append(f"{query.where}: {expr}")
    return empty


def test_every_training_panel_returns_data(stack: Stack, trained: Trained) -> None:
    values = dashboard_values("training.json", {"confusion_run": trained.run})
    assert empty_panel_queries(stack, "training.json", values) == []


def test_every_evaluations_panel_returns_data(stack: Stack, trained: Trained) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "modelmon", "evaluate", str(trained.holdout), "--label", "y",
         "--candidate", "b=pred_b", "--candidate", "a=pred_a", "--model", MODEL, "--segment", "ink",
         "--push-gateway", stack.gateway, "--format", "json", "--resamples", "200"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    stack.wait_for(f'modelmon_evaluation_metric{{model="{MODEL}", version="a"}}')
    (pushed,) = stack.query(
        f'modelmon_evaluation_metric{{model="{MODEL}", version="a", metric="accuracy"}}'
    )
    assert float(pushed["value"][1]) == report["candidates"][1]["metrics"]["accuracy"]["value"]
    assert pushed["metric"]["dataset"] == "digits-holdout"
    time.sleep(2)  # a few scrapes for the range panels
    values = dashboard_values(
        "evaluations.json", {"dataset": "digits-holdout", "confusion_version": "a"}
    )
    assert empty_panel_queries(stack, "evaluations.json", values) == []


KILLED_JOB = """
import sys, time
from modelmon import TrainingRun
run = TrainingRun("digits", "killed", push_gateway=sys.argv[1], push_interval=0.2,
                  heartbeat=0.5, resources=False)
step = 0
while True:
    step += 1
    run.log(step=step, loss=1.0 / step)
    time.sleep(0.05)
"""


def test_a_killed_run_keeps_its_state_and_raises_an_alert(stack: Stack, tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(KILLED_JOB))
    job = subprocess.Popen([sys.executable, str(script), stack.gateway])
    try:
        stack.wait_for('modelmon_training_step{run="killed"} > 5')
    finally:
        job.send_signal(signal.SIGKILL)
        job.wait(timeout=10)
    killed_at = time.time()
    text = requests.get(f"{stack.gateway}/metrics", timeout=10).text
    last_state = {
        s.labels["status"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "modelmon_training_status" and s.labels.get("run") == "killed"
    }
    assert last_state == {"running": 1.0, "succeeded": 0.0, "failed": 0.0}
    firing = stack.wait_for(
        'ALERTS{alertname="ModelmonTrainingRunLost", alertstate="firing", run="killed"}',
        timeout=30,
    )
    assert firing[0]["metric"]["model"] == "digits"
    assert time.time() - killed_at >= 3  # not before the job was silent for 3 s
    assert not stack.query('ALERTS{alertname="ModelmonTrainingRunLost", run="sgd-a"}')
