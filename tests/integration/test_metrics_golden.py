"""The whole /metrics exposition against a stored golden file, plus lint and invariants.

An exporter with a fixed clock, a fixed reference profile and fixed records is scraped;
the exposition must equal ``tests/golden/metrics.prom`` line by line, except the values
of ``modelmon_collector_duration_seconds`` (timings). A deliberate change of the
exposition is recorded by regenerating the file::

    MODELMON_UPDATE_GOLDEN=1 pytest tests/integration/test_metrics_golden.py

and reviewing the diff. The golden file does not certify itself: key series in it are
checked against values computed here with numpy (event counts, a bin count, reference
shares, a PSI from its definition). The live exposition is linted with the real
``promtool check metrics`` (missing promtool fails under CI=true).
"""

from __future__ import annotations

import difflib
import math
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from scipy import stats

from modelmon.catalogue import exposed_series_names

pytestmark = pytest.mark.integration

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "metrics.prom"
MODEL = "credit-risk"
NOW = 1_764_075_600.0
IGNORED_VALUES = ("modelmon_collector_duration_seconds",)
IGNORED_FAMILIES = ("process_", "python_")
#: DESIGN.md section 7: model series that carry ``model`` but no ``version``.
MODEL_ONLY = {
    "modelmon_rejected_records_total",
    "modelmon_unknown_fields_total",
    "modelmon_unmatched_labels_total",
    "modelmon_expired_predictions_total",
    "modelmon_pending_predictions",
}
#: Families that are not about a model: exporter health and resources.
NOT_MODEL = re.compile(r"^modelmon_(collector_|build_info|gpu_|model_process_|http_requests_)")

REFERENCE_X = np.arange(200) * 0.5  # 0.0 .. 99.5, uniform
COLORS = ["red"] * 5 + ["green"] * 3 + ["blue"] * 2  # shares 0.5 / 0.3 / 0.2


def reference_rows() -> list[dict[str, Any]]:
    return [
        {
            "x": float(REFERENCE_X[i]),
            "color": COLORS[i % 10],
            "prediction": i % 2,
            "score": (i % 100) / 100,
        }
        for i in range(200)
    ]


def window_x() -> np.ndarray:
    return 60.0 + np.arange(40) * 0.75  # 60 .. 89.25: shifted to the top of the reference


def records() -> list[Any]:
    """40 usable records with a few quality problems, and one rejected record."""
    out: list[Any] = []
    for i, x in enumerate(window_x()):
        rec: dict[str, Any] = {
            "features": {"x": float(x), "color": "blue" if i % 4 else "red"},
            "prediction": int(i % 3 == 0),
            "score": round(0.2 + 0.015 * i, 4),
        }
        if i < 20:
            rec["latency_seconds"] = 0.004 * (i + 1)
        out.append(rec)
    out[5]["features"]["color"] = None  # missing
    out[6]["features"]["note"] = "extra"  # unknown field
    out.append("not a record")  # rejected
    return out


@pytest.fixture(scope="module")
def exposition(module_exporters: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    from modelmon.profiling.builder import Roles, build_profile

    directory = tmp_path_factory.mktemp("golden")
    data = directory / "golden.csv"
    import csv

    with data.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["x", "color", "prediction", "score"])
        writer.writeheader()
        writer.writerows(reference_rows())
    profile = build_profile(
        [str(data)], Roles(prediction="prediction", score="score"), progress=lambda _m: None
    )
    reference = directory / "golden.profile.json"
    profile.save(reference)

    def clock() -> float:
        return NOW

    running = module_exporters.start(clock=clock, reference=reference)
    response = requests.post(
        f"{running.url}/v1/models/{MODEL}/predictions", json=records(), timeout=10
    )
    assert response.json()["accepted"] == 40
    running.app.refresher.refresh()
    scraped = requests.get(f"{running.url}/metrics", timeout=10)
    assert scraped.status_code == 200
    return scraped.text


def normalise(text: str) -> list[str]:
    """The exposition's lines, timings blanked and foreign families dropped."""
    out = []
    for line in text.splitlines():
        name = re.split(r"[{ ]", line.removeprefix("# HELP ").removeprefix("# TYPE "), maxsplit=1)[
            0
        ]
        if name.startswith(IGNORED_FAMILIES):
            continue
        if not line.startswith("#") and name in IGNORED_VALUES:
            line = line.rsplit(" ", 1)[0] + " <ignored>"
        out.append(line)
    return out


def split_sample(line: str) -> tuple[str, str]:
    series, value = line.rsplit(" ", 1)
    return series, value


def same_value(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)


def golden_samples() -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    text = GOLDEN.read_text(encoding="utf-8").replace("<ignored>", "0")
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = float(s.value)
    return out


def key(name: str, **labels: str) -> str:
    return f"{name}{{{','.join(f'{k}={v}' for k, v in sorted(labels.items()))}}}"


# --- the golden comparison ----------------------------------------------------------------


