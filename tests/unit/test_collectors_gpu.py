"""The GPU collector against a fake NVML module, and against the real pynvml here.

The fake implements the NVML calls the collector uses and raises the real
``pynvml.NVMLError`` subclasses, so the error paths are the ones a driver produces.
Expected values are the fake's raw NVML figures converted by hand (percent / 100,
mW / 1000, mJ / 1000).
"""

# The fake mirrors pynvml's camelCase function names.
# ruff: noqa: N802

from __future__ import annotations

import ctypes
import logging
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pynvml
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelmon.catalogue import spec
from modelmon.collectors.gpu import GpuCollector, build_gpu_collector, parse_gpu_mode
from modelmon.collectors.health import CollectorSet

NOT_SUPPORTED = pynvml.NVML_ERROR_NOT_SUPPORTED
GPU_IS_LOST = pynvml.NVML_ERROR_GPU_IS_LOST
LIBRARY_NOT_FOUND = pynvml.NVML_ERROR_LIBRARY_NOT_FOUND


@dataclass
class FakeDevice:
    """Raw NVML figures of one device; ``errors`` maps an NVML function to an error code."""

    uuid: bytes | str
    name: bytes | str
    utilization_percent: int = 37
    memory_used: int = 3 * 2**30
    memory_total: int = 80 * 2**30
    temperature: int = 61
    power_milliwatts: int = 123_456
    energy_millijoules: int = 5_000_250
    compute: list[tuple[int, int | None]] = field(default_factory=list)  # (pid, bytes)
    graphics: list[tuple[int, int | None]] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)


class FakeNvml:
    """The part of the pynvml API the collector uses, over a list of FakeDevice."""

    NVMLError = pynvml.NVMLError
    NVML_ERROR_GPU_IS_LOST = GPU_IS_LOST
    NVML_TEMPERATURE_GPU = pynvml.NVML_TEMPERATURE_GPU

    def __init__(
        self,
        devices: list[FakeDevice],
        *,
        driver: bytes | str = b"550.54.15",
        init_error: int | None = None,
        errors: dict[str, int] | None = None,
    ) -> None:
        self.devices = devices
        self.driver = driver
        self.init_error = init_error
        self.errors = errors or {}  # system-level functions
        self.calls: Counter[str] = Counter()

    def _check(self, function: str, device: FakeDevice | None = None) -> None:
        self.calls[function] += 1
        code = (device.errors if device else self.errors).get(function)
        if code is not None:
            raise pynvml.NVMLError(code)

    def nvmlInit(self) -> None:
        self.calls["nvmlInit"] += 1
        if self.init_error is not None:
            raise pynvml.NVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        self.calls["nvmlShutdown"] += 1

    def nvmlSystemGetDriverVersion(self) -> bytes | str:
        self._check("nvmlSystemGetDriverVersion")
        return self.driver

    def nvmlDeviceGetCount(self) -> int:
        self._check("nvmlDeviceGetCount")
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeDevice:
        self._check("nvmlDeviceGetHandleByIndex", self.devices[index])
        return self.devices[index]

    def nvmlDeviceGetUUID(self, device: FakeDevice) -> bytes | str:
        self._check("nvmlDeviceGetUUID", device)
        return device.uuid

    def nvmlDeviceGetName(self, device: FakeDevice) -> bytes | str:
        self._check("nvmlDeviceGetName", device)
        return device.name

    def nvmlDeviceGetUtilizationRates(self, device: FakeDevice) -> Any:
        self._check("nvmlDeviceGetUtilizationRates", device)
        return SimpleNamespace(gpu=device.utilization_percent, memory=12)

    def nvmlDeviceGetMemoryInfo(self, device: FakeDevice) -> Any:
        self._check("nvmlDeviceGetMemoryInfo", device)
        free = device.memory_total - device.memory_used
        return SimpleNamespace(total=device.memory_total, used=device.memory_used, free=free)

    def nvmlDeviceGetTemperature(self, device: FakeDevice, sensor: int) -> int:
        self._check("nvmlDeviceGetTemperature", device)
        if sensor != pynvml.NVML_TEMPERATURE_GPU:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return device.temperature

    def nvmlDeviceGetPowerUsage(self, device: FakeDevice) -> int:
        self._check("nvmlDeviceGetPowerUsage", device)
        return device.power_milliwatts

    def nvmlDeviceGetTotalEnergyConsumption(self, device: FakeDevice) -> int:
        self._check("nvmlDeviceGetTotalEnergyConsumption", device)
        return device.energy_millijoules

    def nvmlDeviceGetComputeRunningProcesses(self, device: FakeDevice) -> list[Any]:
        self._check("nvmlDeviceGetComputeRunningProcesses", device)
        return [SimpleNamespace(pid=p, usedGpuMemory=m) for p, m in device.compute]

    def nvmlDeviceGetGraphicsRunningProcesses(self, device: FakeDevice) -> list[Any]:
        self._check("nvmlDeviceGetGraphicsRunningProcesses", device)
        return [SimpleNamespace(pid=p, usedGpuMemory=m) for p, m in device.graphics]


Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(collector_set: CollectorSet) -> tuple[Series, dict[str, Any]]:
    """Render through a fresh registry and parse back: (series -> value, families by name)."""
    registry = CollectorRegistry()
    registry.register(collector_set)
    text = generate_latest(registry).decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    series = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in families.values()
        for sample in family.samples
    }
    return series, families


