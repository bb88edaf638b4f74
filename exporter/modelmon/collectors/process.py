"""Resource gauges of the model process and all its descendants, read with psutil.

The model process is found by pid, by process name or by a command-line substring
(all given criteria must hold); modelmon's own process never matches by name or command
line, since ``modelmon serve`` may well contain the substring. Among several matches the
oldest one that has no matching ancestor wins, so the forked workers of a matching
server (whose command lines are the same) are counted as its children, not instead of it.

Every scrape sums the process and its descendants, found recursively: a model server's
work often runs in worker processes. Descendants that vanish mid-scan or deny access are
skipped. Summed resident memory counts pages shared between processes (copy-on-write
after fork) once per process, as ``ps`` does.

CPU time is made a proper counter. Each process contributes user + system time plus the
time of the children it has already waited for, so a worker that exits and is reaped
moves its time into its parent's share instead of taking it away. A dip that is left
(an exited child not yet reaped) is held at the previous value, because Prometheus
would read any decrease as a counter reset. The counter starts over, like the process,
when the model process restarts.

The resolved process is cached; a scrape re-resolves only when the cached process has
exited or its pid was reused (psutil compares the creation time).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import psutil
from prometheus_client.metrics_core import Metric

from modelmon.collectors import new_family

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcessSelector:
    """Which process is the model: config ``collectors.process``; given fields all match.

    ``name`` is the process name exactly (``psutil.Process.name()``); ``cmdline`` is a
    substring of the command line joined with spaces.

    >>> ProcessSelector(name="python", cmdline="serve.py").matches("python", ["python", "serve.py"])
    True
    >>> ProcessSelector(cmdline="serve.py").matches("python", ["python", "train.py"])
    False
    """

    pid: int | None = None
    name: str | None = None
    cmdline: str | None = None

    def __post_init__(self) -> None:
        if self.pid is None and not self.name and not self.cmdline:
            raise ValueError("collectors.process: expected at least one of pid, name, cmdline")
        if self.pid is not None and (isinstance(self.pid, bool) or self.pid <= 0):
            raise ValueError(
                f"collectors.process.pid: expected a positive integer, got {self.pid!r}"
            )

    def matches(self, name: str | None, cmdline: Iterable[str] | None) -> bool:
        """Whether a process with this name and command line is selected (pid aside)."""
        if self.name and name != self.name:
            return False
        return not self.cmdline or (cmdline is not None and self.cmdline in " ".join(cmdline))

    def __str__(self) -> str:
        fields = {"pid": self.pid, "name": self.name, "cmdline": self.cmdline}
        return ", ".join(f"{key}={value!r}" for key, value in fields.items() if value)


class ProcessNotFoundError(LookupError):
    """No running process matches the selector."""


@dataclass
class _Usage:
    """Resources of one process or, summed, of a process tree."""

    cpu_seconds: float
    resident_bytes: int
    threads: int
    open_fds: int | None  # None: some process's descriptors could not be counted

    def __add__(self, other: _Usage) -> _Usage:
        fds = (
            None
            if self.open_fds is None or other.open_fds is None
            else self.open_fds + other.open_fds
        )
        return _Usage(
            self.cpu_seconds + other.cpu_seconds,
            self.resident_bytes + other.resident_bytes,
            self.threads + other.threads,
            fds,
        )


class ProcessCollector:
    """``modelmon_model_process_*``: CPU, memory, threads and descriptors of the model.

    ``collect()`` raises :class:`ProcessNotFoundError` when no process matches, so
    :class:`~modelmon.collectors.health.CollectorSet` reports success 0 for it.
    """

    def __init__(
        self,
        selector: ProcessSelector,
        *,
        psutil_module: Any = psutil,  # the module, or a fake with the same API in tests
        self_pid: int | None = None,  # None: this process, read at construction
    ) -> None:
        self._selector = selector
        self._psutil = psutil_module
        self._self_pid = os.getpid() if self_pid is None else self_pid
        self._lock = threading.Lock()
        self._process: Any = None  # the cached psutil.Process of the model
        self._cpu_high_water = 0.0  # CPU counter value last exported for _process
        self._fds_warned: int | None = None  # pid whose unreadable descriptors were logged

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            usage = self._tree_usage()
            cpu_seconds = self._monotonic_cpu(usage.cpu_seconds)
        values: dict[str, float | None] = {
            "modelmon_model_process_cpu_seconds_total": cpu_seconds,
            "modelmon_model_process_resident_memory_bytes": usage.resident_bytes,
            "modelmon_model_process_threads": usage.threads,
            "modelmon_model_process_open_fds": usage.open_fds,
        }
        for name, value in values.items():
            if value is not None:
                family = new_family(name)
                family.add_metric([], value)
                yield family

    def pids(self) -> set[int]:
        """Pids of the model process and its descendants; empty when none matches.

        For the GPU collector's per-process memory, which filters NVML's process list.
        """
        with self._lock:
            try:
                root = self._resolve()
                return {root.pid, *(child.pid for child in root.children(recursive=True))}
            except (ProcessNotFoundError, self._psutil.NoSuchProcess):
                return set()

    def _tree_usage(self) -> _Usage:
        root = self._resolve()
        try:
            total = self._usage(root)
            children = root.children(recursive=True)
        except self._psutil.NoSuchProcess:
            self._process = None  # gone between resolution and reading: look again next time
            raise
        for child in children:
            try:
                total += self._usage(child)
            except (self._psutil.NoSuchProcess, self._psutil.AccessDenied):
                continue  # exited mid-scan, or not ours to read
        if total.open_fds is None and self._fds_warned != root.pid:
            self._fds_warned = root.pid
            _LOGGER.warning(
                "modelmon_model_process_open_fds not exported: descriptors of process %d "
                "or a descendant are not readable (run modelmon as the model's user)",
                root.pid,
            )
        return total

    def _usage(self, process: Any) -> _Usage:
        with process.oneshot():
            times = process.cpu_times()
            cpu = times.user + times.system
            # Time of waited-for children; absent (0) on some platforms.
            cpu += getattr(times, "children_user", 0.0) + getattr(times, "children_system", 0.0)
            rss = process.memory_info().rss
            threads = process.num_threads()
            try:
                fds: int | None = process.num_fds()
            except self._psutil.AccessDenied:
                fds = None
        return _Usage(float(cpu), int(rss), int(threads), fds)

    def _monotonic_cpu(self, cpu_seconds: float) -> float:
        """Hold the counter through a dip (an exited, not yet reaped child)."""
        self._cpu_high_water = max(self._cpu_high_water, cpu_seconds)
        return self._cpu_high_water

    def _resolve(self) -> Any:
        """The model's psutil.Process: the cached one while it runs, else found anew."""
        if self._process is not None and self._process.is_running():
            return self._process
        found = self._find()
        if self._process is not None:
            _LOGGER.info("model process %s: now pid %d", self._selector, found.pid)
        self._process = found
        self._cpu_high_water = 0.0  # a new process: the counter starts over
        return found

    def _find(self) -> Any:
        if self._selector.pid is not None:
            return self._find_pid(self._selector.pid)
        matches = [
            process
            for process in self._psutil.process_iter(["name", "cmdline", "status", "create_time"])
            if process.pid != self._self_pid
            and process.info["status"] != self._psutil.STATUS_ZOMBIE
            and self._selector.matches(process.info["name"], process.info["cmdline"])
        ]
        roots = _roots(matches, self._psutil.NoSuchProcess)
        if not roots:
            raise ProcessNotFoundError(
                f"collectors.process: no running process matches {self._selector} "
                f"(modelmon's own pid {self._self_pid} excluded)"
            )
        return min(roots, key=lambda process: (process.info["create_time"] or 0.0, process.pid))

    def _find_pid(self, pid: int) -> Any:
        try:
            process = self._psutil.Process(pid)
            name = process.name() if self._selector.name else None
            cmdline = process.cmdline() if self._selector.cmdline else None
            selected = self._selector.matches(name, cmdline)
        except (self._psutil.NoSuchProcess, self._psutil.AccessDenied) as error:
            raise ProcessNotFoundError(f"collectors.process.pid: {pid}: {error}") from error
        if not selected:
            criteria = ProcessSelector(name=self._selector.name, cmdline=self._selector.cmdline)
            raise ProcessNotFoundError(f"collectors.process: pid {pid} does not match {criteria}")
        return process


def _roots(matches: list[Any], no_such_process: type[Exception]) -> list[Any]:
    """The matches that have no matching ancestor (and still exist)."""
    pids = {process.pid for process in matches}
    roots = []
    for process in matches:
        try:
            ancestors = process.parents()
        except no_such_process:
            continue
        if not any(ancestor.pid in pids for ancestor in ancestors):
            roots.append(process)
    return roots
