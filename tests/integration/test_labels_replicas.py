"""Three ``modelmon serve`` processes sharing one real Redis, as replicas behind a
Service: labels reach another replica than their prediction, and still join once.

The first test reads fleet accuracy from a real Prometheus scraping the three and
compares it with scikit-learn on all labels. The second kills Redis (SIGKILL) and then
a replica mid-stream and accounts for every record.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import realbin
import requests
import yaml
from redisbin import RedisServer
from sklearn.metrics import accuracy_score

from conftest import reference_rows

pytestmark = pytest.mark.integration

MODEL = "credit-risk"
BATCH = 20


def replica_config(path: Path, port: int, reference: Path, store: str) -> Path:
    config = {
        "listen": f"127.0.0.1:{port}",
        "refresh_interval": "1s",
        "collectors": {"gpu": False},
        "models": [
            {
                "name": MODEL,
                "version": "v1",
                "reference": str(reference),
                "windows": ["5m"],
                "min_window_events": 10,
                "labels": {"store": store, "timeout": "500ms"},
            }
        ],
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@contextlib.contextmanager
def replicas(tmp_path: Path, reference: Path, store: str, n: int = 3) -> Iterator[list[Any]]:
    """``n`` running ``modelmon serve`` processes: a list of (url, Process)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with contextlib.ExitStack() as stack:
        started = []
        for k in range(n):
            port = realbin.free_port()
            config = replica_config(tmp_path / f"replica{k}.yaml", port, reference, store)
            argv = [sys.executable, "-m", "modelmon", "serve", "--config", str(config)]
            process = stack.enter_context(
                realbin.running(argv, env=env, log_path=tmp_path / f"replica{k}.log")
            )
            started.append((f"http://127.0.0.1:{port}", process))
        for url, process in started:
            realbin.wait_http(f"{url}/readyz", 30, process=process)
        yield started


def records(ids: range, predicted: np.ndarray, actual: np.ndarray) -> tuple[list[Any], list[Any]]:
    rng = np.random.default_rng(ids.start)
    preds = [
        {
            "id": f"req-{i}",
            "features": {"age": int(rng.integers(18, 80)), "income": 40000.0, "country": "DE"},
            "prediction": int(predicted[i]),
            "score": 0.9 if predicted[i] else 0.1,
        }
        for i in ids
    ]
    labels = [{"id": f"req-{i}", "label": int(actual[i])} for i in ids]
    return preds, labels


class RoundRobin:
    """A load balancer in the test: each request goes to the next live replica."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = list(urls)
        self.turn = 0

    def post(self, kind: str, body: list[Any]) -> requests.Response:
        for _ in range(2 * len(self.urls)):
            url = self.urls[self.turn % len(self.urls)]
            self.turn += 1
            try:
                return requests.post(f"{url}/v1/models/{MODEL}/{kind}", json=body, timeout=10)
            except requests.ConnectionError:
                continue  # a dead replica: the next one
        raise AssertionError("no replica answered")


def scrape(url: str) -> Any:
    from conftest import scrape_samples

    return scrape_samples(url)


def test_three_replicas_join_every_label_once_and_fleet_accuracy_equals_sklearn(
    tmp_path: Path, make_profile: Any
) -> None:
    prometheus = realbin.require_binary("prometheus")
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    reference = make_profile(reference_rows(), "ref", prediction="prediction", score="score").path
    n = 600
    rng = np.random.default_rng(7)
    predicted = rng.integers(0, 2, n)
    actual = np.where(rng.random(n) < 0.8, predicted, 1 - predicted)
    preds, labels = records(range(n), predicted, actual)
    try:
        with replicas(tmp_path, reference, redis.url) as started:
            urls = [url for url, _ in started]
            prom_port = realbin.free_port()
            targets = [u.removeprefix("http://") for u in urls]
            prom_yml = tmp_path / "prometheus.yml"
            prom_yml.write_text(
                yaml.safe_dump(
                    {
                        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
                        "scrape_configs": [
                            {"job_name": "modelmon", "static_configs": [{"targets": targets}]}
                        ],
                    }
                ),
                encoding="utf-8",
            )
            argv = [
                prometheus,
                f"--config.file={prom_yml}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ]
            with realbin.running(argv, log_path=tmp_path / "prometheus.log") as prom:
                prom_url = f"http://127.0.0.1:{prom_port}"
                realbin.wait_http(f"{prom_url}/-/ready", 30, process=prom)
                balancer = RoundRobin(urls)
                for lo in range(0, n, BATCH):
                    assert balancer.post("predictions", preds[lo : lo + BATCH]).ok
                balancer.turn = 1  # each label batch reaches another replica than its prediction
                order = rng.permutation(n)
                accepted = 0
                for lo in range(0, n, BATCH):
                    answer = balancer.post("labels", [labels[i] for i in order[lo : lo + BATCH]])
                    assert answer.status_code == 200, answer.text
                    accepted += answer.json()["accepted"]
                    assert answer.json()["rejected"] == 0
                assert accepted == n

                per_replica = [
                    scrape(u).value("modelmon_labels_total", model=MODEL, version="v1")
                    for u in urls
                ]
                assert sum(per_replica) == n  # every label joined exactly once
                assert min(per_replica) > 0  # and the joins were spread over the replicas

                fleet = _wait_query(
                    prom_url,
                    f'sum(modelmon_labels_total{{model="{MODEL}"}}) == {n}',
                    "sum(modelmon_correct_predictions_total)"
                    " / sum(modelmon_labeled_predictions_total)",
                )
                assert fleet == pytest.approx(accuracy_score(actual, predicted), abs=1e-12)
    finally:
        redis.stop()


def _wait_query(prom_url: str, ready: str, expr: str, timeout: float = 30.0) -> float:
    """Wait until ``ready`` has a result in Prometheus, then evaluate ``expr``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = requests.get(f"{prom_url}/api/v1/query", params={"query": ready}, timeout=5)
        if got.json()["data"]["result"]:
            answer = requests.get(f"{prom_url}/api/v1/query", params={"query": expr}, timeout=5)
            (sample,) = answer.json()["data"]["result"]
            return float(sample["value"][1])
        time.sleep(0.5)
    raise AssertionError(f"Prometheus never saw {ready}")


