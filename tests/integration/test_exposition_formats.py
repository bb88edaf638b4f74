"""/metrics in both formats: the per-scrape counters and the statistics rendered at the
last refresh must make one valid exposition (each family once, OpenMetrics ending in
``# EOF``)."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
import requests
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from modelmon.catalogue import CATALOGUE

pytestmark = pytest.mark.integration


def feed(running: Any) -> None:
    records = [
        {
            "features": {"age": 20 + i % 50, "income": 1000.0 * i, "country": "DE"},
            "prediction": i % 2,
            "score": (i % 10) / 10,
        }
        for i in range(200)
    ]
    response = requests.post(
        f"{running.url}/v1/models/credit-risk/predictions", json=records, timeout=10
    )
    assert response.json()["accepted"] == 200
    running.app.refresher.refresh()


def test_openmetrics_and_text_expositions_parse_with_each_family_once(
    exporter_factory: Any,
) -> None:
    running = exporter_factory()
    feed(running)
    om = requests.get(
        f"{running.url}/metrics",
        timeout=10,
        headers={"Accept": "application/openmetrics-text; version=1.0.0"},
    )
    assert om.headers["Content-Type"].startswith("application/openmetrics-text")
    assert om.text.endswith("# EOF\n")
    assert om.text.count("# EOF") == 1
    om_names = [f.name for f in parse_openmetrics(om.text)]
    text = requests.get(f"{running.url}/metrics", timeout=10).text
    text_names = [f.name for f in parse_text(text)]
    for names in (om_names, text_names):
        assert len(names) == len(set(names))
        assert {"modelmon_events", "modelmon_drift_psi", "modelmon_reference_bin_ratio"} <= set(
            names
        )


def test_help_texts_need_no_format_specific_escaping() -> None:
    """The refresh-time renderer writes HELP once for both formats: that is only right
    while no HELP text holds a backslash, a quote or a newline."""
    for spec in CATALOGUE:
        assert not set(spec.help) & {"\\", '"', "\n"}, spec.name


def test_the_fast_renderer_writes_what_prometheus_client_writes(
    exporter_factory: Any, make_profile: Any
) -> None:
    """Every family the exporter has (counters, gauges, latency and label-delay
    histograms, regression error summaries, the process collector's gauges), byte for
    byte as prometheus_client's own encoders render it, in both formats."""
    from prometheus_client import exposition as text_format
    from prometheus_client.openmetrics import exposition as openmetrics_format

    from modelmon.exposition import render_registry

    house = make_profile(
        [{"rooms": 1 + i % 6, "price": 100.0 + 7 * i, "target": 101.0 + 7 * i} for i in range(60)],
        "house",
        prediction="price",
        label="target",
        task="regression",
    )
    running = exporter_factory(collectors={"gpu": False, "process": {"pid": os.getpid()}})
    feed(running)
    labelled = [
        {
            "id": f"p{i}",
            "features": {"age": 30, "income": 5.0, "country": "FR"},
            "prediction": 1,
            "score": 0.9,
            "latency_seconds": 0.01 * i,
        }
        for i in range(20)
    ]
    base = f"{running.url}/v1/models/credit-risk"
    assert requests.post(f"{base}/predictions", json=labelled, timeout=10).status_code == 200
    labels = [{"id": f"p{i}", "label": i % 2} for i in range(20)]
    assert requests.post(f"{base}/labels", json=labels, timeout=10).status_code == 200
    regression = exporter_factory(
        reference=house.path, model={"name": "house"}, collectors={"gpu": False}
    )
    rows = [{"features": {"rooms": 3}, "prediction": 250.0, "label": 240.0 + i} for i in range(30)]
    house_url = f"{regression.url}/v1/models/house/predictions"
    assert requests.post(house_url, json=rows, timeout=10).status_code == 200
    for app in (running.app, regression.app):
        app.refresher.refresh()
        ours = render_registry(app.registry, openmetrics=False)
        assert ours is not None
        assert steady(ours) == steady(text_format.generate_latest(app.registry))
        ours = render_registry(app.registry, openmetrics=True)
        assert ours is not None
        assert steady(ours + b"# EOF\n") == steady(openmetrics_format.generate_latest(app.registry))
    both = text_format.generate_latest(running.app.registry) + text_format.generate_latest(
        regression.app.registry
    )
    for family in (
        "modelmon_prediction_latency_seconds_bucket",
        "modelmon_absolute_error_sum",
        "modelmon_confusion_total",
        "modelmon_model_process_",
    ):
        assert family.encode() in both, family


#: Values that move between two collections (timings, this process's own CPU and memory).
VOLATILE = re.compile(rb"^(modelmon_collector_duration_seconds|modelmon_model_process_)\S* ")


def steady(exposition: bytes) -> list[bytes]:
    """The lines of an exposition, the values of volatile series cut off."""
    return [
        line.rsplit(b" ", 1)[0] if VOLATILE.match(line) else line
        for line in exposition.splitlines()
    ]
