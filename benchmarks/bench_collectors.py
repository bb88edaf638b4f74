"""Cost of one scrape of the resource collectors.

The process collector reads a real process tree started here (a Python parent with
``--children`` sleeping children, all matching the command-line selector); the GPU
collector reads a fake NVML module with ``--gpus`` devices, each with two compute
processes, so what is measured is modelmon's own work per device (real NVML calls add
the driver's latency, typically tens of microseconds each). Each case is timed over
``--repeat`` collections after a warm-up and reported as median, p95 and p99 in
milliseconds, as Markdown.

    python benchmarks/bench_collectors.py
    python benchmarks/bench_collectors.py --gpus 8 --children 4 --repeat 2000
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from importlib.metadata import version
from types import SimpleNamespace
from typing import Any

import psutil
import pynvml
from prometheus_client import CollectorRegistry, generate_latest

from modelmon.collectors.gpu import GpuCollector
from modelmon.collectors.health import CollectorSet
from modelmon.collectors.process import ProcessCollector, ProcessSelector

# The parent starts its children and sleeps; the marker argument lets the selector find it.
TREE = """
import subprocess, sys, time
children = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)", sys.argv[1]])
            for _ in range(int(sys.argv[2]))]
print("ready", flush=True)
time.sleep(3600)
"""


class FakeNvml:
    """Every NVML call the collector makes succeeds instantly (camelCase as in pynvml)."""

    NVMLError = pynvml.NVMLError
    NVML_ERROR_GPU_IS_LOST = pynvml.NVML_ERROR_GPU_IS_LOST
    NVML_TEMPERATURE_GPU = pynvml.NVML_TEMPERATURE_GPU

    def __init__(self, gpus: int, pids: list[int]) -> None:
        self.gpus = gpus
        self.processes = [SimpleNamespace(pid=pid, usedGpuMemory=2**30) for pid in pids]

    def nvmlInit(self) -> None:  # noqa: N802
        pass

    def nvmlSystemGetDriverVersion(self) -> str:  # noqa: N802
        return "550.54.15"

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return self.gpus

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:  # noqa: N802
        return index

    def nvmlDeviceGetUUID(self, handle: int) -> str:  # noqa: N802
        return f"GPU-{handle:08x}-0000-0000-0000-000000000000"

    def nvmlDeviceGetName(self, handle: int) -> bytes:  # noqa: N802
        return b"NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:  # noqa: N802
        return SimpleNamespace(gpu=87, memory=40)

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> Any:  # noqa: N802
        return SimpleNamespace(used=60 * 2**30, total=80 * 2**30, free=20 * 2**30)

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:  # noqa: N802
        return 64

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:  # noqa: N802
        return 512_345

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:  # noqa: N802
        return 9_876_543_210

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[Any]:  # noqa: N802
        return self.processes

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: int) -> list[Any]:  # noqa: N802
        return []


def timings_ms(action: Callable[[], object], repeat: int) -> list[float]:
    for _ in range(min(repeat, 50)):
        action()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1e3)
    return samples


def row(case: str, samples: list[float]) -> str:
    cuts = statistics.quantiles(samples, n=100)
    return f"| {case} | {statistics.median(samples):.3f} | {cuts[94]:.3f} | {cuts[98]:.3f} |"


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--children", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()

    marker = f"modelmon-bench-{uuid.uuid4()}"
    tree = subprocess.Popen(
        [sys.executable, "-c", TREE, marker, str(args.children)], stdout=subprocess.PIPE
    )
    try:
        assert tree.stdout is not None
        assert tree.stdout.readline() == b"ready\n"
        process = ProcessCollector(ProcessSelector(cmdline=marker))
        pids = sorted(process.pids())
        gpu = GpuCollector(FakeNvml(args.gpus, pids[:2]))
        gpu_filtered = GpuCollector(FakeNvml(args.gpus, pids[:2]), process_pids=process.pids)
        both = CollectorSet({"process": process, "gpu": gpu})
        wired = CollectorSet({"process": process, "gpu": gpu_filtered})
        registry = CollectorRegistry()
        registry.register(wired)
        cases = [
            (f"process tree ({len(pids)} processes)", lambda: list(process.collect())),
            (f"GPU, fake NVML, {args.gpus} devices", lambda: list(gpu.collect())),
            ("both, via CollectorSet", lambda: list(both.collect())),
            ("both, GPU processes filtered to the model's pids", lambda: list(wired.collect())),
            ("the latter rendered (generate_latest)", lambda: generate_latest(registry)),
        ]
        rows = [row(case, timings_ms(action, args.repeat)) for case, action in cases]
    finally:
        for child in psutil.Process(tree.pid).children(recursive=True):
            child.kill()
        tree.kill()
        tree.wait()
        if tree.stdout is not None:
            tree.stdout.close()

    print(f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"- machine: {cpu_model()}, {os.cpu_count()} cores; {platform.platform()}")
    versions = f"psutil {version('psutil')}, prometheus_client {version('prometheus_client')}"
    print(f"- Python {platform.python_version()}, {versions}")
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"- load average (1, 5, 15 min) at the end: {load}")
    print(f"- processes on the machine: {len(psutil.pids())} (a tree scan reads them all)")
    print(f"- command: `python {shlex.join(sys.argv)}` (repeat {args.repeat})")
    print()
    print("| case | median ms | p95 ms | p99 ms |")
    print("|---|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
