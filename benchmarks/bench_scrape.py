"""Scrape latency of ``/metrics`` as models x features x windows grow.

For each shape an exporter serves ``models`` copies of the synthetic model (``features``
numeric features + prediction, score and label) with ``windows`` sliding windows, each
window holding enough events for every drift gauge to be exported. The statistics are
refreshed once before timing, as the background refresher would have done (its own
cost is bench_refresh.py's subject; its interval is set to an hour here so it never
runs during a measurement). Then, per shape:

- ``Exporter.render_metrics()``: the exposition alone, in process (per-scrape counters
  plus the statistics rendered at the last refresh);
- ``GET /metrics`` over HTTP on a keep-alive connection, plain text;
- ``GET /metrics`` as Prometheus asks for it (OpenMetrics, ``Accept-Encoding: gzip``).

Each is timed ``--repeat`` times after warm-up; median, p95 and p99 are in milliseconds
of wall-clock time, and the exposition's CPU time too (which load elsewhere on the
machine does not inflate). The process runs at the garbage-collector setting of
``modelmon serve`` (``modelmon.app.tune_garbage_collector``; ``--default-gc`` leaves
the interpreter's default, under which collections during rendering add p95 tails).

    python benchmarks/bench_scrape.py            # 1x20x3 up to 10x50x3
    python benchmarks/bench_scrape.py --shapes 1x20x3,10x50x3 --repeat 50
    python benchmarks/bench_scrape.py --quick
"""

from __future__ import annotations

import argparse
import http.client
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common import (
    build_reference,
    config_document,
    machine_description,
    model_entry,
    percentile,
    prediction_records,
)
from modelmon.app import Exporter, tune_garbage_collector
from modelmon.config import config_from_dict

ALL_WINDOWS = ["5m", "1h", "1d", "7d"]
DEFAULT_SHAPES = "1x20x1,1x20x3,1x50x3,5x20x3,10x20x3,10x50x3"
#: What Prometheus 2.x sends when it scrapes a target.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
    "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


@dataclass(frozen=True)
class Shape:
    models: int
    features: int
    windows: int

    @classmethod
    def parse(cls, text: str) -> Shape:
        try:
            models, features, windows = (int(x) for x in text.lower().split("x"))
        except ValueError:
            raise SystemExit(
                f"--shapes: {text!r} is not MODELSxFEATURESxWINDOWS such as 10x50x3"
            ) from None
        if not 1 <= windows <= len(ALL_WINDOWS):
            raise SystemExit(f"--shapes: {text!r}: windows must be 1 to {len(ALL_WINDOWS)}")
        return cls(models, features, windows)

    def __str__(self) -> str:
        return f"{self.models} x {self.features} x {self.windows}"


def make_exporter(directory: Path, shape: Shape, profiles: dict[int, Path]) -> Exporter:
    if shape.features not in profiles:
        profiles[shape.features] = build_reference(directory, shape.features)
    windows = ALL_WINDOWS[: shape.windows]
    entries = [
        model_entry(f"model-{m}", profiles[shape.features], windows) for m in range(shape.models)
    ]
    config = config_from_dict(config_document(entries, refresh_interval="1h"), directory)
    return Exporter(config)


def fill(exporter: Exporter, features: int, batch: int) -> None:
    """One batch, timestamped now, into every model: every window has ``batch`` events."""
    records = prediction_records(np.random.default_rng(5), batch, features, time.time())
    for record in records:
        del record["id"]  # no label joins: this measures the exposition only
    for name in exporter.monitors:
        result = exporter.ingest_predictions(name, records)
        if result.accepted != batch:
            raise RuntimeError(f"fill: {result.rejected} records rejected: {result.errors[:3]}")


def scrape(port: int, headers: dict[str, str]) -> Callable[[], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def get() -> bytes:
        conn.request("GET", "/metrics", headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET /metrics: {response.status} {body[:300]!r}")
        return body

    return get


def timings_ms(action: Callable[[], Any], repeat: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU (this thread's) milliseconds of ``repeat`` runs after warm-up."""
    for _ in range(3):
        action()
    wall, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.thread_time()
        action()
        cpu.append((time.thread_time() - started_cpu) * 1e3)
        wall.append((time.perf_counter() - started) * 1e3)
    return wall, cpu


def cells(samples: list[float]) -> str:
    return " / ".join(f"{percentile(samples, q):.1f}" for q in (50, 95, 99))


def measure(shape: Shape, exporter: Exporter, repeat: int) -> str:
    fill(exporter, shape.features, 1000)
    started = time.perf_counter()
    exporter.refresher.refresh()
    refresh_ms = (time.perf_counter() - started) * 1e3
    text, _ = exporter.render_metrics()
    series = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))
    drift = text.count(b"\nmodelmon_drift_psi{")
    # Features, prediction and score have values; the label column (no labels sent) has none.
    expected = shape.models * (shape.features + 2) * shape.windows
    if drift != expected:
        raise RuntimeError(f"{shape}: {drift} modelmon_drift_psi series, expected {expected}")
    _, port = exporter.start("127.0.0.1:0")
    try:
        plain = scrape(port, {})
        prometheus = scrape(port, {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"})
        gzipped = len(prometheus())
        exposition, exposition_cpu = timings_ms(lambda: exporter.render_metrics(), repeat)
        http_plain, _ = timings_ms(plain, repeat)
        http_prometheus, _ = timings_ms(prometheus, repeat)
    finally:
        exporter.stop()
    return (
        f"| {shape} | {series:,} | {len(text) / 1024:,.0f} / {gzipped / 1024:,.0f} | "
        f"{cells(exposition)} | {percentile(exposition_cpu, 50):.1f} | {cells(http_plain)} | "
        f"{cells(http_prometheus)} | "
        f"{refresh_ms:,.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default=DEFAULT_SHAPES, help="MODELSxFEATURESxWINDOWS,...")
    parser.add_argument("--repeat", type=int, default=30, help="timed scrapes per case")
    parser.add_argument("--quick", action="store_true", help="a few seconds, smoke test")
    parser.add_argument(
        "--default-gc",
        action="store_true",
        help="keep the interpreter's garbage-collector setting instead of modelmon serve's",
    )
    args = parser.parse_args()
    if not args.default_gc:
        tune_garbage_collector()
    if args.quick:
        args.shapes, args.repeat = "1x5x1,2x10x2", 5
    shapes = [Shape.parse(s) for s in args.shapes.split(",")]

    description = machine_description()
    rows = []
    profiles: dict[int, Path] = {}
    with tempfile.TemporaryDirectory(prefix="modelmon-bench-") as tmp:
        for shape in shapes:
            rows.append(measure(shape, make_exporter(Path(tmp), shape, profiles), args.repeat))

    print(description)
    print(
        f"- {args.repeat} timed scrapes per case after 3 warm-up scrapes; "
        "each cell: median / p95 / p99 ms; windows from "
        + ", ".join(ALL_WINDOWS)
        + "; garbage collector: "
        + ("the interpreter's default" if args.default_gc else "as in modelmon serve")
    )
    print()
    print(
        "| models x features x windows | series | body KiB (text / OpenMetrics gzip) | "
        "render_metrics ms | render_metrics CPU ms (median) | GET /metrics ms | "
        "GET /metrics as Prometheus (OpenMetrics, gzip) ms | one refresh ms (for scale) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
