"""The HTTP API of DESIGN.md section 5 against a real exporter on a free port.

Every case of the contract: body kinds, every 4xx status, the 200 response shape with
rejections beside accepted records, the rejection and data-quality counters, the
read-only endpoints, content negotiation of /metrics and back-pressure (429). After
every bad request the server must still answer ``GET /healthz``.

The exporters are shared by the module, so counters accumulate: tests compare counter
values before and after their own requests.
"""

from __future__ import annotations

import gzip
import http.client
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

pytestmark = pytest.mark.integration

MODEL = "credit-risk"
PREDICTIONS = f"/v1/models/{MODEL}/predictions"
TOKEN = "s3cret-token"
JSON = {"Content-Type": "application/json"}
LIMITS = {"max_body_bytes": 20_000, "max_decompressed_bytes": 100_000, "max_inflight": 1}

Scrape = Callable[[str], Any]


@pytest.fixture(scope="module")
def plain(module_exporters: Any) -> str:
    url: str = module_exporters.start().url
    return url


@pytest.fixture(scope="module")
def secured(module_exporters: Any) -> str:
    (module_exporters.directory / "token").write_text(TOKEN + "\n", encoding="utf-8")
    url: str = module_exporters.start(auth={"token_file": "token"}).url
    return url


@pytest.fixture(scope="module")
def limited(module_exporters: Any) -> Any:
    return module_exporters.start(limits=LIMITS)


def record(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "features": {"age": 41, "income": 52000.0, "country": "DE"},
        "prediction": 1,
        "score": 0.83,
    }
    base.update(overrides)
    return base


