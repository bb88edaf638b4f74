"""The Grafana dashboards and their provisioning, checked offline.

Each dashboard validates against the Grafana dashboard JSON schema (grafana-foundation-sdk,
in ../shared/schemas), follows DESIGN.md section 8 (fixed uid, tag, datasource variable,
no hard-coded datasource uid, variables from label_values()), lays its panels out without
overlap, and every query parses: promtool checks them as recording rules.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT.parent / "shared" / "schemas"
DASHBOARDS = ROOT / "grafana" / "dashboards"
PROVISIONING = ROOT / "grafana" / "provisioning"

from dashgen.queries import (  # noqa: E402
    GLOBAL_VARIABLES,
    iter_queries,
    label_values_call,
    substitute,
    variables_used,
)
from dashgen.write import stale_files  # noqa: E402

UIDS = {
    "modelmon-overview",
    "modelmon-drift",
    "modelmon-performance",
    "modelmon-resources",
    "modelmon-versions",
    "modelmon-training",
    "modelmon-evaluations",
}
# DESIGN.md section 8 and the task: these variables, wherever present, are defined so.
VARIABLE_QUERIES = {
    "model": "label_values(modelmon_events_total, model)",
    "window": 'label_values(modelmon_window_events{model=~"$model"}, window)',
    "column": 'label_values(modelmon_column_bin_total{model=~"$model"}, column)',
}
# The batch dashboards list the models that have training runs or evaluations.
MODEL_QUERIES = {
    "modelmon-training": "label_values(modelmon_training_run_info, model)",
    "modelmon-evaluations": "label_values(modelmon_evaluation_metric, model)",
}
DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}


def require(available: bool, what: str) -> None:
    """Skip when ``what`` is missing on a workstation; fail in CI (CI=true)."""
    if not available:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{what} is missing and CI=true")
        pytest.skip(f"{what} is missing")


def load(path: Path) -> dict[str, Any]:
    board: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return board


FILES = sorted(DASHBOARDS.glob("*.json"))
BOARDS = {path.name: load(path) for path in FILES}


@pytest.fixture(params=sorted(BOARDS), name="board")
def board_fixture(request: pytest.FixtureRequest) -> dict[str, Any]:
    return BOARDS[request.param]


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (json path, value) under ``node``."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}[{index}]")


def all_panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    panels = list(board["panels"])
    for panel in board["panels"]:
        panels.extend(panel.get("panels", []))
    return panels


def variables(board: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in board["templating"]["list"]}


def test_the_seven_dashboards_exist_with_their_uids() -> None:
    assert {board["uid"] for board in BOARDS.values()} == UIDS
    for name, board in BOARDS.items():
        assert name == board["uid"].removeprefix("modelmon-") + ".json"


def test_dashboard_files_match_the_generator() -> None:
    assert stale_files() == [], "run python grafana/generate.py"


def test_dashboard_validates_against_the_grafana_schema(board: dict[str, Any]) -> None:
    schema_file = SCHEMAS / "grafana-dashboard.jsonschema.json"
    require(schema_file.is_file(), str(schema_file))
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    errors = sorted(
        jsonschema.Draft7Validator(schema).iter_errors(board), key=lambda e: list(e.path)
    )
    assert not errors, [f"{list(e.absolute_path)}: {e.message[:200]}" for e in errors[:10]]


def test_schema_rejects_an_unknown_panel_field(board: dict[str, Any]) -> None:
    """The schema check can fail: a typo in a panel key is caught."""
    schema_file = SCHEMAS / "grafana-dashboard.jsonschema.json"
    require(schema_file.is_file(), str(schema_file))
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    broken = json.loads(json.dumps(board))
    panel = next(p for p in broken["panels"] if p["type"] != "row")
    panel["fieldconfig"] = panel.pop("fieldConfig")
    assert not jsonschema.Draft7Validator(schema).is_valid(broken)


def test_tag_schema_version_and_title(board: dict[str, Any]) -> None:
    assert "modelmon" in board["tags"]
    assert 36 <= board["schemaVersion"] <= 42
    assert board["title"].startswith("modelmon / ")


def test_datasource_variable_and_no_hard_coded_uid(board: dict[str, Any]) -> None:
    variable = variables(board)["datasource"]
    assert variable["type"] == "datasource"
    assert variable["query"] == "prometheus"
    refs = [(path, value) for path, value in walk(board) if path.endswith(".datasource")]
    assert refs, "no datasource reference at all"
    wrong = [(path, value) for path, value in refs if value != DATASOURCE_REF]
    assert not wrong, wrong[:5]
    text = json.dumps(board)
    provisioned = yaml.safe_load((PROVISIONING / "datasources" / "modelmon.yml").read_text())
    for source in provisioned["datasources"]:
        assert source["uid"] not in text


def test_variables_come_from_label_values(board: dict[str, Any]) -> None:
    found = variables(board)
    assert "model" in found
    expected = {**VARIABLE_QUERIES}
    if board["uid"] in MODEL_QUERIES:
        expected["model"] = MODEL_QUERIES[board["uid"]]
    for name, variable in found.items():
        if name in expected:
            assert variable["query"] == expected[name], name
        if variable["type"] == "query":
            assert label_values_call(variable["query"]), (name, variable["query"])
            assert variable["datasource"] == DATASOURCE_REF
            assert variable["refresh"] == 2, f"{name}: refresh on time range change"


def test_every_variable_used_is_defined(board: dict[str, Any]) -> None:
    defined = set(variables(board)) | set(GLOBAL_VARIABLES)
    for query in iter_queries(board):
        assert variables_used(query.expr) <= defined, (query.where, query.expr)
    for panel in all_panels(board):
        if "repeat" in panel:
            repeat = variables(board)[panel["repeat"]]
            assert repeat["multi"], f"{panel['title']}: repeats on a single-value variable"


def test_variables_reference_only_earlier_variables(board: dict[str, Any]) -> None:
    """Grafana resolves variables in order: a query may use only variables above it."""
    seen: set[str] = set(GLOBAL_VARIABLES)
    for variable in board["templating"]["list"]:
        assert variables_used(str(variable.get("query", ""))) - {"datasource"} <= seen
        seen.add(variable["name"])


def test_panels_have_titles_descriptions_and_queries(board: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in all_panels(board)]
    assert len(ids) == len(set(ids))
    for panel in all_panels(board):
        if panel["type"] == "row":
            continue
        assert panel["title"], panel
        assert panel["description"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert refs, panel["title"]
        assert len(refs) == len(set(refs)), panel["title"]
        assert all(target["expr"].strip() for target in panel["targets"]), panel["title"]


def test_panels_do_not_overlap(board: dict[str, Any]) -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in board["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


def test_version_and_alert_annotations(board: dict[str, Any]) -> None:
    notes = {note["name"]: note for note in board["annotations"]["list"]}
    assert "modelmon_model_info" in notes["Version changes"]["expr"]
    assert notes["Alerts"]["expr"].startswith("ALERTS{")


def test_versions_dashboard_compares_two_versions() -> None:
    board = BOARDS["versions.json"]
    found = variables(board)
    assert {"version_a", "version_b"} <= set(found)
    # Opposite sort orders: A defaults to the first version, B to the last.
    assert {found["version_a"]["sort"], found["version_b"]["sort"]} == {7, 8}
    for panel in all_panels(board):
        if panel["type"] == "row":
            continue
        text = json.dumps(panel["targets"])
        assert "$version_a" in text or "$version_b" in text, panel["title"]


def promql_placeholders(board: dict[str, Any]) -> dict[str, str]:
    values = dict.fromkeys(variables(board), "x")
    values.update(__rate_interval="1m", __interval="30s", __range="1h", __range_s="3600")
    return values


def test_every_query_parses(tmp_path: Path) -> None:
    """promtool checks each query (variables filled in) as the expr of a recording rule."""
    promtool = shutil.which("promtool")
    require(promtool is not None, "promtool (Debian package prometheus)")
    assert promtool is not None
    rules = []
    for name, board in sorted(BOARDS.items()):
        values = promql_placeholders(board)
        for index, query in enumerate(iter_queries(board)):
            if query.panel_type == "variable":
                continue  # label_values() is Grafana syntax, not PromQL
            record = re.sub(r"\W", "_", f"dashboard:{name}:{index}")
            rules.append({"record": record, "expr": substitute(query.expr, values)})
    assert len(rules) > 100
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_datasource_provisioning() -> None:
    document = yaml.safe_load((PROVISIONING / "datasources" / "modelmon.yml").read_text())
    assert document["apiVersion"] == 1
    prometheus = next(s for s in document["datasources"] if s["type"] == "prometheus")
    assert prometheus["url"] == "http://prometheus:9090"
    assert prometheus["isDefault"] is True
    scrape = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    assert prometheus["jsonData"]["timeInterval"] == scrape["global"]["scrape_interval"]


def test_dashboard_provisioning_points_at_the_mounted_folder() -> None:
    document = yaml.safe_load((PROVISIONING / "dashboards" / "modelmon.yml").read_text())
    (provider,) = document["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/modelmon"
