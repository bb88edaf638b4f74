"""What the benchmark scripts share: the machine description and a synthetic model.

The machine description goes at the top of every result, so a number is never read
without the hardware, software versions, date and exact command that produced it.

The synthetic model is a binary classifier with ``features`` numeric inputs of four
shapes (normal, log-normal, uniform, gamma), a score from a fixed logistic model, the
predicted class and a label. :func:`build_reference` writes its reference data and
builds the profile with the real ``modelmon profile`` code; :func:`prediction_records`
makes records as a model would send them (id, timestamp, features, prediction, score).
Randomness comes from seeded generators: every run sends the same data.

Scripts run as ``python benchmarks/bench_X.py`` import this module as ``common`` (the
script's folder is first on ``sys.path``).
"""

from __future__ import annotations

import datetime
import gc
import http.client
import importlib.metadata
import os
import platform
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modelmon.app import Exporter
from modelmon.config import config_from_dict
from modelmon.profiling.builder import Roles, build_profile

#: Decimals kept in feature values: what a model's JSON encoder typically writes.
DECIMALS = 4


# --- the machine ----------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name from ``lscpu`` (``platform.processor()`` without it)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def memory_total_gib() -> float:
    """Physical memory in GiB, from ``/proc/meminfo`` (0.0 where it cannot be read)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_description(extra: dict[str, str] | None = None) -> str:
    """Markdown bullets: date, CPU, cores, memory, OS, versions and the exact command."""
    now = datetime.datetime.now(datetime.timezone.utc)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        f"- date: {now:%Y-%m-%d %H:%M} UTC",
        f"- machine: {cpu_model()}, {os.cpu_count()} cores, {memory_total_gib():.1f} GiB memory",
        f"- system: {platform.platform()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), "
        f"numpy {_version('numpy')}, prometheus-client {_version('prometheus-client')}, "
        f"orjson {_version('orjson')}",
        f"- load average (1, 5, 15 min) before the run: {load}",
        f"- command: `python {shlex.join(sys.argv)}`",
    ]
    lines += [f"- {key}: {value}" for key, value in (extra or {}).items()]
    return "\n".join(lines)


def rss_bytes() -> int:
    """Resident memory of this process after a full garbage collection (VmRSS)."""
    gc.collect()
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/self/status: no VmRSS line")


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``samples``, linear interpolation."""
    return float(np.percentile(np.asarray(samples), q))


# --- the synthetic model --------------------------------------------------------------


def feature_names(features: int) -> list[str]:
    return [f"f{i:02d}" for i in range(features)]


def _feature_matrix(rng: np.random.Generator, rows: int, features: int) -> np.ndarray:
    """``rows`` x ``features`` values; column i has shape i % 4 and its own scale."""
    out = np.empty((rows, features))
    for i in range(features):
        shape, scale = i % 4, 1.0 + i
        if shape == 0:
            out[:, i] = rng.normal(50.0 * scale, 10.0 * scale, rows)
        elif shape == 1:
            out[:, i] = rng.lognormal(np.log(1000.0 * scale), 0.5, rows)
        elif shape == 2:
            out[:, i] = rng.uniform(0.0, scale, rows)
        else:
            out[:, i] = rng.gamma(2.0, 3.0 * scale, rows)
    return np.round(out, DECIMALS)


def _scores(values: np.ndarray) -> np.ndarray:
    """A fixed logistic model of the standardized features."""
    z = (values - values.mean(axis=0)) / values.std(axis=0)
    weights = np.linspace(-1.0, 1.0, values.shape[1])
    scores: np.ndarray = np.round(1.0 / (1.0 + np.exp(-(z @ weights) / 2.0)), DECIMALS)
    return scores


def write_reference(directory: Path, features: int, rows: int = 10_000, seed: int = 7) -> Path:
    """A CSV of reference data: the features, prediction, score and label."""
    rng = np.random.default_rng(seed)
    values = _feature_matrix(rng, rows, features)
    score = _scores(values)
    prediction = (score >= 0.5).astype(int)
    label = (rng.random(rows) < score).astype(int)
    path = directory / f"reference-{features}.csv"
    with path.open("w", encoding="utf-8") as handle:
        handle.write(",".join([*feature_names(features), "prediction", "score", "label"]) + "\n")
        for i in range(rows):
            cells = [repr(float(v)) for v in values[i]]
            handle.write(
                ",".join([*cells, str(prediction[i]), repr(float(score[i])), str(label[i])])
            )
            handle.write("\n")
    return path


def build_reference(directory: Path, features: int, rows: int = 10_000) -> Path:
    """Write the reference data and its profile; returns the profile's path."""
    data = write_reference(directory, features, rows)
    roles = Roles(prediction="prediction", score="score", label="label")
    profile = build_profile([str(data)], roles, progress=lambda _message: None)
    path = directory / f"model-{features}.profile.json"
    profile.save(path)
    return path


def prediction_records(
    rng: np.random.Generator, n: int, features: int, timestamp: float, first_id: int = 0
) -> list[dict[str, Any]]:
    """``n`` prediction records from the reference distribution, all at ``timestamp``."""
    values = _feature_matrix(rng, n, features)
    score = _scores(values)
    names = feature_names(features)
    return [
        {
            "id": f"req-{first_id + i:09d}",
            "timestamp": timestamp,
            "features": dict(zip(names, values[i].tolist(), strict=True)),
            "prediction": int(score[i] >= 0.5),
            "score": float(score[i]),
        }
        for i in range(n)
    ]


def model_entry(name: str, profile: Path, windows: list[str] | None = None) -> dict[str, Any]:
    """One ``models`` entry of the config, as a parsed YAML document would hold it."""
    return {
        "name": name,
        "version": "v1",
        "reference": str(profile),
        "windows": windows or ["5m", "1h", "1d"],
        "min_window_events": 100,
    }


def config_document(
    models: list[dict[str, Any]], refresh_interval: str = "2s", listen: str = "127.0.0.1:0"
) -> dict[str, Any]:
    """A whole config document; the resource collectors are off (not measured here)."""
    return {
        "listen": listen,
        "refresh_interval": refresh_interval,
        "collectors": {"gpu": False},
        "models": models,
    }


class FakeClock:
    """A clock that moves only when told: simulated days pass in seconds."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_exporter(
    directory: Path,
    models: int,
    features: int,
    windows: list[str] | None = None,
    clock: Callable[[], float] | None = None,
    refresh_interval: str = "1h",
    reference_rows: int = 10_000,
) -> Exporter:
    """An exporter (not started) of ``models`` copies of the synthetic model."""
    profile = build_reference(directory, features, reference_rows)
    entries = [model_entry(f"model-{m}", profile, windows) for m in range(models)]
    config = config_from_dict(config_document(entries, refresh_interval), directory)
    if clock is None:
        return Exporter(config)
    return Exporter(config, clock=clock)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_serve(
    config: Path, port: int, log: Path, timeout: float = 30.0
) -> subprocess.Popen[bytes]:
    """``modelmon serve --config config`` in its own process (output to ``log``), once it
    answers ``/readyz`` on ``port``."""
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "modelmon", "serve", "--config", str(config)],
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"modelmon serve exited: {log.read_text(errors='replace')}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/readyz")
            ready = conn.getresponse().status == 200
            conn.close()
            if ready:
                return process
        except OSError:
            pass
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"modelmon serve did not become ready within {timeout:g} s")
