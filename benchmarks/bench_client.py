"""Cost of modelmon.client.Client: what the model's request path pays, and records/s.

1. **Caller's cost**: ``--calls`` calls of ``log_prediction`` with ``--features`` numeric
   features (plus id, prediction and score), each timed with ``time.perf_counter_ns``,
   while the client's sender thread delivers to a real ``modelmon serve`` process (a
   separate process, as a sidecar is). The same again with nothing listening, where the
   sender only retries: the enqueue alone. Target: p99 under 20 microseconds.
2. **End to end**: ``--records`` records logged as fast as one thread can, then
   ``flush()``; records per second from the first call to the end of the flush, checked
   against the exporter's own ``modelmon_events_total``. The same against a null sink
   (a stdlib server in a subprocess that reads bodies and answers 200 unparsed) gives
   the client's own ceiling.

The exporter is started and checked with the helpers of ``bench_ingest.py``.

    python benchmarks/bench_client.py
    python benchmarks/bench_client.py --calls 20000 --records 50000   # quicker
"""

from __future__ import annotations

import argparse
import gc
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench_ingest import MODEL, events_total, start_server
from common import (
    build_reference,
    free_port,
    machine_description,
    percentile,
    prediction_records,
)
from modelmon.client import Client

QUANTILES = (50, 90, 99, 99.9)

# A sink that reads each body and answers 200 without parsing it, in its own process:
# the client's own ceiling (serialize, gzip, HTTP), with no exporter work behind it.
NULL_SINK = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK stall
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def caller_cost(url: str, records: list[dict[str, Any]], calls: int) -> tuple[list[float], Client]:
    """Nanoseconds of each ``log_prediction`` call; the client is returned unclosed."""
    client = Client(url, MODEL, queue_size=calls + 1, backoff_max=1.0)
    timings = [0.0] * calls
    clock = time.perf_counter_ns
    log = client.log_prediction
    n = len(records)
    gc.collect()
    for i in range(calls):
        record = records[i % n]
        started = clock()
        log(record["features"], record["prediction"], id=record["id"], score=record["score"])
        timings[i] = clock() - started
    return timings, client


def end_to_end(url: str, records: list[dict[str, Any]], total: int, batch: int) -> float:
    """Records per second from the first ``log_prediction`` to the end of ``flush``."""
    client = Client(url, MODEL, queue_size=total + 1, batch_size=batch)
    n = len(records)
    started = time.perf_counter()
    for i in range(total):
        record = records[i % n]
        client.log_prediction(record["features"], record["prediction"], score=record["score"])
    if not client.flush(timeout=600):
        raise RuntimeError("flush did not finish within 600 s")
    seconds = time.perf_counter() - started
    client.close()
    if (client.sent, client.failed, client.dropped) != (total, 0, 0):
        raise RuntimeError(f"sent {client.sent}, failed {client.failed}, dropped {client.dropped}")
    return total / seconds


def null_sink_rate(records: list[dict[str, Any]], total: int, batch: int) -> float:
    """``end_to_end`` against :data:`NULL_SINK` in a subprocess."""
    port = free_port()
    sink = subprocess.Popen([sys.executable, "-c", NULL_SINK, str(port)])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        return end_to_end(f"http://127.0.0.1:{port}", records, total, batch)
    finally:
        sink.terminate()
        sink.wait(timeout=30)


def row(case: str, timings_ns: list[float], dropped: int) -> str:
    micros = [percentile(timings_ns, q) / 1000 for q in QUANTILES]
    cells = " | ".join(f"{m:.2f}" for m in micros)
    return f"| {case} | {cells} | {max(timings_ns) / 1000:.0f} | {dropped} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100_000, help="timed log_prediction calls")
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--records", type=int, default=200_000, help="end-to-end records")
    parser.add_argument("--batches", default="500,2000", help="client batch sizes, end to end")
    args = parser.parse_args()

    description = machine_description()
    rng = np.random.default_rng(1)
    records = prediction_records(rng, 10_000, args.features, time.time())
    with tempfile.TemporaryDirectory(prefix="modelmon-bench-") as tmp:
        profile = build_reference(Path(tmp), args.features)
        server, port = start_server(Path(tmp), profile)
        url = f"http://127.0.0.1:{port}"
        try:
            sending, client = caller_cost(url, records, args.calls)
            client.flush(timeout=600)
            client.close()
            sent_dropped = client.dropped
            down, idle = caller_cost(f"http://127.0.0.1:{free_port()}", records, args.calls)
            idle.close(timeout=0)
            rates = {b: end_to_end(url, records, args.records, b) for b in _batches(args)}
            counted = events_total(port)
        finally:
            server.terminate()
            server.wait(timeout=30)
    ceiling = {b: null_sink_rate(records, args.records, b) for b in _batches(args)}
    expected = args.calls + args.records * len(rates)
    if counted != expected:
        raise RuntimeError(f"modelmon_events_total is {counted}, expected {expected}")

    print(description)
    print(f"- records: {args.features} numeric features, id, prediction, score\n")
    print("Caller's cost of one `log_prediction` call, microseconds "
          f"({args.calls:,} calls, one thread):\n")  # fmt: skip
    print("| case | p50 | p90 | p99 | p99.9 | max | dropped |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(row("sender delivering to `modelmon serve`", sending, sent_dropped))
    print(row("nothing listening (enqueue only)", down, 0))
    print("\nEnd to end, one thread logging, then `flush()`:\n")
    print(
        "| client batch_size | records | records/s to `modelmon serve` | records/s to a null sink |"
    )
    print("|---:|---:|---:|---:|")
    for batch, rate in rates.items():
        print(f"| {batch} | {args.records:,} | {rate:,.0f} | {ceiling[batch]:,.0f} |")
    print(f"\n- the exporter's modelmon_events_total at the end: {counted:,.0f} "
          "(every record sent, counted once)")  # fmt: skip


def _batches(args: argparse.Namespace) -> list[int]:
    return [int(b) for b in args.batches.split(",")]


if __name__ == "__main__":
    main()
