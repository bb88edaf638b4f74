"""Soak test: steady load on a real ``modelmon serve`` for N minutes, watching for drift
in its resident memory and its ingest latency.

The exporter runs as a subprocess with a ``state_dir`` (SQLite join store, window
checkpoints). Three client threads load it at a fixed schedule: predictions with ids
(``--rate`` records/s in batches of ``--batch``), labels for ``--label-share`` of them
``--label-delay`` seconds later (the rest expire after ``labels.ttl`` = ``--ttl``, so the
store reaches a steady size), and a scrape of ``/metrics`` every 5 s as Prometheus would.
A fourth thread samples the exporter's resident memory, threads and open files (psutil)
and the size of its database files.

Latency is measured from each request's *scheduled* send time (open loop): a server that
stalls delays the following requests and their latency shows it, instead of the load
quietly slowing down (coordinated omission).

The verdict compares the last third of the run with the first third, after a warm-up
(a sixth of the run, at most a minute): memory is flat when its mean grew by at most
``--max-memory-growth`` (10 %), latency when the last third's p99 is at most 1.5 times
the first third's plus 2 ms. Not part of CI: it takes minutes.

    python benchmarks/soak.py                               # 30 minutes
    python benchmarks/soak.py --minutes 2 --interval 15     # the short run in results/soak.md
    python benchmarks/soak.py --memory-store                # without state_dir
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import requests
import yaml

import common

MODEL = "soak"
MIB = 2**20


@dataclass
class Request:
    """One request: seconds since the start (scheduled), kind, latency, HTTP status."""

    at: float
    kind: str
    latency: float
    status: int


@dataclass
class Sample:
    """The exporter process at one moment, seconds since the start."""

    at: float
    rss: int
    threads: int
    fds: int
    db_bytes: int


@dataclass
class Run:
    """What the client threads recorded; appended to under ``lock``."""

    started: float
    requests: list[Request] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def now(self) -> float:
        return time.monotonic() - self.started

    def record(self, request: Request) -> None:
        with self.lock:
            self.requests.append(request)


# --- the exporter --------------------------------------------------------------------


def write_config(directory: Path, profile: Path, args: argparse.Namespace) -> tuple[Path, int]:
    """The exporter's config (state_dir, short label ttl); returns its path and port."""
    port = common.free_port()
    entry = common.model_entry(MODEL, profile, ["5m", "1h"])
    entry["labels"] = {"ttl": f"{args.ttl}s"}
    document = common.config_document([entry], "2s", f"127.0.0.1:{port}")
    if not args.memory_store:
        document.update(state_dir=str(directory / "state"), checkpoint_interval="30s")
    path = directory / "modelmon.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path, port


# --- the load ------------------------------------------------------------------------


def send_predictions(run: Run, url: str, args: argparse.Namespace, labels: Any) -> None:
    """Batches at a fixed schedule; queues the ids that will get a label."""
    rng = np.random.default_rng(11)
    period = args.batch / args.rate
    endpoint = f"{url}/v1/models/{MODEL}/predictions"
    sent = 0
    with requests.Session() as session:
        for k in range(int(args.minutes * 60 / period)):
            scheduled = k * period
            wait = scheduled - run.now()
            if wait > 0 and run.stop.wait(wait):
                return
            records = common.prediction_records(rng, args.batch, args.features, time.time(), sent)
            sent += args.batch
            status = post(session, endpoint, records)
            run.record(Request(scheduled, "predictions", run.now() - scheduled, status))
            chosen = [r["id"] for r in records if rng.random() < args.label_share]
            labels.append((scheduled + args.label_delay, chosen))


def send_labels(run: Run, url: str, labels: Any) -> None:
    """Labels of the queued ids once they are due (a constant delay keeps them in order)."""
    endpoint = f"{url}/v1/models/{MODEL}/labels"
    with requests.Session() as session:
        while not run.stop.is_set():
            if not labels or labels[0][0] > run.now():
                run.stop.wait(0.01)
                continue
            due, ids = labels.popleft()
            records = [{"id": i, "label": int(i[-1]) % 2} for i in ids]
            status = post(session, endpoint, records)
            run.record(Request(due, "labels", run.now() - due, status))


