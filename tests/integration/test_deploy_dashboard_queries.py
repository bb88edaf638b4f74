"""Every dashboard query returns data from a real Prometheus scraping the real demo.

``modelmon demo`` serves its synthetic model and sends it predictions, labels and drift;
a real Prometheus (Debian package ``prometheus``) scrapes it every second and evaluates
prometheus/rules. The dashboards' variables are filled as Grafana would (label values
from Prometheus; "All" for multi-value variables, each value in turn for single-value
ones), Grafana's interval variables are substituted, and each panel query, annotation and
variable must return a non-empty result. Exempt, with the reason checked:

- queries of ``ALERTS``: empty while no alert fires, which is the healthy state;
- GPU queries when Prometheus has no ``modelmon_gpu_*`` series (no GPU on this machine).

Every query must also evaluate without error. The PromQL examples of docs/metrics.md
must evaluate without error too (they may be empty).
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from realbin import free_port, require_binary, running, wait_http

ROOT = Path(__file__).resolve().parents[2]
from dashgen.queries import (  # noqa: E402
    Query,
    iter_queries,
    label_values_call,
    metric_names,
    substitute,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SCRAPE_SECONDS = 1  # scrape and rule evaluation interval of the test Prometheus
DEMO_SECONDS = 200  # longer than the test: the exporter must outlive the polling
DRIFT_AFTER_SECONDS = 20  # the demo's inputs drift early, so drift gauges move
DATA_DEADLINE_SECONDS = 90  # how long queries may take to get data (about 10 s needed)
POLL_SECONDS = 3.0
MAX_COMBINATIONS = 24  # single-value variable combinations tried per query


@dataclass
class Stack:
    """The running demo exporter and Prometheus."""

    prometheus: str  # base URL
    started: float  # time.time() when Prometheus was ready

    def get(self, path: str, **params: Any) -> Any:
        """GET a Prometheus API path; the ``data`` of a successful answer."""
        response = requests.get(f"{self.prometheus}{path}", params=params, timeout=30)
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {body.get('error', body)}")
        return body["data"]


def prometheus_config(exporter_port: int) -> dict[str, Any]:
    """Scrape the demo every second and evaluate the shipped rules every second."""
    return {
        "global": {
            "scrape_interval": f"{SCRAPE_SECONDS}s",
            "scrape_timeout": f"{SCRAPE_SECONDS}s",
            "evaluation_interval": f"{SCRAPE_SECONDS}s",
        },
        "rule_files": [str(p) for p in sorted((ROOT / "prometheus" / "rules").glob("*.yml"))],
        "scrape_configs": [
            {
                # The alert rules select job="modelmon", as prometheus/prometheus.yml names it.
                "job_name": "modelmon",
                "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}],
            }
        ],
    }


@pytest.fixture(scope="module", name="stack")
def stack_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus = require_binary("prometheus")
    directory = tmp_path_factory.mktemp("dashboards")
    exporter_port, prometheus_port = free_port(), free_port()
    demo = [
        sys.executable, "-m", "modelmon", "demo",
        "--listen", f"127.0.0.1:{exporter_port}",
        "--duration", str(DEMO_SECONDS),
        "--drift-after", str(DRIFT_AFTER_SECONDS),
    ]  # fmt: skip
    config = directory / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(exporter_port)))
    server = [
        prometheus,
        f"--config.file={config}",
        f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{prometheus_port}",
    ]
    with running(demo, cwd=directory, log_path=directory / "demo.log") as exporter:
        wait_http(f"http://127.0.0.1:{exporter_port}/readyz", timeout=60, process=exporter)
        with running(server, log_path=directory / "prometheus.log") as process:
            base = f"http://127.0.0.1:{prometheus_port}"
            wait_http(f"{base}/-/ready", timeout=30, process=process)
            yield Stack(base, time.time())
            assert exporter.alive(), f"the demo exited early:\n{exporter.log()}"


# --- Grafana's variables --------------------------------------------------------------


def natural_key(text: str) -> list[Any]:
    """Grafana's natural sort: digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def grafana_intervals(range_seconds: float) -> dict[str, str]:
    """$__interval, $__rate_interval and $__range as Grafana computes them.

    $__interval is the range over the panel's data points (at most 1000 here), at least
    the scrape interval; $__rate_interval is max($__interval + scrape, 4 * scrape).
    """
    interval = max(SCRAPE_SECONDS, math.ceil(range_seconds / 1000))
    rate_interval = max(interval + SCRAPE_SECONDS, 4 * SCRAPE_SECONDS)
    seconds = math.ceil(range_seconds)
    return {
        "__interval": f"{interval}s",
        "__rate_interval": f"{rate_interval}s",
        "__range": f"{seconds}s",
        "__range_s": str(seconds),
    }


def variable_options(
    stack: Stack, variable: Mapping[str, Any], values: Mapping[str, str]
) -> list[str]:
    """The options Grafana would list: label values of the series the query selects."""
    call = label_values_call(variable["query"])
    assert call is not None, variable["query"]
    selector, label = call
    found = stack.get(
        f"/api/v1/label/{label}/values",
        **{"match[]": substitute(selector, values), "start": stack.started - 60},
    )
    reverse = variable.get("sort") in (2, 4, 6, 8)
    return sorted(found, key=natural_key, reverse=reverse)


