"""``modelmon check --format html`` and several formats in one run, without a browser:
the document's structure, its numbers against the JSON report's, its size and
rendering time for 200 columns. tests/integration/test_check_html_browser.py opens
the same reports in a real Chromium."""

from __future__ import annotations

import json
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_check import (
    Cancer,
    cancer,
    diabetes,
    profile_of,
    run_check,
    small_profile,
    write_csv,
)

from modelmon.check import output_paths

__all__ = ["cancer", "diabetes", "small_profile"]  # fixtures shared with test_check


class Outline(HTMLParser):
    """Tags, attributes and the text of ``data-field`` elements, per column section."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.fields: dict[tuple[str, str], dict[str, str]] = {}  # (role, column) -> fields
        self.page_fields: dict[str, str] = {}
        self.svg_text: list[list[str]] = []  # per svg: the tags inside
        self._column: tuple[str, str] | None = None
        self._field: str | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "section" and a.get("data-column") is not None:
            self._column = (a["data-role"] or "", a["data-column"] or "")
            self.fields[self._column] = {}
        if tag == "svg":
            self.svg_text.append([])
        elif self.svg_text:
            self.svg_text[-1].append(tag)
        if a.get("data-field"):
            self._field = a["data-field"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._column = None

    def handle_data(self, data: str) -> None:
        if self._field is None:
            return
        target = self.fields[self._column] if self._column else self.page_fields
        target[self._field] = data
        self._field = None


def _reports(capsys: Any, tmp_path: Path, *args: Any) -> tuple[str, dict[str, Any]]:
    base = tmp_path / "report"
    code, _, err = run_check(capsys, *args, "--format", "json,html", "--output", base)
    assert code in (0, 1), err
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    return html, json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def test_html_numbers_equal_the_json_report(cancer: Cancer, tmp_path: Path, capsys: Any) -> None:
    html, report = _reports(capsys, tmp_path, "--profile", cancer.profile, cancer.shifted)
    outline = Outline()
    outline.feed(html)
    assert len(outline.fields) == len(report["columns"])
    for c in report["columns"]:
        shown = outline.fields[(c["role"], c["column"])]
        for name in ("value", "threshold", "effect_threshold", "noise_floor", "pvalue", "level"):
            assert shown[name] == _shown(c["drift"][name]), (c["column"], name)
        for name in ("missing", "type_errors"):
            assert shown[f"quality.{name}"] == str(c["quality"][name])
        assert shown["values"] == str(c["values"])
    page = outline.page_fields
    assert page["verdict"] == ("PASS" if report["passed"] else "FAIL")
    assert page["rows"] == str(report["data"]["rows"])
    assert page["drifted_features"] == str(report["drift"]["drifted_features"])
    assert page["drift_share"] == _shown(report["drift"]["drift_share"])
    for name, value in report["performance"]["metrics"].items():
        assert page[f"metrics.{name}"] == _shown(value)
    assert page["estimated.accuracy"] == _shown(report["estimated_performance"]["accuracy"])


def test_html_is_self_contained_and_every_chart_has_a_text_alternative(
    cancer: Cancer, tmp_path: Path, capsys: Any
) -> None:
    html, report = _reports(capsys, tmp_path, "--profile", cancer.profile, cancer.shifted)
    outline = Outline()
    outline.feed(html)
    tags = [t for t, _ in outline.tags]
    assert "script" not in tags
    assert "link" not in tags
    assert "img" not in tags
    for _, attrs in outline.tags:
        for name in ("src", "href"):
            assert (attrs.get(name) or "#").startswith("#"), attrs
    assert "http://" not in html
    assert "https://" not in html
    assert "url(" not in html
    svgs = [a for t, a in outline.tags if t == "svg"]
    assert len(outline.svg_text) == len(svgs)
    for attrs, inner in zip(svgs, outline.svg_text, strict=True):
        assert attrs["role"] == "img"
        assert attrs["aria-label"]
        assert inner[:2] == ["title", "desc"]
    kinds = [a["data-chart"] for a in svgs]
    assert kinds.count("distribution") == len(report["columns"])
    assert {"confusion", "roc", "calibration"} <= set(kinds)
    # Drifted columns come first.
    sections = [a for t, a in outline.tags if t == "section" and a.get("data-column")]
    drifted = [c["drift"]["drifted"] for c in report["columns"]]
    order = [
        next(c["drift"]["drifted"] for c in report["columns"] if c["column"] == s["data-column"])
        for s in sections
    ]
    assert order == sorted(drifted, reverse=True)
    assert "viewport" in html
    assert "@media print" in html


def test_several_formats_equal_their_single_runs(
    cancer: Cancer, tmp_path: Path, capsys: Any
) -> None:
    args = ["--profile", cancer.profile, cancer.test]
    code, out, err = run_check(
        capsys,
        *args,
        "--format=text,markdown,json,html",
        f"--output=-,{tmp_path / 'c.md'},{tmp_path / 'c.json'},{tmp_path / 'c.html'}",
    )
    assert code == 0, err
    assert out == run_check(capsys, *args)[1]  # text on stdout
    for fmt, name in (("markdown", "c.md"), ("json", "c.json"), ("html", "c.html")):
        single = run_check(capsys, *args, "--format", fmt)[1]
        assert (tmp_path / name).read_text(encoding="utf-8") == single, fmt
    code, _, err = run_check(capsys, *args, "--format", "markdown,html", "-o", tmp_path / "b.md")
    assert code == 0, err
    assert (tmp_path / "b.md").is_file()
    assert (tmp_path / "b.html").is_file()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--format", "pdf"], "'pdf' is not one of text, json, markdown, html"),
        (["--format", "html,html"], "distinct formats"),
        (["--format", "text,html"], "--output: --format text,html writes several reports"),
        (["--format", "text,html", "-o", "a.txt,b.html,c"], "--output: 3 files for 2 formats"),
        (["--format=text,json", "--output=-,-"], "--output: stdout (-) can take only one"),
    ],
)
def test_format_and_output_usage_errors(
    cancer: Cancer, capsys: Any, extra: list[str], message: str
) -> None:
    try:
        code, out, err = run_check(capsys, "--profile", cancer.profile, cancer.test, *extra)
    except SystemExit as exit_:  # argparse rejects a bad --format value itself
        captured = capsys.readouterr()
        code, out, err = int(str(exit_.code)), captured.out, captured.err
    assert (code, out) == (2, "")
    assert message in err


def test_output_paths() -> None:
    assert output_paths(["html"], "r.html") == ["r.html"]
    assert output_paths(["json", "html"], "out/r") == ["out/r.json", "out/r.html"]
    assert output_paths(["json", "html"], "out/r.v2") == ["out/r.v2.json", "out/r.v2.html"]
    assert output_paths(["text", "html"], "-,x.html") == [None, "x.html"]


def test_200_columns_under_2_mb_and_2_seconds(tmp_path: Path, capsys: Any) -> None:
    """A wide model: 150 numeric columns and 50 categorical ones of 40 categories
    (drawn as the 19 largest plus one bar for the rest)."""
    rng = np.random.default_rng(20)
    names = [f"num_{i:03d}" for i in range(150)] + [f"cat_{i:02d}" for i in range(50)]

    def rows(shift: float) -> list[list[Any]]:
        numbers = rng.normal(shift, 1.0, size=(600, 150))
        cats = rng.integers(0, 40, size=(600, 50))
        return [
            [*(f"{v:.4f}" for v in n), *(f"c{v}" for v in c)]
            for n, c in zip(numbers, cats, strict=True)
        ]

    reference = write_csv(tmp_path / "wide.csv", names, rows(0.0))
    batch = write_csv(tmp_path / "batch.csv", names, rows(0.3))
    profile = profile_of(reference, tmp_path / "wide.profile.json")
    code, out, err = run_check(capsys, "--profile", profile, batch, "--format", "html")
    assert code in (0, 1), err
    size = len(out.encode("utf-8"))
    assert size < 2 * 2**20
    from modelmon.check import check
    from modelmon.checking.html_report import render_html
    from modelmon.cli import build_parser

    result = check(build_parser().parse_args(["check", "--profile", str(profile), str(batch)]))
    start = time.perf_counter()
    html = render_html(result)
    seconds = time.perf_counter() - start
    assert seconds < 2.0
    assert html == out
    outline = Outline()
    outline.feed(html)
    bars = [a for t, a in outline.tags if t == "svg" and a["data-chart"] == "distribution"]
    assert len(bars) == 200
    assert {a["data-bins"] for a in bars[150:]} <= {"20"}  # 40 categories + other, capped
    print(f"200-column report: {size / 2**20:.2f} MiB, rendered in {seconds * 1000:.0f} ms")


def test_wide_categorical_keeps_the_largest_bins_and_sums_the_rest() -> None:
    from modelmon.checking.charts import MAX_BINS, top_bins

    reference = [0.04] * 25
    current = [0.0] * 24 + [1.0]
    labels, ref, cur = top_bins([f"c{i}" for i in range(25)], reference, current)
    assert len(labels) == MAX_BINS == 20
    assert labels[-1] == "6 more"
    assert "c24" in labels  # the largest current bin is kept, though last
    assert sum(ref) == pytest.approx(1.0)
    assert sum(cur) == pytest.approx(1.0)


def test_small_batch_with_an_absent_column_renders_without_verdicts(
    small_profile: Path, tmp_path: Path, capsys: Any
) -> None:
    """10 rows (below the 30 values a verdict needs) and no ``country`` column."""
    rows = [[20 + i, i % 2, "0.5", i % 2] for i in range(10)]
    batch = write_csv(tmp_path / "few.csv", ["age", "pred", "proba", "y"], rows)
    code, html, err = run_check(capsys, "--profile", small_profile, batch, "--format", "html")
    assert code == 0, err
    outline = Outline()
    outline.feed(html)
    assert outline.fields[("feature", "country")]["quality.missing"] == "10"
    assert outline.fields[("feature", "age")]["threshold"] == "-"
    assert html.count("NO VERDICT") == len(outline.fields)
    assert "Profile columns not in the data: country." in html
    assert not any(a.get("data-chart") == "gauge" for _, a in outline.tags)
    assert "nan" not in html.lower().replace("span", "")


def test_regression_report_shows_its_metrics(diabetes: Any, tmp_path: Path, capsys: Any) -> None:
    profile, test, _, _ = diabetes
    html, report = _reports(capsys, tmp_path, "--profile", profile, test)
    outline = Outline()
    outline.feed(html)
    for name in ("mae", "rmse", "mape"):
        assert outline.page_fields[f"metrics.{name}"] == _shown(
            report["performance"]["metrics"][name]
        )
    kinds = {a.get("data-chart") for t, a in outline.tags if t == "svg"}
    assert kinds == {"distribution", "gauge"}  # no confusion matrix or curves
