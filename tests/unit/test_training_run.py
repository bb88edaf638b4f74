"""``modelmon.TrainingRun``: state, families, push thread, final status, endpoint.

Pushes go to an injected function here (what was pushed, when); the real Pushgateway
and Prometheus are in tests/integration/test_training_stack.py. Confusion matrices are
compared with scikit-learn's.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import numpy as np
import pytest
import requests
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from realbin import free_port
from sklearn.metrics import confusion_matrix
from test_collectors_gpu import FakeDevice, FakeNvml

from modelmon import TrainingRun
from modelmon.training import params_digest

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(registry: CollectorRegistry) -> Samples:
    text = generate_latest(registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    want = {"model": "m", "run": "r1", **labels}
    (hit,) = [v for (n, lbl), v in found.items() if n == name and dict(lbl) == want]
    return hit


class Recorder:
    """Stands in for push_to_gateway: keeps what each push carried, can fail."""

    def __init__(self, fail: bool = False) -> None:
        self.pushes: list[tuple[dict[str, str], Samples]] = []
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, url: str, *, job: str, registry: CollectorRegistry, **kw: Any) -> None:
        assert job == "modelmon_training"
        if self.fail:
            raise OSError("connection refused")
        with self.lock:
            self.pushes.append((kw["grouping_key"], samples(registry)))


def new_run(push: Recorder | None = None, **kwargs: Any) -> TrainingRun:
    options: dict[str, Any] = {"resources": False, "push_interval": 0.05, "heartbeat": 0.05}
    options.update(kwargs)
    if push is not None:
        options.update(push_gateway="http://gateway.invalid:9091", push=push)
    return TrainingRun("m", "r1", **options)


def test_log_sets_the_families() -> None:
    run = new_run(version="v3", params={"lr": 0.1, "depth": 4})
    run.log(step=10, epoch=1, loss=0.5, learning_rate=0.01, samples=32)
    run.log(step=11, epoch=1, loss=0.25, samples=32)
    run.log(split="validation", loss=0.75, metrics={"accuracy": 0.8, "f1": np.float32(0.5)})
    found = samples(run.registry)
    assert value(found, "modelmon_training_step") == 11
    assert value(found, "modelmon_training_epoch") == 1
    assert value(found, "modelmon_training_loss", split="train") == 0.25
    assert value(found, "modelmon_training_loss", split="validation") == 0.75
    assert value(found, "modelmon_training_metric", split="validation", metric="accuracy") == 0.8
    assert value(found, "modelmon_training_metric", split="validation", metric="f1") == 0.5
    assert value(found, "modelmon_training_learning_rate") == 0.01
    assert value(found, "modelmon_training_samples_total") == 64
    digest = params_digest({"depth": 4, "lr": 0.1})
    info = value(found, "modelmon_training_run_info", version="v3", params_digest=digest)
    assert info == 1
    assert value(found, "modelmon_training_status", status="running") == 1
    assert value(found, "modelmon_training_status", status="succeeded") == 0
    assert not [n for n, _ in found if n == "modelmon_training_end_time_seconds"]
    run.finish()


def test_params_digest_depends_on_values_not_key_order() -> None:
    assert params_digest({"a": 1, "b": 2}) == params_digest({"b": 2, "a": 1})
    assert params_digest({"a": 1}) != params_digest({"a": 2})


def test_non_finite_loss_is_exported_and_counted() -> None:
    run = new_run()
    run.log(loss=float("nan"))
    run.log(loss=float("inf"))
    run.log(loss=1.0)
    found = samples(run.registry)
    assert value(found, "modelmon_training_nonfinite_loss_total", split="train") == 2
    assert value(found, "modelmon_training_loss", split="train") == 1.0
    run.log(loss=float("nan"))
    assert math.isnan(value(samples(run.registry), "modelmon_training_loss", split="train"))
    run.finish()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"split": "val loss"}, "split: expected"),
        ({"metrics": {"a b": 1.0}}, "metrics: expected"),
        ({"metrics": {"acc": "high"}}, "metrics['acc']: expected a number"),
        ({"loss": "low"}, "loss: expected a number"),
        ({"step": None, "samples": -1}, "samples: expected a number >= 0"),
    ],
)
def test_invalid_arguments_name_the_parameter(kwargs: dict[str, Any], message: str) -> None:
    run = new_run()
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        run.log(**kwargs)
    run.finish()


def test_label_values_are_capped() -> None:
    run = new_run()
    run.log(metrics={f"m{i}": 0.0 for i in range(128)})
    with pytest.raises(ValueError, match="more than 128"):
        run.log(metrics={"one_more": 0.0})
    run.finish()


def test_confusion_matrix_equals_scikit_learn() -> None:
    rng = np.random.default_rng(5)
    y_true = rng.integers(0, 3, 500)
    y_pred = np.where(rng.random(500) < 0.7, y_true, rng.integers(0, 3, 500))
    run = new_run()
    run.log_confusion(y_true.astype(float), y_pred, split="validation")
    expected = confusion_matrix(y_true, y_pred, labels=[0, 1, 2])
    found = samples(run.registry)
    for a in range(3):
        for p in range(3):
            cell = value(
                found,
                "modelmon_training_confusion_matrix",
                split="validation",
                actual=str(a),
                predicted=str(p),
            )
            assert cell == expected[a, p]
    with pytest.raises(ValueError, match="y_pred: expected 500 values"):
        run.log_confusion(y_true, y_pred[:10])
    run.finish()


def test_push_thread_pushes_changes_and_the_final_status() -> None:
    push = Recorder()
    with new_run(push) as run:
        run.log(step=1, loss=0.5)
        deadline = time.monotonic() + 5
        while not any(
            ("modelmon_training_step", frozenset({"model": "m", "run": "r1"}.items())) in s
            for _, s in push.pushes
        ):
            assert time.monotonic() < deadline, "the thread did not push the step"
            time.sleep(0.01)
    key, first = push.pushes[0]
    assert value(first, "modelmon_training_status", status="running") == 1
    key, last = push.pushes[-1]
    assert key == {"model": "m", "run": "r1"}
    assert value(last, "modelmon_training_status", status="succeeded") == 1
    assert value(last, "modelmon_training_end_time_seconds") >= value(
        last, "modelmon_training_start_time_seconds"
    )
    assert value(last, "modelmon_training_step") == 1


def test_pushes_are_rate_limited() -> None:
    push = Recorder()
    run = new_run(push, push_interval=0.2, heartbeat=10)
    start = time.monotonic()
    while time.monotonic() - start < 1.0:
        run.log(step=1, loss=0.5)  # a change all the time
    count = len(push.pushes)
    run.finish()
    assert 2 <= count <= 1 + 1.0 / 0.2 + 1  # the first push, then one per interval


def test_an_exception_marks_the_run_failed_and_propagates() -> None:
    push = Recorder()
    run = new_run(push)

    def train() -> None:
        with run:
            run.log(step=3)
            raise RuntimeError("diverged")

    with pytest.raises(RuntimeError, match="diverged"):
        train()
    assert run.status == "failed"
    assert value(push.pushes[-1][1], "modelmon_training_status", status="failed") == 1


def test_an_unreachable_gateway_never_breaks_training(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens
    with TrainingRun(
        "m", "r1", push_gateway=url, resources=False, push_interval=0.05, heartbeat=0.05
    ) as run:
        for step in range(50):
            run.log(step=step, loss=1.0)
            time.sleep(0.005)
    assert run.status == "succeeded"
    assert run.push_failures >= 3  # first, some by the thread, the final one
    found = samples(run.registry)
    assert value(found, "modelmon_training_push_failures_total") == run.push_failures
    warnings = [r for r in caplog.records if "push to" in r.getMessage()]
    assert len(warnings) == 1, "one log line per distinct error, not per push"


def test_in_process_endpoint_serves_the_run() -> None:
    with TrainingRun("m", "r1", listen="127.0.0.1:0", resources=False) as run:
        run.log(step=7, loss=0.125)
        address = run.metrics_address
        assert address is not None
        text = requests.get(f"http://{address}/metrics", timeout=5).text
    found = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert value(found, "modelmon_training_step") == 7
    assert value(found, "modelmon_training_loss", split="train") == 0.125
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{address}/metrics", timeout=2)


def test_process_and_gpu_gauges_carry_the_run_labels() -> None:
    nvml = FakeNvml([FakeDevice(uuid="GPU-1", name="NVIDIA H200", utilization_percent=90)])
    run = TrainingRun("m", "r1", gpu="true", nvml=nvml)
    found = samples(run.registry)
    assert value(found, "modelmon_gpu_utilization_ratio", gpu="0", gpu_uuid="GPU-1") == 0.9
    assert value(found, "modelmon_model_process_threads") >= 1
    assert value(found, "modelmon_collector_success", collector="process") == 1
    assert value(found, "modelmon_collector_success", collector="gpu") == 1
    run.finish()


def test_finish_twice_keeps_the_first_status() -> None:
    push = Recorder()
    run = new_run(push)
    run.finish("failed")
    run.finish("succeeded")
    assert run.status == "failed"
    with pytest.raises(ValueError, match="status: expected one of succeeded, failed"):
        new_run().finish("done")
