"""Resource collectors of a training job: its own process tree and its GPUs."""

from __future__ import annotations

import logging
import os
from types import ModuleType
from typing import Any

import psutil

from modelmon.collectors.gpu import build_gpu_collector
from modelmon.collectors.health import Collector, CollectorSet
from modelmon.collectors.process import ProcessCollector, ProcessSelector

log = logging.getLogger(__name__)


def run_resources(
    *,
    process: bool = True,
    gpu: str | bool = "auto",
    nvml: ModuleType | Any | None = None,
    psutil_module: Any = psutil,
    pid: int | None = None,
) -> CollectorSet | None:
    """The run's collectors: this process and its children, and the GPUs (NVML).

    ``pid`` defaults to the calling process. ``gpu`` is the exporter's
    ``collectors.gpu`` mode (``auto``: only when NVML initializes). Per-process GPU
    memory is limited to the job's processes. Returns None when neither is wanted.
    """
    collectors: dict[str, Collector] = {}
    tree = None
    if process:
        own = os.getpid() if pid is None else pid
        tree = ProcessCollector(ProcessSelector(pid=own), psutil_module=psutil_module)
        collectors["process"] = tree
    device = build_gpu_collector(
        gpu, nvml=nvml, process_pids=tree.pids if tree is not None else None, logger=log
    )
    if device is not None:
        collectors["gpu"] = device
    return CollectorSet(collectors, logger=log) if collectors else None
