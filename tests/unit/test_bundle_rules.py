"""The Prometheus rules of the bundle: linted, unit-tested and complete.

Runs the real ``promtool`` (``check config``, ``check rules``, ``test rules``) and checks
the house rules of DESIGN.md section 8 on every alert: severity, annotations, a commented
``for``, a runbook section that exists, a traffic guard, and promtool tests on both sides
of its ``for``. The fleet-PSI expectations of the promtool tests are recomputed here with
numpy from the tests' own input series.
"""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path
from typing import Any

import bundle_config
import numpy as np
import pytest
import realbin  # tests/integration, scripts: on pytest's pythonpath
import yaml

from modelmon.catalogue import exposed_series_names

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "prometheus" / "rules"
TESTS_DIR = REPO / "prometheus" / "tests"
RUNBOOKS = REPO / "docs" / "runbooks.md"
RUNBOOK_BASE = "https://github.com/modelmon/modelmon/blob/main/docs/runbooks.md#"
SEVERITIES = {"critical", "warning", "info"}
PSI_EPSILON = 1e-4

# Alerts about the exporter or the hardware, not about a model's traffic: no traffic
# guard applies. PendingPredictionsHigh: only traffic can fill the backlog.
UNGUARDED = {
    "ModelmonExporterDown",
    "ModelmonExporterAbsent",
    "ModelmonCollectorFailing",
    "ModelmonGPUMemoryHigh",
    "ModelmonGPUTemperatureHigh",
    "ModelmonPendingPredictionsHigh",
    # A training run is one job, not a stream of records: no traffic to guard.
    "ModelmonTrainingStalled",
    "ModelmonTrainingRunLost",
    "ModelmonTrainingLossNotFinite",
    "ModelmonTrainingValidationLossDiverging",
    "ModelmonTrainingGPUIdle",
    "ModelmonTrainingRunFailed",
}
GUARD = re.compile(
    r"modelmon_window_events\{[^}]*\} >= \d+"  # exporter window gauges
    r"|:increase1h >= \d+"  # fleet ratios: records or labels in the hour
    r"|:rate1d \* \d+ >= \d+"  # "used to have traffic" over a day
)


def _rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yml"))


@functools.cache
def _rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in _rule_files()
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def _alerts() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for rule in _rules() if "alert" in rule}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = realbin.require_binary("promtool")
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=60, check=False, cwd=REPO
    )


ALERT_NAMES = sorted(_alerts())


def test_the_bundle_has_the_alerts_of_the_design() -> None:
    required = {
        "ModelmonFeatureDrift",
        "ModelmonDatasetDrift",
        "ModelmonPredictionDrift",
        "ModelmonAccuracyDrop",
        "ModelmonEstimatedAccuracyDrop",
        "ModelmonMissingValues",
        "ModelmonTypeErrors",
        "ModelmonUnseenCategories",
        "ModelmonRejectedRecords",
        "ModelmonNoTraffic",
        "ModelmonLabelsStopped",
        "ModelmonLabelsDelayed",
        "ModelmonPendingPredictionsHigh",
        "ModelmonExporterDown",
        "ModelmonExporterAbsent",
        "ModelmonCollectorFailing",
        "ModelmonGPUMemoryHigh",
        "ModelmonGPUTemperatureHigh",
    }
    assert required <= set(ALERT_NAMES)


# --- promtool -----------------------------------------------------------------------------