def gpu_series(series: Series, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: value for (sample, labels), value in series.items() if sample == name}


def device_labels(index: str, uuid: str, **extra: str) -> frozenset[tuple[str, str]]:
    return frozenset({"gpu": index, "gpu_uuid": uuid, **extra}.items())


def two_devices() -> list[FakeDevice]:
    return [
        FakeDevice(
            uuid=b"GPU-aaaa",
            name=b"NVIDIA H100 80GB HBM3",
            compute=[(101, 2_000_000_000), (202, 500_000_000)],
            graphics=[(101, 2_000_000_000), (303, None)],
        ),
        FakeDevice(
            uuid="GPU-bbbb",
            name="NVIDIA A10",
            utilization_percent=100,
            memory_used=0,
            memory_total=24 * 2**30,
            temperature=35,
            power_milliwatts=60_000,
            energy_millijoules=7,
            compute=[(404, 1_000)],
        ),
    ]


def run(nvml: FakeNvml, **kwargs: Any) -> tuple[Series, dict[str, Any]]:
    return scrape(CollectorSet({"gpu": GpuCollector(nvml, **kwargs)}))


def test_every_field_of_every_device_is_exported_in_si_units() -> None:
    series, _ = run(FakeNvml(two_devices()))
    a, b = device_labels("0", "GPU-aaaa"), device_labels("1", "GPU-bbbb")
    assert gpu_series(series, "modelmon_gpu_utilization_ratio") == {a: 0.37, b: 1.0}
    assert gpu_series(series, "modelmon_gpu_memory_used_bytes") == {a: 3 * 2**30, b: 0.0}
    assert gpu_series(series, "modelmon_gpu_memory_total_bytes") == {a: 80 * 2**30, b: 24 * 2**30}
    assert gpu_series(series, "modelmon_gpu_temperature_celsius") == {a: 61.0, b: 35.0}
    assert gpu_series(series, "modelmon_gpu_power_watts") == {a: 123.456, b: 60.0}
    assert gpu_series(series, "modelmon_gpu_energy_joules_total") == {a: 5000.25, b: 0.007}
    assert gpu_series(series, "modelmon_gpu_info") == {
        device_labels("0", "GPU-aaaa", name="NVIDIA H100 80GB HBM3", driver_version="550.54.15"): 1,
        device_labels("1", "GPU-bbbb", name="NVIDIA A10", driver_version="550.54.15"): 1,
    }
    assert series[("modelmon_collector_success", frozenset({("collector", "gpu")}))] == 1.0