def test_redis_restart_and_a_killed_replica_lose_and_double_nothing(
    tmp_path: Path, make_profile: Any
) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    reference = make_profile(reference_rows(), "ref", prediction="prediction", score="score").path
    n = 300
    rng = np.random.default_rng(11)
    predicted = rng.integers(0, 2, n)
    actual = np.where(rng.random(n) < 0.7, predicted, 1 - predicted)
    preds, labels = records(range(n), predicted, actual)
    try:
        with replicas(tmp_path, reference, redis.url) as started:
            urls = [url for url, _ in started]
            balancer = RoundRobin(urls)
            # 1. Predictions 0-199, labels 0-99: normal service.
            for lo in range(0, 200, BATCH):
                assert balancer.post("predictions", preds[lo : lo + BATCH]).ok
            accepted = sum(
                balancer.post("labels", labels[lo : lo + BATCH]).json()["accepted"]
                for lo in range(0, 100, BATCH)
            )
            # 2. Redis killed: predictions 200-259 are counted but cannot wait for their
            # labels; labels 100-149 are answered 503 and kept for a retry.
            redis.kill()
            for lo in range(200, 260, BATCH):
                answer = balancer.post("predictions", preds[lo : lo + BATCH])
                assert (answer.status_code, answer.json()["accepted"]) == (200, BATCH)
            retry = []
            for lo in range(100, 150, 10):
                answer = balancer.post("labels", labels[lo : lo + 10])
                assert answer.status_code == 503
                assert "unavailable" in answer.json()["error"]
                retry.append(labels[lo : lo + 10])
            # 3. Redis back (its append-only file replayed): the retries go through.
            redis.start()
            deadline = time.monotonic() + 15
            while retry:
                answer = balancer.post("labels", retry[0])
                if answer.status_code == 503:
                    assert time.monotonic() < deadline, answer.text
                    time.sleep(0.3)
                    continue
                accepted += answer.json()["accepted"]
                retry.pop(0)
            # 4. A replica killed (between requests): the predictions it stored wait in
            # Redis for the others; what it counted dies with it, as known before.
            killed_url, killed = started[2]
            killed_counts = scrape(killed_url)
            killed.popen.kill()
            killed.popen.wait(timeout=10)
            for lo in range(150, 260, 10):
                answer = balancer.post("labels", labels[lo : lo + 10])
                assert answer.status_code == 200, answer.text
                assert answer.json()["rejected"] == 0
                accepted += answer.json()["accepted"]
            assert accepted == 260  # each label accepted once: joined, or waiting
            # Predictions 260-299 after everything: still joinable.
            for lo in range(260, n, BATCH):
                assert balancer.post("predictions", preds[lo : lo + BATCH]).ok
                assert balancer.post("labels", labels[lo : lo + BATCH]).json()["accepted"] == 20

            samples = [scrape(u) for u in urls[:2]] + [killed_counts]

            def total(name: str, **labels: str) -> float:
                return sum(s.value(name, model=MODEL, **labels) for s in samples)

            joined = [i for i in range(n) if not 200 <= i < 260]
            assert total("modelmon_labels_total", version="v1") == len(joined)
            assert total("modelmon_events_total", version="v1") == n
            assert total("modelmon_expired_predictions_total") == 60
            correct = total("modelmon_correct_predictions_total", version="v1")
            assert correct / len(joined) == pytest.approx(
                accuracy_score(actual[joined], predicted[joined]), abs=1e-12
            )
            time.sleep(1.5)  # the gauge is computed at each refresh (every second)
            assert scrape(urls[0]).value("modelmon_pending_predictions", model=MODEL) == 0
            client = redis.client()
            assert client.zcard(f"modelmon:{{{MODEL}}}:oa") == 60  # type: ignore[attr-defined]
    finally:
        redis.stop()