def test_promtool_check_rules() -> None:
    result = _promtool("check", "rules", *map(str, _rule_files()))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_config() -> None:
    result = _promtool("check", "config", "prometheus/prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    """``promtool test rules`` on every test file, one process per file, all at once."""
    promtool = realbin.require_binary("promtool")
    files = sorted(TESTS_DIR.glob("*.yml"))
    assert len(files) >= 5
    runs = [
        subprocess.Popen(
            [promtool, "test", "rules", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO,
        )
        for path in files
    ]
    results = [(run.communicate(timeout=120)[0], run.returncode) for run in runs]
    failed = [output for output, code in results if code != 0]
    assert not failed, "\n".join(failed)


def test_derived_local_config_is_valid_and_keeps_expressions(tmp_path: Path) -> None:
    files = bundle_config.write_stack(
        tmp_path,
        exporter="127.0.0.1:1",
        prometheus="127.0.0.1:2",
        alertmanager="127.0.0.1:3",
        webhook_base_url=None,
        scrape_interval="1s",
        evaluation_interval="1s",
        for_override="2s",
    )
    result = _promtool("check", "config", str(files.prometheus_yml))
    assert result.returncode == 0, result.stdout + result.stderr
    derived = {
        rule.get("alert") or rule["record"]: rule
        for path in sorted(files.rules_dir.glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    }
    shipped = {rule.get("alert") or rule["record"]: rule for rule in _rules()}
    assert derived.keys() == shipped.keys()
    for name, rule in shipped.items():
        assert derived[name]["expr"] == rule["expr"], name
        if "for" in rule:
            assert derived[name]["for"] == "2s", name


# --- every alert --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALERT_NAMES)
def test_alert_has_severity_and_annotations(name: str) -> None:
    rule = _alerts()[name]
    assert rule.get("labels", {}).get("severity") in SEVERITIES, name
    annotations = rule.get("annotations", {})
    for key in ("summary", "description", "runbook_url"):
        assert annotations.get(key, "").strip(), f"{name}: annotation {key} missing"


@pytest.mark.parametrize("name", ALERT_NAMES)
def test_alert_for_is_set_and_commented(name: str) -> None:
    assert _alerts()[name].get("for"), f"{name}: no for"
    text = "".join(path.read_text() for path in _rule_files())
    block = text.split(f"- alert: {name}\n", 1)[1].split("- alert:", 1)[0]
    comments = " ".join(line for line in block.splitlines() if line.strip().startswith("#"))
    assert re.search(r"\bfor\b", comments), f"{name}: no comment explains its for"


@pytest.mark.parametrize("name", ALERT_NAMES)
def test_alert_links_an_existing_runbook_section(name: str) -> None:
    url = _alerts()[name]["annotations"]["runbook_url"]
    assert url == RUNBOOK_BASE + name.lower()
    headings = re.findall(r"^## (\S+)\s*$", RUNBOOKS.read_text(), flags=re.MULTILINE)
    assert name in headings, f"docs/runbooks.md has no section '## {name}'"


@pytest.mark.parametrize("name", sorted(set(ALERT_NAMES) - UNGUARDED))
def test_model_alert_has_a_traffic_guard(name: str) -> None:
    expr = _alerts()[name]["expr"]
    assert GUARD.search(expr), f"{name}: no minimum-traffic guard in {expr!r}"


def _alert_cases() -> list[tuple[str, int, str, bool]]:
    """(alertname, test group index, eval_time, fires) of every promtool alert case."""
    cases = []
    for path in sorted(TESTS_DIR.glob("*.yml")):
        for index, group in enumerate(yaml.safe_load(path.read_text())["tests"]):
            for case in group.get("alert_rule_test") or []:
                key = f"{path.name}:{index}"
                cases.append((case["alertname"], key, case["eval_time"], bool(case["exp_alerts"])))
    return cases


def _minutes(duration: str) -> int:
    value, unit = re.fullmatch(r"(\d+)([mh])", duration).groups()  # type: ignore[union-attr]
    return int(value) * (60 if unit == "h" else 1)


@pytest.mark.parametrize("name", ALERT_NAMES)
def test_alert_has_promtool_tests_on_both_sides_of_its_for(name: str) -> None:
    cases = [case for case in _alert_cases() if case[0] == name]
    firing = [(group, _minutes(at)) for _, group, at, fires in cases if fires]
    silent = [(group, _minutes(at)) for _, group, at, fires in cases if not fires]
    assert firing, f"{name}: no promtool case where it fires"
    assert any(
        group == firing_group and at < fired_at
        for group, at in silent
        for firing_group, fired_at in firing
    ), f"{name}: no promtool case where it is still silent before it fires"


# --- recording rules ----------------------------------------------------------------------


def test_recording_rule_names_follow_level_metric_operation() -> None:
    names = [rule["record"] for rule in _rules() if "record" in rule]
    assert len(names) == len(set(names)), "a recorded name is defined twice"
    for name in names:
        assert re.fullmatch(r"[a-z_]+:modelmon_[a-z0-9_]+:[a-z0-9_]+", name), name


def test_recording_rules_read_only_earlier_rules_of_their_own_group() -> None:
    """Groups run independently; a rule reading another group's output mixes two times."""
    for path in _rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            defined: set[str] = set()
            for rule in group["rules"]:
                if "record" not in rule:
                    continue
                used = set(re.findall(r"[a-z_]+:modelmon_[a-z0-9_]+:[a-z0-9_]+", rule["expr"]))
                assert used <= defined, f"{rule['record']} reads {used - defined}"
                defined.add(rule["record"])


def test_rules_use_only_catalogued_metrics_and_defined_recordings() -> None:
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    series = exposed_series_names() | {"up"}
    for rule in _rules():
        expr = rule["expr"]
        for name in re.findall(r"(?<![\w:])modelmon_\w+(?![\w:])", expr):
            assert name in series, f"{rule.get('alert') or rule['record']}: {name} unknown"
        for name in re.findall(r"[a-z_]+:modelmon_[a-z0-9_]+:[a-z0-9_]+", expr):
            assert name in recorded, f"{rule.get('alert') or rule['record']}: {name} undefined"


def _per_minute(values: str) -> float:
    """The constant slope (``0+Kx120`` -> K) or level (``Vx120`` -> V) of a series."""
    slope = re.fullmatch(r"0\+([\d.e]+)x\d+", values)
    if slope:
        return float(slope.group(1))
    level = re.fullmatch(r"([\d.e]+)x\d+", values)
    assert level, f"unexpected series values {values!r}"
    return float(level.group(1))


def _labels(series: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="([^"]*)"', series))


