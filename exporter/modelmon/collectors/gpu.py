"""GPU gauges from NVML (the ``pynvml`` module of nvidia-ml-py, extra ``modelmon[gpu]``).

Every scrape reads each device by index. One NVML call that fails (a field the device
does not support, a permission) leaves that series out and the device's other series
in; a device that is lost (``NVML_ERROR_GPU_IS_LOST``) or whose handle cannot be had is
left out whole, and logged once until it comes back. Name, UUID and driver version are
``unknown`` when NVML cannot tell them. Text comes back as ``bytes`` from older pynvml
releases and as ``str`` from newer ones; both are accepted.

The NVML module is a constructor argument so tests pass a fake one; by default
``pynvml`` is imported on first use, so modelmon runs without it when GPUs are off.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TypeVar

from prometheus_client.metrics_core import Metric

from modelmon.collectors import new_family

T = TypeVar("T")
UNKNOWN = "unknown"
GPU_MODES = ("auto", "true", "false")


@dataclass
class DeviceReading:
    """One device's values at one scrape; None where NVML could not tell."""

    index: int
    uuid: str = UNKNOWN
    name: str = UNKNOWN
    utilization_ratio: float | None = None
    memory_used_bytes: float | None = None
    memory_total_bytes: float | None = None
    memory_reserved_bytes: float | None = None
    temperature_celsius: float | None = None
    power_watts: float | None = None
    energy_joules: float | None = None
    process_memory_bytes: dict[int, float] = field(default_factory=dict)  # pid -> bytes


class _DeviceUnavailableError(Exception):
    """The device cannot be read this scrape (lost, or no handle)."""


# Series per device: catalogue name, and the reading's value for it.
_DEVICE_SERIES: tuple[tuple[str, Callable[[DeviceReading], float | None]], ...] = (
    ("modelmon_gpu_utilization_ratio", lambda r: r.utilization_ratio),
    ("modelmon_gpu_memory_used_bytes", lambda r: r.memory_used_bytes),
    ("modelmon_gpu_memory_total_bytes", lambda r: r.memory_total_bytes),
    ("modelmon_gpu_memory_reserved_bytes", lambda r: r.memory_reserved_bytes),
    ("modelmon_gpu_temperature_celsius", lambda r: r.temperature_celsius),
    ("modelmon_gpu_power_watts", lambda r: r.power_watts),
    ("modelmon_gpu_energy_joules_total", lambda r: r.energy_joules),
)