def post(
    url: str,
    body: bytes | Any,
    *,
    path: str = PREDICTIONS,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(f"{url}{path}", data=data, headers=headers or JSON, timeout=10)


def assert_alive(url: str) -> None:
    response = requests.get(f"{url}/healthz", timeout=5)
    assert response.status_code == 200


def assert_error(response: requests.Response, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body.get("error"), str)
    assert body["error"]


def counter_sum(samples: Any, name: str, **labels: str) -> float:
    """Sum of every series of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return float(sum(v for ls, v in samples.series(name).items() if wanted <= set(ls)))


# --- accepted bodies ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "body", "content_type", "n"),
    [
        ("object", json.dumps(record()).encode(), "application/json", 1),
        ("array", json.dumps([record(), record(), record()]).encode(), "application/json", 3),
        (
            "ndjson",
            "".join(json.dumps(record()) + "\n" for _ in range(4)).encode(),
            "application/x-ndjson",
            4,
        ),
        ("no_content_type", json.dumps([record(), record()]).encode(), "", 2),
    ],
)
def test_body_kinds_are_accepted(
    plain: str, scrape: Scrape, kind: str, body: bytes, content_type: str, n: int
) -> None:
    before = scrape(plain).value("modelmon_events_total", model=MODEL, version="v1")
    headers = {"Content-Type": content_type} if content_type else {}
    response = post(plain, body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"accepted": n, "rejected": 0, "errors": []}
    after = scrape(plain).value("modelmon_events_total", model=MODEL, version="v1")
    assert after - before == n


def test_gzip_body_is_accepted(plain: str, scrape: Scrape) -> None:
    before = scrape(plain).value("modelmon_events_total", model=MODEL, version="v1")
    body = gzip.compress(json.dumps([record()] * 50).encode())
    response = post(plain, body, headers={**JSON, "Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 50
    after = scrape(plain).value("modelmon_events_total", model=MODEL, version="v1")
    assert after - before == 50


# --- statuses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body", [b'{"features": {', b"not json at all", b"", b'[{"features": {}}'], ids=repr
)
def test_unparseable_body_is_400(plain: str, body: bytes) -> None:
    assert_error(post(plain, body), 400)
    assert_alive(plain)


def test_corrupt_gzip_is_400(plain: str) -> None:
    assert_error(
        post(plain, b"\x1f\x8bnot really", headers={**JSON, "Content-Encoding": "gzip"}), 400
    )
    assert_alive(plain)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": "Basic x"}],
    ids=["missing", "wrong", "no_scheme", "basic"],
)
def test_missing_or_wrong_token_is_401(secured: str, headers: dict[str, str]) -> None:
    response = post(secured, [record()], headers={**JSON, **headers})
    assert_error(response, 401)
    assert_alive(secured)


def test_right_token_is_accepted(secured: str) -> None:
    response = post(secured, [record()], headers={**JSON, "Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1


def test_unknown_model_is_404(plain: str) -> None:
    response = post(plain, [record()], path="/v1/models/no-such-model/predictions")
    assert_error(response, 404)
    assert "no-such-model" in response.json()["error"]
    assert_alive(plain)


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("path", ["/nope", "/v1/models/credit-risk/nope", "/v1/predictions"])
def test_unknown_path_is_404(plain: str, method: str, path: str) -> None:
    body = b"{}" if method == "POST" else None  # a GET with a body is 400 (test_security_http)
    response = requests.request(method, f"{plain}{path}", data=body, headers=JSON, timeout=5)
    assert_error(response, 404)
    assert_alive(plain)


def test_body_over_the_limit_is_413(limited: Any) -> None:
    records = [record(id=f"r{i}") for i in range(300)]
    body = json.dumps(records).encode()
    assert len(body) > LIMITS["max_body_bytes"]
    assert_error(post(limited.url, body), 413)
    assert_alive(limited.url)


def test_gzip_bomb_is_413(limited: Any) -> None:
    inflated = b"[" + b" " * 5_000_000 + b"]"
    body = gzip.compress(inflated, compresslevel=9)
    assert len(body) < LIMITS["max_body_bytes"]
    response = post(limited.url, body, headers={**JSON, "Content-Encoding": "gzip"})
    assert_error(response, 413)
    assert_alive(limited.url)


@pytest.mark.parametrize("content_type", ["text/csv", "application/xml", "text/plain"])
def test_unsupported_content_type_is_415(plain: str, content_type: str) -> None:
    response = post(plain, [record()], headers={"Content-Type": content_type})
    assert_error(response, 415)
    assert_alive(plain)


@pytest.mark.parametrize("encoding", ["br", "compress", "zstd"])
def test_unsupported_content_encoding_is_415(plain: str, encoding: str) -> None:
    response = post(plain, [record()], headers={**JSON, "Content-Encoding": encoding})
    assert_error(response, 415)
    assert_alive(plain)


def test_full_ingest_queue_is_429_with_retry_after_and_nothing_counted(
    limited: Any, scrape: Scrape
) -> None:
    before = counter_sum(scrape(limited.url), "modelmon_rejected_records_total", model=MODEL)
    slots = limited.app.ingest_slots
    assert slots.acquire(timeout=5)  # max_inflight is 1: hold the only slot
    try:
        response = post(limited.url, [record(), record(), record()])
    finally:
        slots.release()
    assert_error(response, 429)
    assert float(response.headers["Retry-After"]) > 0
    # The body of a 429 is not taken: the sender keeps its records and retries.
    after = counter_sum(scrape(limited.url), "modelmon_rejected_records_total", model=MODEL)
    assert after - before == 0
    retry = post(limited.url, [record()])
    assert retry.status_code == 200
    assert retry.json()["accepted"] == 1


# --- the 200 response and its counters -------------------------------------------------------

REJECTED = {
    "not_an_object": [1, 2, 3],
    "no_features": {"prediction": 1},
    "features_not_an_object": {"features": [41, 52000.0]},
    "bad_timestamp": record(timestamp="last tuesday"),
    "prediction_of_the_wrong_kind": record(prediction={"class": 1}),
}


def test_valid_records_are_accepted_beside_rejected_ones(plain: str, scrape: Scrape) -> None:
    before = scrape(plain)
    body = [record(), *REJECTED.values(), record(version="v2"), record()]
    response = post(plain, body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert set(result) == {"accepted", "rejected", "errors"}
    assert (result["accepted"], result["rejected"]) == (3, len(REJECTED))
    assert [e["index"] for e in result["errors"]] == list(range(1, len(REJECTED) + 1))
    assert all(isinstance(e["error"], str) and e["error"] for e in result["errors"])
    after = scrape(plain)
    events = "modelmon_events_total"
    assert (
        after.value(events, model=MODEL, version="v1")
        - before.value(events, model=MODEL, version="v1")
        == 2
    )
    assert (
        after.value(events, model=MODEL, version="v2")
        - before.value(events, model=MODEL, version="v2")
        == 1
    )


def test_each_rejection_reason_is_counted(plain: str, scrape: Scrape) -> None:
    reasons: dict[str, str] = {}
    for kind, bad in REJECTED.items():
        before = scrape(plain).series("modelmon_rejected_records_total")
        response = post(plain, [bad, record()])
        assert response.json()["rejected"] == 1, kind
        after = scrape(plain).series("modelmon_rejected_records_total")
        moved = {
            dict(labels)["reason"]: value - before.get(labels, 0.0)
            for labels, value in after.items()
            if value != before.get(labels, 0.0)
        }
        assert list(moved.values()) == [1.0], (kind, moved)
        assert all(dict(ls)["model"] == MODEL for ls in after)
        reasons[kind] = next(iter(moved))
    # not an object, no usable features, timestamp, prediction: four distinct reasons
    assert reasons["no_features"] == reasons["features_not_an_object"]
    assert len({reasons[k] for k in REJECTED}) == 4, reasons


def test_data_quality_problems_are_counted_and_the_rest_is_used(plain: str, scrape: Scrape) -> None:
    records = [
        {"features": {"income": 40000.0, "country": "FR"}},  # age missing
        {"features": {"age": "hot", "income": 41000.0, "country": "FR"}},  # wrong type
        {"features": {"age": 30, "income": 42000.0, "country": "FR", "colour": "red"}},
        {"features": {"age": 31, "income": None, "country": "Atlantis"}},  # null; unseen
    ]
    before = scrape(plain)
    response = post(plain, records)
    assert response.json() == {"accepted": 4, "rejected": 0, "errors": []}
    after = scrape(plain)

    def moved(name: str, **labels: str) -> float:
        return counter_sum(after, name, **labels) - counter_sum(before, name, **labels)

    col = {"model": MODEL, "version": "v1", "role": "feature"}
    assert moved("modelmon_column_missing_total", **col, column="age") == 1
    assert moved("modelmon_column_type_errors_total", **col, column="age") == 1
    assert moved("modelmon_column_missing_total", **col, column="income") == 1
    assert moved("modelmon_column_unseen_total", **col, column="country") == 1
    assert moved("modelmon_unknown_fields_total", model=MODEL) == 1
    # the rest of each record is used
    assert moved("modelmon_column_bin_total", **col, column="income") == 3
    assert moved("modelmon_column_bin_total", **col, column="age") == 2
    assert moved("modelmon_column_bin_total", **col, column="country", bin="FR") == 3
    assert moved("modelmon_events_total", model=MODEL, version="v1") == 4


def test_nan_counts_as_missing_and_infinity_as_out_of_range(plain: str, scrape: Scrape) -> None:
    """Bodies as Python's json module writes them (``NaN``, ``Infinity``)."""
    records = [
        {"features": {"age": float("nan"), "income": 52000.0, "country": "DE"}},
        {"features": {"age": 40, "income": float("inf"), "country": "DE"}},
        {"features": {"age": 40, "income": float("-inf"), "country": "DE"}},
    ]
    before = scrape(plain)
    response = post(plain, json.dumps(records).encode())
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 3
    after = scrape(plain)
    col = {"model": MODEL, "version": "v1", "role": "feature"}
    assert (
        after.value("modelmon_column_missing_total", **col, column="age")
        - before.value("modelmon_column_missing_total", **col, column="age")
        == 1
    )
    assert (
        after.value("modelmon_column_out_of_range_total", **col, column="income")
        - before.value("modelmon_column_out_of_range_total", **col, column="income")
        == 2
    )


def test_integers_beyond_float_range_are_values_out_of_range_not_errors(
    plain: str, scrape: Scrape
) -> None:
    """JSON integers have no size limit; 10^400 in a numeric field is an out-of-range
    value (a timestamp that far ahead is now, like any later time), never a 500."""
    big = "1" + "0" * 400
    body = (
        "["
        f'{{"id": "big-1", "features": {{"age": {big}, "income": -{big}, "country": "DE"}},'
        f' "prediction": 1, "score": {big}, "latency_seconds": {big}}},'
        f'{{"id": "big-2", "features": {{"age": 40, "income": 52000.0, "country": "DE"}},'
        f' "prediction": 1, "score": 0.5, "timestamp": {big}}},'
        f'{{"features": {{"age": 40, "income": 52000.0, "country": "DE"}}, "prediction": 1,'
        f' "label": 1, "score": -{big}}}'
        "]"
    ).encode()
    before = scrape(plain)
    response = post(plain, body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["accepted"], answer["rejected"]) == (3, 0), answer
    label = f'[{{"id": "big-1", "label": 1, "timestamp": {big}}}]'.encode()
    labels = post(plain, label, path=f"/v1/models/{MODEL}/labels")
    assert labels.status_code == 200, labels.text
    assert labels.json()["accepted"] == 1
    after = scrape(plain)
    col = {"model": MODEL, "version": "v1", "role": "feature"}
    for column in ("age", "income"):
        moved = after.value("modelmon_column_out_of_range_total", **col, column=column) - (
            before.value("modelmon_column_out_of_range_total", **col, column=column)
        )
        assert moved == 1, column
    events = {"model": MODEL, "version": "v1"}
    assert (
        after.value("modelmon_events_total", **events)
        - before.value("modelmon_events_total", **events)
        == 3
    )
    assert_alive(plain)


def test_no_accepted_record_is_missing_from_the_events_counter(plain: str, scrape: Scrape) -> None:
    def total_events() -> float:
        return counter_sum(scrape(plain), "modelmon_events_total", model=MODEL)

    before = total_events()
    bodies: list[tuple[bytes, dict[str, str]]] = [
        (json.dumps([record(), 5, record(version="v3")]).encode(), JSON),
        (json.dumps(record(timestamp="2025-11-25T13:00:00Z")).encode(), JSON),
        (
            b'{"features": {}}\n{oops\n' + json.dumps(record()).encode(),
            {"Content-Type": "application/x-ndjson"},
        ),
        (gzip.compress(json.dumps([record()] * 7).encode()), {**JSON, "Content-Encoding": "gzip"}),
        (b"[broken", JSON),
    ]
    accepted = 0
    for body, headers in bodies:
        response = post(plain, body, headers=headers)
        if response.status_code == 200:
            accepted += response.json()["accepted"]
    assert accepted == 12
    assert total_events() - before == accepted


def test_labels_endpoint_answers_with_the_result_shape(plain: str) -> None:
    response = post(plain, [{"id": "x", "label": 1}], path=f"/v1/models/{MODEL}/labels")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"accepted", "rejected", "errors"}
    assert body["accepted"] + body["rejected"] == 1


