"""Crash and shutdown faults with real ``modelmon serve`` processes and a ``state_dir``.

SIGKILL lands at seeded random moments (``FAULT_SEED``; set ``MODELMON_FAULT_SEED`` to
try others) while predictions with ids are ingested, while labels are joined, while a
JSONL file is tailed, and after a window checkpoint: 10 kills in all. While the process
is down, the state it left is checked with independent readers: SQLite's own
``PRAGMA integrity_check`` and the stored ids, numpy for the window checkpoint, JSON
for the file offsets. After the restart the public API must agree:

- every prediction acknowledged with a 200 is in the join store, and its label joins
  exactly once (a label sent again is a ``duplicate_label`` rejection);
- every label acknowledged with a 200 stays joined; labels re-sent after the crash join
  exactly those predictions that had not joined yet;
- no tailed line is skipped, and at most one batch (1000 lines) per kill is counted
  twice (the source checkpoints its offset once a batch is counted: at-least-once);
- the restored window holds at least the events of one ``checkpoint_interval`` before
  the kill and no more than were sent.

SIGTERM: the in-flight request completes with its 200, the exit code is 0, the last
window checkpoint is written and restored: ``modelmon_window_events`` is the same after
the restart.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import realbin
import requests
import yaml

from conftest import Samples, parse_exposition

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX signals"),
]

MODEL = "credit-risk"
FAULT_SEED = int(os.environ.get("MODELMON_FAULT_SEED", "20251125"))
LINES = 10_000  # tailed lines per trial
JSONL_BATCH = 1000  # JsonlSource's batch_size: the most a kill can make it count twice


# --- the exporter process -------------------------------------------------------------


class Serve:
    """``modelmon serve`` with one config and ``state_dir``, started again and again."""

    def __init__(self, directory: Path, reference: Path, **top_level: Any) -> None:
        self.directory = directory
        self.state = directory / "state"
        self.port = realbin.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "listen": f"127.0.0.1:{self.port}",
            "state_dir": str(self.state),
            "refresh_interval": "0.2s",
            "collectors": {"gpu": False},
            "models": [
                {
                    "name": MODEL,
                    "version": "v1",
                    "reference": str(reference),
                    "windows": ["5m"],
                    "min_window_events": 1,
                }
            ],
            **top_level,
        }
        self.config = directory / "modelmon.yaml"
        self.config.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.log = directory / "serve.log"
        self.process: realbin.Process | None = None

    def start(self) -> None:
        argv = [sys.executable, "-m", "modelmon", "serve", "--config", str(self.config)]
        with self.log.open("ab") as log:
            popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        self.process = realbin.Process(popen, self.log)
        realbin.wait_http(self.url + "/readyz", timeout=60, process=self.process)

    def kill(self) -> None:
        assert self.process is not None
        self.process.popen.send_signal(signal.SIGKILL)
        self.process.popen.wait(timeout=30)

    def terminate(self) -> int:
        assert self.process is not None
        self.process.popen.send_signal(signal.SIGTERM)
        return self.process.popen.wait(timeout=30)

    def close(self) -> None:
        if self.process is not None:
            realbin.stop(self.process)

    def scrape(self) -> Samples:
        return parse_exposition(requests.get(self.url + "/metrics", timeout=10).text)

    def post(self, kind: str, records: list[dict[str, Any]]) -> requests.Response:
        return requests.post(
            f"{self.url}/v1/models/{MODEL}/{kind}",
            data=json.dumps(records),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )


@pytest.fixture
def serve(tmp_path: Path, module_exporters: Any) -> Iterator[Any]:
    """``serve(**config)``: a :class:`Serve` in its own directory, stopped at the end."""
    made: list[Serve] = []

    def make(**top_level: Any) -> Serve:
        directory = tmp_path / f"exporter-{len(made)}"
        directory.mkdir()
        made.append(Serve(directory, module_exporters.reference(), **top_level))
        return made[-1]

    try:
        yield make
    finally:
        for server in made:
            server.close()


# --- independent readers of the state left behind -------------------------------------


def read_store(state: Path) -> tuple[set[str], set[str]]:
    """(every stored prediction id, the joined ones), after SQLite's integrity check."""
    path = state / "labels.sqlite"
    if not path.exists():
        return set(), set()
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = connection.execute(
            "SELECT id, joined_at IS NOT NULL FROM predictions WHERE model = ?", (MODEL,)
        ).fetchall()
    finally:
        connection.close()
    return {r[0] for r in rows}, {r[0] for r in rows if r[1]}