class GpuCollector:
    """``modelmon_gpu_*`` for every device NVML sees.

    ``process_pids`` returns the model's pids (see
    :meth:`~modelmon.collectors.process.ProcessCollector.pids`); per-process GPU memory
    is then limited to them, else every process on the GPU gets a series.
    ``collect()`` initializes NVML when that has not succeeded yet, and raises when it
    cannot, so the collector reports success 0 until the driver is there.
    """

    def __init__(
        self,
        nvml: ModuleType | Any | None = None,
        *,
        process_pids: Callable[[], set[int]] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self._nvml: Any = nvml  # None until pynvml is imported
        self._process_pids = process_pids
        self._logger = logger if logger is not None else logging.getLogger(__name__)
        self._initialized = False
        self._init_lock = threading.Lock()
        self._unavailable: dict[int, str] = {}  # device index -> reason last logged
        self._memory_v1_only = False  # set once the version 2 memory query is unavailable

    def initialize(self) -> None:
        """Import pynvml if no module was given and call ``nvmlInit`` (once it succeeds)."""
        with self._init_lock:  # concurrent scrapes must not initialize twice
            if self._initialized:
                return
            if self._nvml is None:
                import pynvml  # optional dependency, imported only when GPUs are monitored

                self._nvml = pynvml
            self._nvml.nvmlInit()
            self._initialized = True

    def close(self) -> None:
        """Release NVML (``nvmlShutdown``) if this collector initialized it."""
        with self._init_lock:
            if self._initialized:
                self._initialized = False
                self._nvml.nvmlShutdown()

    def collect(self) -> Iterator[Metric]:
        self.initialize()
        wanted = self._process_pids() if self._process_pids is not None else None
        driver = _text(self._field(self._nvml.nvmlSystemGetDriverVersion), UNKNOWN)
        readings = [
            reading
            for index in range(self._nvml.nvmlDeviceGetCount())
            if (reading := self._read_or_skip(index, wanted)) is not None
        ]
        yield from _families(readings, driver)

    def _read_or_skip(self, index: int, wanted: set[int] | None) -> DeviceReading | None:
        try:
            reading = self._read_device(index, wanted)
        except _DeviceUnavailableError as error:
            if self._unavailable.get(index) != str(error):
                self._unavailable[index] = str(error)
                self._logger.warning("GPU %d left out of the scrape: %s", index, error)
            return None
        if self._unavailable.pop(index, None) is not None:
            self._logger.info("GPU %d is back", index)
        return reading

    def _read_device(self, index: int, wanted: set[int] | None) -> DeviceReading:
        nvml = self._nvml
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
        except nvml.NVMLError as error:
            raise _DeviceUnavailableError(f"no handle: {error}") from error
        reading = DeviceReading(index)
        reading.uuid = _text(self._field(nvml.nvmlDeviceGetUUID, handle), UNKNOWN)
        reading.name = _text(self._field(nvml.nvmlDeviceGetName, handle), UNKNOWN)
        rates = self._field(nvml.nvmlDeviceGetUtilizationRates, handle)
        reading.utilization_ratio = None if rates is None else rates.gpu / 100.0
        memory = self._memory(handle)
        if memory is not None:
            reading.memory_used_bytes = float(memory.used)
            reading.memory_total_bytes = float(memory.total)
            reserved = getattr(memory, "reserved", None)  # v2 only
            reading.memory_reserved_bytes = None if reserved is None else float(reserved)
        temperature = self._field(nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU)
        reading.temperature_celsius = _scaled(temperature, 1.0)
        reading.power_watts = _scaled(self._field(nvml.nvmlDeviceGetPowerUsage, handle), 1e-3)
        energy = self._field(nvml.nvmlDeviceGetTotalEnergyConsumption, handle)
        reading.energy_joules = _scaled(energy, 1e-3)
        reading.process_memory_bytes = self._process_memory(handle, wanted)
        return reading

    def _memory(self, handle: Any) -> Any:
        """Memory info, version 2 where pynvml and the driver have it, else version 1.

        Version 1 counts the memory the driver reserves for itself as used (measured on
        an H200: 615 MiB more than ``nvidia-smi`` shows); version 2 reports it apart, as
        ``reserved``, and ``used`` then matches ``nvidia-smi``.
        """
        nvml = self._nvml
        version = getattr(nvml, "nvmlMemory_v2", None)
        if version is not None and not self._memory_v1_only:
            try:
                memory = self._field(
                    lambda h: nvml.nvmlDeviceGetMemoryInfo(h, version=version), handle
                )
            except TypeError:  # a pynvml without the version argument
                memory = None
            if memory is not None:
                return memory
            # The driver lacks it (or refused it): version 1 from now on, logged once.
            self._memory_v1_only = True
            self._logger.info("NVML memory info version 2 unavailable: used includes reserved")
        return self._field(nvml.nvmlDeviceGetMemoryInfo, handle)

    def _process_memory(self, handle: Any, wanted: set[int] | None) -> dict[int, float]:
        """GPU memory per pid from the compute and graphics process lists.

        A process with both kinds of context is listed twice with its one allocation,
        so the larger figure is kept rather than the sum.
        """
        used: dict[int, float] = {}
        for list_processes in (
            self._nvml.nvmlDeviceGetComputeRunningProcesses,
            self._nvml.nvmlDeviceGetGraphicsRunningProcesses,
        ):
            for process in self._field(list_processes, handle) or ():
                memory = getattr(process, "usedGpuMemory", None)  # None: not available
                if memory is None or (wanted is not None and process.pid not in wanted):
                    continue
                used[process.pid] = max(used.get(process.pid, 0.0), float(memory))
        return used

    def _field(self, read: Callable[..., T], *args: Any) -> T | None:
        """``read(*args)``, or None when NVML cannot tell; a lost GPU skips the device."""
        try:
            return read(*args)
        except self._nvml.NVMLError as error:
            if getattr(error, "value", None) == self._nvml.NVML_ERROR_GPU_IS_LOST:
                raise _DeviceUnavailableError(f"GPU is lost: {error}") from error
            return None


def _families(readings: list[DeviceReading], driver: str) -> Iterator[Metric]:
    """The metric families of the readings; families without samples are left out."""
    families = []
    for name, value_of in _DEVICE_SERIES:
        family = new_family(name)
        for reading in readings:
            value = value_of(reading)
            if value is not None:
                family.add_metric([str(reading.index), reading.uuid], value)
        families.append(family)
    processes = new_family("modelmon_gpu_process_memory_used_bytes")
    info = new_family("modelmon_gpu_info")
    for reading in readings:
        device = [str(reading.index), reading.uuid]
        for pid, memory in sorted(reading.process_memory_bytes.items()):
            processes.add_metric([*device, str(pid)], memory)
        info.add_metric([*device, reading.name, driver], 1.0)
    families += [processes, info]
    return (family for family in families if family.samples)


def _text(value: bytes | str | None, default: str) -> str:
    """NVML text as str: older pynvml returns bytes."""
    if value is None:
        return default
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _scaled(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def parse_gpu_mode(mode: str | bool) -> str:
    """Config ``collectors.gpu`` as one of ``auto``, ``true``, ``false``.

    >>> parse_gpu_mode(True), parse_gpu_mode("Auto")
    ('true', 'auto')
    """
    text = str(mode).lower() if isinstance(mode, (bool, str)) else None
    if text not in GPU_MODES:
        raise ValueError(f"collectors.gpu: {mode!r} is not one of {', '.join(GPU_MODES)}")
    return text


def build_gpu_collector(
    mode: str | bool,
    *,
    nvml: ModuleType | Any | None = None,
    process_pids: Callable[[], set[int]] | None = None,
    logger: logging.Logger | None = None,
) -> GpuCollector | None:
    """The GPU collector that config ``collectors.gpu`` asks for.

    ``auto``: a collector only when NVML initializes, else None (logged at info).
    ``true``: always a collector; when NVML cannot initialize this logs an error and the
    collector raises at every scrape (``modelmon_collector_success{collector="gpu"} 0``)
    while the rest of the exporter serves. ``false``: None.
    """
    log = logger if logger is not None else logging.getLogger(__name__)
    choice = parse_gpu_mode(mode)
    if choice == "false":
        return None
    collector = GpuCollector(nvml, process_pids=process_pids, logger=log)
    try:
        collector.initialize()
    except Exception as error:  # ImportError without nvidia-ml-py, NVMLError without driver
        reason = f"{type(error).__name__}: {error}"
        if choice == "auto":
            log.info("collectors.gpu is auto and NVML is not available (%s): no GPU gauges", reason)
            return None
        log.error(
            "collectors.gpu is true but NVML cannot initialize (%s): install modelmon[gpu] "
            "and the NVIDIA driver; the gpu collector reports success 0 until then",
            reason,
        )
    return collector
