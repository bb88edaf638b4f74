"""Security findings of issue 22 against a running exporter, each with real requests.

Framing attacks go over raw sockets: an HTTP library would normalize them (one
Content-Length, a valid Transfer-Encoding) before they reached the server. For each, the
server must answer exactly one 4xx, close the connection (the bytes after the headers
must never be taken for a next request), count nothing, and keep serving.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.integration

MODEL = "credit-risk"
INGEST = f"/v1/models/{MODEL}/predictions"
GOOD = {"features": {"age": 41, "income": 52000.0, "country": "DE"}, "prediction": 1}
GOOD_BODY = json.dumps([GOOD]).encode()
#: A complete request smuggled in a body: if it were ever run, events would grow.
SMUGGLED = (
    f"POST {INGEST} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    f"Content-Length: {len(GOOD_BODY)}\r\n\r\n"
).encode() + GOOD_BODY


@pytest.fixture(scope="module")
def plain(module_exporters: Any) -> Any:
    return module_exporters.start(limits={"request_timeout": "2s"})


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes on a fresh connection and read until the server closes it."""
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, BrokenPipeError):
            pass
    return b"".join(chunks)


def statuses(raw: bytes) -> list[int]:
    return [int(code) for code in re.findall(rb"HTTP/1\.[01] (\d{3}) ", raw)]


def events(scrape: Callable[[str], Any], url: str) -> float:
    return float(scrape(url).value("modelmon_events_total", model=MODEL, version="v1"))


def request(head: str, body: bytes = b"") -> bytes:
    return head.replace("\n", "\r\n").encode() + b"\r\n" + body


POST_HEAD = f"POST {INGEST} HTTP/1.1\nHost: t\nContent-Type: application/json\n"

SMUGGLING = {
    "get-with-body": request(f"GET /healthz HTTP/1.1\nHost: t\nContent-Length: {len(SMUGGLED)}\n")
    + SMUGGLED,
    "head-with-body": request(f"HEAD /healthz HTTP/1.1\nHost: t\nContent-Length: {len(SMUGGLED)}\n")
    + SMUGGLED,
    "te-chunked-space": request(POST_HEAD + "Transfer-Encoding: chunked \nContent-Length: 4\n")
    + b"0\r\n\r\n"
    + SMUGGLED,
    "te-gzip-chunked": request(POST_HEAD + "Transfer-Encoding: gzip, chunked\n")
    + b"0\r\n\r\n"
    + SMUGGLED,
    "te-twice": request(POST_HEAD + "Transfer-Encoding: chunked\nTransfer-Encoding: identity\n")
    + b"0\r\n\r\n"
    + SMUGGLED,
    "te-and-cl": request(
        POST_HEAD + f"Transfer-Encoding: chunked\nContent-Length: {len(GOOD_BODY)}\n"
    )
    + GOOD_BODY
    + SMUGGLED,
    "cl-conflict": request(POST_HEAD + f"Content-Length: {len(GOOD_BODY)}\nContent-Length: 0\n")
    + GOOD_BODY
    + SMUGGLED,
    "cl-repeated": request(
        POST_HEAD + f"Content-Length: {len(GOOD_BODY)}\nContent-Length: {len(GOOD_BODY)}\n"
    )
    + GOOD_BODY
    + SMUGGLED,
    "cl-list": request(POST_HEAD + f"Content-Length: {len(GOOD_BODY)}, {len(GOOD_BODY)}\n")
    + GOOD_BODY,
    "obs-fold": POST_HEAD.replace("\n", "\r\n").encode()
    + b"Content-Length: 0\r\n "
    + str(len(GOOD_BODY)).encode()
    + b"\r\n\r\n"
    + GOOD_BODY,
    "bare-lf": POST_HEAD.encode() + f"Content-Length: {len(GOOD_BODY)}\n\n".encode() + GOOD_BODY,
    "space-before-colon": request(POST_HEAD + f"Content-Length : {len(GOOD_BODY)}\n") + GOOD_BODY,
}


@pytest.mark.parametrize("data", SMUGGLING.values(), ids=SMUGGLING.keys())
def test_smuggling_framings_get_one_400_and_the_body_never_runs(
    plain: Any, scrape: Callable[[str], Any], data: bytes
) -> None:
    before = events(scrape, plain.url)
    raw = exchange(port_of(plain.url), data)
    assert statuses(raw) == [400], raw[:300]
    assert b"Connection: close" in raw
    assert events(scrape, plain.url) == before  # neither the body nor the smuggled request
    assert requests.post(plain.url + INGEST, data=GOOD_BODY, timeout=5).status_code == 200


