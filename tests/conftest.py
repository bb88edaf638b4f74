"""Shared fixtures: the repository root, reference profiles, running exporters, a fake clock.

- ``make_profile(rows, name=..., **roles)`` writes ``rows`` (a list of dicts) as a CSV,
  builds its profile with :func:`modelmon.profiling.builder.build_profile` exactly as
  ``modelmon profile`` does, saves it and returns both.
- ``exporter_factory(model={...}, **top_level)`` starts a :class:`modelmon.app.Exporter`
  on 127.0.0.1, port 0, with ``collectors: {gpu: false}``, serving one model
  ``credit-risk`` (version ``v1``, window ``5m``) over :func:`reference_rows`; the keyword
  arguments override the config. ``exporter`` is the default one, as its base URL.
- ``FakeClock`` is a settable clock to inject wherever modelmon takes ``clock=``.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from modelmon.app import Exporter
from modelmon.config import config_from_dict
from modelmon.profile import Profile
from modelmon.profiling.builder import Roles, build_profile

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL = "credit-risk"
VERSION = "v1"
COUNTRIES = ("DE", "FR", "ES")


class FakeClock:
    """A clock that stands still until told to move (Unix seconds)."""

    def __init__(self, start: float = 1_764_075_600.0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def set(self, now: float) -> None:
        self.now = float(now)


@dataclass(frozen=True)
class BuiltProfile:
    """A profile and the file it was saved to."""

    profile: Profile
    path: Path


@dataclass(frozen=True)
class RunningExporter:
    """A started exporter and where it listens."""

    url: str
    app: Exporter
    config_path: Path


def reference_rows(n: int = 300, seed: int = 3) -> list[dict[str, Any]]:
    """A small credit-risk style reference: age, income, country, prediction, score."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    income = np.round(rng.lognormal(10.5, 0.4, n), 2)
    country = rng.choice(COUNTRIES, n, p=[0.5, 0.3, 0.2])
    score = np.round(rng.random(n), 4)
    return [
        {
            "age": int(age[i]),
            "income": float(income[i]),
            "country": str(country[i]),
            "prediction": int(score[i] >= 0.5),
            "score": float(score[i]),
        }
        for i in range(n)
    ]


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Rows as CSV; floats are written with ``repr`` so they read back exactly."""
    names = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=names)
        writer.writeheader()
        writer.writerows(rows)
    return path


ProfileFactory = Callable[..., BuiltProfile]
ExporterFactory = Callable[..., RunningExporter]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def fake_clock() -> FakeClock:
    """A clock standing at 2025-11-25T13:00:00Z until the test moves it."""
    return FakeClock()


def _make_profile_in(directory: Path) -> ProfileFactory:
    def make(
        rows: list[dict[str, Any]],
        name: str = "reference",
        *,
        task: str | None = None,
        positive_class: str | None = None,
        **roles: Any,
    ) -> BuiltProfile:
        data = write_csv(directory / f"{name}.csv", rows)
        profile = build_profile(
            [str(data)],
            Roles(**roles),
            task=task,
            positive_class=positive_class,
            progress=lambda _message: None,
        )
        path = directory / f"{name}.profile.json"
        profile.save(path)
        return BuiltProfile(profile, path)

    return make


@pytest.fixture
def make_profile(tmp_path: Path) -> ProfileFactory:
    """Build (and save under tmp_path) a profile from rows, with ``Roles`` keywords."""
    return _make_profile_in(tmp_path)


def default_config(reference: Path) -> dict[str, Any]:
    """The config every exporter fixture starts from (before overrides)."""
    return {
        "listen": "127.0.0.1:0",
        "refresh_interval": "1h",  # tests refresh explicitly when they need gauges
        "collectors": {"gpu": False},
        "models": [
            {
                "name": MODEL,
                "version": VERSION,
                "reference": str(reference),
                "windows": ["5m"],
                "min_window_events": 10,
            }
        ],
    }


class ExporterPool:
    """Starts exporters in one directory and stops them all at the end."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[Exporter] = []
        self._reference: Path | None = None

    def reference(self) -> Path:
        if self._reference is None:
            built = _make_profile_in(self.directory)(
                reference_rows(), "credit-risk", prediction="prediction", score="score"
            )
            self._reference = built.path
        return self._reference

    def start(
        self,
        *,
        model: dict[str, Any] | None = None,
        clock: Callable[[], float] | None = None,
        reference: Path | None = None,
        **top_level: Any,
    ) -> RunningExporter:
        """Start an exporter; ``model`` overrides keys of the model, ``top_level`` of the
        config, ``reference`` replaces the default profile."""
        raw = default_config(reference.resolve() if reference else self.reference())
        raw["models"][0].update(model or {})
        raw.update(top_level)
        config_path = self.directory / f"modelmon-{len(self.started)}.yaml"
        config_path.write_text(yaml.safe_dump(raw), encoding="utf-8")
        config = config_from_dict(raw, self.directory)
        app = Exporter(config) if clock is None else Exporter(config, clock=clock)
        host, port = app.start()
        self.started.append(app)
        return RunningExporter(f"http://{host}:{port}", app, config_path)

    def stop_all(self) -> None:
        for app in self.started:
            app.stop()
        self.started.clear()


@pytest.fixture
def exporter_factory(tmp_path: Path) -> Iterator[ExporterFactory]:
    """Start exporters (config overrides as keywords); all are stopped after the test."""
    pool = ExporterPool(tmp_path)
    try:
        yield pool.start
    finally:
        pool.stop_all()


@pytest.fixture
def exporter(exporter_factory: ExporterFactory) -> str:
    """The base URL of a default exporter (model credit-risk, version v1, window 5m)."""
    return exporter_factory().url


@pytest.fixture(scope="module")
def module_exporters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExporterPool]:
    """An exporter pool shared by a module's tests (counters accumulate: use deltas)."""
    pool = ExporterPool(tmp_path_factory.mktemp("exporters"))
    try:
        yield pool
    finally:
        pool.stop_all()


class Samples(dict[tuple[str, frozenset[tuple[str, str]]], float]):
    """Samples of one exposition, keyed by (sample name, label set)."""

    def value(self, name: str, **labels: str) -> float:
        """The value of one series; 0.0 when absent (a counter that never moved)."""
        return self.get((name, frozenset(labels.items())), 0.0)

    def series(self, name: str) -> dict[frozenset[tuple[str, str]], float]:
        """Every series of one sample name."""
        return {labels: v for (n, labels), v in self.items() if n == name}


def parse_exposition(text: str) -> Samples:
    """Every sample of a Prometheus text exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    out = Samples()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = float(s.value)
    return out


def scrape_samples(url: str) -> Samples:
    """GET ``url``/metrics and parse it."""
    import requests

    response = requests.get(f"{url}/metrics", timeout=10)
    response.raise_for_status()
    return parse_exposition(response.text)


@pytest.fixture
def scrape() -> Callable[[str], Samples]:
    """``scrape(base_url)``: the exporter's current samples."""
    return scrape_samples