def scrape(run: Run, url: str, every: float = 5.0) -> None:
    with requests.Session() as session:
        k = 0
        while not run.stop.wait(max(0.0, k * every - run.now())):
            scheduled = k * every
            try:
                status = session.get(url + "/metrics", timeout=30).status_code
            except requests.RequestException:
                status = 0
            run.record(Request(scheduled, "scrape", run.now() - scheduled, status))
            k += 1


def post(session: requests.Session, endpoint: str, records: list[dict[str, Any]]) -> int:
    try:
        response = session.post(
            endpoint,
            data=json.dumps(records),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
    except requests.RequestException:
        return 0
    return response.status_code


def sample(run: Run, pid: int, state: Path, every: float) -> None:
    process = psutil.Process(pid)
    while True:
        try:
            db = sum(p.stat().st_size for p in state.glob("labels.sqlite*"))
            with process.oneshot():
                point = Sample(
                    run.now(),
                    process.memory_info().rss,
                    process.num_threads(),
                    process.num_fds(),
                    db,
                )
        except (psutil.Error, FileNotFoundError):
            return
        with run.lock:
            run.samples.append(point)
        if run.stop.wait(every):
            return


# --- the report ----------------------------------------------------------------------


def p(values: list[float], q: float) -> float:
    return common.percentile(values, q) * 1000 if values else float("nan")


def table(run: Run, interval: float) -> list[dict[str, Any]]:
    """One row per ``interval`` seconds."""
    rows = []
    end = max(r.at for r in run.requests)
    for start in np.arange(0.0, end + 1e-9, interval):
        stop = start + interval
        reqs = [r for r in run.requests if start <= r.at < stop]
        samples = [s for s in run.samples if start <= s.at < stop]
        ingest = [r.latency for r in reqs if r.kind == "predictions"]
        if not ingest:
            continue
        rows.append(
            {
                "from_s": int(start),
                "requests": len(reqs),
                "errors": sum(r.status != 200 for r in reqs),
                "ingest_p50_ms": p(ingest, 50),
                "ingest_p99_ms": p(ingest, 99),
                "labels_p99_ms": p([r.latency for r in reqs if r.kind == "labels"], 99),
                "scrape_p99_ms": p([r.latency for r in reqs if r.kind == "scrape"], 99),
                "rss_mib": max((s.rss for s in samples), default=0) / MIB,
                "threads": max((s.threads for s in samples), default=0),
                "fds": max((s.fds for s in samples), default=0),
                "db_mib": max((s.db_bytes for s in samples), default=0) / MIB,
            }
        )
    return rows


@dataclass
class Verdict:
    memory_first_mib: float
    memory_last_mib: float
    latency_first_ms: float
    latency_last_ms: float
    memory_flat: bool
    latency_flat: bool


def verdict(run: Run, duration: float, max_growth: float) -> Verdict:
    """Last third against first third of the run after the warm-up."""
    warm = min(60.0, duration / 6)
    third = (duration - warm) / 3

    def part(lo: float, hi: float) -> tuple[float, float]:
        rss = [s.rss for s in run.samples if lo <= s.at < hi]
        ingest = [r.latency for r in run.requests if r.kind == "predictions" and lo <= r.at < hi]
        return float(np.mean(rss)) / MIB, p(ingest, 99)

    mem_first, lat_first = part(warm, warm + third)
    mem_last, lat_last = part(duration - third, duration + 1)
    return Verdict(
        mem_first,
        mem_last,
        lat_first,
        lat_last,
        memory_flat=mem_last <= mem_first * (1 + max_growth),
        latency_flat=lat_last <= 1.5 * lat_first + 2.0,
    )


def markdown(rows: list[dict[str, Any]], result: Verdict, extra: dict[str, str]) -> str:
    names = list(rows[0])
    lines = [
        common.machine_description(extra),
        "",
        "| " + " | ".join(names) + " |",
        "|" + "---:|" * len(names),
    ]
    for row in rows:
        cells = [f"{v:.1f}" if isinstance(v, float) else str(v) for v in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    memory = "flat" if result.memory_flat else "GREW"
    latency = "flat" if result.latency_flat else "GREW"
    lines += [
        "",
        f"- memory: {memory}: mean RSS {result.memory_first_mib:.1f} MiB in the first third, "
        f"{result.memory_last_mib:.1f} MiB in the last "
        f"({(result.memory_last_mib / result.memory_first_mib - 1) * 100:+.1f} %)",
        f"- ingest latency: {latency}: p99 {result.latency_first_ms:.1f} ms in the first "
        f"third, {result.latency_last_ms:.1f} ms in the last",
    ]
    return "\n".join(lines)


def final_counts(url: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(url + "/metrics", timeout=30).text
    totals: dict[str, float] = {}
    wanted = {
        "modelmon_events_total",
        "modelmon_labels_total",
        "modelmon_expired_predictions_total",
        "modelmon_pending_predictions",
        "modelmon_rejected_records_total",
    }
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in wanted:
                totals[s.name] = totals.get(s.name, 0.0) + s.value
    return totals


# --- main ----------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="duration (default 30)")
    parser.add_argument("--rate", type=float, default=1000.0, help="predictions/s (1000)")
    parser.add_argument("--batch", type=int, default=50, help="records per request (50)")
    parser.add_argument("--features", type=int, default=10, help="numeric features (10)")
    parser.add_argument("--label-share", type=float, default=0.8, help="labeled share (0.8)")
    parser.add_argument("--label-delay", type=float, default=5.0, help="seconds (5)")
    parser.add_argument("--ttl", type=float, default=120.0, help="labels.ttl seconds (120)")
    parser.add_argument("--interval", type=float, default=60.0, help="table row seconds (60)")
    parser.add_argument("--sample", type=float, default=2.0, help="sampling seconds (2)")
    parser.add_argument("--max-memory-growth", type=float, default=0.10)
    parser.add_argument(
        "--memory-store",
        action="store_true",
        help="no state_dir: the in-memory join store (the default of a plain config) "
        "instead of SQLite, and no window checkpoints",
    )
    parser.add_argument("--csv", type=Path, help="also write the table as CSV here")
    parser.add_argument("--output", type=Path, help="also write the markdown here")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="modelmon-soak-") as tmp:
        directory = Path(tmp)
        profile = common.build_reference(directory, args.features)
        config, port = write_config(directory, profile, args)
        url = f"http://127.0.0.1:{port}"
        exporter = common.start_serve(config, port, directory / "serve.log", timeout=60)
        run = Run(time.monotonic())
        labels: collections.deque[tuple[float, list[str]]] = collections.deque()
        threads = [
            threading.Thread(target=send_predictions, args=(run, url, args, labels)),
            threading.Thread(target=send_labels, args=(run, url, labels)),
            threading.Thread(target=scrape, args=(run, url)),
            threading.Thread(
                target=sample, args=(run, exporter.pid, directory / "state", args.sample)
            ),
        ]
        for thread in threads:
            thread.start()
        try:
            threads[0].join()  # the predictions follow the schedule to its end
        finally:
            run.stop.set()
            for thread in threads[1:]:
                thread.join()
        counts = final_counts(url)
        exporter.send_signal(signal.SIGTERM)
        code = exporter.wait(timeout=60)
    duration = args.minutes * 60
    rows = table(run, args.interval)
    result = verdict(run, duration, args.max_memory_growth)
    extra = {
        "load": f"{args.rate:g} predictions/s in batches of {args.batch}, {args.features} "
        f"features; labels for {args.label_share:.0%} after {args.label_delay:g} s; "
        f"labels.ttl {args.ttl:g} s; a scrape every 5 s",
        "join store": "in memory (no state_dir)"
        if args.memory_store
        else "SQLite under state_dir, windows checkpointed every 30 s",
        "final counters": ", ".join(f"{k} {v:,.0f}" for k, v in sorted(counts.items())),
        "exporter exit code after SIGTERM": str(code),
    }
    text = markdown(rows, result, extra)
    print(text)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
    if args.csv:
        with args.csv.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return 0 if result.memory_flat and result.latency_flat and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
