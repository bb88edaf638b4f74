"""A real ``modelmon serve`` process for the tests of the JSONL source and the client.

The profile is made by ``modelmon profile`` on a small CSV and the exporter is started
as a user would start it, so these tests cross the real CLI, config and HTTP server.
"""

from __future__ import annotations

import contextlib
import csv
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import realbin
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

MODEL = "credit-risk"
VERSION = "v1"


def make_profile(directory: Path) -> Path:
    """``modelmon profile`` over 500 rows of age, income, country, prediction, score."""
    rng = np.random.default_rng(11)
    data = directory / "reference.csv"
    with data.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["age", "income", "country", "prediction", "score"])
        for _ in range(500):
            score = round(float(rng.random()), 4)
            writer.writerow(
                [
                    int(rng.integers(18, 80)),
                    round(float(rng.lognormal(10, 0.4)), 2),
                    rng.choice(["DE", "FR", "ES"]),
                    int(score >= 0.5),
                    score,
                ]
            )
    profile = directory / "credit-risk.profile.json"
    subprocess.run(
        [sys.executable, "-m", "modelmon", "profile", str(data), "--output", str(profile),
         "--prediction", "prediction", "--score", "score"],
        check=True, capture_output=True,
    )  # fmt: skip
    return profile


def write_config(directory: Path, port: int, profile: Path, **top_level: Any) -> Path:
    """A config serving one model on 127.0.0.1:``port``; ``top_level`` keys are added."""
    document = {
        "listen": f"127.0.0.1:{port}",
        "collectors": {"gpu": False},
        "models": [{"name": MODEL, "version": VERSION, "reference": str(profile),
                    "windows": ["5m"], "min_window_events": 10}],
        **top_level,
    }  # fmt: skip
    path = directory / "modelmon.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


@contextlib.contextmanager
def serving(config: Path, port: int, log_path: Path) -> Iterator[realbin.Process]:
    """``modelmon serve --config`` until the block ends (SIGTERM: a graceful stop)."""
    argv = [sys.executable, "-m", "modelmon", "serve", "--config", str(config)]
    with realbin.running(argv, log_path=log_path) as process:
        realbin.wait_http(f"http://127.0.0.1:{port}/readyz", 60, process=process)
        yield process


def sample(port: int, name: str, **labels: str) -> float:
    """One sample of the exporter's /metrics; 0.0 when the series is absent."""
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return 0.0
