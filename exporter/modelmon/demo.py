"""``modelmon demo``: a synthetic model, its reference profile and live traffic.

Everything lives in a temporary directory: reference data sets of two models, their
profiles, a config, and a running exporter. ``credit-risk`` is a binary classifier (a
fixed logistic model of six features) with a canary version ``v2`` taking a fifth of the
traffic; ``house-price`` is a regression model. A traffic thread posts prediction
records over HTTP (now and then an unusable one, which is rejected and counted), then
their labels a few seconds later. After ``drift_after`` seconds the inputs drift (income
falls, age rises, the country mix changes, houses get bigger), so the drift gauges and
then the alerts move. The demo process itself plays the model process for the resource
gauges. Randomness comes from a seeded generator: every run sends the same data.
"""

from __future__ import annotations

import csv
import logging
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import requests

from modelmon.app import Exporter, tune_garbage_collector
from modelmon.config import config_from_dict
from modelmon.profiling.builder import Roles, build_profile

log = logging.getLogger(__name__)

NEIGHBOURHOODS = ["centre", "north", "south", "harbour"]
COUNTRIES = ["DE", "FR", "ES", "IT", "NL", "PL"]
COUNTRY_SHARES = [0.30, 0.22, 0.16, 0.14, 0.10, 0.08]
DRIFTED_SHARES = [0.12, 0.12, 0.16, 0.14, 0.10, 0.36]
EMPLOYMENT = ["employed", "self-employed", "student", "retired"]
EMPLOYMENT_SHARES = [0.62, 0.16, 0.10, 0.12]
LABEL_DELAY_SECONDS = 5.0
CREDIT_FEATURES = ("age", "income", "credit_score", "debt_ratio", "country", "employment")


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


def house_rows(rng: np.random.Generator, n: int, drifted: bool = False) -> list[dict[str, Any]]:
    """``n`` houses of a regression model: features, predicted price and true price."""
    area = rng.normal(120 if drifted else 95, 30, n).clip(25, 400).round(1)
    rooms = np.clip(np.round(area / 30 + rng.normal(0, 0.7, n)), 1, 10)
    hood = rng.choice(NEIGHBOURHOODS, n, p=[0.25, 0.3, 0.3, 0.15])
    premium = np.select([hood == "centre", hood == "harbour"], [1.3, 1.15], 1.0)
    price = 2500 * area * premium + 8000 * rooms
    actual = price * rng.lognormal(0, 0.12, n)
    return [
        {
            "area": float(area[i]),
            "rooms": int(rooms[i]),
            "neighbourhood": str(hood[i]),
            "prediction": round(float(price[i]), 2),
            "label": round(float(actual[i]), 2),
        }
        for i in range(n)
    ]


def _write_csv(path: Path, data: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(data[0]))
        writer.writeheader()
        writer.writerows(data)
    return path


def write_references(directory: Path) -> None:
    """The two demo models' reference data and profiles, written into ``directory``."""
    rng = np.random.default_rng(7)
    credit = _write_csv(directory / "credit-risk.csv", synthetic_rows(rng, 5000))
    roles = Roles(prediction="prediction", score="score", label="label")
    profile = build_profile([str(credit)], roles, progress=lambda _m: None)
    profile.save(directory / "credit-risk.profile.json")
    houses = _write_csv(directory / "house-price.csv", house_rows(rng, 3000))
    roles = Roles(prediction="prediction", label="label")
    profile = build_profile([str(houses)], roles, task="regression", progress=lambda _m: None)
    profile.save(directory / "house-price.profile.json")


