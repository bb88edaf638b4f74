"""The HTML report of a check: one self-contained file (inline CSS and SVG, no script,
no network), readable on a phone and printable.

It is drawn from the same :class:`~modelmon.checking.result.CheckResult` as the JSON
report, and shows its numbers with four significant digits. The page shell and table
helpers (:mod:`.page`), the charts (:mod:`.charts`) and the performance sections
(:mod:`.html_performance`) are separate, so other reports (``modelmon evaluate``) can
reuse them.
"""

from __future__ import annotations

import math
from html import escape

from modelmon import __version__
from modelmon.checking import charts
from modelmon.checking.html_performance import estimated_section, performance_section
from modelmon.checking.page import page, table, td
from modelmon.checking.render import number, verdict
from modelmon.checking.result import CheckResult, ColumnResult

Key = tuple[str, str]  # (role, column)


def _gate_cell(passed: bool) -> str:
    return '<td class="pass">PASS</td>' if passed else '<td class="fail">FAIL</td>'


# --- summary ------------------------------------------------------------------------------


def _dataset_state(result: CheckResult) -> str:
    if result.dataset_drift is None:
        return "no feature has values to test"
    return "DATASET DRIFT" if result.dataset_drift else "no dataset drift"


def _summary(result: CheckResult, anchors: dict[Key, str]) -> str:
    features = [c for c in result.role_columns("feature") if c.drifted is not None]
    drifted = result.drifted()
    facts = [
        ("model", escape(result.model)),
        ("version", escape(result.version)),
        (
            "profile",
            f"{escape(result.profile)} ({escape(result.task)}, "
            f"{result.reference_rows:,} reference rows)",
        ),
        (
            "data",
            f'{escape(", ".join(result.files))}: <span data-field="rows">{result.rows}</span> rows',
        ),
        (
            "drift",
            f'<span data-field="drifted_features">{sum(1 for c in features if c.drifted)}'
            f'</span> of <span data-field="features">{len(features)}</span> features drifted, '
            f'share <span data-field="drift_share">{number(result.drift_share)}</span> '
            f"(dataset drift at >= {result.settings.share:g}): {_dataset_state(result)}",
        ),
    ]
    items = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    gates = (
        table(
            ("result", "gate", "detail"),
            [
                [
                    _gate_cell(g.passed),
                    td(g.name),
                    td(g.detail),
                ]
                for g in result.gates
            ],
        )
        if result.gates
        else "<p>No gate was requested.</p>"
    )
    links = ", ".join(
        f'<a href="#{anchors[(c.role, c.column)]}">{escape(c.column)}</a> ({escape(c.role)})'
        for c in drifted
    )
    return (
        f'<section class="summary {"pass" if result.passed else "fail"}">'
        f'<h1><span class="badge" data-field="verdict">{verdict(result)}</span> modelmon check'
        f"</h1><dl>{items}</dl><h2>Gates</h2>{gates}<h2>Drifted columns</h2>"
        f"<p>{links or 'No column drifted.'}</p>{_notes(result)}</section>"
    )


def _notes(result: CheckResult) -> str:
    notes = []
    if result.absent_columns:
        names = ", ".join(escape(c.source) for c in result.absent_columns)
        notes.append(f"<p>Profile columns not in the data: {names}.</p>")
    if result.unknown_columns:
        notes.append(
            f"<p>Data columns not in the profile: {escape(', '.join(result.unknown_columns))}.</p>"
        )
    return "".join(notes)


# --- columns ------------------------------------------------------------------------------


def anchors(result: CheckResult) -> dict[Key, str]:
    """A unique element id per column (its position: names may hold any character)."""
    return {(c.role, c.column): f"col-{i}" for i, c in enumerate(result.columns)}


def _state(c: ColumnResult) -> tuple[str, str]:
    # Fewer than 30 values: statistics, but no threshold and so no verdict.
    if c.drifted is None or c.threshold is None or not math.isfinite(c.threshold):
        return "none", "NO VERDICT"
    return ("drift", "DRIFT") if c.drifted else ("ok", "OK")