def test_families_carry_catalogue_types_and_help() -> None:
    _, families = run(FakeNvml(two_devices()))
    names = [name for name in families if name.startswith("modelmon_gpu_")]
    assert len(names) == 8
    for name in names:
        exposed = name + "_total" if families[name].type == "counter" else name
        assert families[name].documentation == spec(exposed).help
    assert families["modelmon_gpu_energy_joules"].type == "counter"


def test_process_memory_lists_every_process_without_a_filter() -> None:
    series, _ = run(FakeNvml(two_devices()))
    # pid 101 has a compute and a graphics context on one allocation: counted once;
    # pid 303's memory is not available (None) and gets no series.
    assert gpu_series(series, "modelmon_gpu_process_memory_used_bytes") == {
        device_labels("0", "GPU-aaaa", pid="101"): 2_000_000_000,
        device_labels("0", "GPU-aaaa", pid="202"): 500_000_000,
        device_labels("1", "GPU-bbbb", pid="404"): 1_000,
    }


def test_process_memory_is_limited_to_the_model_pids() -> None:
    series, _ = run(FakeNvml(two_devices()), process_pids=lambda: {202, 404, 999})
    assert gpu_series(series, "modelmon_gpu_process_memory_used_bytes") == {
        device_labels("0", "GPU-aaaa", pid="202"): 500_000_000,
        device_labels("1", "GPU-bbbb", pid="404"): 1_000,
    }


def test_no_model_process_on_the_gpu_leaves_the_process_family_out() -> None:
    series, families = run(FakeNvml(two_devices()), process_pids=set)
    assert not gpu_series(series, "modelmon_gpu_process_memory_used_bytes")
    assert "modelmon_gpu_process_memory_used_bytes" not in families
    assert len(gpu_series(series, "modelmon_gpu_power_watts")) == 2


DEVICE_FIELDS = {
    "nvmlDeviceGetUtilizationRates": ["modelmon_gpu_utilization_ratio"],
    "nvmlDeviceGetMemoryInfo": [
        "modelmon_gpu_memory_used_bytes",
        "modelmon_gpu_memory_total_bytes",
    ],
    "nvmlDeviceGetTemperature": ["modelmon_gpu_temperature_celsius"],
    "nvmlDeviceGetPowerUsage": ["modelmon_gpu_power_watts"],
    "nvmlDeviceGetTotalEnergyConsumption": ["modelmon_gpu_energy_joules_total"],
}
PER_DEVICE = [*DEVICE_FIELDS.values()]
ALL_DEVICE_SERIES = sorted({name for names in PER_DEVICE for name in names})


@pytest.mark.parametrize("function", sorted(DEVICE_FIELDS))
def test_an_unsupported_field_leaves_only_its_series_out(function: str) -> None:
    devices = two_devices()
    devices[0].errors[function] = NOT_SUPPORTED
    series, _ = run(FakeNvml(devices))
    a, b = device_labels("0", "GPU-aaaa"), device_labels("1", "GPU-bbbb")
    for name in ALL_DEVICE_SERIES:
        expected = {b} if name in DEVICE_FIELDS[function] else {a, b}
        assert set(gpu_series(series, name)) == expected, name
    assert len(gpu_series(series, "modelmon_gpu_info")) == 2
    assert series[("modelmon_collector_success", frozenset({("collector", "gpu")}))] == 1.0


@pytest.mark.parametrize(
    ("function", "label", "device"),
    [
        ("nvmlDeviceGetUUID", "gpu_uuid", 0),
        ("nvmlDeviceGetName", "name", 0),
        ("nvmlSystemGetDriverVersion", "driver_version", None),
    ],
)
def test_unknown_identity_text_is_labelled_unknown(
    function: str, label: str, device: int | None
) -> None:
    devices = two_devices()
    nvml = FakeNvml(devices)
    if device is None:
        nvml.errors[function] = NOT_SUPPORTED
    else:
        devices[device].errors[function] = NOT_SUPPORTED
    series, _ = run(nvml)
    info = gpu_series(series, "modelmon_gpu_info")
    values = sorted(dict(labels)[label] for labels in info)
    expected_unknown = 2 if device is None else 1
    assert values.count("unknown") == expected_unknown
    assert len(gpu_series(series, "modelmon_gpu_power_watts")) == 2


