"""The performance sections of the HTML report: metrics beside the reference, per-class
scores, the confusion matrix as a heatmap, the ROC and calibration curves, and the
performance estimated from scores. Each takes the data model's result object, so any
report that holds a :class:`PerformanceResult` (a candidate of ``modelmon evaluate``)
can show it the same way.
"""

from __future__ import annotations

from modelmon.checking import charts
from modelmon.checking.page import cell, table, td
from modelmon.checking.render import number
from modelmon.checking.result import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    EstimateResult,
    PerformanceResult,
)


def performance_section(perf: PerformanceResult) -> str:
    """Metrics beside the reference, per-class scores and the performance charts."""
    names = REGRESSION_METRICS if perf.task == "regression" else CLASSIFICATION_METRICS
    rows = [
        [
            td(n),
            cell(perf.metrics.get(n), f"metrics.{n}"),
            cell(perf.reference.get(n), f"reference.{n}"),
            td("-" if perf.delta(n) is None else f"{perf.delta(n):+.4g}"),
        ]
        for n in names
    ]
    parts = [
        f'<section class="performance"><h2>Performance on {perf.rows:,} labeled rows</h2>',
        table(("metric", "value", "reference", "delta"), rows),
    ]
    if perf.classes:
        class_rows = [
            [td(k), *(cell(v[m], f"classes.{k}.{m}") for m in ("precision", "recall", "f1"))]
            for k, v in sorted(perf.classes.items())
        ]
        parts.append(table(("class", "precision", "recall", "f1"), class_rows))
    parts.append(f'<div class="grid charts">{_performance_charts(perf)}</div></section>')
    return "".join(parts)


def _performance_charts(perf: PerformanceResult) -> str:
    out = []
    if perf.confusion is not None:
        chart = charts.heatmap(
            perf.confusion.classes,
            perf.confusion.counts,
            title="Confusion matrix (rows: actual class)",
        )
        out.append(
            f'<figure class="card">{chart}<figcaption>Confusion matrix; shade: share '
            "of the actual class's rows</figcaption></figure>"
        )
    roc = perf.roc_curve
    if roc is not None:
        auc = perf.metrics.get("roc_auc")
        chart = charts.curves(
            [charts.Series("ROC", roc.fpr, roc.tpr, "roc")],
            xlabel="false positive rate",
            ylabel="true positive rate",
            title=f"ROC curve, area {number(auc)}",
            desc=f"ROC curve over {len(roc.fpr)} thresholds of the score; area under the "
            f"curve {number(auc)}; the dashed diagonal is chance.",
            kind="roc",
        )
        out.append(
            f'<figure class="card">{chart}<figcaption>ROC curve, AUC '
            f'<span data-field="roc_auc">{number(auc)}</span></figcaption></figure>'
        )
    if perf.calibration:
        bins = perf.calibration
        chart = charts.curves(
            [
                charts.Series(
                    "calibration",
                    [b.mean_score for b in bins],
                    [b.positive_rate for b in bins],
                    "calibration",
                    points=True,
                )
            ],
            xlabel="mean score",
            ylabel="share of positives",
            title="Calibration curve",
            desc="Share of positive labels against mean score per score bin: "
            + "; ".join(
                f"[{b.lower:g}, {b.upper:g}) {b.rows} rows, score {b.mean_score:.3f}, "
                f"positives {b.positive_rate:.3f}"
                for b in bins
            )
            + ". The dashed diagonal is perfect calibration.",
            kind="calibration",
        )
        out.append(
            f'<figure class="card">{chart}<figcaption>Calibration: share of positives '
            "per score bin</figcaption></figure>"
        )
    return "".join(out)


def estimated_section(e: EstimateResult) -> str:
    """Accuracy and ROC AUC estimated from calibrated scores, beside the reference."""
    rows = [
        [
            td("accuracy"),
            cell(e.estimated_accuracy, "estimated.accuracy"),
            cell(e.reference.get("accuracy"), "estimated.reference.accuracy"),
        ],
        [
            td("roc_auc"),
            cell(e.estimated_roc_auc, "estimated.roc_auc"),
            cell(e.reference.get("roc_auc"), "estimated.reference.roc_auc"),
        ],
    ]
    return (
        f'<section class="estimated"><h2>Estimated performance ({e.rows:,} scored rows, '
        "no labels needed)</h2>"
        + table(("metric", "estimate", "reference"), rows)
        + "<p>From scores calibrated on the reference; assumes no concept drift.</p></section>"
    )
