"""Acceptance of issue 22 (and issue 19, item 5) against real ``modelmon serve`` processes.

- A 64 KB gzip body that inflates to 63 MiB of empty objects, as a JSON array and as
  NDJSON, is answered 413 within a second, the process's peak resident memory grows by
  less than 256 MiB, and a normal ingest request sent at the same moment is answered
  within a second. (Before the fix: +2 to +2.9 GiB, and the normal request waited 8.7 s.)
- 50 clients sending their bodies one byte a second, four of them declaring the largest
  body allowed (together the whole byte budget), hold neither the ingest slots nor the
  budget: a normal client's requests are answered 200 within a second each, and the
  slow bodies get 408 once ``limits.body_timeout`` has passed. (Before: every request
  after the four got 429 for as long as they kept trickling.)

Peak memory is the kernel's high-water mark (``VmHWM``), reset through
``/proc/PID/clear_refs`` before the measured phase. The exporters run with the default
limits (the slow-client one with shorter timeouts) and ``MALLOC_ARENA_MAX=2``.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import realbin
import requests
import yaml

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for memory"),
]

MODEL = "credit-risk"
INGEST = f"/v1/models/{MODEL}/predictions"
MIB = 2**20
GOOD = {"features": {"age": 41, "income": 52000.0, "country": "DE"}, "prediction": 1}
BOMB_RECORDS = 22_000_000  # 3 bytes each: 63 MiB inflated, under the 64 MiB default


class Serve:
    """``modelmon serve`` in its own process with the given ``limits``."""

    def __init__(self, directory: Path, reference: Path, limits: dict[str, Any]) -> None:
        self.port = realbin.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "listen": f"127.0.0.1:{self.port}",
            "collectors": {"gpu": False},
            "limits": limits,
            "models": [{"name": MODEL, "version": "v1", "reference": str(reference)}],
        }
        path = directory / "modelmon.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        log = directory / "serve.log"
        env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
        argv = [sys.executable, "-m", "modelmon", "serve", "--config", str(path)]
        with log.open("wb") as handle:
            popen = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=env)
        self.process = realbin.Process(popen, log)
        realbin.wait_http(self.url + "/readyz", timeout=60, process=self.process)

    def kib(self, field: str) -> int:
        text = Path(f"/proc/{self.process.pid}/status").read_text(encoding="ascii")
        match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
        assert match is not None
        return int(match.group(1))

    def reset_peak(self) -> int:
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5", encoding="ascii")
        return self.kib("VmRSS") * 1024

    def peak(self) -> int:
        return self.kib("VmHWM") * 1024


@pytest.fixture(scope="module")
def reference(module_exporters: Any) -> Path:
    return Path(module_exporters.reference())


@pytest.fixture(scope="module")
def default_serve(tmp_path_factory: pytest.TempPathFactory, reference: Path) -> Iterator[Serve]:
    server = Serve(tmp_path_factory.mktemp("abuse"), reference, {})
    try:
        yield server
    finally:
        realbin.stop(server.process)


def bomb(kind: str) -> bytes:
    """About 64 KB of gzip that inflates to 63 MiB of ``{}``: a JSON array or NDJSON."""
    if kind == "ndjson":
        text = b"{}\n" * BOMB_RECORDS
    else:
        text = b"[" + b"{}," * (BOMB_RECORDS - 1) + b"{}]"
    return gzip.compress(text, 9)


def timed_post(url: str, body: bytes, headers: dict[str, str], out: dict[str, Any]) -> None:
    started = time.perf_counter()
    response = requests.post(url + INGEST, data=body, headers=headers, timeout=60)
    out["seconds"] = time.perf_counter() - started
    out["status"] = response.status_code
    out["text"] = response.text[:300]


@pytest.mark.parametrize("kind", ["json", "ndjson"])
def test_a_64_kb_gzip_bomb_is_413_at_once_in_bounded_memory_and_blocks_no_one(
    default_serve: Serve, kind: str
) -> None:
    body = bomb(kind)
    assert len(body) < 100_000  # 64 KB: no body limit can stop it, only the parser's bounds
    content_type = "application/x-ndjson" if kind == "ndjson" else "application/json"
    bomb_headers = {"Content-Type": content_type, "Content-Encoding": "gzip"}
    normal_headers = {"Content-Type": "application/json"}
    requests.post(default_serve.url + INGEST, data=json.dumps([GOOD]), timeout=10)  # warm
    before = default_serve.reset_peak()
    attack: dict[str, Any] = {}
    normal: dict[str, Any] = {}
    sender = threading.Thread(
        target=timed_post, args=(default_serve.url, body, bomb_headers, attack)
    )
    sender.start()
    time.sleep(0.02)  # the bomb is on its way; a normal request follows at once
    timed_post(default_serve.url, json.dumps([GOOD] * 100).encode(), normal_headers, normal)
    sender.join()
    growth = default_serve.peak() - before
    assert attack["status"] == 413, attack
    assert attack["seconds"] < 1.0, attack
    assert normal["status"] == 200, normal
    assert normal["seconds"] < 1.0, normal
    assert growth < 256 * MIB, f"peak resident memory grew by {growth / MIB:.0f} MiB"


SLOW_CLIENTS = 50
SLOW_LIMITS = {"request_timeout": "3s", "body_timeout": "6s"}


def slow_head(length: int) -> bytes:
    return (
        f"POST {INGEST} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def test_fifty_one_byte_a_second_clients_do_not_hold_up_a_normal_client(
    tmp_path: Path, reference: Path
) -> None:
    server = Serve(tmp_path, reference, SLOW_LIMITS)
    sockets: list[socket.socket] = []
    try:
        # Four declare the largest body allowed (16 MiB): together they promise the whole
        # byte budget (max_inflight 4 x 16 MiB), which held every later request to 429
        # for as long as they kept trickling. The other 46 come a moment later.
        for i in range(SLOW_CLIENTS):
            if i == 4:
                time.sleep(1.2)
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(slow_head(16 * MIB if i < 4 else 1000))
            sockets.append(sock)
        stop = threading.Event()

        def trickle() -> None:
            while not stop.wait(1.0):
                for sock in sockets:
                    with contextlib.suppress(OSError):  # closed by the server: 429 or 408
                        sock.send(b" ")

        trickler = threading.Thread(target=trickle)
        trickler.start()
        time.sleep(1.2)
        latencies = []
        for _ in range(5):
            out: dict[str, Any] = {}
            timed_post(server.url, json.dumps([GOOD] * 100).encode(), {}, out)
            assert out["status"] == 200, out
            latencies.append(out["seconds"])
            time.sleep(0.3)
        assert max(latencies) < 1.0, latencies
        answers = [read_answer(sock) for sock in sockets]
        stop.set()
        trickler.join()
        # Every slow body ends in 408 once body_timeout has passed: none was refused for
        # want of budget, none waits for ever.
        assert answers == [408] * SLOW_CLIENTS, answers
        metrics = requests.get(server.url + "/metrics", timeout=5).text
        assert re.search(
            r'modelmon_http_requests_total\{code="408",handler="predictions"\} ', metrics
        )
    finally:
        for sock in sockets:
            sock.close()
        realbin.stop(server.process)


def read_answer(sock: socket.socket, limit: float = 15.0) -> int | None:
    """The status code the server answered on ``sock`` (None if it closed silently)."""
    sock.settimeout(limit)
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", data)
    return int(match.group(1)) if match else None
