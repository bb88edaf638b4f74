"""Every request limit answers its documented status, and the server keeps serving.

An in-process exporter with small ``limits`` takes hostile bodies over real sockets:
oversized and lying ``Content-Length``, a gzip bomb (1 GiB of zeros in about 1 MB),
too many records, long categories, deep nesting, numbers beyond double range, invalid
UTF-8, huge field names and clients that stall. After each, a valid request must still
get its 200 and no answer may be a 5xx.

The flood test runs ``modelmon serve`` as a subprocess (so its resident memory is its
own) with ``max_inflight: 1`` and floods it from several threads: some requests get
``429`` with ``Retry-After`` before their body is read (the sender keeps those records
and retries), every record of a 200 is counted and none of a 429 is,
``/healthz`` and ``/metrics`` answer within a second, and the peak resident memory stays
within a few requests' worth. Peak memory is the kernel's high-water mark (``VmHWM``),
reset through ``/proc/PID/clear_refs`` before each measured phase.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
import realbin
import requests
import yaml

from conftest import parse_exposition

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for memory"),
]

MODEL = "credit-risk"
INGEST = f"/v1/models/{MODEL}/predictions"
MIB = 2**20
LIMITS: dict[str, Any] = {
    "max_body_bytes": 2 * MIB,
    "max_decompressed_bytes": 4 * MIB,
    "max_records": 50,
    "max_category_length": 16,
    "max_inflight": 2,
    "request_timeout": "1s",
}
GOOD: dict[str, Any] = {
    "features": {"age": 41, "income": 52000.0, "country": "DE"},
    "prediction": 1,
}


# --- helpers -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(module_exporters: Any) -> Any:
    """One exporter with small limits for the whole module (counters: use deltas)."""
    return module_exporters.start(limits=LIMITS)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def post(url: str, body: bytes, **headers: str) -> requests.Response:
    headers.setdefault("Content-Type", "application/json")
    return requests.post(url + INGEST, data=body, headers=headers, timeout=30)


def assert_still_serving(url: str) -> None:
    """A valid record is still accepted: the bad request left the server intact."""
    response = post(url, json.dumps(GOOD).encode())
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1


def exchange(port: int, data: bytes, *, half_close: bool = False, timeout: float = 5.0) -> bytes:
    """Send raw bytes on a fresh connection and read until the server closes it."""
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, BrokenPipeError):
            pass
    return b"".join(chunks)


def statuses(raw: bytes) -> list[int]:
    return [int(code) for code in re.findall(rb"HTTP/1\.[01] (\d{3}) ", raw)]


def head(length: int | str, content_type: str = "application/json") -> bytes:
    return (
        f"POST {INGEST} HTTP/1.1\r\nHost: test\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def counter(scrape: Callable[[str], Any], url: str, name: str, **labels: str) -> float:
    base = {"model": MODEL}
    if name.startswith("modelmon_column_"):
        base.update(version="v1", role="feature")
    return float(scrape(url).value(name, **base, **labels))


def padded_json(records: list[dict[str, Any]], size: int) -> bytes:
    """A JSON array of ``records`` padded with whitespace to exactly ``size`` bytes."""
    text = json.dumps(records).encode()
    assert len(text) <= size
    return text + b" " * (size - len(text))


def gzip_bomb(gib: int = 1) -> bytes:
    """A valid gzip member of ``gib`` GiB of zeros, about 1 MB long.

    Deflate with a full flush after every 16 MiB chunk resets the compressor, so each
    chunk compresses to the same bytes: one chunk is compressed once and repeated.
    """
    chunk = bytes(16 * MIB)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = deflate.compress(chunk) + deflate.flush(zlib.Z_FULL_FLUSH)
    end = deflate.flush()
    repeats = gib * 64
    crc = 0
    for _ in range(repeats):
        crc = zlib.crc32(chunk, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, (repeats * len(chunk)) & 0xFFFFFFFF)
    return header + block * repeats + end + trailer


def vm_kib(pid: int, field: str) -> int:
    text = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    assert match is not None, f"/proc/{pid}/status has no {field}"
    return int(match.group(1))


def reset_peak_rss(pid: int) -> int:
    """Reset the process's resident high-water mark; returns its current RSS in bytes."""
    Path(f"/proc/{pid}/clear_refs").write_text("5", encoding="ascii")
    return vm_kib(pid, "VmRSS") * 1024


