"""modelmon.client.Client against a stdlib HTTP server that checks every request.

The stub exporter validates what DESIGN.md section 5 asks of a request (method, path,
token, content type and encoding, a JSON array of prediction or label records) and
can be told to answer 429, 5xx or 4xx first, which a real exporter cannot be made to do
on demand. The real exporter is exercised in tests/integration/test_client_real.py.
"""

from __future__ import annotations

import email.utils
import gzip
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
import requests

from modelmon.client import Client, dumps_json, dumps_orjson, retry_after

MODEL = "credit-risk"
TOKEN = "s3cret"


class StubExporter:
    """Collects valid records; answers scripted statuses first, then 200."""

    def __init__(self, port: int = 0, script: tuple[tuple[int, dict[str, str]], ...] = ()):
        self.records: dict[str, list[dict[str, Any]]] = {"predictions": [], "labels": []}
        self.requests: list[dict[str, Any]] = []  # kind, size, status, encoding, time, port
        self.problems: list[str] = []
        self.script = deque(script)
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"stub": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def answer(
        self, kind: str, headers: Any, body: bytes, port: int
    ) -> tuple[int, dict[str, str], bytes]:
        """Validate one request; return status, headers and body to send."""
        problem = validate(kind, headers, body)
        with self.lock:
            status, extra = self.script.popleft() if self.script else (200, {})
            if problem:
                self.problems.append(problem)
                status, extra = 400, {}
            records = [] if problem else json.loads(_decoded(headers, body))
            self.requests.append(
                {
                    "kind": kind,
                    "size": len(records),
                    "status": status,
                    "encoding": headers.get("Content-Encoding"),
                    "time": time.monotonic(),
                    "port": port,
                }
            )
            if status != 200:
                return status, extra, json.dumps({"error": problem or "scripted"}).encode()
            self.records[kind].extend(records)
        bad = [i for i, r in enumerate(records) if r.get("features", {}).get("bad")]
        answer = {
            "accepted": len(records) - len(bad),
            "rejected": len(bad),
            "errors": [{"index": i, "error": "features.bad: scripted rejection"} for i in bad],
        }
        return 200, {}, json.dumps(answer).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's session expects
    disable_nagle_algorithm = True  # else each response waits ~40 ms for a delayed ACK
    stub: StubExporter

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        prefix = f"/v1/models/{MODEL}/"
        kind = self.path[len(prefix) :] if self.path.startswith(prefix) else ""
        if kind not in ("predictions", "labels"):
            status, extra, answer = 404, {}, b'{"error": "unknown path"}'
        else:
            status, extra, answer = self.stub.answer(
                kind, self.headers, body, self.client_address[1]
            )
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **extra}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _decoded(headers: Any, body: bytes) -> bytes:
    return gzip.decompress(body) if headers.get("Content-Encoding") == "gzip" else body


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")  # Python's json would accept NaN


def validate(kind: str, headers: Any, body: bytes) -> str | None:
    """What is wrong with a request by DESIGN.md section 5, or None."""
    if headers.get("Authorization") != f"Bearer {TOKEN}":
        return "Authorization: expected the bearer token"
    if headers.get("Content-Type") != "application/json":
        return f"Content-Type: expected application/json, got {headers.get('Content-Type')}"
    try:
        records = json.loads(_decoded(headers, body), parse_constant=_not_json)
    except (ValueError, OSError) as error:
        return f"body: not (gzipped) JSON: {error}"
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        return "body: expected a JSON array of objects"
    for i, record in enumerate(records):
        if kind == "predictions" and not isinstance(record.get("features"), dict):
            return f"[{i}].features: expected an object"
        if kind == "predictions" and not isinstance(record.get("timestamp"), (int, float)):
            return f"[{i}].timestamp: expected Unix seconds"
        if kind == "labels" and (
            set(record) - {"id", "label", "timestamp"} or not {"id", "label"} <= set(record)
        ):
            return f"[{i}]: expected a label record {{id, label, timestamp?}}, got {record}"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def stub() -> Iterator[StubExporter]:
    server = StubExporter()
    yield server
    server.stop()


def client_for(url: str, **options: Any) -> Client:
    options = {"flush_interval": 0.05, "backoff_initial": 0.01, "backoff_max": 0.05, **options}
    return Client(url, MODEL, TOKEN, **options)


