"""The HTML report of ``modelmon check`` in a real headless Chromium (Debian package
``chromium``), driven over the DevTools Protocol (``browser.py``).

The report of the breast cancer model (scikit-learn's data set, a shifted held-out
half) opens offline with no console error and no request beyond the file itself;
every chart is there with the bars, cells, lines and points the JSON report implies;
the numbers on the page are the JSON report's; it fits a phone's width and prints. A
screenshot is saved as a test artifact (``$MODELMON_TEST_ARTIFACTS``, default
``build/test-artifacts/``).
"""

from __future__ import annotations

import base64
import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from browser import Browser, chromium
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelmon.cli import main
from modelmon.profiling.builder import Roles, build_profile

pytestmark = pytest.mark.integration

ARTIFACTS = Path(
    os.environ.get("MODELMON_TEST_ARTIFACTS")
    or Path(__file__).resolve().parents[2] / "build" / "test-artifacts"
)

#: Everything the test reads from the page, in one evaluation.
PAGE_FACTS = """
(() => {
  const charts = [...document.querySelectorAll('svg.chart')].map(s => ({
    chart: s.dataset.chart,
    column: s.closest('section[data-column]')?.dataset.column ?? null,
    role: s.closest('section[data-column]')?.dataset.role ?? null,
    title: s.querySelector(':scope > title')?.textContent ?? '',
    desc: s.querySelector(':scope > desc')?.textContent ?? '',
    ref: [...s.querySelectorAll('rect.bar.ref')].map(r => r.getBBox().height),
    cur: [...s.querySelectorAll('rect.bar.cur')].map(r => r.getBBox().height),
    cells: [...s.querySelectorAll('text.count')].map(t => t.textContent),
    lines: [...s.querySelectorAll('polyline')].map(p => p.points.numberOfItems),
    points: s.querySelectorAll('circle.point').length,
    width: s.getBoundingClientRect().width,
  }));
  const fields = {};
  for (const e of document.querySelectorAll('[data-field]')) {
    const section = e.closest('section[data-column]');
    const key = section ? section.dataset.role + '/' + section.dataset.column : '';
    (fields[key] ??= {})[e.dataset.field] = e.textContent;
  }
  return {charts, fields};
})()
"""


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """HTML and JSON reports of one run on the shifted held-out half."""
    directory = tmp_path_factory.mktemp("html")
    data = load_breast_cancer()
    names = [n.replace(" ", "_") for n in data.feature_names]
    x_tr, x_te, y_tr, y_te = train_test_split(
        data.data, data.target, test_size=0.5, random_state=0, stratify=data.target
    )
    x_te = x_te * np.where(np.arange(x_te.shape[1]) < 10, 1.5, 1.0)  # 10 features shifted
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x_tr, y_tr)
    for name, x, y in (("train", x_tr, y_tr), ("batch", x_te, y_te)):
        with (directory / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow([*names, "pred", "proba", "y"])
            proba = model.predict_proba(x)[:, 1]
            for row, p, s, t in zip(x, model.predict(x), proba, y, strict=True):
                writer.writerow([*map(repr, map(float, row)), int(p), repr(float(s)), int(t)])
    profile = directory / "cancer.profile.json"
    roles = Roles(prediction="pred", score="proba", label="y")
    build_profile([str(directory / "train.csv")], roles, progress=lambda _m: None).save(profile)
    code = main(
        [
            "check",
            "--profile",
            str(profile),
            str(directory / "batch.csv"),
            "--format",
            "json,html",
            "--output",
            str(directory / "report"),
        ]
    )
    assert code in (0, 1)
    return directory / "report.html", json.loads((directory / "report.json").read_text())


@pytest.fixture(scope="module")
def page(report: tuple[Path, dict[str, Any]]) -> Iterator[Browser]:
    with chromium() as browser:
        browser.open(report[0].as_uri())
        yield browser


def test_opens_offline_without_errors_or_requests(
    page: Browser, report: tuple[Path, dict[str, Any]]
) -> None:
    assert page.errors() == []
    assert page.requests() == [report[0].as_uri()]


def test_every_chart_is_drawn_with_the_json_numbers(
    page: Browser, report: tuple[Path, dict[str, Any]]
) -> None:
    facts = page.evaluate(PAGE_FACTS)
    data = report[1]
    by_column = {
        (c["role"], c["column"]): c for c in facts["charts"] if c["chart"] == "distribution"
    }
    assert len(by_column) == len(data["columns"])
    for column in data["columns"]:
        chart = by_column[(column["role"], column["column"])]
        d = column["distribution"]
        assert len(chart["ref"]) == len(chart["cur"]) == len(d["bins"])  # <= 20 bins here
        shares = np.array(d["counts"]) / sum(d["counts"])
        reference = np.array(d["reference"])
        # Bar heights are proportional to the JSON shares (SVG rounds to 0.1 unit of 110).
        scale = max(max(chart["ref"]), max(chart["cur"])) / max(reference.max(), shares.max())
        assert np.array(chart["ref"]) == pytest.approx(reference * scale, abs=0.1)
        assert np.array(chart["cur"]) == pytest.approx(shares * scale, abs=0.1)
        assert chart["title"]
        assert chart["desc"]
    perf = data["performance"]
    kinds = {c["chart"]: c for c in facts["charts"]}
    confusion = perf["confusion_matrix"]["counts"]
    assert kinds["confusion"]["cells"] == [str(n) for row in confusion for n in row]
    assert kinds["roc"]["lines"] == [len(perf["roc_curve"]["fpr"])]
    assert kinds["calibration"]["points"] == len(perf["calibration_curve"])
    gauges = [c for c in facts["charts"] if c["chart"] == "gauge"]
    assert len(gauges) == sum(1 for c in data["columns"] if c["drift"]["drifted"] is not None)
    assert all(c["title"] and c["desc"] for c in facts["charts"])


def test_numbers_shown_equal_the_json_report(
    page: Browser, report: tuple[Path, dict[str, Any]]
) -> None:
    fields = page.evaluate(PAGE_FACTS)["fields"]
    data = report[1]
    for column in data["columns"]:
        shown = fields[f"{column['role']}/{column['column']}"]
        for name in ("value", "threshold", "effect_threshold", "noise_floor", "pvalue", "level"):
            assert shown[name] == _shown(column["drift"][name]), (column["column"], name)
            if column["drift"][name] is not None:
                assert float(shown[name]) == pytest.approx(column["drift"][name], rel=5e-4)
        for name, count in column["quality"].items():
            if not name.endswith("_share"):
                assert shown[f"quality.{name}"] == str(count)
    summary = fields[""]
    assert summary["verdict"] == ("PASS" if data["passed"] else "FAIL")
    assert summary["rows"] == str(data["data"]["rows"])
    assert summary["drifted_features"] == str(data["drift"]["drifted_features"])
    for name, value in data["performance"]["metrics"].items():
        assert summary[f"metrics.{name}"] == _shown(value)
    assert summary["roc_auc"] == _shown(data["performance"]["metrics"]["roc_auc"])
    assert summary["estimated.accuracy"] == _shown(data["estimated_performance"]["accuracy"])


def test_fits_a_phone_prints_and_saves_a_screenshot(page: Browser) -> None:
    shot = page.screenshot(ARTIFACTS / "check-report.png", captureBeyondViewport=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page.send(
        "Emulation.setDeviceMetricsOverride",
        width=390,
        height=844,
        deviceScaleFactor=1,
        mobile=True,
    )
    try:
        width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1]  # no sideways scrolling on a 390 px phone
        page.screenshot(ARTIFACTS / "check-report-phone.png")
    finally:
        page.send("Emulation.clearDeviceMetricsOverride")
    pdf = base64.b64decode(page.send("Page.printToPDF", printBackground=True)["data"])
    assert pdf[:5] == b"%PDF-"
    assert page.errors() == []


def test_the_harness_sees_requests_and_console_errors(tmp_path: Path) -> None:
    """The two assertions above can fail: a page with an outside image and a console
    error shows both."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><img src="http://192.0.2.1/x.png"><script>console.error("boom")</script>',
        encoding="utf-8",
    )
    with chromium() as browser:
        browser.open(bad.as_uri())
        assert "http://192.0.2.1/x.png" in browser.requests()
        assert any("boom" in e for e in browser.errors())


def test_a_200_column_report_loads_in_under_2_seconds(tmp_path: Path) -> None:
    """150 numeric and 50 categorical columns (40 categories each, drawn as 20 bars)."""
    rng = np.random.default_rng(200)
    names = [f"num_{i:03d}" for i in range(150)] + [f"cat_{i:02d}" for i in range(50)]
    for name, shift in (("wide", 0.0), ("batch", 0.3)):
        with (tmp_path / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(names)
            numbers = rng.normal(shift, 1.0, size=(600, 150))
            cats = rng.integers(0, 40, size=(600, 50))
            for n, c in zip(numbers, cats, strict=True):
                writer.writerow([*(f"{v:.4f}" for v in n), *(f"c{v}" for v in c)])
    profile = tmp_path / "wide.profile.json"
    build_profile([str(tmp_path / "wide.csv")], Roles(), progress=lambda _m: None).save(profile)
    html = tmp_path / "wide.html"
    argv = ["check", "--profile", str(profile), str(tmp_path / "batch.csv")]
    assert main([*argv, "--format", "html", "--output", str(html)]) in (0, 1)
    assert html.stat().st_size < 2 * 2**20
    with chromium() as browser:
        browser.open(html.as_uri())
        timing = browser.evaluate(
            "(() => { const n = performance.getEntriesByType('navigation')[0];"
            " return [n.loadEventEnd - n.startTime,"
            " document.querySelectorAll('svg[data-chart=distribution]').length,"
            " document.querySelectorAll('rect.bar.cur').length]; })()"
        )
        assert browser.errors() == []
        assert browser.requests() == [html.as_uri()]
    load_ms, charts, bars = timing
    assert charts == 200
    assert bars == 150 * 10 + 50 * 20  # 10 coarse bins; 40 categories + other capped at 20
    assert load_ms < 2000
    print(f"200-column report: {html.stat().st_size / 2**20:.2f} MiB, loaded in {load_ms:.0f} ms")