def peak_rss(pid: int) -> int:
    return vm_kib(pid, "VmHWM") * 1024


# --- body size and Content-Length ------------------------------------------------------


def test_body_over_max_body_bytes_is_413(server: Any) -> None:
    body = padded_json([GOOD], LIMITS["max_body_bytes"] + 1)
    response = post(server.url, body)
    assert response.status_code == 413
    assert str(LIMITS["max_body_bytes"]) in response.json()["error"]
    assert_still_serving(server.url)


def test_body_at_max_body_bytes_is_accepted(server: Any) -> None:
    response = post(server.url, padded_json([GOOD], LIMITS["max_body_bytes"]))
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1


def test_declared_length_over_the_limit_is_413_before_the_body_is_read(server: Any) -> None:
    raw = exchange(port_of(server.url), head(10**12) + json.dumps(GOOD).encode())
    assert statuses(raw) == [413]
    assert_still_serving(server.url)


@pytest.mark.parametrize("length", ["-1", "abc", "1e3", ""])
def test_malformed_content_length_is_400(server: Any, length: str) -> None:
    """RFC 9112 section 6.3: a Content-Length that is not a number is unrecoverable."""
    raw = exchange(port_of(server.url), head(length) + json.dumps(GOOD).encode())
    assert statuses(raw) == [400]
    assert_still_serving(server.url)


def test_declared_length_longer_than_the_body_is_400_when_the_client_ends(server: Any) -> None:
    body = json.dumps(GOOD).encode()
    raw = exchange(port_of(server.url), head(len(body) + 100) + body, half_close=True)
    assert statuses(raw) == [400]
    assert b"ended after" in raw
    assert_still_serving(server.url)


def test_declared_length_shorter_than_the_body_reads_only_what_was_declared(
    server: Any, scrape: Callable[[str], Any]
) -> None:
    """The declared bytes are one request; the rest is a (bad) next request, never a 5xx."""
    events = counter(scrape, server.url, "modelmon_events_total", version="v1")
    body = json.dumps([GOOD]).encode()
    raw = exchange(port_of(server.url), head(len(body)) + body + b"X" * 100_000)
    codes = statuses(raw)
    assert codes[0] == 200
    assert all(400 <= code < 500 for code in codes[1:]), codes
    assert counter(scrape, server.url, "modelmon_events_total", version="v1") == events + 1
    assert_still_serving(server.url)


def test_chunked_transfer_encoding_is_refused_cleanly(server: Any) -> None:
    data = (
        f"POST {INGEST} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n5\r\n[{}]\n\r\n0\r\n\r\n"
    ).encode()
    codes = statuses(exchange(port_of(server.url), data))
    assert codes[:1] == [411]
    assert all(code < 500 for code in codes)
    assert_still_serving(server.url)


# --- gzip ------------------------------------------------------------------------------


def test_gzip_bomb_is_413_and_memory_does_not_balloon(server: Any) -> None:
    bomb = gzip_bomb()
    assert len(bomb) < LIMITS["max_body_bytes"]  # passes the body limit: only gzip can stop it
    head_of_bomb = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(bomb, 32 * MIB)
    assert head_of_bomb == bytes(32 * MIB)  # it really inflates to zeros
    del head_of_bomb
    pid = psutil.Process().pid  # the exporter runs in this process
    before = reset_peak_rss(pid)
    response = post(server.url, bomb, **{"Content-Encoding": "gzip"})
    growth = peak_rss(pid) - before
    assert response.status_code == 413
    assert "decompresses" in response.json()["error"]
    # Inflating stops at the limit (4 MiB): the peak grows by a few limits at most,
    # nowhere near the 1 GiB the body would inflate to.
    assert growth < 64 * MIB, f"peak resident memory grew by {growth / MIB:.0f} MiB"
    assert_still_serving(server.url)