def check_window_checkpoint(state: Path) -> int | None:
    """Load ``windows/<model>.npz`` with numpy alone; the events it holds (None: none)."""
    path = state / "windows" / f"{MODEL}.npz"
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(bytes(data["meta"]).decode())
        events = 0
        for version in meta["versions"].values():
            window = version["windows"]["5m"]
            sums = data[f"{window['key']}_sums"]
            ids = data[f"{window['key']}_ids"]
            assert sums.ndim == 2
            assert sums.shape[1] == meta["layout_size"]
            assert len(ids) == sums.shape[0]
            events += int(sums[:, 0].sum())  # slot 0 counts events (stats.binning)
    return events


def assert_clean_restart(server: Serve) -> None:
    text = server.log.read_text(errors="replace")
    assert "unreadable window checkpoint" not in text
    assert "Traceback" not in text, text[-3000:]


# --- senders ------------------------------------------------------------------------


@dataclass
class Sender:
    """Posts batches in a thread until stopped or the server goes away."""

    server: Serve
    kind: str
    batches: list[list[dict[str, Any]]]
    sent: list[list[dict[str, Any]]] = field(default_factory=list)
    acked: list[tuple[list[dict[str, Any]], dict[str, Any]]] = field(default_factory=list)
    thread: threading.Thread | None = None

    def start(self) -> Sender:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        for batch in self.batches:
            self.sent.append(batch)
            try:
                response = self.server.post(self.kind, batch)
            except requests.RequestException:
                return  # killed in flight: sent, not acknowledged
            assert response.status_code == 200, response.text
            self.acked.append((batch, response.json()))

    def join(self) -> None:
        assert self.thread is not None
        self.thread.join(timeout=60)

    def ids(self, which: str) -> set[str]:
        batches = self.sent if which == "sent" else [batch for batch, _ in self.acked]
        return {record["id"] for batch in batches for record in batch}


def acknowledged(senders: list[Sender]) -> int:
    """Batches acknowledged so far by all ``senders``."""
    return sum(len(sender.acked) for sender in senders)


def predictions(prefix: str, n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "id": f"{prefix}-{i:05d}",
            "features": {
                "age": rng.randint(18, 80),
                "income": round(rng.lognormvariate(10.5, 0.4), 2),
                "country": rng.choice(["DE", "FR", "ES"]),
            },
            "prediction": rng.randint(0, 1),
            "score": round(rng.random(), 4),
        }
        for i in range(n)
    ]


