"""``modelmon demo``: a synthetic model, its reference profile and live traffic.

Everything lives in a temporary directory: a reference data set of a credit-risk style
binary classifier (a fixed logistic model of six features), its profile, a config, and
a running exporter. A traffic thread posts prediction records over HTTP, then posts
their labels a few seconds later. After ``drift_after`` seconds the inputs drift
(income falls, age rises, the country mix changes), so the drift gauges and then the
alerts move. Randomness comes from a seeded generator: every run sends the same data.
"""

from __future__ import annotations

import csv
import logging
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import requests

from modelmon.app import Exporter
from modelmon.config import config_from_dict
from modelmon.profiling.builder import Roles, build_profile

log = logging.getLogger(__name__)

COUNTRIES = ["DE", "FR", "ES", "IT", "NL", "PL"]
COUNTRY_SHARES = [0.30, 0.22, 0.16, 0.14, 0.10, 0.08]
DRIFTED_SHARES = [0.12, 0.12, 0.16, 0.14, 0.10, 0.36]
EMPLOYMENT = ["employed", "self-employed", "student", "retired"]
EMPLOYMENT_SHARES = [0.62, 0.16, 0.10, 0.12]
LABEL_DELAY_SECONDS = 5.0


def synthetic_rows(rng: np.random.Generator, n: int, drifted: bool = False) -> list[dict[str, Any]]:
    """``n`` applicants, their risk score, predicted class and true class."""
    age = rng.normal(48 if drifted else 40, 11, n).clip(18, 90).round()
    income = rng.lognormal(10.5 if drifted else 10.8, 0.5, n).round(2)
    credit = rng.normal(640, 70, n).clip(300, 850).round()
    debt = rng.beta(2, 5, n).round(4)
    country = rng.choice(COUNTRIES, n, p=DRIFTED_SHARES if drifted else COUNTRY_SHARES)
    employment = rng.choice(EMPLOYMENT, n, p=EMPLOYMENT_SHARES)
    logit = (
        -0.03 * (age - 40)
        - 1.1 * (np.log(income) - 10.8)
        - 0.012 * (credit - 640)
        + 4.0 * (debt - 0.28)
        + 0.8 * (employment == "student")
        - 1.0
    )
    score = 1.0 / (1.0 + np.exp(-logit))
    label = (rng.random(n) < score).astype(int)
    return [
        {
            "age": float(age[i]),
            "income": float(income[i]),
            "credit_score": float(credit[i]),
            "debt_ratio": float(debt[i]),
            "country": str(country[i]),
            "employment": str(employment[i]),
            "score": round(float(score[i]), 4),
            "prediction": int(score[i] >= 0.5),
            "label": int(label[i]),
        }
        for i in range(n)
    ]


def write_reference(directory: Path, rows: int = 5000, seed: int = 7) -> Path:
    rng = np.random.default_rng(seed)
    data = synthetic_rows(rng, rows)
    path = directory / "reference.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(data[0]))
        writer.writeheader()
        writer.writerows(data)
    return path


def demo_config(directory: Path, listen: str) -> dict[str, Any]:
    return {
        "listen": listen,
        "state_dir": str(directory / "state"),
        "refresh_interval": "1s",
        "models": [
            {
                "name": "credit-risk",
                "version": "v1",
                "reference": "credit-risk.profile.json",
                "windows": ["5m", "1h", "1d"],
                "min_window_events": 100,
                "labels": {"ttl": "1h"},
            }
        ],
    }