def test_records_arrive_in_the_documented_shape(stub):
    before = time.time()
    with client_for(stub.url) as client:
        client.log_prediction(
            {"age": 41, "country": "DE"},
            1,
            id="r1",
            score=0.83,
            version="v3",
            latency_seconds=0.012,
            label=1,
        )
        client.log_prediction(
            {"age": 7}, "cat", scores={"cat": 0.7, "dog": 0.3}, timestamp=1764075600.25
        )
        client.log_label("r1", 0, timestamp="2025-11-25T13:00:00Z")
        client.log_label("r2", "dog")
        assert client.flush(timeout=10)
        after = time.time()
        assert (client.sent, client.failed, client.dropped, client.rejected) == (4, 0, 0, 0)
    assert stub.problems == []
    first, second = stub.records["predictions"]
    assert before <= first.pop("timestamp") <= after  # time.time() at the call
    assert first == {
        "features": {"age": 41, "country": "DE"},
        "prediction": 1,
        "id": "r1",
        "score": 0.83,
        "version": "v3",
        "latency_seconds": 0.012,
        "label": 1,
    }
    assert second == {
        "features": {"age": 7},
        "prediction": "cat",
        "timestamp": 1764075600.25,
        "scores": {"cat": 0.7, "dog": 0.3},
    }
    assert stub.records["labels"] == [
        {"id": "r1", "label": 0, "timestamp": "2025-11-25T13:00:00Z"},
        {"id": "r2", "label": "dog"},
    ]


def test_batches_are_bounded_gzipped_when_large_and_share_one_connection(stub):
    client = client_for(stub.url, batch_size=40)
    for i in range(100):
        client.log_prediction({"i": i, "text": "x" * 20}, i % 2)
    assert client.flush(timeout=10)
    client.close()
    assert [r["features"]["i"] for r in stub.records["predictions"]] == list(range(100))
    assert max(r["size"] for r in stub.requests) <= 40
    assert sum(r["size"] for r in stub.requests) == 100
    assert all(r["encoding"] == "gzip" for r in stub.requests if r["size"] >= 20)
    assert len({r["port"] for r in stub.requests}) == 1  # keep-alive: one connection


