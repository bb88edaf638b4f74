"""Throughput and footprint of the label join stores, side by side.

Fills a store with N pending predictions (UUID-like ids, batches of ``--batch``), then
sends labels for a random sample of them in random order, in batches of ``--batch``, and
reports predictions/s, labels joined/s, the resident memory of this process and the size
of the database files (or Redis's own memory) with N predictions pending.

    python benchmarks/bench_labels.py --predictions 1000000 --labels 200000
    python benchmarks/bench_labels.py --store memory     # the in-memory store (no state_dir)
    python benchmarks/bench_labels.py --store redis      # Redis on loopback (started here)
    python benchmarks/bench_labels.py --store all        # memory, file and redis in turn
    python benchmarks/bench_labels.py --order arrival    # labels in prediction order

``--store redis`` starts its own ``redis-server`` (Debian package ``redis-server``) on a
free loopback port with an append-only file fsynced every second, as the examples run
it; ``--redis-url`` uses a running one instead (its database is flushed).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from modelmon.labels import JoinStore, LabelRecord, PendingColumns, open_store

_MIX = 0x9E3779B97F4A7C15  # odd 64-bit constant: i -> i * _MIX is a bijection mod 2^64


def request_id(i: int) -> str:
    """A deterministic, well-spread 32-hex-digit id (like a UUID) for index ``i``."""
    h = (i * _MIX) % (1 << 64)
    return f"{h:016x}{i:016x}"


def fill(store: JoinStore, n: int, batch: int) -> tuple[float, float]:
    """Add ``n`` predictions; wall seconds and CPU seconds of this process in the store
    (building the records is left out of both)."""
    wall = cpu = 0.0
    for lo in range(0, n, batch):
        rows = range(lo, min(lo + batch, n))
        columns = PendingColumns(
            [request_id(i) for i in rows],
            ["v1"] * len(rows),
            [1.7e9 + i for i in rows],
            ["1" if i % 3 else "0" for i in rows],
            [0.25] * len(rows),
        )
        cpu0, start = time.process_time(), time.perf_counter()
        store.add_pending("bench", columns)
        wall += time.perf_counter() - start
        cpu += time.process_time() - cpu0
    return wall, cpu


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


@contextlib.contextmanager
def local_redis(directory: str) -> Iterator[str]:
    """A redis-server on a free loopback port (append-only, fsync every second)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not on PATH (Debian package redis-server)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", directory]
    argv += ["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"]
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import redis

        client = redis.Redis(port=port)
        for _ in range(200):
            with contextlib.suppress(redis.ConnectionError):
                client.ping()
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=30)


def open_bench_store(kind: str, directory: str, redis_url: str | None, n: int) -> JoinStore:
    options: dict[str, Any] = {"ttl_seconds": 7 * 86400, "max_pending": n}
    if kind == "redis":
        from modelmon.labels.redis_store import RedisLabelStore

        assert redis_url is not None
        store = RedisLabelStore.from_url(redis_url, timeout=30.0, **options)
        store.client.flushdb()  # a benchmark starts from an empty database
        return store
    path = None if kind == "memory" else Path(directory) / "labels.sqlite"
    return open_store(path, **options)


def footprint(store: JoinStore, kind: str, directory: str) -> str:
    """Where the pending predictions take space besides this process."""
    if kind == "file":
        return f"disk {disk_bytes(Path(directory) / 'labels.sqlite') / 2**20:.0f} MiB"
    if kind == "redis":
        used = store.client.info("memory")["used_memory"]  # type: ignore[attr-defined]
        return f"Redis used_memory {used / 2**20:.0f} MiB"
    return "-"


def server_cpu(store: JoinStore, kind: str) -> float:
    """CPU seconds (user + system) that redis-server has used so far; 0 for the others."""
    if kind != "redis":
        return 0.0
    info = store.client.info("cpu")  # type: ignore[attr-defined]
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def run_case(kind: str, args: argparse.Namespace, redis_url: str | None) -> dict[str, Any]:
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        store = open_bench_store(kind, tmp, redis_url, args.predictions)
        server_fill0 = server_cpu(store, kind)
        fill_s, fill_cpu = fill(store, args.predictions, args.batch)
        fill_cpu += server_cpu(store, kind) - server_fill0
        rss = proc.memory_info().rss
        where = footprint(store, kind, tmp)
        if args.order == "random":
            order = np.random.default_rng(0).permutation(args.predictions)[: args.labels]
        else:
            order = np.arange(args.labels)
        server_cpu0 = server_cpu(store, kind)
        join_s, join_cpu, joined = join(store, order, args.batch)
        join_server_cpu = server_cpu(store, kind) - server_cpu0
        store.close()
    return {
        "store": STORE_NAMES[kind],
        "predictions/s": f"{args.predictions / fill_s:,.0f}",
        "CPU ms / 1000 predictions (+ redis-server's)": f"{fill_cpu / args.predictions * 1e6:.2f}",
        "labels joined/s": f"{joined / join_s:,.0f}",
        "labels/CPU s (this process)": f"{joined / join_cpu:,.0f}",
        "labels/CPU s (with redis-server's)": f"{joined / (join_cpu + join_server_cpu):,.0f}",
        "joined": f"{joined} of {args.labels}",
        "RSS with N pending": f"{rss / 2**20:.0f} MiB (+{(rss - rss0) / 2**20:.0f})",
        "elsewhere with N pending": where,
    }


STORE_NAMES = {
    "memory": "in memory (no state_dir)",
    "file": "SQLite file (WAL, state_dir)",
    "redis": "Redis on loopback",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", type=int, default=1_000_000)
    parser.add_argument("--labels", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument(
        "--store", choices=["memory", "file", "redis", "all"], default="file", help="which store"
    )
    parser.add_argument("--memory", action="store_true", help="same as --store memory")
    parser.add_argument("--redis-url", default=None, help="a running Redis (flushed!)")
    parser.add_argument(
        "--order",
        choices=["random", "arrival"],
        default="random",
        help="label order: random (worst case: every label on another page) or the "
        "predictions' arrival order (labels after a similar delay)",
    )
    parser.add_argument("--dir", default=None, help="directory for the database file")
    args = parser.parse_args()
    kinds = ["memory", "file", "redis"] if args.store == "all" else [args.store]
    if args.memory:
        kinds = ["memory"]

    rows = []
    with contextlib.ExitStack() as stack:
        redis_url = args.redis_url
        if "redis" in kinds and redis_url is None:
            redis_dir = stack.enter_context(tempfile.TemporaryDirectory(dir=args.dir))
            redis_url = stack.enter_context(local_redis(redis_dir))
        for kind in kinds:
            rows.append(run_case(kind, args, redis_url))

    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )
    print(
        f"N = {args.predictions} predictions pending, {args.labels} labels in "
        f"{args.order} order, batches of {args.batch}; load average after: "
        f"{os.getloadavg()[0]:.1f}"
    )
    print()
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(row.values()) + " |")


if __name__ == "__main__":
    main()
