"""The Overview dashboard: traffic, drift at a glance, accuracy, data quality, alerts."""

from __future__ import annotations

from .dashboard import (
    ALERTS_SELECTOR,
    MV,
    MVW,
    M,
    dashboard,
    model_variable,
    version_variable,
    window_variable,
)
from .panels import (
    JSON,
    ORANGE,
    RED,
    STATE_MAPPINGS,
    YELLOW,
    bargauge,
    row,
    stat,
    state_timeline,
    table,
    target,
    thresholds,
    timeseries,
)

PSI_STEPS = thresholds((0.1, YELLOW), (0.2, RED))  # PSI 0.1 moderate, 0.2 DESIGN default
SHARE_STEPS = thresholds((0.25, YELLOW), (0.5, RED))  # 0.5: drift.share default


def traffic() -> list[JSON]:
    """Predictions per second, events in the window, labeled share."""
    return [
        row("Traffic"),
        timeseries(
            "Predictions per second",
            [
                target(
                    f"sum by (model, version) (rate(modelmon_events_total{{{MV}}}"
                    "[$__rate_interval]))",
                    "{{model}} {{version}}",
                )
            ],
            description="Accepted prediction records per second, all replicas summed.",
            unit="reqps",
        ),
        stat(
            "Predictions in the window",
            [target(f"sum by (model) (modelmon_window_events{{{MVW}}})", "{{model}}")],
            description="Prediction records in the selected sliding window, all replicas.",
            size=(6, 8),
        ),
        stat(
            "Labeled share (time range)",
            [
                target(
                    f"sum by (model) (increase(modelmon_labeled_predictions_total{{{MV}}}"
                    f"[$__range])) / sum by (model) (increase(modelmon_events_total{{{MV}}}"
                    "[$__range]))",
                    "{{model}}",
                    instant=True,
                )
            ],
            description="Share of predictions of the time range that received a label.",
            unit="percentunit",
            steps=thresholds((0.01, "green"), base=ORANGE),
            size=(6, 8),
        ),
    ]


def drift() -> list[JSON]:
    """Dataset drift share, drifted columns over time, PSI and a table of statistics."""
    return [
        row("Drift"),
        stat(
            "Dataset drift share",
            [
                target(
                    f"max by (model, version) (modelmon_dataset_drift_share{{{MVW}}})",
                    "{{model}} {{version}}",
                )
            ],
            description="Share of features that drifted in the window; dataset drift "
            "is declared at drift.share (default 0.5).",
            unit="percentunit",
            steps=SHARE_STEPS,
            size=(6, 8),
        ),
        state_timeline(
            "Drifted columns",
            [
                target(
                    f"max by (model, column) (modelmon_drift_detected{{{MVW}}})",
                    "{{model}} / {{column}}",
                )
            ],
            description="Per column: drift detected by the column's method and threshold "
            "(red) or not (green), every column of the selected models.",
            mappings=STATE_MAPPINGS,
            steps=thresholds((1, RED)),
            size=(18, 8),
        ),
        bargauge(
            "PSI by column (now)",
            [
                target(
                    f"max by (model, column) (modelmon_drift_psi{{{MVW}}})",
                    "{{model}} / {{column}}",
                    instant=True,
                )
            ],
            description="Population stability index of each column in the window. "
            "0.1: moderate shift, 0.2: significant (the psi method's default threshold).",
            steps=PSI_STEPS,
        ),
        drift_table(),
    ]


def drift_table() -> JSON:
    """One row per column with its current drift statistics side by side."""
    stats = [
        ("modelmon_drift_psi", "PSI"),
        ("modelmon_drift_jensen_shannon", "Jensen-Shannon"),
        ("modelmon_drift_wasserstein", "Wasserstein (std)"),
        ("modelmon_drift_detected", "Drift"),
    ]
    targets = [
        target(f"max by (model, column) ({name}{{{MVW}}})", instant=True, table=True)
        for name, _ in stats
    ]
    renames = {f"Value #{chr(ord('A') + i)}": title for i, (_, title) in enumerate(stats)}
    return table(
        "Drift statistics by column (now)",
        targets,
        description="Current drift statistics per column in the window. Wasserstein is "
        "divided by the reference standard deviation; it is empty for categorical columns.",
        transformations=[
            {"id": "merge", "options": {}},
            {
                "id": "organize",
                "options": {"excludeByName": {"Time": True}, "renameByName": renames},
            },
        ],
    )


