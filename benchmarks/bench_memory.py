"""Resident memory of an exporter as events accumulate: it must not grow with traffic.

An exporter of one synthetic model (``--features`` numeric features, windows 5m, 1h,
1d) ingests ``--events`` prediction records in process through
``Exporter.ingest_predictions``, in batches of ``--batch``. A fake clock spreads the
batches over one simulated day (records inside a batch a few seconds apart), so every
window turns over many times. To make ten million events take minutes, the batches are
``--distinct`` pre-built record lists reused round robin with fresh timestamps.

At each checkpoint the statistics are refreshed and ``/metrics`` is rendered once (so
their transient allocations are in every reading alike), then garbage is collected and
the resident set size (``VmRSS``) is read. The result is the growth from the first
checkpoint (100k events) to the last.

Two scenarios:

- ``stats`` (default): records without ``id``: the statistics state alone (counters,
  window rings), which is fixed-size by design;
- ``ids``: records with a unique ``id`` each, so every prediction also waits in the
  label join store (in memory without ``state_dir``) until ``labels.max_pending``
  (``--max-pending``) evicts the oldest. With ``--state-dir`` the store is a SQLite file
  there, as in a deployment with ``state_dir`` (start from an empty directory).

    python benchmarks/bench_memory.py                          # 10M events, about 2 minutes
    python benchmarks/bench_memory.py --scenario ids --events 2000000
    python benchmarks/bench_memory.py --scenario ids --events 2000000 --state-dir /tmp/mm-state
    python benchmarks/bench_memory.py --quick
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import generate_latest

from common import (
    FakeClock,
    build_reference,
    config_document,
    machine_description,
    model_entry,
    prediction_records,
    rss_bytes,
)
from modelmon.app import Exporter
from modelmon.config import config_from_dict

#: The simulated day starts here (2025-11-24 00:00 UTC); any fixed time would do.
DAY_START = 1_763_942_400.0
DAY = 86_400.0
MODEL = "bench"
MIB = 2**20


def make_exporter(
    directory: Path, features: int, max_pending: int, clock: FakeClock, state_dir: str | None
) -> Exporter:
    entry = model_entry(MODEL, build_reference(directory, features))
    entry["labels"] = {"ttl": "7d", "max_pending": max_pending}
    document = config_document([entry], refresh_interval="1h")
    if state_dir is not None:
        document["state_dir"] = str(Path(state_dir).resolve())
    return Exporter(config_from_dict(document, directory), clock=clock)


def record_lists(distinct: int, batch: int, features: int, ids: bool) -> list[list[dict[str, Any]]]:
    rng = np.random.default_rng(9)
    lists = []
    for b in range(distinct):
        records = prediction_records(rng, batch, features, DAY_START, first_id=b * batch)
        if not ids:
            for record in records:
                del record["id"]
        lists.append(records)
    return lists


def checkpoints(events: int, batch: int) -> list[int]:
    """Batch counts after which memory is read: 100k events, then decades, then the end."""
    marks = {max(1, 100_000 // batch), events // batch}
    mark = 1_000_000
    while mark < events:
        marks.add(mark // batch)
        mark *= 10
    return sorted(marks)


def stamp(records: list[dict[str, Any]], start: float, step: float, serial: int, ids: bool) -> None:
    """Timestamps ``step`` apart from ``start``; with ids, unique ids for this batch."""
    for i, record in enumerate(records):
        record["timestamp"] = start + i * step
        if ids:
            record["id"] = f"req-{serial + i:010d}"


def run(args: argparse.Namespace, exporter: Exporter, clock: FakeClock) -> list[tuple[int, int]]:
    ids = args.scenario == "ids"
    lists = record_lists(args.distinct, args.batch, args.features, ids)
    batches = args.events // args.batch
    spacing = DAY / batches  # simulated seconds between batches
    step = min(spacing, 10.0) / args.batch  # records of a batch span up to 10 s
    marks = checkpoints(args.events, args.batch)
    readings = [(0, rss_bytes())]
    for b in range(batches):
        start = DAY_START + b * spacing
        records = lists[b % len(lists)]
        stamp(records, start, step, b * args.batch, ids)
        clock.now = start + args.batch * step
        result = exporter.ingest_predictions(MODEL, records)
        if result.accepted != args.batch:
            raise RuntimeError(f"batch {b}: {result.rejected} rejected: {result.errors[:3]}")
        if b + 1 in marks:
            exporter.refresher.refresh()
            generate_latest(exporter.registry)
            readings.append(((b + 1) * args.batch, rss_bytes()))
            print(f"  {(b + 1) * args.batch:>12,} events: RSS {readings[-1][1] / MIB:7.1f} MiB")
    return readings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--distinct", type=int, default=10, help="pre-built record lists")
    parser.add_argument("--scenario", choices=("stats", "ids"), default="stats")
    parser.add_argument("--max-pending", type=int, default=1_000_000, help="labels.max_pending")
    parser.add_argument(
        "--state-dir", help="state_dir of the config: the label store in a SQLite file there"
    )
    parser.add_argument("--quick", action="store_true", help="a few seconds, smoke test")
    args = parser.parse_args()
    if args.quick:
        args.events = 300_000

    description = machine_description()
    clock = FakeClock(DAY_START)
    with tempfile.TemporaryDirectory(prefix="modelmon-bench-") as tmp:
        exporter = make_exporter(Path(tmp), args.features, args.max_pending, clock, args.state_dir)
    started = time.perf_counter()
    readings = run(args, exporter, clock)
    elapsed = time.perf_counter() - started

    base = readings[1][1]
    print()
    print(description)
    print(
        f"- scenario {args.scenario}: {args.events:,} events in batches of {args.batch} over "
        f"one simulated day, {args.features} numeric features, windows 5m, 1h, 1d; "
        f"labels.max_pending {args.max_pending:,}; label store "
        f"{'in ' + args.state_dir if args.state_dir else 'in memory'}; ingest took {elapsed:.0f} s "
        f"({args.events / elapsed:,.0f} records/s, checkpoints included)"
    )
    print()
    print("| events | RSS MiB | growth over the 100k reading, MiB |")
    print("|---:|---:|---:|")
    for events, rss in readings:
        label = "exporter built, nothing ingested" if events == 0 else f"{events:,}"
        print(f"| {label} | {rss / MIB:.1f} | {(rss - base) / MIB:+.1f} |")


if __name__ == "__main__":
    main()
