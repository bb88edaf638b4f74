"""Cost of one statistics refresh: drift statistics of every column, window and model.

The exporter recomputes its windowed statistics in a background thread every
``refresh_interval`` (2 s by default) with :meth:`Refresher.refresh`; scrapes read the
cached result. This script fills every bucket of every window first (a fake clock walks
through a simulated day and a batch of records lands in each bucket of each window),
checks that the windows really are full, then times ``--repeat`` refreshes and reports
mean, median, p95, p99 and max in milliseconds (and the mean CPU time, which load
elsewhere on the machine does not inflate), with a breakdown: copying the window
totals (under the model's lock) and the statistics of one column of each kind.

    python benchmarks/bench_refresh.py                         # 20 features x 3 windows
    python benchmarks/bench_refresh.py --features 50
    python benchmarks/bench_refresh.py --reference-rows 100000 --repeat 20 --budget 10
    python benchmarks/bench_refresh.py --quick
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from common import FakeClock, machine_description, make_exporter, percentile, prediction_records
from modelmon.app import Exporter
from modelmon.model import ModelMonitor
from modelmon.stats.report import column_statistics

#: The simulated day ends here (2025-11-25 00:00 UTC); any fixed time would do.
DAY_END = 1_764_028_800.0
WINDOWS = ["5m", "1h", "1d"]


def fill_times(exporter: Exporter) -> list[float]:
    """One time in every bucket of every window as of DAY_END, oldest first."""
    times: set[float] = set()
    for monitor in exporter.monitors.values():
        for window in monitor.new_version_state().windows.values():
            times.update(DAY_END - i * window.resolution for i in range(window.buckets))
    return sorted(times)


def fill(exporter: Exporter, clock: FakeClock, batch: int, features: int) -> int:
    """Send a batch to every model at every fill time; returns the events sent."""
    rng = np.random.default_rng(3)
    records = prediction_records(rng, batch, features, DAY_END)
    sent = 0
    for t in fill_times(exporter):
        clock.now = t
        for record in records:
            record["timestamp"] = t
        for name in exporter.monitors:
            result = exporter.ingest_predictions(name, records)
            if result.accepted != batch:
                raise RuntimeError(f"fill: {result.rejected} records rejected: {result.errors[:3]}")
            sent += batch
    clock.now = DAY_END
    return sent


def check_full(monitor: ModelMonitor) -> None:
    """Every bucket of every window holds events (uses the checkpoint view of a window)."""
    for version, state in monitor.versions.items():
        for name, window in state.windows.items():
            window.advance(DAY_END)
            held = len(window.state()["ids"])  # type: ignore[arg-type]
            if held != window.buckets:
                raise RuntimeError(f"{version}/{name}: {held} of {window.buckets} buckets filled")


def timings_ms(
    action: Callable[[], Any], repeat: int, budget: float
) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds of up to ``repeat`` runs after warm-up, stopping
    early once ``budget`` s are spent (but never below 20 runs)."""
    for _ in range(min(10, repeat)):
        action()
    wall: list[float] = []
    cpu: list[float] = []
    deadline = time.perf_counter() + budget
    while len(wall) < repeat and (len(wall) < 20 or time.perf_counter() < deadline):
        started, started_cpu = time.perf_counter(), time.thread_time()
        action()
        cpu.append((time.thread_time() - started_cpu) * 1e3)
        wall.append((time.perf_counter() - started) * 1e3)
    return wall, cpu


def row(case: str, samples: tuple[list[float], list[float]]) -> str:
    wall, cpu = samples
    cuts = [percentile(wall, q) for q in (50, 95, 99)]
    return (
        f"| {case} | {len(wall)} | {statistics.fmean(wall):.3f} | {cuts[0]:.3f} | "
        f"{cuts[1]:.3f} | {cuts[2]:.3f} | {max(wall):.3f} | {statistics.fmean(cpu):.3f} |"
    )


def column_cases(monitor: ModelMonitor) -> list[tuple[str, Callable[[], Any]]]:
    """The statistics of one numeric feature, the score and the prediction (1d window)."""
    vector = monitor.versions["v1"].windows[WINDOWS[-1]].total()
    cases: list[tuple[str, Callable[[], Any]]] = []
    for role, name in (("feature", "f00"), ("score", "score"), ("prediction", "prediction")):
        slots = monitor.layout.by_key[(role, name)]
        kind = "categorical" if slots.column.binned_as_categorical else "numeric"
        action = functools.partial(column_statistics, slots, vector)
        cases.append((f"column_statistics of one {kind} column ({role} {name})", action))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--models", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1000, help="records per fill batch")
    parser.add_argument("--reference-rows", type=int, default=10_000, help="rows profiled")
    parser.add_argument("--repeat", type=int, default=500, help="most timed runs per case")
    parser.add_argument("--budget", type=float, default=30.0, help="most seconds per case")
    parser.add_argument("--quick", action="store_true", help="a few seconds, smoke test")
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.batch, args.budget = 20, 200, 2.0

    description = machine_description()
    clock = FakeClock(DAY_END)
    with tempfile.TemporaryDirectory(prefix="modelmon-bench-") as tmp:
        exporter = make_exporter(
            Path(tmp),
            args.models,
            args.features,
            WINDOWS,
            clock,
            reference_rows=args.reference_rows,
        )
    sent = fill(exporter, clock, args.batch, args.features)
    monitors = list(exporter.monitors.values())
    for monitor in monitors:
        check_full(monitor)
    first = monitors[0]
    readings = first.readings()
    reported = [r for r in readings if r.drift is not None]
    if len(reported) != len(WINDOWS):
        raise RuntimeError(f"expected drift readings for {WINDOWS}, got {readings}")
    columns = len(first.layout.columns)

    cases: list[tuple[str, Callable[[], Any]]] = [
        (f"Refresher.refresh() ({args.models} model(s))", exporter.refresher.refresh),
        ("ModelMonitor.readings() of one model", first.readings),
        ("  of which window_totals() (under the lock)", first.window_totals),
        *column_cases(first),
    ]
    rows = [row(case, timings_ms(action, args.repeat, args.budget)) for case, action in cases]

    print(description)
    print(
        f"- workload: {args.models} model(s) x {args.features} numeric features "
        f"(+ prediction, score, label = {columns} columns) x {len(WINDOWS)} windows "
        f"({', '.join(WINDOWS)}), every window bucket filled: {sent:,} events in batches "
        f"of {args.batch}; reference profile of {args.reference_rows:,} rows; "
        f"up to {args.repeat} timed runs or {args.budget:g} s per case after 10 warm-up runs"
    )
    print()
    print("| case | runs | mean ms | median ms | p95 ms | p99 ms | max ms | mean CPU ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
