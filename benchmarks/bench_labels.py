"""Throughput and footprint of the label join store.

Fills the store with N pending predictions (UUID-like ids, batches of ``--batch``), then
sends labels for a random sample of them in random order, in batches of ``--batch``, and
reports predictions/s, labels joined/s, the resident memory of this process and the size
of the database files with N predictions pending.

    python benchmarks/bench_labels.py --predictions 1000000 --labels 200000
    python benchmarks/bench_labels.py --memory           # the in-memory store (no state_dir)
    python benchmarks/bench_labels.py --order arrival    # labels in prediction order
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

from modelmon.labels import JoinStore, LabelRecord, PendingPrediction, open_store

_MIX = 0x9E3779B97F4A7C15  # odd 64-bit constant: i -> i * _MIX is a bijection mod 2^64


def request_id(i: int) -> str:
    """A deterministic, well-spread 32-hex-digit id (like a UUID) for index ``i``."""
    h = (i * _MIX) % (1 << 64)
    return f"{h:016x}{i:016x}"


def fill(store: JoinStore, n: int, batch: int) -> float:
    """Add ``n`` predictions; seconds taken."""
    start = time.perf_counter()
    for lo in range(0, n, batch):
        items = [
            PendingPrediction(request_id(i), "v1", 1.7e9 + i, "1" if i % 3 else "0", 0.25)
            for i in range(lo, min(lo + batch, n))
        ]
        store.add_predictions("bench", items)
    return time.perf_counter() - start


def join(store: JoinStore, order: np.ndarray, batch: int) -> tuple[float, float, int]:
    """Send labels for the predictions at ``order``: wall seconds, CPU seconds of this
    process (user + system, insensitive to other load on the machine), pairs joined."""
    joined = 0
    proc = psutil.Process()
    cpu0 = sum(proc.cpu_times()[:2])
    start = time.perf_counter()
    for lo in range(0, order.size, batch):
        labels = [LabelRecord(request_id(int(i)), "1", 1.8e9) for i in order[lo : lo + batch]]
        joined += len(store.add_labels("bench", labels).joined)
    return time.perf_counter() - start, sum(proc.cpu_times()[:2]) - cpu0, joined


def disk_bytes(path: Path) -> int:
    """Size of the database and its WAL."""
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", type=int, default=1_000_000)
    parser.add_argument("--labels", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--memory", action="store_true", help="in-memory store")
    parser.add_argument(
        "--order",
        choices=["random", "arrival"],
        default="random",
        help="label order: random (worst case: every label on another page) or the "
        "predictions' arrival order (labels after a similar delay)",
    )
    parser.add_argument("--dir", default=None, help="directory for the database file")
    args = parser.parse_args()

    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = None if args.memory else Path(tmp) / "labels.sqlite"
        store = open_store(path, ttl_seconds=7 * 86400, max_pending=args.predictions)
        fill_s = fill(store, args.predictions, args.batch)
        rss = proc.memory_info().rss
        size = disk_bytes(path) if path else 0
        if args.order == "random":
            order = np.random.default_rng(0).permutation(args.predictions)[: args.labels]
        else:
            order = np.arange(args.labels)
        join_s, join_cpu, joined = join(store, order, args.batch)
        store.close()

    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )
    kind = "in memory (no state_dir)" if args.memory else "SQLite file (WAL)"
    print(f"store: {kind}, batch {args.batch}")
    print(f"predictions: {args.predictions} in {fill_s:.1f} s = {args.predictions / fill_s:,.0f}/s")
    print(
        f"labels joined ({args.order} order): {joined} of {args.labels} in {join_s:.1f} s "
        f"= {joined / join_s:,.0f}/s; {join_cpu:.1f} CPU s = {joined / join_cpu:,.0f}/CPU s"
    )
    print(f"load average during the run: {os.getloadavg()[0]:.1f}")
    print(
        f"with {args.predictions} pending: RSS {rss / 2**20:.0f} MiB "
        f"(+{(rss - rss0) / 2**20:.0f} MiB over start), disk {size / 2**20:.0f} MiB"
    )


if __name__ == "__main__":
    main()