def performance() -> list[JSON]:
    """Realized, estimated and reference accuracy; accuracy from counters; ROC AUC."""
    return [
        row("Performance"),
        timeseries(
            "Accuracy: realized, estimated, reference",
            [
                target(f"modelmon_accuracy{{{MVW}}}", "realized {{model}} {{version}}"),
                target(f"modelmon_estimated_accuracy{{{MVW}}}", "estimated {{model}} {{version}}"),
                target(f"modelmon_reference_accuracy{{{MV}}}", "reference {{model}} {{version}}"),
            ],
            description="Realized accuracy of labeled predictions (by label arrival), the "
            "estimate from calibrated scores before labels arrive (by prediction time), and "
            "the accuracy on the reference data.",
            unit="percentunit",
            maximum=1,
        ),
        stat(
            "Accuracy (time range, all replicas)",
            [
                target(
                    f"sum by (model) (increase(modelmon_correct_predictions_total{{{MV}}}"
                    f"[$__range])) / sum by (model) (increase("
                    f"modelmon_labeled_predictions_total{{{MV}}}[$__range]))",
                    "{{model}}",
                    instant=True,
                )
            ],
            description="Correct over labeled predictions over the whole time range, from "
            "the additive counters, so every replica counts.",
            unit="percentunit",
            size=(6, 8),
        ),
        stat(
            "ROC AUC",
            [target(f"modelmon_roc_auc{{{MVW}}}", "{{model}} {{version}}")],
            description="ROC AUC of labeled binary predictions in the window.",
            unit="none",
            steps=thresholds((0.6, YELLOW), (0.75, "green"), base=RED),
            size=(6, 8),
        ),
    ]


def data_quality() -> list[JSON]:
    """Data quality problems per second by kind, and missing share by column."""
    kinds = [
        (f"modelmon_column_missing_total{{{MV}}}", "missing"),
        (f"modelmon_column_out_of_range_total{{{MV}}}", "out of range"),
        (f"modelmon_column_unseen_total{{{MV}}}", "unseen category"),
        (f"modelmon_column_type_errors_total{{{MV}}}", "type error"),
        (f"modelmon_rejected_records_total{{{M}}}", "rejected record"),
        (f"modelmon_unknown_fields_total{{{M}}}", "unknown field"),
    ]
    return [
        row("Data quality"),
        timeseries(
            "Data quality problems per second",
            [
                target(
                    f"sum by (model) (rate({series}[$__rate_interval]))", f"{kind} {{{{model}}}}"
                )
                for series, kind in kinds
            ],
            description="Missing, out-of-range, unseen and wrongly typed values, rejected "
            "records and unknown feature keys per second, all columns summed.",
            unit="ops",
        ),
        timeseries(
            "Missing share by column",
            [
                target(
                    f"sum by (model, version, column) (rate(modelmon_column_missing_total"
                    f"{{{MV}}}[$__rate_interval])) / on (model, version) group_left "
                    f"sum by (model, version) (rate(modelmon_events_total{{{MV}}}"
                    "[$__rate_interval]))",
                    "{{model}} / {{column}}",
                )
            ],
            description="Share of records with the column missing (absent, null or NaN).",
            unit="percentunit",
        ),
    ]


def alerts() -> list[JSON]:
    """The alerts firing now for the selected models."""
    return [
        row("Alerts"),
        table(
            "Firing alerts",
            [target(f"ALERTS{{{ALERTS_SELECTOR}}}", instant=True, table=True)],
            description="modelmon alerts firing now for the selected models, and the "
            "exporter's own alerts (Prometheus ALERTS series).",
            transformations=[
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {
                            "Time": True,
                            "Value": True,
                            "__name__": True,
                            "alertstate": True,
                        },
                        "indexByName": {"alertname": 0, "severity": 1, "model": 2},
                    },
                }
            ],
            size=(24, 6),
        ),
    ]


def build() -> JSON:
    """The modelmon-overview dashboard."""
    return dashboard(
        "modelmon-overview",
        "modelmon / Overview",
        "Traffic, drift, performance, data quality and alerts of the monitored models.",
        [model_variable(), version_variable(), window_variable()],
        [*traffic(), *drift(), *performance(), *data_quality(), *alerts()],
    )
