"""The process collector's selection, summing and failure rules, over a fake process table.

The fake implements the psutil calls the collector makes and raises psutil's own
exceptions. Expected sums are computed by hand from the table. Measurements of real
processes against /proc are in tests/integration/test_collectors_process_real.py.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import psutil
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelmon.collectors.health import CollectorSet
from modelmon.collectors.process import ProcessCollector, ProcessNotFoundError, ProcessSelector

SELF_PID = 999


@dataclass(eq=False)
class FakeProcess:
    """One row of the fake process table. ``deny``/``vanish``: methods that fail."""

    pid: int
    ppid: int
    name: str
    cmdline: list[str]
    create_time: float = 1000.0
    user: float = 1.0
    system: float = 0.5
    children_user: float = 0.0
    children_system: float = 0.0
    rss: int = 100 * 2**20
    threads: int = 4
    fds: int = 10
    status: str = psutil.STATUS_SLEEPING
    deny: set[str] = field(default_factory=set)
    vanish: set[str] = field(default_factory=set)
    table: FakePsutil | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def _check(self, method: str) -> None:
        assert self.table is not None
        self.table.calls[method] += 1
        if method in self.vanish or not self.is_running():
            raise psutil.NoSuchProcess(self.pid)
        if method in self.deny:
            raise psutil.AccessDenied(self.pid)

    def oneshot(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def is_running(self) -> bool:
        return self.table is not None and self.table.rows.get(self.pid) is self

    def cpu_times(self) -> Any:
        self._check("cpu_times")
        return SimpleNamespace(
            user=self.user,
            system=self.system,
            children_user=self.children_user,
            children_system=self.children_system,
        )

    def memory_info(self) -> Any:
        self._check("memory_info")
        return SimpleNamespace(rss=self.rss, vms=4 * self.rss)

    def num_threads(self) -> int:
        self._check("num_threads")
        return self.threads

    def num_fds(self) -> int:
        self._check("num_fds")
        return self.fds

    def children(self, recursive: bool = False) -> list[FakeProcess]:
        self._check("children")
        assert recursive
        assert self.table is not None
        found, stack = [], [self.pid]
        while stack:
            parent = stack.pop()
            for row in self.table.rows.values():
                if row.ppid == parent:
                    found.append(row)
                    stack.append(row.pid)
        return found

    def parents(self) -> list[FakeProcess]:
        self._check("parents")
        assert self.table is not None
        chain, ppid = [], self.ppid
        while ppid in self.table.rows:
            chain.append(self.table.rows[ppid])
            ppid = self.table.rows[ppid].ppid
        return chain


class FakePsutil:
    """The module-level psutil API the collector uses, over a dict of FakeProcess."""

    NoSuchProcess = psutil.NoSuchProcess
    AccessDenied = psutil.AccessDenied
    STATUS_ZOMBIE = psutil.STATUS_ZOMBIE

    def __init__(self, *rows: FakeProcess) -> None:
        self.rows: dict[int, FakeProcess] = {}
        self.calls: Counter[str] = Counter()
        for row in rows:
            self.add(row)

    def add(self, row: FakeProcess) -> FakeProcess:
        row.table = self
        self.rows[row.pid] = row
        return row

    def remove(self, pid: int) -> None:
        del self.rows[pid]

    def process_iter(self, attrs: list[str]) -> Iterator[FakeProcess]:
        self.calls["process_iter"] += 1
        for row in list(self.rows.values()):
            row.info = {attr: getattr(row, attr) for attr in attrs}
            yield row

    def Process(self, pid: int) -> Any:  # noqa: N802 -- psutil's class name
        if pid not in self.rows:
            raise psutil.NoSuchProcess(pid)
        row = self.rows[pid]
        return SimpleNamespace(
            pid=pid,
            name=lambda: row.name,
            cmdline=lambda: row.cmdline,
            is_running=row.is_running,
            oneshot=row.oneshot,
            cpu_times=row.cpu_times,
            memory_info=row.memory_info,
            num_threads=row.num_threads,
            num_fds=row.num_fds,
            children=row.children,
        )


def server_tree() -> FakePsutil:
    """A model server (pid 100) with a forked worker (101, same command line) that has a
    helper child (102), plus an unrelated python process and modelmon itself."""
    return FakePsutil(
        FakeProcess(1, 0, "init", ["/sbin/init"], create_time=1.0),
        FakeProcess(100, 1, "python", ["python", "serve.py", "--port", "8080"], user=10.0,
                    system=2.0, children_user=0.25, children_system=0.25, rss=500 * 2**20,
                    threads=12, fds=40),
        FakeProcess(101, 100, "python", ["python", "serve.py", "--port", "8080"], user=5.0,
                    system=1.0, rss=300 * 2**20, threads=3, fds=9, create_time=1001.0),
        FakeProcess(102, 101, "helper", ["helper", "--fast"], user=0.5, system=0.25,
                    rss=20 * 2**20, threads=1, fds=3, create_time=1002.0),
        FakeProcess(200, 1, "python", ["python", "train.py"], create_time=500.0),
        FakeProcess(SELF_PID, 1, "modelmon", ["modelmon", "serve", "--config", "serve.py.yaml"]),
    )  # fmt: skip


def collector(table: FakePsutil, **selector: Any) -> ProcessCollector:
    return ProcessCollector(ProcessSelector(**selector), psutil_module=table, self_pid=SELF_PID)


def values(process_collector: ProcessCollector) -> dict[str, float]:
    return {
        sample.name: sample.value
        for family in process_collector.collect()
        for sample in family.samples
    }


CPU = "modelmon_model_process_cpu_seconds_total"
RSS = "modelmon_model_process_resident_memory_bytes"
THREADS = "modelmon_model_process_threads"
FDS = "modelmon_model_process_open_fds"


# --- selector ---------------------------------------------------------------------------


def test_a_selector_needs_a_criterion() -> None:
    with pytest.raises(ValueError, match=r"collectors\.process: expected at least one of pid"):
        ProcessSelector()
    with pytest.raises(ValueError, match=r"collectors\.process: expected at least one of pid"):
        ProcessSelector(name="", cmdline="")


@pytest.mark.parametrize("pid", [0, -4, True])
def test_a_selector_pid_must_be_positive(pid: Any) -> None:
    with pytest.raises(ValueError, match=r"collectors\.process\.pid: expected a positive integer"):
        ProcessSelector(pid=pid)


def test_selector_matches_name_exactly_and_cmdline_as_substring() -> None:
    assert ProcessSelector(name="python").matches("python", None)
    assert not ProcessSelector(name="python").matches("python3", ["python3"])
    assert ProcessSelector(cmdline="serve.py --port").matches("x", ["py", "serve.py", "--port"])
    assert not ProcessSelector(cmdline="serve.py").matches("python", None)
    assert not ProcessSelector(name="python", cmdline="serve.py").matches("node", ["serve.py"])
    assert (
        str(ProcessSelector(name="python", cmdline="serve.py"))
        == "name='python', cmdline='serve.py'"
    )


# --- sums -------------------------------------------------------------------------------


def test_the_process_and_all_descendants_are_summed() -> None:
    got = values(collector(server_tree(), cmdline="serve.py"))
    assert got == {
        # user + system (+ waited-for children) of 100, 101 and 102
        CPU: (10.0 + 2.0 + 0.25 + 0.25) + (5.0 + 1.0) + (0.5 + 0.25),
        RSS: (500 + 300 + 20) * 2**20,
        THREADS: 12 + 3 + 1,
        FDS: 40 + 9 + 3,
    }


def test_name_selects_the_oldest_root_match() -> None:
    # Both 100 (created at 1000) and 200 (created at 500) are named python: 200 is older.
    got = values(collector(server_tree(), name="python"))
    assert got[THREADS] == 4


def test_name_and_cmdline_must_both_match() -> None:
    got = values(collector(server_tree(), name="python", cmdline="serve.py"))
    assert got[THREADS] == 16


def test_modelmon_itself_never_matches_by_cmdline() -> None:
    table = server_tree()
    table.remove(100)
    table.remove(101)
    table.remove(102)
    process_collector = collector(table, cmdline="serve.py")
    with pytest.raises(ProcessNotFoundError, match=r"cmdline='serve.py'.*own pid 999 excluded"):
        values(process_collector)


def test_zombies_are_not_selected() -> None:
    table = server_tree()
    table.rows[200].status = psutil.STATUS_ZOMBIE
    assert values(collector(table, name="python"))[THREADS] == 16


def test_pid_selects_that_process_even_modelmon_itself() -> None:
    assert values(collector(server_tree(), pid=101))[THREADS] == 4
    assert values(collector(server_tree(), pid=SELF_PID))[THREADS] == 4


def test_pid_with_a_name_that_does_not_match_fails() -> None:
    with pytest.raises(ProcessNotFoundError, match="pid 200 does not match name='node'"):
        values(collector(server_tree(), pid=200, name="node"))


def test_a_missing_pid_names_the_key() -> None:
    with pytest.raises(ProcessNotFoundError, match=r"collectors\.process\.pid: 4242"):
        values(collector(server_tree(), pid=4242))


# --- failures ---------------------------------------------------------------------------


@pytest.mark.parametrize("failure", ["vanish", "deny"])
def test_a_descendant_that_vanishes_or_denies_access_is_skipped(failure: str) -> None:
    table = server_tree()
    getattr(table.rows[102], failure).add("memory_info")
    got = values(collector(table, cmdline="serve.py"))
    assert got[RSS] == (500 + 300) * 2**20
    assert got[THREADS] == 12 + 3
    assert got[FDS] == 40 + 9


def test_unreadable_descriptors_leave_only_open_fds_out(caplog: pytest.LogCaptureFixture) -> None:
    table = server_tree()
    table.rows[101].deny.add("num_fds")
    process_collector = collector(table, cmdline="serve.py")
    for _ in range(3):
        got = values(process_collector)
    assert FDS not in got
    assert got[THREADS] == 16
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "process 100" in warnings[0].getMessage()


def test_no_match_reports_success_zero_through_collector_set() -> None:
    table = server_tree()
    registry = CollectorRegistry()
    registry.register(CollectorSet({"process": collector(table, cmdline="no-such-model")}))
    text = generate_latest(registry).decode()
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    assert [(s.name, s.value) for s in samples if s.name == "modelmon_collector_success"] == [
        ("modelmon_collector_success", 0.0)
    ]
    assert not [s for s in samples if s.name.startswith("modelmon_model_process_")]


def test_a_root_that_exits_mid_read_raises_and_is_looked_up_again() -> None:
    table = server_tree()
    process_collector = collector(table, cmdline="serve.py")
    values(process_collector)
    table.rows[100].vanish.add("cpu_times")
    with pytest.raises(psutil.NoSuchProcess):
        values(process_collector)
    table.rows[100].vanish.clear()
    assert values(process_collector)[THREADS] == 16
    assert table.calls["process_iter"] == 2


# --- caching and restarts ---------------------------------------------------------------


def test_resolution_is_cached_across_scrapes() -> None:
    table = server_tree()
    process_collector = collector(table, cmdline="serve.py")
    for _ in range(5):
        values(process_collector)
    assert table.calls["process_iter"] == 1


def test_a_restarted_process_is_found_again_and_its_counter_starts_over() -> None:
    table = server_tree()
    process_collector = collector(table, cmdline="serve.py")
    assert values(process_collector)[CPU] == 19.25
    for pid in (100, 101, 102):
        table.remove(pid)
    assert process_collector.pids() == set()
    table.add(FakeProcess(300, 1, "python", ["python", "serve.py"], create_time=2000.0, user=0.5,
                          system=0.25, threads=2))  # fmt: skip
    got = values(process_collector)
    assert got[CPU] == 0.75  # the new process's own time, not held at the old 19.25
    assert got[THREADS] == 2
    assert process_collector.pids() == {300}


def test_a_reused_pid_with_a_new_create_time_is_a_new_process() -> None:
    table = server_tree()
    process_collector = collector(table, pid=200)
    assert values(process_collector)[CPU] == 1.5
    table.add(FakeProcess(200, 1, "python", ["python", "other.py"], create_time=3000.0, user=0.25,
                          system=0.0))  # fmt: skip
    assert values(process_collector)[CPU] == 0.25


def test_cpu_counter_holds_through_an_unreaped_child_and_moves_on_when_reaped() -> None:
    table = server_tree()
    process_collector = collector(table, cmdline="serve.py")
    assert values(process_collector)[CPU] == 19.25
    helper = table.rows[102]
    table.remove(102)  # exited, its 0.75 s not yet in its parent's children times
    assert values(process_collector)[CPU] == 19.25
    table.rows[101].children_user = helper.user  # reaped by 101
    table.rows[101].children_system = helper.system + 0.5  # and it ran 0.5 s more
    table.rows[100].user += 1.0
    assert values(process_collector)[CPU] == 19.25 + 0.5 + 1.0


def test_pids_lists_the_tree() -> None:
    assert collector(server_tree(), cmdline="serve.py").pids() == {100, 101, 102}
    assert collector(server_tree(), cmdline="nothing").pids() == set()
