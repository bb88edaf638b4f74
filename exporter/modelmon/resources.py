"""Resource collectors (model process, GPUs) chosen by the ``collectors`` config."""

from __future__ import annotations

import logging

from modelmon.collectors.gpu import build_gpu_collector
from modelmon.collectors.health import Collector
from modelmon.collectors.process import ProcessCollector, ProcessSelector
from modelmon.config import CollectorsConfig

log = logging.getLogger(__name__)


def resource_collectors(config: CollectorsConfig) -> dict[str, Collector]:
    """The opt-in collectors: ``process`` when configured, ``gpu`` by its mode."""
    out: dict[str, Collector] = {}
    process = None
    if config.process is not None:
        p = config.process
        process = ProcessCollector(ProcessSelector(pid=p.pid, name=p.name, cmdline=p.cmdline))
        out["process"] = process
    gpu = build_gpu_collector(
        config.gpu, process_pids=process.pids if process is not None else None, logger=log
    )
    if gpu is not None:
        out["gpu"] = gpu
    return out
