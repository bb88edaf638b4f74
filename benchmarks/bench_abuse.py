"""Abuse of a real ``modelmon serve``: gzip bombs and slow clients (issue 22, issue 19).

Two cases, each against a fresh exporter process with ``MALLOC_ARENA_MAX=2``:

- **bomb**: a gzip body of about 64 KB that inflates to 63 MiB of ``{}`` (a JSON array,
  and NDJSON) at the default limits; 20 ms after it, a normal ingest request of 100
  records. Reported per shape over ``--trials``: the bomb's status and answer time, the
  normal request's status and answer time, and the growth of the process's peak
  resident memory (``VmHWM``, reset through ``/proc/PID/clear_refs`` before each trial).
- **slow**: 50 clients each send request headers and then one body byte a second (the
  first four declare 16 MiB, together the whole byte budget; the 46 others, 1.2 s later,
  1000 bytes), with ``request_timeout: 3s`` and
  ``body_timeout: 6s``; meanwhile a normal client sends ``--normal`` requests of 100
  records, 0.3 s apart. Reported: the normal requests' statuses and answer times, and
  what the slow clients were answered.

``--parse`` measures instead what parsing one body costs in this process, at the
default limits, for the worst shapes known: the growth of the peak resident memory while
a body is counted, parsed and held (``modelmon.bodies``), per byte and per counted value.
These are the constants of the memory arithmetic in docs/security.md.

``--exporter-path DIR`` runs the exporter from another source tree (for a before/after
comparison, e.g. ``git archive <commit> exporter | tar -x -C /tmp/before``);
``--legacy-config`` leaves out the config keys older versions do not know.

    python benchmarks/bench_abuse.py                  # about half a minute
    python benchmarks/bench_abuse.py --parse          # about 20 seconds
    python benchmarks/bench_abuse.py --output benchmarks/results/security.md
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import gzip
import http.client
import json
import os
import re
import socket
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from common import (
    build_reference,
    config_document,
    free_port,
    machine_description,
    model_entry,
    prediction_records,
    start_serve,
)

MIB = 2**20
FEATURES = 8
BOMB_RECORDS = 22_000_000  # 3 bytes each: 63 MiB, under the default 64 MiB limit
SLOW_CLIENTS = 50
INGEST = "/v1/models/model-0/predictions"


class Server:
    """A ``modelmon serve`` process and its memory high-water mark."""

    def __init__(self, directory: Path, profile: Path, limits: dict[str, Any]) -> None:
        self.port = free_port()
        document = config_document(
            [model_entry("model-0", profile)], listen=f"127.0.0.1:{self.port}"
        )
        if limits:
            document["limits"] = limits
        config = directory / f"modelmon-{self.port}.yaml"
        config.write_text(yaml.safe_dump(document), encoding="utf-8")
        self.process = start_serve(config, self.port, directory / f"serve-{self.port}.log")

    def _kib(self, field: str) -> int:
        text = Path(f"/proc/{self.process.pid}/status").read_text(encoding="ascii")
        match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"no {field} in /proc/{self.process.pid}/status")
        return int(match.group(1))

    def reset_peak(self) -> int:
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5", encoding="ascii")
        return self._kib("VmRSS") * 1024

    def peak(self) -> int:
        return self._kib("VmHWM") * 1024

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def post(
    port: int, body: bytes, headers: dict[str, str], timeout: float = 120
) -> tuple[int, float]:
    """Status and seconds of one POST on a fresh connection (status 0: connection lost)."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", INGEST, body=body, headers=headers)
        status = conn.getresponse().status
    except OSError:
        status = 0
    finally:
        conn.close()
    return status, time.perf_counter() - started


def bomb(kind: str) -> bytes:
    text = (
        b"{}\n" * BOMB_RECORDS if kind == "ndjson" else b"[" + b"{}," * (BOMB_RECORDS - 1) + b"{}]"
    )
    return gzip.compress(text, 9)


def bomb_case(server: Server, normal: bytes, kind: str, trials: int) -> dict[str, Any]:
    body = bomb(kind)
    content_type = "application/x-ndjson" if kind == "ndjson" else "application/json"
    headers = {"Content-Type": content_type, "Content-Encoding": "gzip"}
    rows = []
    for _ in range(trials):
        before = server.reset_peak()
        attack: dict[str, tuple[int, float]] = {}

        def send(out: dict[str, tuple[int, float]] = attack) -> None:
            out["r"] = post(server.port, body, headers)

        sender = threading.Thread(target=send)
        sender.start()
        time.sleep(0.02)
        normal_status, normal_seconds = post(
            server.port, normal, {"Content-Type": "application/json"}
        )
        sender.join()
        status, seconds = attack["r"]
        rows.append((status, seconds, normal_status, normal_seconds, server.peak() - before))
    return {"kind": kind, "bytes": len(body), "rows": rows}


def slow_case(server: Server, normal: bytes, requests: int) -> dict[str, Any]:
    sockets = []
    for i in range(SLOW_CLIENTS):
        if i == 4:
            time.sleep(1.2)
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        length = 16 * MIB if i < 4 else 1000
        sock.sendall(
            f"POST {INGEST} HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n".encode()
        )
        sockets.append(sock)
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(1.0):
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.send(b" ")

    trickler = threading.Thread(target=trickle)
    trickler.start()
    time.sleep(1.2)
    normals = []
    for _ in range(requests):
        normals.append(post(server.port, normal, {"Content-Type": "application/json"}))
        time.sleep(0.3)
    answers: Counter[str] = Counter()
    deadline = time.monotonic() + 15  # past body_timeout; older versions never answer
    for sock in sockets:
        data = b""
        try:
            sock.settimeout(max(deadline - time.monotonic(), 0.05))
            while chunk := sock.recv(4096):
                data += chunk
        except TimeoutError:
            data = data or b"still open"
        except OSError:
            pass
        match = re.match(rb"HTTP/1\.1 (\d{3}) ", data)
        answer = "still open after 15 s" if data == b"still open" else "closed, no answer"
        answers[match.group(1).decode() if match else answer] += 1
        sock.close()
    stop.set()
    trickler.join()
    return {"normals": normals, "answers": answers}