def chunks(items: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def labels_for(ids: list[str]) -> list[dict[str, Any]]:
    return [{"id": ident, "label": int(ident[-1]) % 2} for ident in ids]


def kill_when(
    server: Serve, progress: Callable[[], float], goal: float, rng: random.Random
) -> None:
    """SIGKILL soon after ``progress()`` reaches ``goal``: a random few milliseconds
    later, so the kill lands at a different point of the next request or batch."""
    deadline = time.monotonic() + 60
    while progress() < goal:
        assert time.monotonic() < deadline, "the work did not progress"
        time.sleep(0.005)
    time.sleep(rng.uniform(0.0, 0.03))
    server.kill()


# --- SIGKILL during ingest and joins -----------------------------------------------------


def test_sigkill_during_prediction_ingest_keeps_every_acknowledged_prediction(
    serve: Any,
) -> None:
    rng = random.Random(FAULT_SEED)
    server = serve()
    sent: set[str] = set()
    acked: set[str] = set()
    for trial in range(3):
        server.start()
        batches = chunks(predictions(f"t{trial}", 6000, FAULT_SEED + trial), 200)
        senders = [Sender(server, "predictions", batches[k::2]).start() for k in range(2)]
        goal = rng.randrange(1, len(batches) - 2)  # acknowledged batches before the kill
        kill_when(server, partial(acknowledged, senders), goal, rng)
        for sender in senders:
            sender.join()
            sent |= sender.ids("sent")
            acked |= sender.ids("acked")
        stored, joined = read_store(server.state)
        context = f"seed {FAULT_SEED}, trial {trial}, killed after {goal} batches"
        assert acked <= stored, f"{context}: {len(acked - stored)} acknowledged ids lost"
        assert stored <= sent, context
        assert joined == set(), context
        check_window_checkpoint(server.state)
    # After the last restart, the label of every stored prediction joins exactly once.
    server.start()
    assert_clean_restart(server)
    ordered = sorted(sent)
    accepted = sum(
        server.post("labels", b).json()["accepted"] for b in chunks(labels_for(ordered), 500)
    )
    samples = server.scrape()
    assert accepted == len(sent)  # joined now, or waiting for a prediction that never came
    assert samples.value("modelmon_labels_total", model=MODEL, version="v1") == len(stored)
    assert samples.value("modelmon_pending_predictions", model=MODEL) == 0
    again = [server.post("labels", b).json() for b in chunks(labels_for(sorted(stored)), 500)]
    assert sum(r["accepted"] for r in again) == 0
    assert sum(r["rejected"] for r in again) == len(stored)
    assert server.scrape().value("modelmon_labels_total", model=MODEL, version="v1") == len(stored)


def test_sigkill_during_label_joining_joins_every_label_exactly_once(serve: Any) -> None:
    rng = random.Random(FAULT_SEED + 100)
    server = serve()
    server.start()
    records = predictions("p", 3000, FAULT_SEED)
    for batch in chunks(records, 500):
        assert server.post("predictions", batch).status_code == 200
    ids = [r["id"] for r in records]
    joined_before: set[str] = set()
    for trial in range(3):
        if trial:
            server.start()
            assert_clean_restart(server)
        # The client replays every label from the start, as after any crash of its own.
        batches = chunks(labels_for(ids), 100)
        sender = Sender(server, "labels", batches).start()
        goal = rng.randrange(1, len(batches) - 2)
        kill_when(server, partial(acknowledged, [sender]), goal, rng)
        sender.join()
        stored, joined = read_store(server.state)
        context = f"seed {FAULT_SEED}, trial {trial}, killed after {goal} batches"
        assert stored == set(ids), context
        assert sender.ids("acked") <= joined, f"{context}: acknowledged labels not joined"
        for batch, answer in sender.acked:
            batch_ids = {r["id"] for r in batch}
            assert answer["accepted"] == len(batch_ids - joined_before), context
            assert answer["rejected"] == len(batch_ids & joined_before), context
        assert joined_before <= joined, context
        joined_before = joined
    server.start()
    assert_clean_restart(server)
    answers = [server.post("labels", b).json() for b in chunks(labels_for(ids), 500)]
    samples = server.scrape()
    assert sum(a["accepted"] for a in answers) == len(ids) - len(joined_before)
    assert sum(a["rejected"] for a in answers) == len(joined_before)
    assert samples.value("modelmon_labels_total", model=MODEL, version="v1") == len(ids) - len(
        joined_before
    )
    duplicates = samples.value(
        "modelmon_rejected_records_total", model=MODEL, reason="duplicate_label"
    )
    assert duplicates == len(joined_before)
    assert samples.value("modelmon_pending_predictions", model=MODEL) == 0
    assert samples.value("modelmon_unmatched_labels_total", model=MODEL) == 0


# --- SIGKILL while tailing a JSONL file ---------------------------------------------------


def offsets(state: Path) -> dict[str, Any]:
    files: dict[str, Any] = {}
    for path in state.glob("jsonl-*.json"):
        with contextlib.suppress(ValueError, FileNotFoundError):  # being replaced right now
            files.update(json.loads(path.read_text())["files"])
    return files


def events(server: Serve) -> float:
    return server.scrape().value("modelmon_events_total", model=MODEL, version="v1")


def wait_until_consumed(server: Serve, size: int, timeout: float = 60.0) -> float:
    """Wait until the source checkpointed the whole file and the count stopped moving;
    returns ``modelmon_events_total`` then."""
    deadline = time.monotonic() + timeout
    while not any(f["offset"] == size for f in offsets(server.state).values()):
        assert time.monotonic() < deadline, f"the source did not reach byte {size}"
        time.sleep(0.05)
    last = events(server)
    while True:
        time.sleep(1.2)  # more than two polls of the source (0.5 s)
        now = events(server)
        if now == last:
            return now
        assert time.monotonic() < deadline, "the count kept moving"
        last = now


def test_sigkill_while_tailing_skips_no_line_and_repeats_at_most_a_batch(
    serve: Any, tmp_path: Path
) -> None:
    rng = random.Random(FAULT_SEED + 200)
    logs = tmp_path / "logs"
    logs.mkdir()
    source = {"type": "jsonl", "path": str(logs / "*.jsonl"), "model": MODEL}
    server = serve(sources=[source])
    path = logs / "predictions.jsonl"
    path.touch()
    written: list[str] = []
    server.start()
    for trial in range(3):
        counted_before = events(server)
        records = predictions(f"j{trial}", LINES, FAULT_SEED + 10 * trial)
        with path.open("a", encoding="utf-8") as handle:
            handle.writelines(json.dumps(r) + "\n" for r in records)
        written += [r["id"] for r in records]
        goal = counted_before + rng.uniform(0.05, 0.8) * LINES
        kill_when(server, partial(events, server), goal, rng)
        stored, _ = read_store(server.state)
        server.start()
        assert_clean_restart(server)
        counted = wait_until_consumed(server, path.stat().st_size)
        missing = len(written) - len(stored)  # lines not durably counted before the kill
        context = f"seed {FAULT_SEED}, trial {trial}, killed after {goal:.0f} events"
        assert counted >= missing, f"{context}: {missing - counted:.0f} lines skipped"
        assert counted - missing <= JSONL_BATCH, f"{context}: {counted - missing:.0f} repeated"
    assert server.terminate() == 0
    stored, _ = read_store(server.state)
    assert stored == set(written)


# --- window checkpoints: SIGKILL loss bound and SIGTERM --------------------------------------


def window_events(server: Serve) -> float:
    labels = {"model": MODEL, "version": "v1", "window": "5m"}
    deadline = time.monotonic() + 10
    while True:  # the refresher publishes the window within refresh_interval
        samples = server.scrape()
        if ("modelmon_window_events", frozenset(labels.items())) in samples:
            return samples.value("modelmon_window_events", **labels)
        assert time.monotonic() < deadline, "no modelmon_window_events"
        time.sleep(0.1)


def test_sigkill_loses_at_most_one_checkpoint_interval_of_window_data(serve: Any) -> None:
    interval = 1.0
    server = serve(checkpoint_interval=f"{interval}s")
    server.start()
    early = predictions("early", 1500, FAULT_SEED)
    assert server.post("predictions", early).status_code == 200
    sent_at = time.time()
    checkpoint = server.state / "windows" / f"{MODEL}.npz"
    deadline = time.monotonic() + 10
    while not (checkpoint.exists() and checkpoint.stat().st_mtime > sent_at + 0.05):
        assert time.monotonic() < deadline, "no window checkpoint after the ingest"
        time.sleep(0.05)
    late = predictions("late", 700, FAULT_SEED + 1)
    assert server.post("predictions", late).status_code == 200
    server.kill()
    saved = check_window_checkpoint(server.state)
    assert saved is not None
    assert len(early) <= saved <= len(early) + len(late)
    server.start()
    assert_clean_restart(server)
    restored = window_events(server)
    assert restored == saved
    # A counter is not restored: it restarts from zero, which Prometheus reads as a reset.
    assert server.scrape().value("modelmon_events_total", model=MODEL, version="v1") == 0


def test_sigterm_completes_in_flight_requests_and_restores_the_windows(serve: Any) -> None:
    server = serve(checkpoint_interval="1h")  # only the shutdown writes a checkpoint
    server.start()
    assert server.post("predictions", predictions("a", 1000, FAULT_SEED)).status_code == 200
    big = predictions("b", 100_000, FAULT_SEED + 1)
    body = json.dumps(big).encode()
    head = (
        f"POST /v1/models/{MODEL}/predictions HTTP/1.1\r\nHost: test\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head + body)
        # The signal comes as the last bytes are sent, while the body is read, parsed or
        # counted (a body still arriving is the next test's case): whichever it is, the
        # request is answered and everything in it is in the last checkpoint.
        signalled = time.monotonic()
        assert server.process is not None
        server.process.popen.send_signal(signal.SIGTERM)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer and answer.rstrip().endswith(b"}"):
                break
    code = server.process.popen.wait(timeout=30)
    assert code == 0, server.log.read_text(errors="replace")[-3000:]
    assert time.monotonic() - signalled < 15
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["accepted"] == len(big)
    saved = check_window_checkpoint(server.state)
    assert saved == 1000 + len(big)
    server.start()
    assert_clean_restart(server)
    assert window_events(server) == 1000 + len(big)


def test_sigterm_completes_a_request_whose_body_is_still_arriving(serve: Any) -> None:
    """A request on an accepted connection is in flight even before its body is read:
    a graceful shutdown answers it, then writes the last checkpoint."""
    server = serve(checkpoint_interval="1h")
    server.start()
    records = predictions("u", 500, FAULT_SEED)
    body = json.dumps(records).encode()
    head = (
        f"POST /v1/models/{MODEL}/predictions HTTP/1.1\r\nHost: test\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + body[: len(body) // 2])
        time.sleep(0.2)
        assert server.process is not None
        server.process.popen.send_signal(signal.SIGTERM)
        time.sleep(1.0)  # the shutdown is under way: no new connections are accepted
        with pytest.raises(requests.ConnectionError):
            requests.get(server.url + "/healthz", timeout=5)
        answer = b""
        with contextlib.suppress(OSError):
            sock.sendall(body[len(body) // 2 :])
            while chunk := sock.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and answer.rstrip().endswith(b"}"):
                    break
    code = server.process.popen.wait(timeout=30)
    assert code == 0
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["accepted"] == len(records)
    assert check_window_checkpoint(server.state) == len(records)
