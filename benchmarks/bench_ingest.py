"""HTTP ingest throughput of a real ``modelmon serve``, against json.loads on the same bodies.

The exporter runs as its own process (``python -m modelmon serve``), exactly as
deployed, so the load generator in this process never competes with it for the GIL.
The load generator posts pre-encoded bodies of ``--batch`` records (id, timestamp,
``--features`` numeric features, prediction, score) over keep-alive ``http.client``
connections, one thread per connection, for ``--seconds`` per case, each case against
a fresh exporter process. Bodies come in three encodings, written as
:class:`modelmon.client.Client` writes them: a compact JSON array, NDJSON, and the JSON
array gzipped (level 1). Every record has a unique id (see :class:`Bodies`), so the
label join store does its real work.

Reference points on the same bodies: what it costs merely to parse them
(``json.loads``, ``orjson.loads``; gzip bodies decompressed first), measured just before
each HTTP case so both see the same machine load, and the exporter's own body parsing
and ingest in process (``modelmon.bodies`` + ``Exporter.ingest_predictions``, at the
garbage-collector setting of ``modelmon serve``), which shows how much of the HTTP
figure is HTTP. ``--state-dir`` gives the exporter processes the durable SQLite join
store instead of the in-memory one. After each case the exporter's own
``modelmon_events_total`` must equal the records the load generator saw accepted.

    python benchmarks/bench_ingest.py            # about 2.5 minutes
    python benchmarks/bench_ingest.py --quick    # a smoke run of a few seconds
"""

from __future__ import annotations

import argparse
import functools
import gc
import gzip
import http.client
import itertools
import json
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil
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
from modelmon.app import GC_THRESHOLD, Exporter
from modelmon.config import config_from_dict

MODEL = "bench"
PATH = f"/v1/models/{MODEL}/predictions"
ENCODINGS = ("json", "ndjson", "gzip")
HEADERS = {
    "json": {"Content-Type": "application/json"},
    "ndjson": {"Content-Type": "application/x-ndjson"},
    "gzip": {"Content-Type": "application/json", "Content-Encoding": "gzip"},
}


#: Every id in a template body starts with this; each request gets its own serial here.
ID_SLOT = b'"req-00000000-'
#: Serials of the JSON and NDJSON requests start here, above those of the gzip pool.
FIRST_SERIAL = 1_000_000


def id_prefix(serial: int) -> bytes:
    return b'"req-%08d-' % serial


@dataclass
class Bodies:
    """Pre-encoded request bodies.

    ``templates`` (json, ndjson) carry :data:`ID_SLOT` in every id; :meth:`next` swaps in
    a fresh request serial (same length, so about 0.3 ms per body) so that every record
    of the run has a unique id, as in production. Compressing per request would cost the
    load generator more than the exporter, so gzip bodies are a pool of ``gzip_pool``
    bodies compressed in advance (level 1, as modelmon.client sends them); their ids
    repeat once the pool is used up, which the label store takes as duplicates.
    """

    batch: int
    templates: dict[str, list[bytes]]
    gzip_pool: list[bytes]
    no_ids: list[bytes]  # JSON arrays of the same records without ids
    serials: Iterator[int] = field(default_factory=lambda: itertools.count(FIRST_SERIAL))

    def next(self, encoding: str, i: int) -> bytes:
        if encoding == "gzip":
            return self.gzip_pool[i % len(self.gzip_pool)]
        template = self.templates[encoding][i % len(self.templates[encoding])]
        return template.replace(ID_SLOT, id_prefix(next(self.serials)))

    def plain(self, encoding: str) -> list[bytes]:
        """The bodies of ``encoding`` as they are (for the parse-only reference points)."""
        return self.gzip_pool if encoding == "gzip" else self.templates[encoding]


def compact(value: Any) -> bytes:
    """JSON as modelmon.client writes it."""
    return json.dumps(value, separators=(",", ":")).encode()


