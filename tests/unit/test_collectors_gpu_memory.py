"""GPU memory from NVML's version 2 query: ``used`` as nvidia-smi shows it, reserved apart.

The fake's version 2 answer follows the driver's arithmetic (total = reserved + used +
free); the version 1 answer counts reserved memory as used, which is the 615 MiB excess
measured on an H200 (issue 18).
"""

# ruff: noqa: N802, N815

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pynvml
from test_collectors_gpu import FakeDevice, FakeNvml, device_labels, gpu_series, run, scrape

from modelmon.collectors.gpu import GpuCollector
from modelmon.collectors.health import CollectorSet

RESERVED = 615 * 2**20


class FakeNvmlV2(FakeNvml):
    """A driver with ``nvmlDeviceGetMemoryInfo_v2``, optionally failing it."""

    nvmlMemory_v2 = pynvml.nvmlMemory_v2

    def __init__(self, devices: list[FakeDevice], *, v2_error: int | None = None) -> None:
        super().__init__(devices)
        self.v2_error = v2_error

    def nvmlDeviceGetMemoryInfo(self, device: FakeDevice, version: int | None = None) -> Any:
        if version is None:  # version 1: reserved memory is counted as used
            self.calls["v1"] += 1
            free = device.memory_total - device.memory_used - RESERVED
            return SimpleNamespace(
                total=device.memory_total, used=device.memory_used + RESERVED, free=free
            )
        self.calls["v2"] += 1
        assert version == pynvml.nvmlMemory_v2
        if self.v2_error is not None:
            raise pynvml.NVMLError(self.v2_error)
        free = device.memory_total - device.memory_used - RESERVED
        return SimpleNamespace(
            total=device.memory_total, reserved=RESERVED, used=device.memory_used, free=free
        )


def device() -> FakeDevice:
    return FakeDevice(uuid="GPU-h200", name="NVIDIA H200", memory_used=2**30)


def test_version_2_used_excludes_reserved_which_is_exported_apart() -> None:
    series, _ = run(FakeNvmlV2([device()]))
    labels = device_labels("0", "GPU-h200")
    assert gpu_series(series, "modelmon_gpu_memory_used_bytes") == {labels: float(2**30)}
    assert gpu_series(series, "modelmon_gpu_memory_reserved_bytes") == {labels: float(RESERVED)}


def test_a_driver_without_version_2_falls_back_to_version_1_once() -> None:
    nvml = FakeNvmlV2([device()], v2_error=pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)
    collectors = CollectorSet({"gpu": GpuCollector(nvml)})
    for _ in range(3):
        series, _ = scrape(collectors)
    labels = device_labels("0", "GPU-h200")
    assert gpu_series(series, "modelmon_gpu_memory_used_bytes") == {labels: float(2**30 + RESERVED)}
    assert gpu_series(series, "modelmon_gpu_memory_reserved_bytes") == {}
    assert (nvml.calls["v1"], nvml.calls["v2"]) == (3, 1)


def test_a_pynvml_without_the_version_argument_uses_version_1() -> None:
    nvml = FakeNvml([device()])
    nvml.nvmlMemory_v2 = pynvml.nvmlMemory_v2  # type: ignore[attr-defined]
    series, _ = run(nvml)
    labels = device_labels("0", "GPU-h200")
    assert gpu_series(series, "modelmon_gpu_memory_used_bytes") == {labels: float(2**30)}
    assert gpu_series(series, "modelmon_gpu_memory_reserved_bytes") == {}