@pytest.mark.parametrize(
    "function", ["nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"]
)
def test_one_failing_process_list_keeps_the_other(function: str) -> None:
    devices = two_devices()
    devices[0].errors[function] = pynvml.NVML_ERROR_NO_PERMISSION
    series, _ = run(FakeNvml(devices))
    pids = {
        dict(labels)["pid"]
        for labels in gpu_series(series, "modelmon_gpu_process_memory_used_bytes")
    }
    # 101 is in both lists, 202 only in the compute list, 303 has no figure.
    expected = (
        {"101", "404"} if function.endswith("ComputeRunningProcesses") else {"101", "202", "404"}
    )
    assert pids == expected


@pytest.mark.parametrize(
    "function", ["nvmlDeviceGetHandleByIndex", "nvmlDeviceGetMemoryInfo", "nvmlDeviceGetUUID"]
)
def test_a_lost_gpu_is_skipped_and_the_others_exported(function: str) -> None:
    devices = two_devices()
    devices[0].errors[function] = GPU_IS_LOST
    series, _ = run(FakeNvml(devices))
    for name in [*ALL_DEVICE_SERIES, "modelmon_gpu_info", "modelmon_gpu_process_memory_used_bytes"]:
        indices = {dict(labels)["gpu"] for labels in gpu_series(series, name)}
        assert indices == {"1"}, name
    assert series[("modelmon_collector_success", frozenset({("collector", "gpu")}))] == 1.0


def test_a_lost_gpu_is_logged_once_and_its_return_too(caplog: pytest.LogCaptureFixture) -> None:
    devices = two_devices()
    devices[1].errors["nvmlDeviceGetPowerUsage"] = GPU_IS_LOST
    collector = GpuCollector(FakeNvml(devices))
    caplog.set_level(logging.INFO, logger="modelmon.collectors.gpu")
    for _ in range(3):
        list(collector.collect())
    lost = [r for r in caplog.records if "GPU 1 left out" in r.getMessage()]
    assert len(lost) == 1
    assert lost[0].levelno == logging.WARNING
    del devices[1].errors["nvmlDeviceGetPowerUsage"]
    families = {family.name: family for family in collector.collect()}
    assert len(families["modelmon_gpu_power_watts"].samples) == 2
    assert any("GPU 1 is back" in r.getMessage() for r in caplog.records)


def test_a_failing_device_count_fails_the_collector_only() -> None:
    nvml = FakeNvml(two_devices(), errors={"nvmlDeviceGetCount": pynvml.NVML_ERROR_UNKNOWN})
    ok = SimpleNamespace(collect=lambda: [])
    series, _ = scrape(CollectorSet({"gpu": GpuCollector(nvml), "other": ok}))
    assert series[("modelmon_collector_success", frozenset({("collector", "gpu")}))] == 0.0
    assert series[("modelmon_collector_success", frozenset({("collector", "other")}))] == 1.0
    assert not [name for name, _ in series if name.startswith("modelmon_gpu_")]


def test_no_devices_exports_no_gpu_series() -> None:
    series, _ = run(FakeNvml([]))
    assert not [name for name, _ in series if name.startswith("modelmon_gpu_")]
    assert series[("modelmon_collector_success", frozenset({("collector", "gpu")}))] == 1.0


def test_close_shuts_nvml_down_once() -> None:
    nvml = FakeNvml(two_devices())
    collector = GpuCollector(nvml)
    list(collector.collect())
    list(collector.collect())
    collector.close()
    collector.close()
    assert nvml.calls["nvmlInit"] == 1
    assert nvml.calls["nvmlShutdown"] == 1


# --- modes -------------------------------------------------------------------------------


def success_of_gpu(collector: GpuCollector) -> float:
    series, _ = scrape(CollectorSet({"gpu": collector}))
    return series[("modelmon_collector_success", frozenset({("collector", "gpu")}))]