def make_bodies(count: int, batch: int, features: int, gzip_pool: int) -> Bodies:
    rng = np.random.default_rng(11)
    now = time.time()
    arrays, lines, no_ids = [], [], []
    for b in range(count):
        records = prediction_records(rng, batch, features, now)
        for i, record in enumerate(records):
            record["id"] = f"{ID_SLOT[1:].decode()}{b:04d}{i:07d}"
        arrays.append(compact(records))
        lines.append(b"\n".join(compact(r) for r in records) + b"\n")
        no_ids.append(compact([{k: v for k, v in r.items() if k != "id"} for r in records]))
    pool = [
        gzip.compress(arrays[s % count].replace(ID_SLOT, id_prefix(s)), compresslevel=1)
        for s in range(gzip_pool)
    ]
    return Bodies(batch, {"json": arrays, "ndjson": lines}, pool, no_ids)


# --- parse-only reference points ---------------------------------------------------------


def parser_for(encoding: str, loads: Callable[[bytes], Any]) -> Callable[[bytes], list[Any]]:
    """What a minimal server must do to get the records of a body in ``encoding``."""
    if encoding == "ndjson":
        return lambda body: [loads(line) for line in body.splitlines() if line]
    if encoding == "gzip":
        return lambda body: loads(gzip.decompress(body))
    return lambda body: loads(body)


@dataclass(frozen=True)
class Rate:
    """Wall-clock throughput, and CPU time per 1000 records (which load elsewhere on the
    machine does not inflate)."""

    per_second: float
    cpu_ms: float


def measure_rate(
    action: Callable[[bytes], object], body: Callable[[int], bytes], batch: int, seconds: float
) -> Rate:
    """``action`` on ``body(0)``, ``body(1)``, ... for ``seconds``; best of 3 rounds.

    Only ``action`` is timed; making the body (an id swap) is not.
    """
    best_rate, best_cpu, i = 0.0, float("inf"), 0
    for _ in range(3):
        wall = cpu = 0.0
        done = 0
        while wall < seconds / 3:
            data = body(i)
            started, started_cpu = time.perf_counter(), time.thread_time()
            action(data)
            wall += time.perf_counter() - started
            cpu += time.thread_time() - started_cpu
            done, i = done + 1, i + 1
        best_rate = max(best_rate, done * batch / wall)
        best_cpu = min(best_cpu, cpu / (done * batch) * 1e6)
    return Rate(best_rate, best_cpu)


def parse_rates(bodies: Bodies, encoding: str, seconds: float) -> dict[str, Rate]:
    """json.loads and orjson.loads on the bodies of ``encoding``."""
    import orjson

    loaders: dict[str, Callable[[bytes], Any]] = {
        "json.loads": json.loads,
        "orjson.loads": orjson.loads,
    }
    source = functools.partial(_nth, bodies.plain(encoding))
    return {
        name: measure_rate(parser_for(encoding, loads), source, bodies.batch, seconds)
        for name, loads in loaders.items()
    }


def in_process_rates(
    directory: Path, profile: Path, bodies: Bodies, seconds: float
) -> dict[str, Rate]:
    """The exporter's own body parsing and ingest, without HTTP (a fresh exporter each)."""
    from modelmon.bodies import decompress, parse_records

    config = config_from_dict(config_document([model_entry(MODEL, profile)], "1h"), directory)
    limit = config.limits.max_decompressed_bytes
    out = {}
    # The collector setting `modelmon serve` uses (modelmon.app.tune_garbage_collector),
    # for these cases only: the parse-only reference points run at the default.
    thresholds = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, *thresholds[1:])
    for case in (*ENCODINGS, "json without ids"):
        exporter = Exporter(config)
        kind = "ndjson" if case == "ndjson" else "json"
        encoded = "gzip" if case == "gzip" else None

        def ingest(
            body: bytes, kind: str = kind, encoded: str | None = encoded, ex: Exporter = exporter
        ) -> None:
            records = parse_records(decompress(body, encoded, limit), kind)
            ex.ingest_predictions(MODEL, records)

        if case == "json without ids":
            source = functools.partial(_nth, bodies.no_ids)
        else:
            source = functools.partial(bodies.next, case)
        out[case] = measure_rate(ingest, source, bodies.batch, seconds)
        exporter.stop()
    gc.set_threshold(*thresholds)
    return out


def _nth(items: list[bytes], i: int) -> bytes:
    return items[i % len(items)]


# --- the exporter process and the load generator -----------------------------------------


