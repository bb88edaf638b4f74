"""Human-readable reports of a check: a plain-text table for terminals and CI logs, and
Markdown for a pull-request comment (the verdict first, then the drifted columns)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from modelmon.checking.result import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    CheckResult,
    ColumnResult,
    PerformanceResult,
)


def number(value: float | None) -> str:
    """Four significant digits, ``-`` for an unknown value (None, NaN or infinite: what
    the JSON report writes as null).

    >>> number(0.123456), number(None), number(12345.6), number(float("nan"))
    ('0.1235', '-', '1.235e+04', '-')
    """
    return "-" if value is None or not math.isfinite(value) else f"{value:.4g}"


def percent(count: int, rows: int) -> str:
    """``count`` as a share of ``rows``.

    >>> percent(1, 3), percent(0, 0)
    ('33.3%', '0.0%')
    """
    return f"{100.0 * count / rows:.1f}%" if rows else "0.0%"


def verdict(result: CheckResult) -> str:
    return "PASS" if result.passed else "FAIL"


def _drift_cell(c: ColumnResult) -> str:
    if c.drifted is None:
        return "-"
    return "DRIFT" if c.drifted else "no"


def _quality_cells(c: ColumnResult, rows: int) -> list[str]:
    odd = c.quality.get("out_of_range", c.quality.get("unseen", 0))
    return [
        percent(c.quality.get("missing", 0), rows),
        percent(odd, rows),
        str(c.quality.get("type_errors", 0)),
    ]


COLUMN_HEADERS = (
    "role",
    "column",
    "method",
    "statistic",
    "value",
    "threshold",
    "p-value",
    "drift",
    "missing",
    "out of range/unseen",
    "type errors",
)


def column_rows(columns: Sequence[ColumnResult], rows: int) -> list[list[str]]:
    return [
        [
            c.role,
            c.column if c.source == c.column else f"{c.column} ({c.source})",
            c.method or "-",
            c.statistic or "-",
            number(c.value),
            number(c.threshold),
            number(c.pvalue),
            _drift_cell(c),
            *_quality_cells(c, rows),
        ]
        for c in columns
    ]


def _metric_names(result: CheckResult) -> tuple[str, ...]:
    return REGRESSION_METRICS if result.task == "regression" else CLASSIFICATION_METRICS


def performance_rows(result: CheckResult) -> list[list[str]]:
    perf = result.performance
    if perf is None:
        return []
    return [
        [name, number(perf.metrics.get(name)), number(perf.reference.get(name)), _delta(perf, name)]
        for name in _metric_names(result)
    ]


def _delta(perf: PerformanceResult, name: str) -> str:
    delta = perf.delta(name)
    return "-" if delta is None else f"{delta:+.4g}"


def class_rows(result: CheckResult) -> list[list[str]]:
    perf = result.performance
    if perf is None:
        return []
    return [
        [k, number(v["precision"]), number(v["recall"]), number(v["f1"])]
        for k, v in sorted(perf.classes.items())
    ]


def drift_summary(result: CheckResult) -> str:
    features = [c for c in result.role_columns("feature") if c.drifted is not None]
    drifted = sum(1 for c in features if c.drifted)
    if result.dataset_drift is None:
        return "no feature has values to test"
    state = "DATASET DRIFT" if result.dataset_drift else "no dataset drift"
    return (
        f"{drifted} of {len(features)} features drifted (share {number(result.drift_share)}; "
        f"dataset drift at >= {result.settings.share:g}): {state}"
    )


# --- plain text --------------------------------------------------------------------------


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns two spaces apart, headers upper-cased.

    >>> print("\\n".join(text_table(["a", "bb"], [["xyz", "1"]])))
    A    BB
    xyz  1
    """
    cells = [[h.upper() for h in headers], *[list(r) for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]


def _text_header(result: CheckResult) -> list[str]:
    lines = [
        f"modelmon check: {verdict(result)} (model {result.model}, version {result.version})",
        f"profile: {result.profile} ({result.task}, {result.reference_rows:,} reference rows)",
        f"data:    {', '.join(result.files)} ({result.rows:,} rows)",
        f"drift:   {drift_summary(result)}",
    ]
    if result.absent_columns:
        names = ", ".join(f"{c.source} ({c.role})" for c in result.absent_columns)
        lines.append(f"absent:  profile columns not in the data: {names}")
    if result.unknown_columns:
        names = ", ".join(result.unknown_columns)
        lines.append(f"unknown: data columns not in the profile: {names}")
    return lines


def render_text(result: CheckResult) -> str:
    """The default report: summary, one row per column, performance, then the gates."""
    lines = _text_header(result)
    lines += ["", *text_table(COLUMN_HEADERS, column_rows(result.columns, result.rows))]
    if result.performance is not None:
        lines += ["", f"performance on {result.performance.rows:,} labeled rows:"]
        headers = ("metric", "value", "reference", "delta")
        lines += text_table(headers, performance_rows(result))
        if result.performance.classes:
            lines += ["", *text_table(("class", "precision", "recall", "f1"), class_rows(result))]
    if result.estimated is not None:
        e = result.estimated
        lines += [
            "",
            f"estimated from scores ({e.rows:,} rows): accuracy {number(e.estimated_accuracy)}"
            f" (reference {number(e.reference.get('accuracy'))}), ROC AUC "
            f"{number(e.estimated_roc_auc)} (reference {number(e.reference.get('roc_auc'))})",
        ]
    if result.gates:
        gate_rows = [["PASS" if g.passed else "FAIL", g.name, g.detail] for g in result.gates]
        lines += ["", *text_table(("result", "gate", "detail"), gate_rows)]
    lines += ["", f"modelmon check: {verdict(result)}"]
    return "\n".join(lines) + "\n"


# --- Markdown ----------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A GitHub-flavoured Markdown table (``|`` in cells escaped).

    >>> print("\\n".join(markdown_table(["a", "b"], [["x|y", "1"]])))
    | a | b |
    | --- | --- |
    | x\\|y | 1 |
    """
    out = ["| " + " | ".join(_cell(h) for h in headers) + " |"]
    out.append("|" + " --- |" * len(headers))
    out += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return out


#: Rows per Markdown table: a pull-request comment has a size limit (65,536 characters
#: on GitHub), and a table of a few hundred columns is no longer read anyway.
MAX_MARKDOWN_ROWS = 200


def _column_table(columns: Sequence[ColumnResult], rows: int) -> list[str]:
    shown = column_rows(columns[:MAX_MARKDOWN_ROWS], rows)
    out = markdown_table(COLUMN_HEADERS, shown)
    if len(columns) > MAX_MARKDOWN_ROWS:
        more = len(columns) - MAX_MARKDOWN_ROWS
        out += ["", f"... and {more} more columns: see the JSON report (`--format json`)."]
    return out


def render_markdown(result: CheckResult) -> str:
    """A pull-request comment: verdict line, drifted columns, performance, gates, and
    every column in a collapsed section."""
    failed = [g for g in result.gates if not g.passed]
    summary = f"**{verdict(result)}** modelmon check of `{result.model}` version `{result.version}`"
    summary += f": {result.rows:,} rows"
    if failed:
        summary += "; failed: " + ", ".join(f"{g.name} ({g.detail})" for g in failed)
    lines = [summary, "", f"Drift: {drift_summary(result)}.", ""]
    drifted = result.drifted()
    lines.append("### Drifted columns")
    lines.append("")
    if drifted:
        lines += _column_table(drifted, result.rows)
    else:
        lines.append("No column drifted.")
    if result.performance is not None:
        lines += ["", f"### Performance ({result.performance.rows:,} labeled rows)", ""]
        lines += markdown_table(("metric", "value", "reference", "delta"), performance_rows(result))
        if result.performance.classes:
            headers = ("class", "precision", "recall", "f1")
            lines += ["", *markdown_table(headers, class_rows(result))]
    if result.estimated is not None:
        e = result.estimated
        lines += [
            "",
            f"Estimated from scores: accuracy {number(e.estimated_accuracy)} (reference "
            f"{number(e.reference.get('accuracy'))}), ROC AUC {number(e.estimated_roc_auc)}.",
        ]
    if result.gates:
        gate_rows = [["PASS" if g.passed else "FAIL", g.name, g.detail] for g in result.gates]
        lines += ["", "### Gates", "", *markdown_table(("result", "gate", "detail"), gate_rows)]
    lines += ["", "<details><summary>All columns</summary>", ""]
    lines += _column_table(result.columns, result.rows)
    lines += ["", "</details>"]
    lines += _markdown_notes(result)
    return "\n".join(lines) + "\n"


def _markdown_notes(result: CheckResult) -> list[str]:
    notes = []
    if result.absent_columns:
        names = ", ".join(f"`{c.source}`" for c in result.absent_columns)
        notes.append(f"Profile columns not in the data: {names}.")
    if result.unknown_columns:
        names = ", ".join(f"`{n}`" for n in result.unknown_columns)
        notes.append(f"Data columns not in the profile: {names}.")
    return ["", *notes] if notes else []
