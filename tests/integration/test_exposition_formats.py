"""/metrics in both formats: the per-scrape counters and the statistics rendered at the
last refresh must make one valid exposition (each family once, OpenMetrics ending in
``# EOF``)."""

from __future__ import annotations

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