def test_plain_chunked_is_411_and_closes(plain: Any, scrape: Callable[[str], Any]) -> None:
    before = events(scrape, plain.url)
    data = request(POST_HEAD + "Transfer-Encoding: chunked\n") + b"0\r\n\r\n" + SMUGGLED
    raw = exchange(port_of(plain.url), data)
    assert statuses(raw) == [411]
    assert events(scrape, plain.url) == before


@pytest.mark.parametrize(
    ("length", "expected"),
    [("²", 400), ("\u0665", 400), ("9" * 5000, 413), ("1e3", 400), ("0x10", 400)],
    ids=["superscript", "arabic-digit", "5000-digits", "exponent", "hex"],
)
def test_odd_content_lengths_are_4xx_never_500(plain: Any, length: str, expected: int) -> None:
    data = request(POST_HEAD + f"Content-Length: {length}\n", GOOD_BODY)
    raw = exchange(port_of(plain.url), data.decode("latin-1").encode("utf-8"))
    assert statuses(raw) == [expected], raw[:300]
    assert b"internal error" not in raw


@pytest.mark.parametrize(
    "header",
    [
        "Accept: \x00",
        "Content-Type: application/json; charset=\u00ff",
        "Content-Encoding: gzip, br, \u00e9",
        "Authorization: Bearer \u00e9\u00e9",
        "X-" + "a" * 8000 + ": 1",
        "Host: " + "h" * 60000,
        "Expect: 100-continue-ish",
        ": nameless",
        "Garbage-without-colon",
    ],
    ids=[
        "nul",
        "charset",
        "encoding",
        "auth",
        "long-name",
        "long-value",
        "expect",
        "nameless",
        "garbage",
    ],
)
def test_every_malformed_header_is_4xx(plain: Any, header: str) -> None:
    data = request(POST_HEAD + header + f"\nContent-Length: {len(GOOD_BODY)}\n", GOOD_BODY)
    raw = exchange(port_of(plain.url), data.decode().encode("latin-1", "replace"))
    codes = statuses(raw)
    assert codes, raw[:300]
    assert all(code < 500 for code in codes), raw[:300]


@pytest.mark.parametrize("method", ["PUT", "DELETE", "OPTIONS", "PATCH", "FOO"])
def test_other_methods_are_4xx_and_their_bodies_never_run(
    plain: Any, scrape: Callable[[str], Any], method: str
) -> None:
    before = events(scrape, plain.url)
    data = request(f"{method} {INGEST} HTTP/1.1\nHost: t\nContent-Length: {len(SMUGGLED)}\n")
    raw = exchange(port_of(plain.url), data + SMUGGLED)
    codes = statuses(raw)
    assert len(codes) == 1, raw[:300]
    assert 400 <= codes[0] < 500, raw[:300]
    assert events(scrape, plain.url) == before


def test_server_header_names_no_python_version(plain: Any) -> None:
    response = requests.get(plain.url + "/healthz", timeout=5)
    assert response.headers["Server"] == "modelmon"
    raw = exchange(port_of(plain.url), b"NONSENSE\r\n\r\n")  # answered by the stdlib's error path
    assert b"Python" not in raw


def test_request_lines_reach_the_log_escaped_and_short(
    exporter_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    running = exporter_factory()
    evil = "/a\x1b[31mRED\x1b[0m?q=" + "x" * 5000
    with caplog.at_level(logging.DEBUG, logger="modelmon"):
        close = "Host: t\r\nConnection: close\r\n\r\n"
        exchange(port_of(running.url), f"GET {evil} HTTP/1.1\r\n{close}".encode())
        exchange(port_of(running.url), b"GET /b\rFAKE 200 HTTP/1.1\r\nHost: t\r\n\r\n")
        exchange(port_of(running.url), b"PUT /\x1b[2J HTTP/1.1\r\nHost: t\r\n\r\n")
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("modelmon")]
    assert any("RED" in m for m in messages), messages  # the lines were logged ...
    for message in messages:  # ... without a control character or the whole path
        assert not re.search(r"[\x00-\x1f\x7f]", message), message
        assert len(message) < 800, len(message)


# --- exposure ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def protected(module_exporters: Any) -> Any:
    directory = module_exporters.directory
    token = directory / "token"
    token.write_text("s3cret-token\n")
    token.chmod(0o600)
    auth = {"token_file": str(token), "protect_metrics": True}
    return module_exporters.start(auth=auth)