def demo_config(directory: Path, listen: str, process_pid: int | None = None) -> dict[str, Any]:
    """The demo's config: both models, and this process as the model process."""
    model = {"windows": ["5m", "1h", "1d"], "min_window_events": 100, "labels": {"ttl": "1h"}}
    return {
        "listen": listen,
        "state_dir": str(directory / "state"),
        "refresh_interval": "1s",
        "models": [
            {
                "name": "credit-risk",
                "version": "v1",
                "reference": "credit-risk.profile.json",
                **model,
            },
            {
                "name": "house-price",
                "version": "v1",
                "reference": "house-price.profile.json",
                **model,
            },
        ],
        "collectors": {"process": {"pid": process_pid or os.getpid()}, "gpu": "auto"},
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
        self.pending: deque[tuple[float, str, str, float]] = deque()
        self.sent = 0
        self.batches = 0
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
                now = self.clock()
                self._post_credit(n, now)
                self._post_houses(max(1, n // 4), now)
                self._post_due_labels()
            except requests.RequestException as exc:
                log.warning("demo traffic: %s", exc)

    def _post_credit(self, n: int, now: float) -> None:
        records: list[dict[str, Any]] = []
        for row in synthetic_rows(self.rng, n, drifted=self.drifting):
            self.sent += 1
            rid = f"credit-{self.sent}"
            features = {k: row[k] for k in CREDIT_FEATURES}
            latency = float(self.rng.gamma(2.0, 0.004))
            # One prediction in five comes from the canary version v2.
            version = "v2" if self.rng.random() < 0.2 else "v1"
            records.append(
                {
                    "id": rid,
                    "timestamp": now,
                    "version": version,
                    "features": features,
                    "prediction": row["prediction"],
                    "score": row["score"],
                    "latency_seconds": round(latency, 5),
                }
            )
            label = row["label"]
            if self.drifting and self.rng.random() < 0.3:
                label = 1 - row["prediction"]  # the drifted population is harder to predict
            self.pending.append((now + LABEL_DELAY_SECONDS, "credit-risk", rid, label))
        self.batches += 1
        if self.batches % 20 == 1:
            # Now and then a client sends something unusable: rejected and counted.
            records.append({"id": f"bad-{self.sent}", "prediction": 1})
        self._post("credit-risk", "predictions", records)

    def _post_houses(self, n: int, now: float) -> None:
        records = []
        for row in house_rows(self.rng, n, drifted=self.drifting):
            self.sent += 1
            rid = f"house-{self.sent}"
            features = {k: row[k] for k in ("area", "rooms", "neighbourhood")}
            records.append(
                {"id": rid, "timestamp": now, "features": features, "prediction": row["prediction"]}
            )
            self.pending.append((now + LABEL_DELAY_SECONDS, "house-price", rid, row["label"]))
        self._post("house-price", "predictions", records)

    def _post_due_labels(self) -> None:
        now = self.clock()
        due: dict[str, list[dict[str, Any]]] = {}
        while self.pending and self.pending[0][0] <= now:
            _, model, rid, label = self.pending.popleft()
            due.setdefault(model, []).append({"id": rid, "label": label, "timestamp": now})
        for model, labels in due.items():
            self._post(model, "labels", labels)

    def _post(self, model: str, kind: str, records: list[dict[str, Any]]) -> None:
        response = self.session.post(
            f"{self.url}/v1/models/{model}/{kind}", json=records, timeout=10
        )
        response.raise_for_status()


def run_demo(
    listen: str,
    duration: float | None,
    rate: float = 40.0,
    drift_after: float = 60.0,
    out: Callable[[str], None] = print,
) -> int:
    with tempfile.TemporaryDirectory(prefix="modelmon-demo-") as tmp:
        directory = Path(tmp)
        write_references(directory)
        config = config_from_dict(demo_config(directory, listen), directory)
        exporter = Exporter(config)
        tune_garbage_collector()
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
    return f"""modelmon demo: models "credit-risk" (binary, versions v1 and canary v2) and
"house-price" (regression), {until}.
  metrics:  {url}/metrics
  models:   {url}/v1/models
Traffic flows now; after {drift_after:g} s income falls, age rises, Poland's share grows
and houses get bigger.
Watch, for example:
  curl -s {url}/metrics | grep -E 'modelmon_drift_(wasserstein|detected)\\{{.*window="5m"'
  modelmon_drift_wasserstein{{column="income"}} climbs past 0.1 and modelmon_drift_detected
  turns 1 within a minute or two of the drift; modelmon_dataset_drift_detected follows.
"""