def test_many_concurrent_requests_are_all_counted(plain: str, scrape: Scrape) -> None:
    before = scrape(plain).value("modelmon_events_total", model=MODEL, version="v9")
    outcomes: list[int] = []

    def send() -> None:
        for _ in range(5):
            response = post(plain, [record(version="v9")] * 10)
            outcomes.append(response.json()["accepted"] if response.status_code == 200 else 0)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = scrape(plain).value("modelmon_events_total", model=MODEL, version="v9")
    assert after - before == sum(outcomes)
    assert sum(outcomes) > 0


# --- read-only endpoints --------------------------------------------------------------------


def test_healthz_and_readyz(plain: str) -> None:
    assert requests.get(f"{plain}/healthz", timeout=5).status_code == 200
    assert requests.get(f"{plain}/readyz", timeout=5).status_code == 200


def test_models_endpoint_shape(plain: str) -> None:
    response = requests.get(f"{plain}/v1/models", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    [model] = response.json()["models"]
    assert model["name"] == MODEL
    assert "v1" in model["versions"]
    assert model["windows"] == ["5m"]
    columns = {(c["role"], c["name"]): c for c in model["columns"]}
    assert set(columns) == {
        ("feature", "age"),
        ("feature", "income"),
        ("feature", "country"),
        ("prediction", "prediction"),
        ("score", "score"),
    }
    assert columns[("feature", "country")]["type"] == "categorical"
    assert columns[("feature", "income")]["type"] == "numeric"


def test_metrics_default_is_the_prometheus_text_format(plain: str) -> None:
    response = requests.get(f"{plain}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE modelmon_events_total counter" in response.text
    assert "_created" not in response.text


def test_metrics_openmetrics_on_accept(plain: str) -> None:
    from prometheus_client.openmetrics import parser

    accept = "application/openmetrics-text; version=1.0.0; charset=utf-8"
    response = requests.get(f"{plain}/metrics", headers={"Accept": accept}, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")
    names = {f.name for f in parser.text_string_to_metric_families(response.text)}  # type: ignore[no-untyped-call]
    assert "modelmon_events" in names
    assert "_created" not in response.text


def test_server_survives_a_half_sent_body(plain: str) -> None:
    parts = urlsplit(plain)
    connection = http.client.HTTPConnection(str(parts.hostname), parts.port, timeout=5)
    try:
        connection.putrequest("POST", PREDICTIONS)
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", "1000")
        connection.endheaders()
        connection.send(b'[{"features": {}}')
    finally:
        connection.close()
    assert_alive(plain)


def test_metrics_need_no_token_when_only_ingest_is_protected(secured: str) -> None:
    assert requests.get(f"{secured}/metrics", timeout=5).status_code == 200


# --- computed gauges follow the sliding window (event time, fake clock) ------------------


def test_drift_gauges_need_min_window_events_and_leave_with_the_window(
    exporter_factory: Any, fake_clock: Any, scrape: Scrape
) -> None:
    running = exporter_factory(clock=fake_clock, model={"min_window_events": 10})
    labels = {"model": MODEL, "version": "v1", "window": "5m"}

    def refreshed() -> Any:
        running.app.refresher.refresh()
        return scrape(running.url)

    post(running.url, [record()] * 9)
    samples = refreshed()
    assert samples.value("modelmon_window_events", **labels) == 9
    assert samples.series("modelmon_drift_psi") == {}
    assert samples.series("modelmon_dataset_drift_share") == {}

    post(running.url, [record()])
    samples = refreshed()
    assert samples.value("modelmon_window_events", **labels) == 10
    psi = samples.series("modelmon_drift_psi")
    columns = {dict(ls)["column"] for ls in psi}
    assert {"age", "income", "country"} <= columns
    assert all(dict(ls)["window"] == "5m" for ls in psi)
    assert samples.value("modelmon_dataset_drift_share", **labels) >= 0

    fake_clock.advance(301.0)  # past the 5m window: nothing left in it
    samples = refreshed()
    assert samples.value("modelmon_window_events", **labels) == 0
    assert ("modelmon_window_events", frozenset(labels.items())) in samples  # always present
    assert samples.series("modelmon_drift_psi") == {}
    assert samples.value("modelmon_events_total", model=MODEL, version="v1") == 10


def test_records_keep_their_event_time(
    exporter_factory: Any, fake_clock: Any, scrape: Scrape
) -> None:
    running = exporter_factory(clock=fake_clock)
    now = fake_clock()
    post(running.url, [record(timestamp=now - 3600)] * 4 + [record(timestamp=now - 10)] * 3)
    running.app.refresher.refresh()
    samples = scrape(running.url)
    assert samples.value("modelmon_events_total", model=MODEL, version="v1") == 7
    assert samples.value("modelmon_window_events", model=MODEL, version="v1", window="5m") == 3


# --- a bug is a 500 with its traceback in the log, never a dropped connection ----------------


def test_an_internal_error_is_a_logged_500_and_the_server_keeps_serving(
    exporter_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The fault is injected into the exporter's own code (a monitor that raises): the
    safety net around every handler must answer, log the traceback and stay up."""
    running = exporter_factory()
    monitor = running.app.monitors[MODEL]

    def broken(records: Any, **_options: Any) -> Any:
        raise RuntimeError("injected fault")

    monitor.ingest = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="modelmon.server"):
        response = post(running.url, [record()])
    assert_error(response, 500)
    assert "injected fault" in response.json()["error"]
    assert any(r.exc_info and "injected fault" in str(r.exc_info[1]) for r in caplog.records)
    assert_alive(running.url)
    # The slot and byte budget were given back: ingest works again once the bug is gone.
    del monitor.ingest
    assert post(running.url, [record()]).json()["accepted"] == 1


def test_a_failed_refresh_shows_in_the_scrape_without_stale_numbers(
    exporter_factory: Any, scrape: Scrape
) -> None:
    """The scrape still answers (resource gauges stay visible); the models collector
    reports failure and no statistic of the failed refresh is exported."""
    running = exporter_factory()
    assert post(running.url, [record() for _ in range(20)]).json()["accepted"] == 20
    running.app.refresher.refresh()
    assert scrape(running.url).series("modelmon_drift_psi")
    refresher = running.app.refresher

    def failing() -> Any:
        raise RuntimeError("disk on fire")

    refresher.refresh = failing  # type: ignore[method-assign]
    refresher.interval = 0.05
    # The exporter's own refresh thread sleeps for its 1h interval: run the loop again.
    thread = threading.Thread(target=refresher._run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while refresher.last_error is None:
        assert time.monotonic() < deadline, "the refresh loop did not record the failure"
        time.sleep(0.02)
    failed = scrape(running.url)
    assert failed.value("modelmon_collector_success", collector="models") == 0
    assert not failed.series("modelmon_drift_psi")
    assert not failed.series("modelmon_events_total")