def test_auto_gives_a_collector_when_nvml_initializes() -> None:
    nvml = FakeNvml(two_devices())
    collector = build_gpu_collector("auto", nvml=nvml)
    assert collector is not None
    assert nvml.calls["nvmlInit"] == 1
    assert success_of_gpu(collector) == 1.0
    assert nvml.calls["nvmlInit"] == 1  # not initialized again at scrape time


def test_auto_gives_none_when_nvml_cannot_initialize(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    nvml = FakeNvml(two_devices(), init_error=LIBRARY_NOT_FOUND)
    assert build_gpu_collector("auto", nvml=nvml) is None
    assert [r.levelno for r in caplog.records] == [logging.INFO]
    assert "NVML Shared Library Not Found" in caplog.records[0].getMessage()


def test_auto_gives_none_without_nvidia_ml_py(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` fail
    assert build_gpu_collector("auto") is None


@pytest.mark.parametrize("mode", [True, "true", "TRUE"])
def test_true_without_nvml_reports_failure_at_every_scrape(
    mode: str | bool, caplog: pytest.LogCaptureFixture
) -> None:
    nvml = FakeNvml(two_devices(), init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED)
    collector = build_gpu_collector(mode, nvml=nvml, logger=logging.getLogger("test.gpu"))
    assert collector is not None
    assert [r.levelno for r in caplog.records if r.name == "test.gpu"] == [logging.ERROR]
    collector_set = CollectorSet({"gpu": collector})
    for _ in range(2):
        series, _ = scrape(collector_set)
        assert series[("modelmon_collector_success", frozenset({("collector", "gpu")}))] == 0.0
        assert not [name for name, _ in series if name.startswith("modelmon_gpu_")]
    # The driver comes up later: the next scrape initializes and succeeds.
    nvml.init_error = None
    series, _ = scrape(collector_set)
    assert series[("modelmon_collector_success", frozenset({("collector", "gpu")}))] == 1.0
    assert len(gpu_series(series, "modelmon_gpu_info")) == 2
    assert nvml.calls["nvmlInit"] == 4


def test_true_without_nvidia_ml_py_reports_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    collector = build_gpu_collector("true")
    assert collector is not None
    assert success_of_gpu(collector) == 0.0


@pytest.mark.parametrize("mode", [False, "false", "False"])
def test_false_gives_none_without_touching_nvml(mode: str | bool) -> None:
    nvml = FakeNvml(two_devices())
    assert build_gpu_collector(mode, nvml=nvml) is None
    assert not nvml.calls


@pytest.mark.parametrize("mode", ["maybe", "", 1, None])
def test_an_unknown_mode_names_the_key_and_the_choices(mode: Any) -> None:
    with pytest.raises(ValueError, match=r"collectors\.gpu: .* is not one of auto, true, false"):
        build_gpu_collector(mode, nvml=FakeNvml([]))


def test_parse_gpu_mode_accepts_yaml_booleans() -> None:
    assert [parse_gpu_mode(m) for m in (True, False, "auto")] == ["true", "false", "auto"]


# --- the real pynvml module ----------------------------------------------------------------


def nvml_initializes_without_pynvml() -> bool:
    """Oracle independent of pynvml: can libnvidia-ml itself be loaded and initialized?"""
    try:
        library = ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    init: Callable[[], int] = library.nvmlInit_v2
    if init() != 0:
        return False
    library.nvmlShutdown()
    return True


def test_real_pynvml_auto_matches_the_machine() -> None:
    collector = build_gpu_collector("auto")
    if nvml_initializes_without_pynvml():
        assert collector is not None
        assert success_of_gpu(collector) == 1.0
        collector.close()
    else:
        assert collector is None


def test_real_pynvml_true_reports_success_as_the_machine_allows() -> None:
    collector = build_gpu_collector("true")
    assert collector is not None
    expected = 1.0 if nvml_initializes_without_pynvml() else 0.0
    assert success_of_gpu(collector) == expected
    assert success_of_gpu(collector) == expected
    collector.close()