def parse_shapes(values: int) -> Iterator[tuple[str, bytes, str]]:
    """Bodies at the value limit (or the record limit), the costliest shapes first."""
    record = prediction_records(np.random.default_rng(1), 1, FEATURES, 1.7e9)[0]
    typical = json.dumps(record).encode()
    yield (
        "100 000 typical records (JSON array)",
        b"[" + b",".join([typical] * 100_000) + b"]",
        "json",
    )
    yield "100 000 typical records (NDJSON)", b"\n".join([typical] * 100_000), "ndjson"
    yield (
        "an object of 1 million distinct keys",
        (b'{"features":{' + b",".join(b'"k%d":{}' % i for i in range(values // 2 - 2)) + b"}}"),
        "json",
    )
    yield (
        "2 million one-character strings",
        b"[" + b",".join([b'"a"'] * (values - 2)) + b"]",
        "json",
    )
    yield "2 million numbers", b"[" + b",".join([b"0.5"] * (values - 2)) + b"]", "json"
    yield "1 million empty objects", b"[" + b",".join([b"{}"] * (values // 2 - 1)) + b"]", "json"
    yield "one string of 63 MiB", b'{"features":{"s":"' + b"a" * (63 * MIB) + b'"}}', "json"


def parse_case() -> str:
    """Peak memory growth of counting and parsing one body, per shape (this process)."""
    from modelmon.bodies import BodyError, ValueCounter, decompress, parse_records
    from modelmon.config import Limits

    limits = Limits()
    lines = [
        "| body | MiB | values counted | answer | seconds | peak growth, MiB | per byte "
        "| per value |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for name, body, kind in parse_shapes(limits.max_values):
        gc.collect()
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
        before = _self_kib("VmRSS")
        started = time.perf_counter()
        counter = ValueCounter(kind, limits.max_values)
        try:
            data = decompress(body, None, limits.max_decompressed_bytes, counter)
            records: Any = parse_records(data, kind, limits.max_records)
            answer = "parsed"
        except BodyError as exc:
            answer, records = f"{exc.status}", None
        seconds = time.perf_counter() - started
        growth = (_self_kib("VmHWM") - before) * 1024
        lines.append(
            f"| {name} | {len(body) / MIB:.1f} | {counter.count:,} | {answer} | {seconds:.2f} "
            f"| {growth / MIB:.0f} | {growth / len(body):.1f} | {growth / counter.count:.0f} |"
        )
        del records, data
    return "\n".join(lines) + "\n"


def _self_kib(field: str) -> int:
    text = Path("/proc/self/status").read_text(encoding="ascii")
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no {field} in /proc/self/status")
    return int(match.group(1))


def report(bombs: list[dict[str, Any]], slow: dict[str, Any], description: str) -> str:
    lines = ["## Gzip bombs (default limits)", "", description, ""]
    lines += [
        "| shape | gzip bytes | bomb: status, seconds (max) | normal request: status, "
        "seconds (max) | peak RSS growth, MiB (max) |",
        "|---|---:|---|---|---:|",
    ]
    for case in bombs:
        rows = case["rows"]
        lines.append(
            f"| {case['kind']} | {case['bytes']:,} | {sorted({r[0] for r in rows})}, "
            f"{max(r[1] for r in rows):.3f} | {sorted({r[2] for r in rows})}, "
            f"{max(r[3] for r in rows):.3f} | {max(r[4] for r in rows) / MIB:.0f} |"
        )
    seconds = [s for _, s in slow["normals"]]
    statuses = Counter(str(status) for status, _ in slow["normals"])
    lines += [
        "",
        f"## {SLOW_CLIENTS} clients sending one byte a second",
        "",
        f"- normal requests: {dict(statuses)}; seconds median "
        f"{statistics.median(seconds):.3f}, max {max(seconds):.3f}",
        f"- the slow clients were answered: {dict(slow['answers'])}",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--parse", action="store_true", help="measure parsing memory only")
    parser.add_argument("--normal", type=int, default=10, help="normal requests in the slow case")
    parser.add_argument("--exporter-path", help="run the exporter from this source tree")
    parser.add_argument("--legacy-config", action="store_true")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    os.environ["MALLOC_ARENA_MAX"] = "2"
    if args.exporter_path:
        os.environ["PYTHONPATH"] = str(Path(args.exporter_path).resolve())
    description = machine_description({"exporter source": args.exporter_path or "this tree"})
    if args.parse:
        text = "## Parsing one body (default limits)\n\n" + description + "\n\n" + parse_case()
        print(text)
        if args.output:
            args.output.write_text(text, encoding="utf-8")
        return
    rng = np.random.default_rng(5)
    normal = json.dumps(prediction_records(rng, 100, FEATURES, time.time())).encode()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        profile = build_reference(directory, FEATURES, 2000)
        server = Server(directory, profile, {})
        try:
            bombs = [bomb_case(server, normal, kind, args.trials) for kind in ("json", "ndjson")]
        finally:
            server.stop()
        limits: dict[str, Any] = {"request_timeout": "3s"}
        if not args.legacy_config:
            limits["body_timeout"] = "6s"
        server = Server(directory, profile, limits)
        try:
            slow = slow_case(server, normal, args.normal)
        finally:
            server.stop()
    text = report(bombs, slow, description)
    print(text)
    if args.output:
        args.output.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