def test_exposition_equals_the_golden_file(exposition: str) -> None:
    live = normalise(exposition)
    if os.environ.get("MODELMON_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text("\n".join(live) + "\n", encoding="utf-8")
    assert GOLDEN.exists(), f"{GOLDEN} is missing; run with MODELMON_UPDATE_GOLDEN=1"
    stored = GOLDEN.read_text(encoding="utf-8").splitlines()
    diff = "\n".join(difflib.unified_diff(stored, live, "golden", "live", lineterm="", n=1))
    assert len(live) == len(stored), diff
    for want, got in zip(stored, live, strict=True):
        if want.startswith("#") or got.startswith("#"):
            assert want == got, diff
            continue
        (want_series, want_value), (got_series, got_value) = split_sample(want), split_sample(got)
        assert want_series == got_series, diff
        assert same_value(want_value, got_value), f"{want_series}: {want_value} != {got_value}"


def test_golden_values_match_independent_expectations() -> None:
    golden = golden_samples()
    base = {"model": MODEL, "version": "v1"}
    column = {**base, "role": "feature", "column": "x"}
    assert golden[key("modelmon_events_total", **base)] == 40
    assert golden[key("modelmon_window_events", **base, window="5m")] == 40
    assert golden[key("modelmon_rejected_records_total", model=MODEL, reason="not_an_object")] == 1
    assert golden[key("modelmon_unknown_fields_total", model=MODEL)] == 1
    color = {**base, "role": "feature", "column": "color"}
    assert golden[key("modelmon_column_missing_total", **color)] == 1

    # coarse bins of x: numpy's reference deciles, bins closed on the left
    edges = np.quantile(REFERENCE_X, np.arange(1, 10) / 10)
    window = np.bincount(np.searchsorted(edges, window_x(), side="right"), minlength=10)
    reference = np.bincount(np.searchsorted(edges, REFERENCE_X, side="right"), minlength=10)
    for b in range(10):
        assert golden[key("modelmon_column_bin_total", **column, bin=str(b))] == window[b]
        ratio = golden[key("modelmon_reference_bin_ratio", **column, bin=str(b))]
        assert ratio == pytest.approx(reference[b] / REFERENCE_X.size)
    for name, share in (("red", 0.5), ("green", 0.3), ("blue", 0.2)):
        ratio = golden[key("modelmon_reference_bin_ratio", **color, bin=name)]
        assert ratio == pytest.approx(share)
    blue = sum(1 for i in range(40) if i % 4 and i != 5)
    assert golden[key("modelmon_column_bin_total", **color, bin="blue")] == blue

    # the latency histogram: cumulative counts of the latencies sent, le inclusive
    latencies = [
        r["latency_seconds"] for r in records() if isinstance(r, dict) and "latency_seconds" in r
    ]
    for le in ("0.005", "0.01", "0.025", "0.05", "0.1", "+Inf"):
        expected = sum(1 for v in latencies if v <= float(le))
        assert golden[key("modelmon_prediction_latency_seconds_bucket", **base, le=le)] == expected
    latency_sum = golden[key("modelmon_prediction_latency_seconds_sum", **base)]
    assert latency_sum == pytest.approx(sum(latencies))

    # KS and Wasserstein of x against scipy on the raw values
    exact = stats.ks_2samp(REFERENCE_X, window_x()).statistic
    assert golden[key("modelmon_drift_ks", **column, window="5m")] == pytest.approx(exact, abs=0.02)
    w1 = stats.wasserstein_distance(REFERENCE_X, window_x()) / REFERENCE_X.std()
    assert golden[key("modelmon_drift_wasserstein", **column, window="5m")] == pytest.approx(
        w1, rel=0.1
    )

    # PSI of x in the 5m window, from its definition with the 1e-4 floor
    r = np.maximum(reference / reference.sum(), 1e-4)
    c = np.maximum(window / window.sum(), 1e-4)
    psi = float(np.sum((c - r) * np.log(c / r)))
    assert golden[key("modelmon_drift_psi", **column, window="5m")] == pytest.approx(psi)
    assert golden[key("modelmon_drift_detected", **column, window="5m")] == 1


# --- lint and invariants of the live exposition ---------------------------------------------


def test_promtool_finds_nothing(exposition: str) -> None:
    from realbin import require_binary

    promtool = require_binary("promtool")
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=exposition.encode(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    findings = (result.stdout + result.stderr).decode()
    assert result.returncode == 0, findings
    assert findings.strip() == ""


def test_no_created_series(exposition: str) -> None:
    assert "_created" not in exposition


def test_every_family_has_help_text(exposition: str) -> None:
    types = re.findall(r"^# TYPE (\S+) ", exposition, re.MULTILINE)
    helps = dict(re.findall(r"^# HELP (\S+) (.+)$", exposition, re.MULTILINE))
    assert types
    for family in types:
        assert helps.get(family, "").strip(), f"{family} has no HELP text"


def test_every_model_series_has_model_and_version(exposition: str) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(exposition):
        for s in family.samples:
            if NOT_MODEL.match(s.name):
                continue
            assert s.labels.get("model") == MODEL, s
            base = re.sub(r"_(bucket|sum|count)$", "", s.name)
            if s.name in MODEL_ONLY or base in MODEL_ONLY:
                assert "version" not in s.labels, s
            else:
                assert s.labels.get("version") == "v1", s


def test_every_series_is_in_the_catalogue(exposition: str) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    known = exposed_series_names()
    names = {s.name for f in text_string_to_metric_families(exposition) for s in f.samples}
    assert names - known == set()


def test_no_label_value_is_a_raw_value_or_a_timestamp(exposition: str) -> None:
    """Cardinality: bins are indices or categories, never the values sent."""
    sent = {str(float(x)) for x in window_x()} | {repr(float(x)) for x in window_x()}
    values = set(re.findall(r'="([^"]*)"', exposition))
    assert values & sent == set()
    assert str(int(NOW)) not in values