def test_decompressed_size_at_the_limit_is_accepted_and_one_byte_over_is_413(
    server: Any,
) -> None:
    limit = LIMITS["max_decompressed_bytes"]
    at_limit = gzip.compress(padded_json([GOOD], limit))
    over = gzip.compress(padded_json([GOOD], limit + 1))
    response = post(server.url, at_limit, **{"Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    assert post(server.url, over, **{"Content-Encoding": "gzip"}).status_code == 413


@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson"])
@pytest.mark.parametrize("cut", [0.5, 0.99])
def test_truncated_gzip_is_400(server: Any, cut: float, content_type: str) -> None:
    """A gzip body cut short is corrupt as a whole: none of it may be counted, even
    when the part that inflates happens to hold whole records."""
    lines = [json.dumps({**GOOD, "id": f"r{i}"}) for i in range(40)]
    text = "\n".join(lines) if content_type.endswith("ndjson") else f"[{','.join(lines)}]"
    packed = gzip.compress(text.encode())
    truncated = packed[: int(len(packed) * cut)]
    response = post(
        server.url, truncated, **{"Content-Encoding": "gzip", "Content-Type": content_type}
    )
    assert response.status_code == 400, response.text
    assert_still_serving(server.url)


def test_unknown_content_encoding_is_415(server: Any) -> None:
    response = post(server.url, b"[]", **{"Content-Encoding": "br"})
    assert response.status_code == 415


# --- records and values ----------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson"])
def test_records_over_max_records_is_413(server: Any, content_type: str) -> None:
    n = LIMITS["max_records"]

    def body(count: int) -> bytes:
        if content_type == "application/json":
            return json.dumps([GOOD] * count).encode()
        return b"\n".join(json.dumps(GOOD).encode() for _ in range(count))

    over = post(server.url, body(n + 1), **{"Content-Type": content_type})
    assert over.status_code == 413
    assert str(n) in over.json()["error"]
    at = post(server.url, body(n), **{"Content-Type": content_type})
    assert at.status_code == 200
    assert at.json()["accepted"] == n


def test_categorical_value_over_max_category_length_is_a_type_error(
    server: Any, scrape: Callable[[str], Any]
) -> None:
    limit = LIMITS["max_category_length"]
    values = ["A" * (limit + 1), "B" * (limit + 1000), "C" * limit, "DE"]
    long_values = sum(len(v) > limit for v in values)  # the oracle: 2
    unseen = sum(len(v) <= limit and v not in ("DE", "FR", "ES") for v in values)  # 1
    before_type = counter(scrape, server.url, "modelmon_column_type_errors_total", column="country")
    before_unseen = counter(scrape, server.url, "modelmon_column_unseen_total", column="country")
    records = [{"features": {**GOOD["features"], "country": v}} for v in values]
    response = post(server.url, json.dumps(records).encode())
    assert response.status_code == 200
    assert response.json() == {"accepted": 4, "rejected": 0, "errors": []}
    after_type = counter(scrape, server.url, "modelmon_column_type_errors_total", column="country")
    after_unseen = counter(scrape, server.url, "modelmon_column_unseen_total", column="country")
    assert after_type - before_type == long_values
    assert after_unseen - before_unseen == unseen


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1" + "0" * 1000, "-" + "9" * 5000])
def test_number_beyond_double_range_is_out_of_range(
    server: Any, scrape: Callable[[str], Any], number: str
) -> None:
    """orjson refuses such a number; the standard library then reads it as ±inf (an
    integer of more than 4300 digits too, which Python itself would refuse to convert),
    so the value counts as out of range and the record is used."""
    before = counter(scrape, server.url, "modelmon_column_out_of_range_total", column="age")
    response = post(server.url, f'[{{"features": {{"age": {number}}}}}]'.encode())
    assert response.status_code == 200, response.text
    after = counter(scrape, server.url, "modelmon_column_out_of_range_total", column="age")
    assert response.json()["accepted"] == 1
    assert after - before == 1
    assert_still_serving(server.url)


def test_integer_beyond_64_bits_in_range_of_double_is_used(
    server: Any, scrape: Callable[[str], Any]
) -> None:
    big = 10**30  # valid JSON; a double holds it; far above the reference's ages
    before = counter(scrape, server.url, "modelmon_column_bin_total", column="age", bin="9")
    response = post(server.url, f'{{"features": {{"age": {big}}}}}'.encode())
    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    after = counter(scrape, server.url, "modelmon_column_bin_total", column="age", bin="9")
    assert after - before == 1  # the top bin, [e_last, +inf)


@pytest.mark.parametrize(
    "bad", [b'"D\xff"', b'"\xc3\x28"', b'"\xed\xa0\x80"', b'"\\ud800"'], ids=str
)
def test_invalid_utf8_or_lone_surrogate_in_a_category_is_answered(server: Any, bad: bytes) -> None:
    body = b'{"features": {"age": 1, "country": ' + bad + b"}}"
    response = post(server.url, body)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 200:  # a parser that accepts it must still count the record
        assert response.json()["accepted"] == 1
    assert_still_serving(server.url)


SURROGATE = "\\ud800x"  # a JSON escape of a lone surrogate: no UTF-8 encoding exists
SURROGATE_BODIES = {
    "version": f'{{"version": "{SURROGATE}", "features": {{"age": 1}}}}',
    "id": f'{{"id": "{SURROGATE}", "features": {{"age": 1}}, "prediction": 1}}',
    "prediction": f'{{"features": {{"age": 1}}, "prediction": "{SURROGATE}", "label": 1}}',
    "category": f'{{"features": {{"country": "{SURROGATE}"}}}}',
    "feature-name": f'{{"features": {{"{SURROGATE}": 1}}}}',
    "scores": f'{{"features": {{}}, "prediction": 1, "scores": {{"{SURROGATE}": 0.5}}}}',
}


@pytest.mark.parametrize("kind", ["predictions", "labels"])
@pytest.mark.parametrize("field", SURROGATE_BODIES)
def test_lone_surrogate_strings_never_break_ingest_or_metrics(
    exporter_factory: Any, kind: str, field: str
) -> None:
    """A parser may refuse the body (400) or read the string; either way the request is
    answered and /metrics keeps working (label values must be encodable as UTF-8)."""
    running = exporter_factory()  # its own exporter: a broken /metrics must not leak
    body = SURROGATE_BODIES[field]
    if kind == "labels":
        body = f'{{"id": "{SURROGATE}", "label": 1}}' if field == "id" else body
    try:
        response = requests.post(
            f"{running.url}/v1/models/{MODEL}/{kind}",
            data=body.encode(),
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
    except requests.ConnectionError as error:
        pytest.fail(f"the request got no answer: {error}")
    assert response.status_code in (200, 400), response.text
    metrics = requests.get(running.url + "/metrics", timeout=10)
    assert metrics.status_code == 200
    assert parse_exposition(metrics.text)
    assert_still_serving(running.url)


def test_invalid_utf8_ndjson_line_is_rejected_alone(server: Any) -> None:
    good = json.dumps(GOOD).encode()
    body = b"\n".join([good, b'{"features": {"country": "\xff\xfe"}}', good])
    response = post(server.url, body, **{"Content-Type": "application/x-ndjson"})
    assert response.status_code == 200
    result = response.json()
    assert (result["accepted"], result["rejected"]) == (2, 1)
    assert result["errors"][0]["reason"] == "invalid_json"


def test_huge_field_names_are_unknown_fields(server: Any, scrape: Callable[[str], Any]) -> None:
    features = {**GOOD["features"], "k" * 500_000: 1, "x" * 100_000: "y"}
    record = {**GOOD, "z" * 500_000: 1, "features": features}
    before = scrape(server.url).value("modelmon_unknown_fields_total", model=MODEL)
    response = post(server.url, json.dumps(record).encode())
    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    after = scrape(server.url).value("modelmon_unknown_fields_total", model=MODEL)
    assert after - before == 2  # the two unknown feature keys; record-level keys are ignored


def test_many_unknown_fields_are_counted(server: Any, scrape: Callable[[str], Any]) -> None:
    features = {f"extra_{i}": i for i in range(20_000)}
    before = scrape(server.url).value("modelmon_unknown_fields_total", model=MODEL)
    response = post(server.url, json.dumps({"features": features}).encode())
    assert response.status_code == 200
    after = scrape(server.url).value("modelmon_unknown_fields_total", model=MODEL)
    assert after - before == 20_000


def test_unsupported_content_type_is_415(server: Any) -> None:
    response = post(server.url, b"age=1", **{"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415


# --- slow clients ----------------------------------------------------------------------


def closed_after(sock: socket.socket, limit: float) -> float:
    """Seconds until the server closes ``sock`` (reads past any response it sends)."""
    started = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(65536):
            pass
    except (ConnectionResetError, TimeoutError):
        pass
    return time.monotonic() - started


@pytest.mark.parametrize(
    "sent",
    [
        b"",  # connects, sends nothing
        f"POST {INGEST} HTTP/1.1\r\nHost: t".encode(),  # stalls inside the headers
        head(1000) + b'[{"features": ',  # stalls inside the body
    ],
    ids=["idle", "headers", "body"],
)
def test_stalled_client_is_dropped_after_request_timeout_while_others_are_served(
    server: Any, sent: bytes
) -> None:
    timeout = 1.0  # LIMITS["request_timeout"]
    stalled = []
    try:
        for _ in range(4):
            sock = socket.create_connection(("127.0.0.1", port_of(server.url)), timeout=5)
            stalled.append(sock)
            sock.sendall(sent)
        served = time.monotonic()
        assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
        assert_still_serving(server.url)
        assert time.monotonic() - served < 0.5 * timeout  # not queued behind the stalled ones
        waited = [closed_after(sock, 10.0) for sock in stalled]
    finally:
        for sock in stalled:
            sock.close()
    assert max(waited) < timeout + 1.0, f"closed after {waited} s"


# --- a server in its own process -------------------------------------------------------


class ServerProcess:
    """``modelmon serve`` as a subprocess, started again if a test crashed it."""

    def __init__(
        self,
        directory: Path,
        reference: Path,
        env: dict[str, str] | None = None,
        **top_level: Any,
    ) -> None:
        self.directory = directory
        self.env = None if env is None else {**os.environ, **env}
        self.port = realbin.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "listen": f"127.0.0.1:{self.port}",
            "refresh_interval": "1s",
            "collectors": {"gpu": False},
            "models": [
                {"name": MODEL, "version": "v1", "reference": str(reference), "windows": ["5m"]}
            ],
            **top_level,
        }
        self.config = directory / "modelmon.yaml"
        self.config.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.process: realbin.Process | None = None
        self.starts = 0

    def ensure_running(self) -> None:
        if self.process is not None and self.process.alive():
            return
        argv = [sys.executable, "-m", "modelmon", "serve", "--config", str(self.config)]
        self.starts += 1
        log = (self.directory / f"serve-{self.starts}.log").open("wb")
        with log:
            popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        self.process = realbin.Process(popen, Path(log.name))
        realbin.wait_http(self.url + "/readyz", timeout=60, process=self.process)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def assert_alive(self) -> None:
        assert self.process is not None
        try:
            answered = requests.get(self.url + "/healthz", timeout=5).status_code == 200
        except requests.ConnectionError:
            answered = False
        if not answered:
            try:
                code = self.process.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
            raise AssertionError(
                f"the exporter does not answer /healthz (exit code {code}): {self.process.log()}"
            )

    def stop(self) -> None:
        if self.process is not None:
            realbin.stop(self.process)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, module_exporters: Any) -> Iterator[Any]:
    """A subprocess exporter with default limits and a tailed JSONL file: a body that
    crashed the process must not take the test run with it."""
    directory = tmp_path_factory.mktemp("hostile")
    (directory / "logs").mkdir()
    source = {"type": "jsonl", "path": str(directory / "logs" / "*.jsonl"), "model": MODEL}
    server = ServerProcess(directory, module_exporters.reference(), sources=[source])
    server.ensure_running()
    try:
        yield server
    finally:
        server.stop()


def send(server: ServerProcess, body: bytes, **headers: str) -> requests.Response | None:
    """POST to a subprocess exporter; None when the connection broke (it may have died)."""
    server.ensure_running()
    try:
        return post(server.url, body, **headers)
    except requests.ConnectionError:
        return None


def nested_arrays(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


def nested_objects(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


DEEP_BODIES = {
    "arrays-100k": nested_arrays(100_000),
    "arrays-1M": nested_arrays(1_000_000),  # 2 MB: far below the default 16 MiB limit
    "objects-100k": nested_objects(100_000),
    "features-value-50k": f'{{"features": {{"age": {nested_arrays(50_000)}}}}}',
}


@pytest.mark.parametrize("body", DEEP_BODIES.values(), ids=DEEP_BODIES.keys())
def test_json_nested_beyond_the_parser_bound_is_400_and_the_server_survives(
    hostile: ServerProcess, body: str
) -> None:
    """README: JSON nested deeper than the parser's bound (1024 with orjson) is a 400."""
    response = send(hostile, body.encode())
    hostile.assert_alive()
    assert response is not None, "the connection broke"
    assert response.status_code == 400, response.text[:300]
    assert_still_serving(hostile.url)


def test_nesting_within_the_bound_is_a_type_error_of_the_column(
    hostile: ServerProcess, scrape: Callable[[str], Any]
) -> None:
    hostile.ensure_running()
    body = f'{{"features": {{"age": {nested_arrays(500)}, "income": 1.0}}}}'.encode()
    before = counter(scrape, hostile.url, "modelmon_column_type_errors_total", column="age")
    response = send(hostile, body)
    assert response is not None
    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    after = counter(scrape, hostile.url, "modelmon_column_type_errors_total", column="age")
    assert after - before == 1


@pytest.mark.parametrize("depth", [50_000, 1_000_000])
def test_deeply_nested_ndjson_line_is_rejected_alone(hostile: ServerProcess, depth: int) -> None:
    good = json.dumps(GOOD)
    body = "\n".join([good, nested_arrays(depth), good]).encode()
    response = send(hostile, body, **{"Content-Type": "application/x-ndjson"})
    hostile.assert_alive()
    assert response is not None, "the connection broke"
    assert response.status_code == 200
    result = response.json()
    assert (result["accepted"], result["rejected"]) == (2, 1)
    assert result["errors"][0]["index"] == 1
    assert result["errors"][0]["reason"] == "invalid_json"


def test_deeply_nested_line_in_a_tailed_file_is_rejected_alone(
    hostile: ServerProcess, scrape: Callable[[str], Any]
) -> None:
    hostile.ensure_running()
    before = scrape(hostile.url)
    good = json.dumps(GOOD)
    lines = [good, nested_objects(100_000), good]  # 600 kB: under the 1 MiB line limit
    (hostile.directory / "logs" / "deep.jsonl").write_text("\n".join(lines) + "\n")

    def counted() -> tuple[float, float]:
        now = scrape(hostile.url)
        return (
            now.value("modelmon_events_total", model=MODEL, version="v1")
            - before.value("modelmon_events_total", model=MODEL, version="v1"),
            now.value("modelmon_rejected_records_total", model=MODEL, reason="invalid_json")
            - before.value("modelmon_rejected_records_total", model=MODEL, reason="invalid_json"),
        )

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if counted() == (2, 1):
                break
        except requests.ConnectionError:
            break  # died: assert_alive says how
        time.sleep(0.1)
    hostile.assert_alive()
    assert counted() == (2, 1)


# --- backpressure ----------------------------------------------------------------------

FLOOD_RECORDS = 60_000  # per body (6 MB): ~0.1-0.3 s of ingest work, so senders queue up
FLOOD_SENDERS = 10
FLOOD_SECONDS = 5.0


def flood_body(n: int) -> bytes:
    records = [
        {
            "features": {"age": 18 + i % 60, "income": 30000.0 + i, "country": "DE"},
            "prediction": i % 2,
            "score": (i % 100) / 100,
        }
        for i in range(n)
    ]
    return json.dumps(records).encode()


@dataclass
class Flood:
    """What a flood of ``FLOOD_SENDERS`` senders against ``max_inflight: 1`` produced."""

    outcomes: Counter[int] = field(default_factory=Counter)
    retry_after: list[str | None] = field(default_factory=list)
    probes: list[tuple[str, float, int]] = field(default_factory=list)  # path, seconds, status
    errors: list[BaseException] = field(default_factory=list)
    one_request_bytes: int = 0  # peak growth while a fresh process ingests one body
    flood_growth_bytes: int = 0  # peak growth during the flood
    events: float = 0.0
    queue_full: float = 0.0

    def slowest(self, path: str) -> float:
        return max(seconds for p, seconds, _ in self.probes if p == path)


def run_flood(url: str, pid: int, body: bytes, seconds: float) -> Flood:
    flood = Flood()
    headers = {"Content-Type": "application/json"}
    before = reset_peak_rss(pid)
    assert requests.post(url + INGEST, data=body, headers=headers, timeout=30).status_code == 200
    flood.one_request_bytes = peak_rss(pid) - before
    baseline = reset_peak_rss(pid)
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def send() -> None:
        with requests.Session() as session:
            while time.monotonic() < deadline:
                try:
                    r = session.post(url + INGEST, data=body, headers=headers, timeout=30)
                except requests.RequestException as error:
                    with lock:
                        flood.errors.append(error)
                    return
                with lock:
                    flood.outcomes[r.status_code] += 1
                    if r.status_code == 429:
                        flood.retry_after.append(r.headers.get("Retry-After"))

    def probe() -> None:
        with requests.Session() as session:
            while time.monotonic() < deadline:
                for path in ("/healthz", "/metrics"):
                    started = time.perf_counter()
                    status = session.get(url + path, timeout=10).status_code
                    with lock:
                        flood.probes.append((path, time.perf_counter() - started, status))
                time.sleep(0.05)

    threads = [threading.Thread(target=send) for _ in range(FLOOD_SENDERS)]
    threads.append(threading.Thread(target=probe))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flood.flood_growth_bytes = peak_rss(pid) - baseline
    metrics = requests.get(url + "/metrics", timeout=10)
    samples = parse_exposition(metrics.text)
    flood.events = samples.value("modelmon_events_total", model=MODEL, version="v1")
    flood.queue_full = samples.value(
        "modelmon_rejected_records_total", model=MODEL, reason="queue_full"
    )
    return flood


@pytest.fixture(scope="module")
def flood(tmp_path_factory: pytest.TempPathFactory, module_exporters: Any) -> Iterator[Flood]:
    """One flood against ``modelmon serve`` in its own process, ``max_inflight: 1``.

    ``MALLOC_ARENA_MAX=2`` keeps glibc from giving each handler thread its own malloc
    arena, whose freed-but-kept pages would add tens of MiB of noise unrelated to what
    modelmon keeps alive (it is also a sensible setting for the sidecar in production).
    """
    limits = {"max_inflight": 1, "request_timeout": "10s"}
    directory = tmp_path_factory.mktemp("flood")
    env = {"MALLOC_ARENA_MAX": "2"}
    server = ServerProcess(directory, module_exporters.reference(), env=env, limits=limits)
    server.ensure_running()
    try:
        yield run_flood(server.url, server.pid, flood_body(FLOOD_RECORDS), FLOOD_SECONDS)
    finally:
        server.stop()


def test_flood_gets_429_with_retry_after_and_nothing_else(flood: Flood) -> None:
    assert not flood.errors, flood.errors[:3]
    assert set(flood.outcomes) <= {200, 429}, flood.outcomes
    assert flood.outcomes[429] > 0, f"no 429 in {flood.outcomes}: the queue never filled"
    assert len(flood.retry_after) == flood.outcomes[429]
    assert all(v is not None and v.isdigit() and int(v) >= 1 for v in flood.retry_after)


def test_healthz_and_metrics_answer_within_a_second_during_the_flood(flood: Flood) -> None:
    assert len(flood.probes) >= 10
    assert all(status == 200 for _, _, status in flood.probes)
    slowest = {path: flood.slowest(path) for path in ("/healthz", "/metrics")}
    assert max(slowest.values()) < 1.0, slowest


def test_every_accepted_record_is_counted_and_no_refused_one(flood: Flood) -> None:
    """A 429 answers before the body is read: those records stay with the sender, who
    retries; they are neither counted nor counted as rejected."""
    assert flood.events == (flood.outcomes[200] + 1) * FLOOD_RECORDS  # + the warm-up request
    assert flood.queue_full == 0


def test_peak_memory_during_the_flood_stays_near_one_request(flood: Flood) -> None:
    """One request at a time is processed and the others wait in the senders (server.py),
    so the peak grows by about one request's worth (two allowed, plus 16 MiB for
    allocator slack), not by one request per waiting sender."""
    one, growth = flood.one_request_bytes, flood.flood_growth_bytes
    assert growth <= 2 * one + 16 * MIB, (
        f"peak resident memory grew {growth / MIB:.0f} MiB during the flood with "
        f"{FLOOD_SENDERS} senders; one request alone costs {one / MIB:.0f} MiB"
    )
