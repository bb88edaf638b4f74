"""The bundle's contract with the exporter: one catalogue of metric names.

Every series a dashboard or a Prometheus rule reads must be one the exporter can expose
(``modelmon.catalogue.exposed_series_names()``), a recording rule defined in
prometheus/rules, or a Prometheus built-in. So renaming a metric breaks this test, not a
dashboard in production. The metric reference (docs/metrics.md) lists every family with
the catalogue's type and labels, and its PromQL examples parse.
"""

from __future__ import annotations

import doctest
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelmon.catalogue import BY_NAME, CATALOGUE, exposed_series_names

ROOT = Path(__file__).resolve().parents[2]
RULES = sorted((ROOT / "prometheus" / "rules").glob("*.yml"))
DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
METRICS_DOC = ROOT / "docs" / "metrics.md"

import dashgen.queries  # noqa: E402
from dashgen.queries import iter_queries, metric_names  # noqa: E402

# Series Prometheus itself makes: scrape health and the state of alerting rules.
BUILTINS = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE"})


def require(available: bool, what: str) -> None:
    """Skip when ``what`` is missing on a workstation; fail in CI (CI=true)."""
    if not available:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{what} is missing and CI=true")
        pytest.skip(f"{what} is missing")


def rules() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in RULES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            out.extend(group["rules"])
    return out


def recording_rules() -> frozenset[str]:
    return frozenset(rule["record"] for rule in rules() if "record" in rule)


def dashboard_queries() -> list[tuple[str, str]]:
    out = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text(encoding="utf-8"))
        out.extend((f"{path.name}: {q.where}", q.expr) for q in iter_queries(board))
    return out


def known_names() -> frozenset[str]:
    return exposed_series_names() | recording_rules() | BUILTINS


def test_rules_and_dashboards_exist() -> None:
    require(bool(RULES), "prometheus/rules/*.yml")
    assert len(DASHBOARDS) == 7
    assert recording_rules(), "no recording rule found"


def test_extraction_finds_names_in_every_position() -> None:
    """The extractor is what makes this contract bite: it must not miss a name."""
    expr = (
        'sum by (model) (rate(modelmon_events_total{model=~"$model"}[$__rate_interval]))'
        " / on (model) group_left model:modelmon_records:rate5m"
        ' and modelmon_window_events > 0 or ALERTS{alertname="x"}'
        " unless (modelmon_drift_psi) offset 1m"
    )
    assert metric_names(expr) == {
        "modelmon_events_total",
        "model:modelmon_records:rate5m",
        "modelmon_window_events",
        "ALERTS",
        "modelmon_drift_psi",
    }


def test_extraction_examples() -> None:
    """The docstring examples of the extractor (outside the package, so run here)."""
    result = doctest.testmod(dashgen.queries)
    assert result.attempted > 0
    assert result.failed == 0


def test_a_misspelled_metric_is_caught() -> None:
    names = metric_names("sum(rate(modelmon_event_total[5m]))")
    assert names == {"modelmon_event_total"}
    assert not names <= known_names()


def test_every_dashboard_metric_is_in_the_catalogue() -> None:
    known = known_names()
    unknown = [
        (where, name)
        for where, expr in dashboard_queries()
        for name in sorted(metric_names(expr) - known)
    ]
    assert not unknown, unknown


def test_every_rule_metric_is_in_the_catalogue() -> None:
    require(bool(RULES), "prometheus/rules/*.yml")
    known = known_names()
    unknown = [
        (rule.get("record") or rule.get("alert"), name)
        for rule in rules()
        for name in sorted(metric_names(str(rule["expr"])) - known)
    ]
    assert not unknown, unknown


def test_every_catalogue_family_is_on_a_dashboard() -> None:
    """No metric is exported without a panel that shows it."""
    used: set[str] = set()
    for _, expr in dashboard_queries():
        used |= metric_names(expr)
    missing = [m.name for m in CATALOGUE if not set(m.series_names()) & used]
    assert not missing, missing


# --- docs/metrics.md ------------------------------------------------------------------

ROW = re.compile(r"^\| `(modelmon_\w+)` \| (\w+) \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$")


def documented_rows() -> dict[str, tuple[str, tuple[str, ...]]]:
    """metric -> (type, labels) from the tables of docs/metrics.md."""
    rows: dict[str, tuple[str, tuple[str, ...]]] = {}
    for line in METRICS_DOC.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            name, kind, labels = match.group(1), match.group(2), match.group(3).strip()
            assert name not in rows, f"{name} documented twice"
            label_names = () if labels == "none" else tuple(re.findall(r"`(\w+)`", labels))
            rows[name] = (kind, label_names)
    return rows


def promql_examples() -> list[str]:
    text = METRICS_DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```promql\n(.*?)```", text, flags=re.DOTALL)
    return [
        line.strip()
        for block in blocks
        for line in block.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_every_catalogue_metric_is_documented_with_its_type_and_labels() -> None:
    rows = documented_rows()
    assert set(rows) == set(BY_NAME), sorted(set(rows) ^ set(BY_NAME))
    for name, (kind, labels) in rows.items():
        assert kind == BY_NAME[name].type, name
        assert labels == BY_NAME[name].labels, name


def test_every_metric_has_a_promql_example() -> None:
    used: set[str] = set()
    for expr in promql_examples():
        names = metric_names(expr)
        assert names <= known_names(), (expr, names - known_names())
        used |= names
    missing = [m.name for m in CATALOGUE if not set(m.series_names()) & used]
    assert not missing, missing


def test_promql_examples_parse(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    require(promtool is not None, "promtool (Debian package prometheus)")
    assert promtool is not None
    rules_file = tmp_path / "examples.yml"
    examples = [{"record": f"doc:example:{i}", "expr": e} for i, e in enumerate(promql_examples())]
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "doc", "rules": examples}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
