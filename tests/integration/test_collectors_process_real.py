"""The process collector against a real process tree, checked against /proc.

The "model" is a Python process that touches 200 MiB, starts three sleeping threads and
a CPU-burning one, opens five files and spawns a child that touches 50 MiB. The child's
command line carries the same marker, so selection must pick the parent and count the
child as its descendant. The oracle reads /proc directly: VmRSS, Threads, the fd
directory and utime + stime + cutime + cstime of every process in the tree.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from modelmon.collectors.process import ProcessCollector, ProcessSelector

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the oracle reads /proc"),
]

MIB = 2**20
CHILD = """
import sys
data = bytearray(50 * 2**20)
data[::4096] = b"\\x01" * len(range(0, len(data), 4096))
print("ready", flush=True)
sys.stdin.read()
"""
MODEL = """
import os, subprocess, sys, threading, time
data = bytearray(200 * 2**20)
data[::4096] = b"\\x01" * len(range(0, len(data), 4096))
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
assert child.stdout.readline() == b"ready\\n"
files = [open(os.devnull) for _ in range(5)]
for _ in range(3):
    threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
def burn():
    while True:
        sum(range(20000))
        time.sleep(0.001)
threading.Thread(target=burn, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""


def start_model(marker: str) -> subprocess.Popen[bytes]:
    """Start the model tree in its own session and wait until it is fully set up."""
    model = subprocess.Popen(
        [sys.executable, "-c", MODEL, CHILD, marker],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert model.stdout is not None
    assert model.stdout.readline() == b"ready\n"
    return model


def stop_model(model: subprocess.Popen[bytes]) -> None:
    """Kill the model and its child (one process group) and close the pipes."""
    if model.poll() is None:
        tree = proc_tree(model.pid)
        os.killpg(model.pid, signal.SIGKILL)  # the session leader's pid is the group id
        deadline = time.monotonic() + 10
        while any(is_alive(pid) for pid in tree) and time.monotonic() < deadline:
            time.sleep(0.01)  # SIGKILL is asynchronous: wait until the processes are gone
    model.wait(timeout=10)
    for pipe in (model.stdin, model.stdout):
        if pipe is not None:
            pipe.close()


@pytest.fixture
def model_starter() -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(marker: str) -> subprocess.Popen[bytes]:
        started.append(start_model(marker))
        return started[-1]

    yield start
    for model in started:
        stop_model(model)


# --- the /proc oracle ---------------------------------------------------------------------


def proc_tree(root: int) -> list[int]:
    """root and its descendants, from the parent pid field of every /proc/PID/stat."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    tree, stack = [], [root]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(children.get(pid, []))
    return tree


def is_alive(pid: int) -> bool:
    """Whether pid exists and is no zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def status_field(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise AssertionError(f"/proc/{pid}/status has no {key}")


def proc_rss_bytes(root: int) -> int:
    return sum(status_field(pid, "VmRSS") * 1024 for pid in proc_tree(root))


def proc_threads(root: int) -> int:
    return sum(status_field(pid, "Threads") for pid in proc_tree(root))


def proc_fds(root: int) -> int:
    return sum(len(os.listdir(f"/proc/{pid}/fd")) for pid in proc_tree(root))


def proc_cpu_seconds(root: int) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in proc_tree(root):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    return total / ticks


def measure(process_collector: ProcessCollector) -> dict[str, float]:
    return {s.name: s.value for f in process_collector.collect() for s in f.samples}


# --- tests --------------------------------------------------------------------------------


def test_a_real_tree_matches_proc(
    model_starter: Callable[[str], subprocess.Popen[bytes]],
) -> None:
    marker = f"modelmon-test-model-{uuid.uuid4()}"
    model = model_starter(marker)
    process_collector = ProcessCollector(ProcessSelector(cmdline=marker))

    assert len(proc_tree(model.pid)) == 2
    assert process_collector.pids() == set(proc_tree(model.pid))

    cpu_before = proc_cpu_seconds(model.pid)
    got = measure(process_collector)
    cpu_after = proc_cpu_seconds(model.pid)

    rss = proc_rss_bytes(model.pid)
    assert rss > 250 * MIB  # the touched 200 + 50 MiB are resident
    assert got["modelmon_model_process_resident_memory_bytes"] == pytest.approx(rss, rel=0.10)
    # main + 3 sleepers + burner in the model, 1 in the child
    assert got["modelmon_model_process_threads"] == proc_threads(model.pid) == 6
    assert got["modelmon_model_process_open_fds"] == proc_fds(model.pid)
    assert got["modelmon_model_process_open_fds"] >= 3 + 5 + 3
    cpu = got["modelmon_model_process_cpu_seconds_total"]
    assert cpu_before - 1e-9 <= cpu <= cpu_after + 1e-9

    time.sleep(0.5)
    assert measure(process_collector)["modelmon_model_process_cpu_seconds_total"] > cpu


def test_a_restarted_model_is_found_again(
    model_starter: Callable[[str], subprocess.Popen[bytes]],
) -> None:
    marker = f"modelmon-test-model-{uuid.uuid4()}"
    first = model_starter(marker)
    process_collector = ProcessCollector(ProcessSelector(cmdline=marker))
    assert first.pid in process_collector.pids()
    measure(process_collector)

    stop_model(first)
    with pytest.raises(LookupError, match=marker):
        measure(process_collector)

    second = model_starter(marker)
    got = measure(process_collector)
    assert process_collector.pids() == set(proc_tree(second.pid))
    assert first.pid not in process_collector.pids()
    assert got["modelmon_model_process_resident_memory_bytes"] == pytest.approx(
        proc_rss_bytes(second.pid), rel=0.10
    )
    assert got["modelmon_model_process_threads"] == proc_threads(second.pid)