def test_fleet_psi_expectations_match_numpy() -> None:
    """Recompute the PSI constants of recording_test.yml from its input series."""
    groups = yaml.safe_load((TESTS_DIR / "recording_test.yml").read_text())["tests"]
    group = next(
        g for g in groups if any("modelmon_psi" in t["expr"] for t in g["promql_expr_test"])
    )
    counts: dict[str, dict[str, float]] = {}
    reference: dict[str, dict[str, float]] = {}
    for item in group["input_series"]:
        labels = _labels(item["series"])
        column, bin_ = labels["column"], labels["bin"]
        if item["series"].startswith("modelmon_column_bin_total"):
            bins = counts.setdefault(column, {})
            bins[bin_] = bins.get(bin_, 0.0) + _per_minute(item["values"])  # sum of replicas
        else:
            bins = reference.setdefault(column, {})
            bins[bin_] = max(bins.get(bin_, 0.0), _per_minute(item["values"]))  # one copy
    expected = {}
    for column, ref_bins in reference.items():
        window = np.array([counts.get(column, {}).get(b, 0.0) for b in ref_bins])
        if window.sum() == 0:
            continue  # no value in the window: no PSI
        current = np.maximum(window / window.sum(), PSI_EPSILON)
        ref = np.maximum(np.array(list(ref_bins.values())), PSI_EPSILON)
        expected[column] = float(np.sum((current - ref) * np.log(current / ref)))
    assert set(expected) == {"income", "country"}
    for test in group["promql_expr_test"]:
        match = re.fullmatch(r"abs\(\S+:modelmon_psi:\w+ - ([\d.]+)\) < bool 1e-9", test["expr"])
        if not match:
            continue
        constant = float(match.group(1))
        (column,) = [_labels(s["labels"])["column"] for s in test["exp_samples"] if s["value"] == 1]
        assert constant == pytest.approx(expected[column], rel=1e-12), column