def test_a_partial_batch_goes_out_after_flush_interval_without_flush(stub):
    client = client_for(stub.url, flush_interval=0.1, batch_size=1000)
    client.log_prediction({"x": 1})
    deadline = time.monotonic() + 5
    while not stub.records["predictions"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(stub.records["predictions"]) == 1
    client.close()


def test_a_full_queue_drops_and_counts_instead_of_blocking(stub):
    client = client_for(stub.url, queue_size=5, batch_size=100, flush_interval=60)
    for i in range(8):
        client.log_prediction({"i": i})
    assert (client.queued, client.dropped) == (5, 3)
    client.log_prediction(None)  # type: ignore[arg-type]  # a caller's bug never raises
    assert client.dropped == 4
    client.close(timeout=10)
    assert [r["features"]["i"] for r in stub.records["predictions"]] == [0, 1, 2, 3, 4]
    client.log_label("late", 1)  # after close: dropped, not raised
    assert (client.sent, client.dropped) == (5, 5)


def test_a_429_storm_is_retried_honouring_retry_after_and_delivered_once():
    """429s come from the stub: the real exporter cannot be made to answer 429 on demand."""
    script = ((429, {"Retry-After": "0"}),) * 5 + ((429, {"Retry-After": "1"}),)
    stub = StubExporter(script=script)
    try:
        with client_for(stub.url, batch_size=1000) as client:
            for i in range(30):
                client.log_prediction({"i": i})
            assert client.flush(timeout=20)
            assert (client.sent, client.failed, client.dropped) == (30, 0, 0)
    finally:
        stub.stop()
    assert [r["status"] for r in stub.requests] == [429] * 6 + [200]
    assert stub.requests[-1]["time"] - stub.requests[-2]["time"] >= 0.95  # Retry-After: 1
    assert [r["features"]["i"] for r in stub.records["predictions"]] == list(range(30))


def test_server_errors_are_retried_with_backoff():
    stub = StubExporter(script=((500, {}), (503, {}), (502, {})))
    try:
        with client_for(stub.url) as client:
            client.log_label("a", 1)
            assert client.flush(timeout=10)
            assert (client.sent, client.failed) == (1, 0)
    finally:
        stub.stop()
    assert [r["status"] for r in stub.requests] == [500, 503, 502, 200]


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_other_4xx_drop_the_batch_without_retrying(status):
    stub = StubExporter(script=((status, {}),))
    try:
        with client_for(stub.url, batch_size=3, flush_interval=60) as client:
            for i in range(3):
                client.log_prediction({"i": i})
            assert client.flush(timeout=10)
            assert (client.sent, client.failed) == (0, 3)
    finally:
        stub.stop()
    assert [r["status"] for r in stub.requests] == [status]


def test_a_413_splits_the_batch():
    stub = StubExporter(script=((413, {}),))
    try:
        with client_for(stub.url, batch_size=10, flush_interval=60) as client:
            for i in range(10):
                client.log_prediction({"i": i})
            assert client.flush(timeout=10)
            assert client.sent == 10
    finally:
        stub.stop()
    assert [(r["status"], r["size"]) for r in stub.requests] == [(413, 10), (200, 5), (200, 5)]
    assert [r["features"]["i"] for r in stub.records["predictions"]] == list(range(10))


def test_retries_are_bounded_when_asked():
    client = client_for(f"http://127.0.0.1:{free_port()}", max_retries=2)
    client.log_prediction({"x": 1})
    client.log_prediction({"x": 2})
    assert client.flush(timeout=10)
    assert (client.sent, client.failed, client.dropped) == (0, 2, 0)
    client.close()


def test_records_wait_while_the_exporter_is_down_and_arrive_when_it_is_up():
    port = free_port()
    client = client_for(f"http://127.0.0.1:{port}", queue_size=40, batch_size=10)
    for i in range(50):
        client.log_prediction({"i": i})
    assert not client.flush(timeout=0.3)
    stub = StubExporter(port=port)
    try:
        assert client.flush(timeout=10)
        client.close()
    finally:
        stub.stop()
    received = [r["features"]["i"] for r in stub.records["predictions"]]
    # up to the queue bound (40) plus the batch in flight arrive, in order, each once;
    # which ones were dropped depends on when the sender took its first batch
    assert (client.sent, client.dropped, client.failed) == (len(received), 50 - len(received), 0)
    assert received == sorted(set(received))
    assert 40 <= len(received) <= 50


def test_close_gives_up_after_its_timeout_and_counts_the_rest_as_dropped():
    client = client_for(f"http://127.0.0.1:{free_port()}", batch_size=2, flush_interval=60)
    for i in range(5):
        client.log_prediction({"i": i})
    started = time.monotonic()
    client.close(timeout=0.3)
    assert time.monotonic() - started < 5
    assert (client.sent, client.failed, client.dropped) == (0, 0, 5)


def test_leaving_a_with_block_waits_at_most_shutdown_timeout():
    started = time.monotonic()
    with client_for(f"http://127.0.0.1:{free_port()}", shutdown_timeout=0.3) as client:
        for i in range(3):
            client.log_prediction({"i": i})
    assert time.monotonic() - started < 5
    assert (client.sent, client.failed, client.dropped) == (0, 0, 3)


def test_numpy_values_are_sent_as_numbers_and_unserializable_records_fail_alone(stub):
    with client_for(stub.url, batch_size=3, flush_interval=60) as client:
        client.log_prediction(
            {"x": np.float32(1.5), "n": np.int64(3)}, np.int64(1), score=np.float64(0.25)
        )
        client.log_prediction({"x": object()})
        client.log_prediction({"v": np.array([1, 2])})
        assert client.flush(timeout=10)
        assert (client.sent, client.failed) == (2, 1)
    first, second = stub.records["predictions"]
    assert (first["features"], first["prediction"], first["score"]) == ({"x": 1.5, "n": 3}, 1, 0.25)
    assert second["features"] == {"v": [1, 2]}


def test_nan_and_infinity_are_sent_as_null_since_json_has_neither(stub):
    with client_for(stub.url) as client:
        client.log_prediction({"x": float("nan"), "y": np.float32("inf"), "z": 1.0},
                              score=float("-inf"))  # fmt: skip
        assert client.flush(timeout=10)
        assert (client.sent, client.failed) == (1, 0)
    assert stub.problems == []
    [record] = stub.records["predictions"]
    assert (record["features"], record["score"]) == ({"x": None, "y": None, "z": 1.0}, None)


@pytest.mark.parametrize("dumps", [dumps_json, dumps_orjson])
def test_both_encoders_write_the_same_json(dumps):
    value = {"x": float("nan"), "y": np.float32(0.5), "n": np.int64(7), 3: [float("-inf")],
             "v": np.array([1.0, np.nan]), "s": "é", "b": True, "none": None}  # fmt: skip
    expected = {"x": None, "y": 0.5, "n": 7, "3": [None], "v": [1.0, None], "s": "é",
                "b": True, "none": None}  # fmt: skip
    assert json.loads(dumps(value), parse_constant=_not_json) == expected
    with pytest.raises(TypeError):
        dumps({"x": object()})


def test_rejections_reported_by_the_exporter_are_counted(stub):
    with client_for(stub.url) as client:
        client.log_prediction({"bad": 1})
        client.log_prediction({"ok": 1})
        assert client.flush(timeout=10)
        assert (client.sent, client.rejected) == (2, 1)


def test_retry_after_reads_seconds_and_http_dates():
    response = requests.Response()
    assert retry_after(response) is None
    response.headers["Retry-After"] = "7"
    assert retry_after(response) == 7.0
    response.headers["Retry-After"] = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= (retry_after(response) or 0) <= 30
    response.headers["Retry-After"] = "soon"
    assert retry_after(response) is None


def test_constructor_rejects_a_bad_queue_size():
    with pytest.raises(ValueError, match="queue_size: expected an integer >= 1, got 0"):
        Client("http://127.0.0.1:1", MODEL, queue_size=0)