def _gauge(c: ColumnResult) -> str:
    if c.drifted is None or c.value is None or c.threshold is None:
        return ""
    if c.statistic is not None and c.statistic.endswith("pvalue"):
        p, level = c.pvalue if c.pvalue is not None else math.nan, c.threshold
        value = -math.log10(max(p, 1e-300)) if math.isfinite(p) else 0.0
        marks = [charts.Mark("level", -math.log10(max(level, 1e-300)), "effective")]
        title = f"p-value {number(p)} against level {number(level)} (-log10 scale)"
        desc = f"{title}: drift when the p-value is at or below the level."
    else:
        value = c.value
        marks = [charts.Mark("effect threshold", c.effect_threshold or 0.0, "effect")]
        if c.noise_floor is not None:
            marks.append(charts.Mark("noise floor", c.noise_floor, "floor"))
        title = f"{c.statistic} {number(c.value)} against threshold {number(c.threshold)}"
        desc = (
            f"{title}: effect threshold {number(c.effect_threshold)}, noise floor "
            f"{number(c.noise_floor)}; drift when the value reaches the larger."
        )
    if not all(math.isfinite(x) for x in (value, *(m.value for m in marks))):
        return ""  # nothing to draw to scale; the table below still says it
    return charts.gauge(value, marks, drifted=bool(c.drifted), title=title, desc=desc)


def _column(c: ColumnResult, rows: int, anchor: str) -> str:
    state, label = _state(c)
    parts = [
        f'<section class="card column {state}" id="{anchor}" data-role="{escape(c.role)}" '
        f'data-column="{escape(c.column)}"><h3><span class="badge {state}">{label}</span> '
        f"{escape(c.column)} <small>{escape(c.role)}, {escape(c.type)}"
        f"{'' if c.source == c.column else ', from ' + escape(c.source)}</small></h3>"
    ]
    d = c.distribution
    if d is not None:
        parts.append(
            charts.distribution_bars(
                d.labels(),
                d.reference,
                d.shares(),
                title=f"{c.column}: reference and current share per bin",
                column=c.column,
            )
        )
        parts.append(
            f'<p class="legend"><i class="key ref"></i>reference <i class="key cur">'
            f'</i>current (<span data-field="values">{c.values}</span> values)</p>'
        )
    parts.append(_gauge(c))
    kv = [
        ("method", escape(c.method or "-")),
        (escape(c.statistic or "statistic"), f'<span data-field="value">{number(c.value)}</span>'),
        ("effective threshold", f'<span data-field="threshold">{number(c.threshold)}</span>'),
        (
            "effect threshold",
            f'<span data-field="effect_threshold">{number(c.effect_threshold)}</span>',
        ),
        ("noise floor", f'<span data-field="noise_floor">{number(c.noise_floor)}</span>'),
        ("p-value", f'<span data-field="pvalue">{number(c.pvalue)}</span>'),
        ("tested at level", f'<span data-field="level">{number(c.level)}</span>'),
    ]
    for name, count in c.quality.items():
        share = f"{100 * count / rows:.1f}%" if rows else "0.0%"
        kv.append(
            (name.replace("_", " "), f'<span data-field="quality.{name}">{count}</span> ({share})')
        )
    parts.append('<dl class="kv">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in kv))
    parts.append("</dl></section>")
    return "".join(parts)


def _columns(result: CheckResult, ids: dict[Key, str]) -> str:
    ordered = sorted(result.columns, key=lambda c: not c.drifted)  # drifted first, stable
    cards = "".join(_column(c, result.rows, ids[(c.role, c.column)]) for c in ordered)
    return f'<section class="columns"><h2>Columns</h2><div class="grid">{cards}</div></section>'


def render_html(result: CheckResult) -> str:
    """The whole report: summary and gates, performance, estimated performance, then
    every column (drifted ones first)."""
    ids = anchors(result)
    body = [_summary(result, ids)]
    if result.performance is not None:
        body.append(performance_section(result.performance))
    if result.estimated is not None:
        body.append(estimated_section(result.estimated))
    body.append(_columns(result, ids))
    title = f"modelmon check {verdict(result)}: {result.model} {result.version}"
    footer = f"modelmon {__version__}; the same numbers in full precision: --format json"
    return page(title, "".join(body), footer)