def selections(stack: Stack, board: Mapping[str, Any]) -> list[dict[str, str]]:
    """Variable assignments to try, Grafana's default first.

    Multi-value variables take their "All" value; single-value ones each of their options
    in turn (the first option is Grafana's default). Variables resolve in order, so an
    option list may depend on the choice above it.
    """
    partial: list[dict[str, str]] = [{"datasource": "prometheus"}]
    for variable in board["templating"]["list"]:
        if variable["type"] != "query":
            continue
        extended = []
        for values in partial:
            options = variable_options(stack, variable, values)
            if variable.get("multi"):
                extended.append({**values, variable["name"]: variable["allValue"]})
            else:
                extended.extend({**values, variable["name"]: o} for o in options)
        partial = extended[:MAX_COMBINATIONS]
    return partial


# --- evaluation -------------------------------------------------------------------------


def run_query(stack: Stack, query: Query, values: Mapping[str, str]) -> list[Any]:
    """The result of one dashboard query (raises on a Prometheus error)."""
    now = time.time()
    range_seconds = now - stack.started + 60
    expr = substitute(query.expr, {**values, **grafana_intervals(range_seconds)})
    if query.panel_type == "variable":
        call = label_values_call(expr)
        assert call is not None, expr
        return list(
            stack.get(f"/api/v1/label/{call[1]}/values", **{"match[]": call[0], "start": now - 600})
        )
    if query.instant:
        return list(stack.get("/api/v1/query", query=expr, time=now)["result"])
    # Annotations use their own step ("1m"), panels $__interval. The start is a whole
    # number of steps before now, so "now" is one of the evaluated points.
    step = 60 if query.panel_type == "annotation" else SCRAPE_SECONDS
    start = now - math.ceil(range_seconds / step) * step
    data = stack.get("/api/v1/query_range", query=expr, start=start, end=now, step=step)
    return list(data["result"])


def exemption(stack: Stack, query: Query) -> str | None:
    """Why ``query`` may be empty, or None when it must return data."""
    names = metric_names(query.expr) or {query.expr}
    if "ALERTS" in names:
        return "ALERTS is empty while no alert fires"
    if any(name.startswith("modelmon_gpu_") for name in names) or "gpu=" in query.expr:
        series = stack.get("/api/v1/series", **{"match[]": '{__name__=~"modelmon_gpu_.+"}'})
        if not series:
            return "no GPU on this machine: no modelmon_gpu_* series"
    return None


# Dashboards of training runs and evaluations have no data from the demo; they are
# checked against a real training run and evaluation in test_training_stack.py.
BATCH_DASHBOARDS = frozenset({"training.json", "evaluations.json"})


def dashboards() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.name, json.loads(path.read_text(encoding="utf-8")))
        for path in sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
        if path.name not in BATCH_DASHBOARDS
    ]


def wait_for_first_scrape(stack: Stack) -> None:
    deadline = time.monotonic() + 30
    while not stack.get("/api/v1/query", query='up{job="modelmon"} == 1')["result"]:
        assert time.monotonic() < deadline, "Prometheus did not scrape the demo"
        time.sleep(0.5)


def test_every_dashboard_query_returns_data(stack: Stack) -> None:
    wait_for_first_scrape(stack)
    boards = dict(dashboards())
    pending: dict[str, tuple[str, Query]] = {}
    for name, board in boards.items():
        for query in iter_queries(board):
            key = f"{name}: {query.where}"
            if exemption(stack, query) is None:
                pending[key] = (name, query)
            else:  # may be empty, but must evaluate
                for values in selections(stack, board):
                    run_query(stack, query, values)
    assert len(pending) > 100
    deadline = time.monotonic() + DATA_DEADLINE_SECONDS
    while pending:
        choices = {name: selections(stack, board) for name, board in boards.items()}
        for key, (name, query) in list(pending.items()):
            if any(run_query(stack, query, values) for values in choices[name]):
                del pending[key]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(POLL_SECONDS)
    lacking = "\n".join(f"  {key}\n    {query.expr}" for key, (_, query) in pending.items())
    assert not pending, f"{len(pending)} queries returned no data:\n{lacking}"


def test_metric_reference_examples_evaluate(stack: Stack) -> None:
    """The PromQL of docs/metrics.md runs against real data (no vector-matching errors)."""
    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```promql\n(.*?)```", text, flags=re.DOTALL)
    examples = [
        line.strip()
        for block in blocks
        for line in block.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert len(examples) > 50
    for expr in examples:
        stack.get("/api/v1/query", query=expr)


def test_variables_have_options(stack: Stack) -> None:
    """Every variable lists values, except the GPU list on a machine without GPUs."""
    for name, board in dashboards():
        values: dict[str, str] = {}
        for variable in board["templating"]["list"]:
            if variable["type"] != "query":
                continue
            options = variable_options(stack, variable, values)
            if variable["name"] == "gpu" and not options:
                continue
            assert options, f"{name}: variable {variable['name']} has no options"
            values[variable["name"]] = variable.get("allValue") or options[0]