class Traffic:
    """Posts predictions (and, after a delay, their labels) to the demo exporter."""

    def __init__(
        self,
        url: str,
        rate: float,
        drift_after: float,
        seed: int = 11,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url.rstrip("/")
        self.rate = rate
        self.drift_after = drift_after
        self.rng = np.random.default_rng(seed)
        self.clock = clock
        self.session = requests.Session()
        self.stop_event = threading.Event()
        self.pending: deque[tuple[float, str, int]] = deque()
        self.sent = 0
        self.started = clock()
        self.drifting = False

    def run(self) -> None:
        tick = 0.5
        while not self.stop_event.wait(tick):
            elapsed = self.clock() - self.started
            if not self.drifting and elapsed >= self.drift_after:
                self.drifting = True
                log.warning("demo: input drift starts now (income down, age up, more PL)")
            n = max(1, int(self.rng.poisson(self.rate * tick)))
            try:
                self._post_predictions(n)
                self._post_due_labels()
            except requests.RequestException as exc:
                log.warning("demo traffic: %s", exc)

    def _post_predictions(self, n: int) -> None:
        rows = synthetic_rows(self.rng, n, drifted=self.drifting)
        now = self.clock()
        records = []
        for row in rows:
            self.sent += 1
            rid = f"demo-{self.sent}"
            features = {
                k: row[k]
                for k in ("age", "income", "credit_score", "debt_ratio", "country", "employment")
            }
            latency = float(self.rng.gamma(2.0, 0.004))
            records.append(
                {
                    "id": rid,
                    "timestamp": now,
                    "features": features,
                    "prediction": row["prediction"],
                    "score": row["score"],
                    "latency_seconds": round(latency, 5),
                }
            )
            label = row["label"]
            if self.drifting and self.rng.random() < 0.3:
                label = 1 - row["prediction"]  # the drifted population is harder to predict
            self.pending.append((now + LABEL_DELAY_SECONDS, rid, label))
        self.session.post(
            f"{self.url}/v1/models/credit-risk/predictions", json=records, timeout=10
        ).raise_for_status()

    def _post_due_labels(self) -> None:
        now = self.clock()
        due = []
        while self.pending and self.pending[0][0] <= now:
            _, rid, label = self.pending.popleft()
            due.append({"id": rid, "label": label, "timestamp": now})
        if due:
            self.session.post(f"{self.url}/v1/models/credit-risk/labels", json=due, timeout=10)


def run_demo(
    listen: str,
    duration: float | None,
    rate: float = 40.0,
    drift_after: float = 60.0,
    out: Callable[[str], None] = print,
) -> int:
    with tempfile.TemporaryDirectory(prefix="modelmon-demo-") as tmp:
        directory = Path(tmp)
        reference = write_reference(directory)
        roles = Roles(prediction="prediction", score="score", label="label")
        profile = build_profile([str(reference)], roles, progress=lambda _m: None)
        profile.save(directory / "credit-risk.profile.json")
        config = config_from_dict(demo_config(directory, listen), directory)
        exporter = Exporter(config)
        host, port = exporter.start()
        shown = "localhost" if host in ("0.0.0.0", "::") else host
        url = f"http://{shown}:{port}"
        traffic = Traffic(
            f"http://127.0.0.1:{port}" if host in ("0.0.0.0", "::") else url, rate, drift_after
        )
        thread = threading.Thread(target=traffic.run, name="modelmon-demo-traffic", daemon=True)
        thread.start()
        out(_banner(url, drift_after, duration))
        try:
            if duration is None:
                exporter.wait()
            else:
                time.sleep(duration)
        except KeyboardInterrupt:
            pass
        finally:
            traffic.stop_event.set()
            thread.join(timeout=5)
            exporter.stop()
        out(f"modelmon demo: stopped after sending {traffic.sent} predictions")
    return 0


def _banner(url: str, drift_after: float, duration: float | None) -> str:
    until = "Ctrl-C to stop" if duration is None else f"stops after {duration:g} s"
    return f"""modelmon demo: model "credit-risk" (binary classification), {until}.
  metrics:  {url}/metrics
  models:   {url}/v1/models
Traffic flows now; after {drift_after:g} s income falls, age rises and Poland's share grows.
Watch, for example:
  curl -s {url}/metrics | grep -E 'modelmon_drift_(wasserstein|detected)\\{{.*window="5m"'
  modelmon_drift_wasserstein{{column="income"}} climbs past 0.1 and modelmon_drift_detected
  turns 1 within a minute or two of the drift; modelmon_dataset_drift_detected follows.
"""