def start_server(
    directory: Path, profile: Path, state_dir: Path | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """``modelmon serve`` in its own process, once it answers /readyz; with a fresh
    directory under ``state_dir`` as its state_dir (the durable SQLite join store)."""
    port = free_port()
    config = config_document([model_entry(MODEL, profile)], "2s", f"127.0.0.1:{port}")
    if state_dir is not None:
        config["state_dir"] = tempfile.mkdtemp(prefix="case-", dir=state_dir)
    path = directory / "modelmon.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return start_serve(path, port, directory / "server.log"), port


@dataclass
class LoadResult:
    records: int
    requests: int
    seconds: float
    latencies_ms: list[float]
    server_cpu: float
    client_cpu: float


def post_loop(
    port: int,
    body: Callable[[int], bytes],
    headers: dict[str, str],
    until: float,
    out: list[tuple[int, int, list[float]]],
) -> None:
    """One keep-alive connection posting bodies until ``until``; appends its tallies."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    accepted, latencies, i = 0, [], 0
    while time.perf_counter() < until:
        data = body(i)
        started = time.perf_counter()
        conn.request("POST", PATH, body=data, headers=headers)
        response = conn.getresponse()
        answer = response.read()
        latencies.append((time.perf_counter() - started) * 1e3)
        if response.status != 200:
            raise RuntimeError(f"POST {PATH}: {response.status} {answer[:300]!r}")
        accepted += json.loads(answer)["accepted"]
        i += 1
    conn.close()
    out.append((accepted, i, latencies))


def load(
    port: int,
    server: psutil.Process,
    body: Callable[[int], bytes],
    headers: dict[str, str],
    connections: int,
    seconds: float,
) -> LoadResult:
    """``connections`` threads posting for ``seconds``; CPU times of both processes."""
    tallies: list[tuple[int, int, list[float]]] = []
    server_cpu = sum(server.cpu_times()[:2])
    client_cpu = time.process_time()
    started = time.perf_counter()
    threads = [
        threading.Thread(target=post_loop, args=(port, body, headers, started + seconds, tallies))
        for _ in range(connections)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if len(tallies) != connections:
        raise RuntimeError("a load generator thread failed (see its traceback above)")
    return LoadResult(
        records=sum(t[0] for t in tallies),
        requests=sum(t[1] for t in tallies),
        seconds=elapsed,
        latencies_ms=[x for t in tallies for x in t[2]],
        server_cpu=sum(server.cpu_times()[:2]) - server_cpu,
        client_cpu=time.process_time() - client_cpu,
    )


def events_total(port: int) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    pattern = rf'^modelmon_events_total\{{model="{MODEL}",version="v1"\}} (\S+)$'
    match = re.search(pattern, text, re.M)
    if match is None:
        raise RuntimeError("/metrics: no modelmon_events_total series for the benchmark model")
    return float(match.group(1))


def http_case(
    directory: Path,
    profile: Path,
    bodies: Bodies,
    encoding: str,
    connections: int,
    seconds: float,
    state_dir: Path | None = None,
) -> LoadResult:
    """One case against a fresh exporter process, checked against its events counter."""
    server, port = start_server(directory, profile, state_dir)
    try:
        proc = psutil.Process(server.pid)
        body = functools.partial(bodies.next, encoding)
        warm = load(port, proc, body, HEADERS[encoding], connections, 0.5)
        result = load(port, proc, body, HEADERS[encoding], connections, seconds)
        counted = events_total(port)
    finally:
        server.terminate()
        server.wait(timeout=10)
    if counted != warm.records + result.records:
        raise RuntimeError(
            f"{encoding}: {warm.records + result.records} records accepted, "
            f"but modelmon_events_total is {counted}"
        )
    return result


# --- the report -------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=1000, help="records per request")
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--bodies", type=int, default=20, help="distinct record batches")
    parser.add_argument("--gzip-pool", type=int, default=200, help="pre-compressed bodies")
    parser.add_argument("--seconds", type=float, default=10.0, help="per HTTP case")
    parser.add_argument("--connections", default="1,2", help="comma-separated counts")
    parser.add_argument("--quick", action="store_true", help="a few seconds, smoke test")
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="give each exporter a state_dir under this directory (the durable SQLite join "
        "store instead of the in-memory one); the in-process reference points stay in memory",
    )
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.bodies, args.gzip_pool, args.connections = 1.0, 4, 20, "1"
    connections = [int(c) for c in args.connections.split(",")]

    description = machine_description()
    with tempfile.TemporaryDirectory(prefix="modelmon-bench-") as tmp:
        directory = Path(tmp)
        profile = build_reference(directory, args.features)
        bodies = make_bodies(args.bodies, args.batch, args.features, args.gzip_pool)
        reference_seconds = max(1.0, args.seconds / 4)
        local = in_process_rates(directory, profile, bodies, reference_seconds)
        parsed, results = {}, {}
        for encoding in ENCODINGS:
            for n in connections:
                # Measured just before the HTTP case, so that both see the same machine load.
                parsed[(encoding, n)] = parse_rates(bodies, encoding, reference_seconds)
                results[(encoding, n)] = http_case(
                    directory, profile, bodies, encoding, n, args.seconds, args.state_dir
                )
    report(args, description, bodies, parsed, local, results)


def report(
    args: argparse.Namespace,
    description: str,
    bodies: Bodies,
    parsed: dict[tuple[str, int], dict[str, Rate]],
    local: dict[str, Rate],
    results: dict[tuple[str, int], LoadResult],
) -> None:
    sizes = {e: np.mean([len(b) for b in bodies.plain(e)]) / 1024 for e in ENCODINGS}
    print(description)
    print(
        f"- bodies: {args.bodies} distinct batches of {args.batch} records (id, timestamp, "
        f"{args.features} numeric features, prediction, score); mean size "
        + ", ".join(f"{e} {s:.0f} KiB" for e, s in sizes.items())
        + f"; gzip pool of {args.gzip_pool} bodies"
    )
    print(
        f"- each HTTP case: a fresh `modelmon serve` process, 0.5 s warm-up, {args.seconds:g} s;"
        " json.loads and orjson.loads measured on the same bodies just before it (gzip: "
        "gzip.decompress + loads; NDJSON: loads per line), best of 3 rounds"
    )
    print(
        "- label join store of the exporter processes: "
        + (
            "SQLite under a state_dir (durable)"
            if args.state_dir is not None
            else "in memory (no state_dir, the default)"
        )
    )
    print()
    print("Throughput (wall clock):")
    print()
    print(
        "| body | connections | records/s over HTTP | p50 / p95 ms per request | "
        "json.loads records/s | HTTP / json.loads | orjson.loads records/s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for (encoding, n), r in results.items():
        rate = r.records / r.seconds
        lat = np.percentile(r.latencies_ms, [50, 95])
        jl, ol = parsed[(encoding, n)]["json.loads"], parsed[(encoding, n)]["orjson.loads"]
        print(
            f"| {encoding} | {n} | {rate:,.0f} | {lat[0]:.1f} / {lat[1]:.1f} | "
            f"{jl.per_second:,.0f} | {rate / jl.per_second:.2f} | {ol.per_second:,.0f} |"
        )
    print()
    print("CPU time per 1000 records (ms; not inflated by other load on the machine):")
    print()
    print(
        "| body | connections | exporter process over HTTP | in-process parse + ingest | "
        "json.loads | orjson.loads | exporter / json.loads |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for (encoding, n), r in results.items():
        cpu = r.server_cpu / r.records * 1e6
        jl, ol = parsed[(encoding, n)]["json.loads"], parsed[(encoding, n)]["orjson.loads"]
        print(
            f"| {encoding} | {n} | {cpu:.1f} | {local[encoding].cpu_ms:.1f} | "
            f"{jl.cpu_ms:.1f} | {ol.cpu_ms:.1f} | {cpu / jl.cpu_ms:.1f} |"
        )
    print()
    client = sum(r.client_cpu for r in results.values())
    total = sum(r.seconds for r in results.values())
    gzip_sent = sum(r.records for (e, _), r in results.items() if e == "gzip")
    no_ids = local["json without ids"]
    print(
        f"- in-process parse + ingest of the JSON bodies without ids: {no_ids.cpu_ms:.1f} ms "
        f"CPU per 1000 records ({no_ids.per_second:,.0f} records/s) against "
        f"{local['json'].cpu_ms:.1f} ms with ids: the difference is the label join store"
    )
    print(f"- load generator CPU: {client / total:.0%} of one core on average over the HTTP cases")
    print(
        "- every case: records accepted (warm-up included) equal the exporter's own "
        "modelmon_events_total; gzip cases sent "
        f"{gzip_sent:,} records from a pool of {args.gzip_pool * args.batch:,} unique ids"
    )


if __name__ == "__main__":
    main()
