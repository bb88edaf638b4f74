"""The Alertmanager configuration of the bundle: valid, routed by severity, no inline secret.

Runs the real ``amtool``: ``check-config`` on the shipped and the derived (local/test)
configuration, ``config routes test`` for the cases of alertmanager/tests/routes.yml, and
``template render`` of the chat and pager templates with alertmanager/tests/
template_data.json. Inhibition needs a running Alertmanager and is tested in
tests/integration/test_bundle_e2e.py.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import bundle_config
import pytest
import realbin  # tests/integration, scripts: on pytest's pythonpath
import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "alertmanager" / "alertmanager.yml"
TEMPLATES = REPO / "alertmanager" / "templates"
CASES = REPO / "alertmanager" / "tests"
# Keys whose value is a secret; the shipped config must use their *_file form.
SECRET_KEYS = {"routing_key", "service_key", "api_url", "credentials", "password", "token"}


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    amtool = realbin.require_binary("amtool")
    return subprocess.run(
        [amtool, *args], capture_output=True, text=True, timeout=60, check=False, cwd=REPO
    )


def _config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    return config


def test_amtool_check_config() -> None:
    result = _amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 templates" in result.stdout  # the glob found the template file


def _routes_test(config: Path, labels: list[str]) -> list[str]:
    result = _amtool("config", "routes", "test", f"--config.file={config}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().split(",")


def _route_cases() -> list[tuple[list[str], list[str]]]:
    """(amtool labels, receivers) of alertmanager/tests/routes.yml."""
    cases = yaml.safe_load((CASES / "routes.yml").read_text())
    return [
        ([f"{key}={value}" for key, value in case["labels"].items()], case["receivers"])
        for case in cases
    ]


ROUTES = _route_cases()


@pytest.mark.parametrize(("labels", "receivers"), ROUTES)
def test_routes_by_severity_and_everything_to_the_webhook(
    labels: list[str], receivers: list[str]
) -> None:
    assert _routes_test(CONFIG, labels) == receivers


def test_groups_by_alertname_and_model() -> None:
    assert _config()["route"]["group_by"] == ["alertname", "model"]


def _walk(node: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every (key path, value) pair of a YAML tree."""
    if isinstance(node, dict):
        return [item for key, value in node.items() for item in _walk(value, f"{path}.{key}")]
    if isinstance(node, list):
        return [item for i, value in enumerate(node) for item in _walk(value, f"{path}[{i}]")]
    return [(path, node)]


def test_secrets_are_read_from_files_named_in_the_header() -> None:
    pairs = _walk(_config())
    inline = [path for path, _ in pairs if path.rsplit(".", 1)[-1] in SECRET_KEYS]
    assert not inline, f"secrets written inline: {inline}"
    files = [value for path, value in pairs if path.endswith("_file")]
    assert len(files) == 3  # PagerDuty key, Slack URL, webhook token
    header = CONFIG.read_text().split("\nglobal:", 1)[0]
    for file in files:
        assert file in header, f"{file} is not listed in the header comment"


def test_inhibit_rules_cover_exporter_down_and_critical_over_warning() -> None:
    rules = _config()["inhibit_rules"]
    down = next(r for r in rules if 'alertname="ModelmonExporterDown"' in r["source_matchers"])
    assert set(down["equal"]) == {"job", "instance"}
    critical = next(r for r in rules if 'severity="critical"' in r["source_matchers"])
    assert 'severity="warning"' in critical["target_matchers"]
    assert set(critical["equal"]) == {"model", "column"}


def test_derived_config_is_valid_and_routes_the_same(tmp_path: Path) -> None:
    derived = bundle_config.derive_alertmanager(
        _config(),
        webhook_base_url="http://127.0.0.1:1/hook",
        timings=bundle_config.RouteTimings("1s", "1s", "1h"),
    )
    path = bundle_config.dump_yaml(derived, tmp_path / "alertmanager.yml")
    result = _amtool("check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    urls = {r["name"]: r["webhook_configs"][0]["url"] for r in derived["receivers"]}
    assert urls == {
        name: f"http://127.0.0.1:1/hook/{name}" for name in ("webhook", "pager", "chat")
    }
    assert derived["route"]["group_wait"] == "1s"
    assert derived["inhibit_rules"] == _config()["inhibit_rules"]
    for labels, receivers in ROUTES:
        assert _routes_test(path, labels) == receivers


def _render(template: str) -> str:
    """Render ``template`` with alertmanager/tests/template_data.json (one firing, one
    resolved alert of one group)."""
    data = CASES / "template_data.json"
    result = _amtool(
        "template",
        "render",
        f"--template.glob={TEMPLATES}/*.tmpl",
        f"--template.data={data}",
        f'--template.text={{{{ template "{template}" . }}}}',
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_chat_title_names_status_count_alert_and_model() -> None:
    assert _render("modelmon.chat.title").strip() == ("[FIRING:1] ModelmonFeatureDrift credit-risk")


def test_chat_text_lists_firing_and_resolved_alerts_and_the_runbook() -> None:
    lines = _render("modelmon.chat.text").strip().splitlines()
    assert lines == [
        "• *warning* v3 column income window 1h on m1:9847: Income left its reference "
        "distribution.",
        "• resolved v3 column age window 1h on m1:9847: Feature age of credit-risk v3 drifted",
        "Runbook: https://example.org/runbooks.md#modelmonfeaturedrift",
    ]


def test_pager_templates_summarize_the_firing_alerts() -> None:
    description = _render("modelmon.pager.description").strip()
    assert (
        description == "ModelmonFeatureDrift credit-risk: Feature income of credit-risk v3 drifted"
    )
    details = _render("modelmon.pager.details")
    assert re.fullmatch(
        r"Feature income of credit-risk v3 drifted \(v3 column income window 1h on m1:9847\)\s*",
        details,
    )


def test_every_template_the_config_uses_is_defined() -> None:
    defined = set(
        re.findall(r'define "([^"]+)"', "".join(p.read_text() for p in TEMPLATES.glob("*.tmpl")))
    )
    used = set(re.findall(r'template "([^"]+)"', CONFIG.read_text()))
    assert used
    assert used <= defined
