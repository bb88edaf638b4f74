"""Exporters sharing a real Redis join store: joins across exporters, and what the HTTP
API answers while Redis is down (503 for labels, predictions still counted)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from redisbin import RedisServer

pytestmark = pytest.mark.integration

MODEL = "credit-risk"


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def predictions(ids: range, prediction: int = 1) -> list[dict[str, Any]]:
    return [
        {"id": f"r{i}", "features": {"x": 0.5}, "prediction": prediction, "score": 0.8} for i in ids
    ]


def labels(ids: range, label: int = 1) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "label": label} for i in ids]


def post(url: str, kind: str, records: list[dict[str, Any]]) -> requests.Response:
    return requests.post(f"{url}/v1/models/{MODEL}/{kind}", json=records, timeout=10)


def test_a_label_joins_on_another_exporter_and_is_counted_there(
    redis: RedisServer, exporter_factory: Any, scrape: Any
) -> None:
    store = {"labels": {"store": redis.url}}
    a = exporter_factory(model=store)
    b = exporter_factory(model=store)
    assert post(a.url, "predictions", predictions(range(10))).json()["accepted"] == 10
    assert post(b.url, "labels", labels(range(6))).json()["accepted"] == 6
    second = post(a.url, "labels", labels(range(4, 8), label=0)).json()
    assert (second["accepted"], second["rejected"]) == (2, 2)  # 4 and 5 joined on b
    base = {"model": MODEL, "version": "v1"}
    sa, sb = scrape(a.url), scrape(b.url)
    assert sb.value("modelmon_labels_total", **base) == 6
    assert sb.value("modelmon_correct_predictions_total", **base) == 6
    assert sa.value("modelmon_labels_total", **base) == 2
    assert sa.value("modelmon_correct_predictions_total", **base) == 0
    # The pending count is the shared one, the same on every exporter.
    assert sa.value("modelmon_pending_predictions", model=MODEL) == 2
    assert sb.value("modelmon_pending_predictions", model=MODEL) == 2
    assert sa.value("modelmon_collector_success", collector="label_store") == 1


def test_while_redis_is_down_labels_get_503_and_predictions_are_counted(
    redis: RedisServer, exporter_factory: Any, scrape: Any
) -> None:
    running = exporter_factory(model={"labels": {"store": redis.url, "timeout": "500ms"}})
    url = running.url
    assert post(url, "predictions", predictions(range(5))).status_code == 200
    redis.kill()

    answer = post(url, "labels", labels(range(5)))
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "1"
    message = answer.json()["error"]
    assert message.startswith(f"labels: label store {redis.url} unavailable (")
    assert "no label of this request was counted; retry later" in message

    during = post(url, "predictions", predictions(range(5, 12)))
    assert during.status_code == 200
    assert during.json()["accepted"] == 7
    s = scrape(url)
    assert s.value("modelmon_events_total", model=MODEL, version="v1") == 12  # drift counted
    assert s.value("modelmon_expired_predictions_total", model=MODEL) == 7  # cannot wait
    assert s.value("modelmon_labels_total", model=MODEL, version="v1") == 0
    assert s.value("modelmon_collector_success", collector="label_store") == 0

    redis.start()  # same port and data: the first five predictions still wait
    deadline = time.monotonic() + 10
    while (answer := post(url, "labels", labels(range(12)))).status_code == 503:
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.2)
    body = answer.json()
    assert body["accepted"] == 12  # 5 joined; 7 wait as orphans (their predictions ended)
    s = scrape(url)
    assert s.value("modelmon_labels_total", model=MODEL, version="v1") == 5
    assert s.value("modelmon_collector_success", collector="label_store") == 1
    assert running.app.store.orphans(MODEL) == 7