@pytest.mark.parametrize("path", ["/metrics", "/v1/models", "/", "/nope"])
def test_protect_metrics_covers_every_endpoint_but_the_probes(protected: Any, path: str) -> None:
    assert requests.get(protected.url + path, timeout=5).status_code == 401
    authorized = requests.get(
        protected.url + path, headers={"Authorization": "Bearer s3cret-token"}, timeout=5
    )
    assert authorized.status_code == (404 if path == "/nope" else 200)
    for probe in ("/healthz", "/readyz"):
        assert requests.get(protected.url + probe, timeout=5).status_code == 200


def test_the_model_listing_shows_the_reference_file_name_only(plain: Any) -> None:
    [model] = requests.get(plain.url + "/v1/models", timeout=5).json()["models"]
    assert model["reference"] == "credit-risk.profile.json"
    assert "/" not in model["reference"]


# --- connections ---------------------------------------------------------------------


def test_connections_over_the_cap_get_503_and_a_log_line(
    exporter_factory: Any, scrape: Callable[[str], Any], caplog: pytest.LogCaptureFixture
) -> None:
    running = exporter_factory(limits={"max_connections": 3, "request_timeout": "3s"})
    port = port_of(running.url)
    held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
    try:
        time.sleep(0.2)  # the server has accepted them and started their threads
        with caplog.at_level(logging.WARNING, logger="modelmon"):
            raw = exchange(port, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        assert statuses(raw) == [503], raw
        assert any("limits.max_connections" in r.getMessage() for r in caplog.records)
    finally:
        for sock in held:
            sock.close()
    deadline, attempts = time.monotonic() + 5, 0
    while time.monotonic() < deadline:  # the held connections' threads end
        attempts += 1
        try:
            if requests.get(running.url + "/healthz", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    else:
        pytest.fail("the exporter did not serve again after the held connections closed")
    refused = scrape(running.url).value("modelmon_http_requests_total", handler="other", code="503")
    assert 1 <= refused <= attempts  # ours, and the retries that came before the threads ended


def test_429_answers_are_counted(exporter_factory: Any, scrape: Callable[[str], Any]) -> None:
    """A sender holding the whole byte budget (max_inflight 1) makes the next one wait
    0.5 s and get 429, which modelmon_http_requests_total shows."""
    limits = {"max_inflight": 1, "max_body_bytes": 100_000}
    running = exporter_factory(limits=limits)
    with socket.create_connection(("127.0.0.1", port_of(running.url)), timeout=5) as holder:
        holder.sendall(request(POST_HEAD + "Content-Length: 100000\n"))
        time.sleep(0.1)
        response = requests.post(running.url + INGEST, data=GOOD_BODY, timeout=5)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    samples = scrape(running.url)
    assert samples.value("modelmon_http_requests_total", handler="predictions", code="429") == 1


# --- state files and sources ---------------------------------------------------------


def test_state_files_are_private_whatever_the_umask(exporter_factory: Any, tmp_path: Path) -> None:
    old = os.umask(0)  # the most open umask: files would be 0666, folders 0777
    try:
        state = tmp_path / "state"
        logs = tmp_path / "logs"
        logs.mkdir()
        (logs / "p.jsonl").write_text(json.dumps(GOOD) + "\n")
        source = {"type": "jsonl", "path": str(logs / "*.jsonl"), "model": MODEL}
        running = exporter_factory(state_dir=str(state), sources=[source])
        body = json.dumps([{**GOOD, "id": f"r{i}"} for i in range(50)]).encode()
        assert requests.post(running.url + INGEST, data=body, timeout=5).status_code == 200
        assert running.app.checkpointer is not None
        running.app.checkpointer.save_all()
        deadline = time.monotonic() + 10
        while not list(state.glob("jsonl-*.json")) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        os.umask(old)
    found = {
        p.relative_to(state).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in state.rglob("*")
    }
    assert {"labels.sqlite", "labels.sqlite-wal", "windows/credit-risk.npz"} <= set(found)
    assert any(name.startswith("jsonl-") for name in found), found
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for name, mode in found.items():
        expected = 0o700 if (state / name).is_dir() else 0o600
        assert mode == expected, f"{name}: {mode:o}"


@pytest.mark.parametrize("follow", [False, True])
def test_a_jsonl_source_does_not_follow_links_out_of_its_folder(
    exporter_factory: Any, scrape: Callable[[str], Any], tmp_path: Path, follow: bool
) -> None:
    secret = tmp_path / "private" / "secret.jsonl"
    secret.parent.mkdir()
    secret.write_text(json.dumps({**GOOD, "version": "s3cret-value"}) + "\n")
    secret.chmod(0o600)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "p.jsonl").symlink_to(secret)
    (logs / "q.jsonl").write_text(json.dumps(GOOD) + "\n")  # a real file beside it
    source = {
        "type": "jsonl",
        "path": str(logs / "*.jsonl"),
        "model": MODEL,
        "follow_symlinks": follow,
    }
    running = exporter_factory(sources=[source])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if events(scrape, running.url) >= 1:
            break
        time.sleep(0.1)
    time.sleep(1.0)  # several more polls
    text = requests.get(running.url + "/metrics", timeout=5).text
    assert events(scrape, running.url) == 1
    assert ("s3cret-value" in text) is follow


# --- per-record bounds ---------------------------------------------------------------


def test_oversized_scores_and_labels_are_rejected_and_nothing_is_stored(
    exporter_factory: Any, scrape: Callable[[str], Any], tmp_path: Path
) -> None:
    running = exporter_factory(state_dir=str(tmp_path / "state"))
    store = running.app.store
    blob = "x" * 2**20
    for start in range(0, 60, 10):  # 10 MiB bodies: under the default 16 MiB limit
        predictions = [
            {**GOOD, "id": f"p{i}", "score": {"blob": blob}} for i in range(start, start + 10)
        ]
        response = requests.post(
            running.url + INGEST, data=json.dumps(predictions).encode(), timeout=30
        )
        assert response.status_code == 200, response.text[:200]
        assert (response.json()["accepted"], response.json()["rejected"]) == (0, 10)
        assert {e["reason"] for e in response.json()["errors"]} == {"invalid_score"}
        labels = [{"id": f"o{i}", "label": blob} for i in range(start, start + 10)]
        response = requests.post(
            f"{running.url}/v1/models/{MODEL}/labels", data=json.dumps(labels).encode(), timeout=30
        )
        assert (response.json()["accepted"], response.json()["rejected"]) == (0, 10)
        assert {e["reason"] for e in response.json()["errors"]} == {"invalid_label"}
    assert (store.pending(MODEL), store.orphans(MODEL)) == (0, 0)
    samples = scrape(running.url)
    rejected = "modelmon_rejected_records_total"
    assert samples.value(rejected, model=MODEL, reason="invalid_score") == 60
    assert samples.value(rejected, model=MODEL, reason="invalid_label") == 60
    db = tmp_path / "state" / "labels.sqlite"
    size = db.stat().st_size + (db.with_name("labels.sqlite-wal").stat().st_size)
    assert size < 2**20, size  # not one of the 1 MiB values reached the file


def test_five_junk_versions_do_not_stop_the_configured_version(exporter_factory: Any) -> None:
    running = exporter_factory()
    junk = [{**GOOD, "version": f"junk{i}"} for i in range(5)]
    first = requests.post(running.url + INGEST, data=json.dumps(junk).encode(), timeout=5)
    assert first.json()["rejected"] >= 1  # they fill every slot they can
    configured = requests.post(running.url + INGEST, data=json.dumps([GOOD]).encode(), timeout=5)
    assert configured.json() == {"accepted": 1, "rejected": 0, "errors": []}
    real = [{**GOOD, "version": "v2"}] * 100  # a real new version with enough records
    second = requests.post(running.url + INGEST, data=json.dumps(real).encode(), timeout=5)
    assert second.json()["accepted"] == 100
    [model] = requests.get(running.url + "/v1/models", timeout=5).json()["models"]
    assert {"v1", "v2"} <= set(model["versions"])


def test_no_100_continue_for_a_request_whose_framing_is_refused(plain: Any) -> None:
    head = POST_HEAD + "Expect: 100-continue\nContent-Length: 2\nContent-Length: 3\n"
    raw = exchange(port_of(plain.url), request(head))
    assert statuses(raw) == [400], raw[:300]
    good = exchange(
        port_of(plain.url),
        request(
            POST_HEAD
            + f"Expect: 100-continue\nConnection: close\nContent-Length: {len(GOOD_BODY)}\n"
        )
        + GOOD_BODY,
    )
    assert statuses(good) == [100, 200], good[:300]
