"""The Performance dashboard: realized and estimated quality, errors, labels, latency."""

from __future__ import annotations

from .dashboard import MV, MVW, M, dashboard, model_variable, version_variable, window_variable
from .panels import (
    JSON,
    heatmap_target,
    row,
    stat,
    table,
    target,
    timeseries,
)
from .panels import heatmap as heatmap_panel

SERIES = "{{model}} {{version}}"


def versus(
    metric: str,
    title: str,
    description: str,
    *,
    unit: str = "percentunit",
    reference: str = "",
    estimated: str = "",
    width: int = 12,
) -> JSON:
    """A gauge over time next to its estimate and its reference baseline."""
    targets = [target(f"{metric}{{{MVW}}}", "realized " + SERIES)]
    if estimated:
        targets.append(target(f"{estimated}{{{MVW}}}", "estimated " + SERIES))
    if reference:
        targets.append(target(f"{reference}{{{MV}}}", "reference " + SERIES))
    return timeseries(
        title, targets, description=description, unit=unit, minimum=0, size=(width, 8)
    )


def per_class(metric: str, title: str) -> JSON:
    """Precision, recall or F1 per class over time."""
    return timeseries(
        title,
        [target(f"{metric}{{{MVW}}}", "{{class}} " + SERIES)],
        description=f"{title} of labeled predictions in the window, one line per class.",
        unit="percentunit",
        minimum=0,
        maximum=1,
        size=(8, 8),
    )


def classification() -> list[JSON]:
    """Accuracy, per-class precision/recall/F1, ROC AUC, log loss, confusion matrix."""
    confusion = table(
        "Confusion matrix (time range, all replicas)",
        [
            target(
                f"sum by (actual, predicted) (increase(modelmon_confusion_total{{{MV}}}"
                "[$__range]))",
                instant=True,
                table=True,
            )
        ],
        description="Labeled predictions over the time range: rows are the actual class, "
        "columns the predicted class, from the additive counters of every replica.",
        transformations=[
            {
                "id": "groupingToMatrix",
                "options": {
                    "rowField": "actual",
                    "columnField": "predicted",
                    "valueField": "Value",
                    "emptyValue": "zero",
                },
            }
        ],
    )
    return [
        row("Classification"),
        versus(
            "modelmon_accuracy",
            "Accuracy: realized, estimated, reference",
            "Realized accuracy (labeled predictions, by label arrival), the estimate "
            "from calibrated scores before labels arrive (by prediction time), and the "
            "reference accuracy.",
            estimated="modelmon_estimated_accuracy",
            reference="modelmon_reference_accuracy",
        ),
        confusion,
        per_class("modelmon_precision", "Precision by class"),
        per_class("modelmon_recall", "Recall by class"),
        per_class("modelmon_f1", "F1 by class"),
        versus(
            "modelmon_roc_auc",
            "ROC AUC: realized, estimated, reference",
            "ROC AUC of labeled binary scores in the window, its estimate from "
            "calibrated scores, and the reference ROC AUC.",
            unit="none",
            width=9,
            estimated="modelmon_estimated_roc_auc",
            reference="modelmon_reference_roc_auc",
        ),
        stat(
            "Accuracy (time range, all replicas)",
            [
                target(
                    f"sum by (model, version) (increase(modelmon_correct_predictions_total"
                    f"{{{MV}}}[$__range])) / sum by (model, version) (increase("
                    f"modelmon_labeled_predictions_total{{{MV}}}[$__range]))",
                    SERIES,
                    instant=True,
                )
            ],
            description="Correct over labeled predictions over the whole time range, from "
            "the additive counters of every replica.",
            unit="percentunit",
            size=(6, 8),
        ),
        timeseries(
            "Log loss and Brier score",
            [
                target(f"modelmon_log_loss{{{MVW}}}", "log loss " + SERIES),
                target(f"modelmon_brier_score{{{MVW}}}", "Brier " + SERIES),
                target(f"modelmon_reference_log_loss{{{MV}}}", "reference log loss " + SERIES),
                target(f"modelmon_reference_brier_score{{{MV}}}", "reference Brier " + SERIES),
            ],
            description="Mean log loss (nats) and Brier score of the scores in the window, "
            "and their reference values: calibration quality, lower is better.",
            unit="none",
            minimum=0,
            size=(9, 8),
        ),
    ]


def regression() -> list[JSON]:
    """MAE, RMSE and MAPE in the window and over the time range."""
    fleet_mae = (
        f"sum by (model, version) (increase(modelmon_absolute_error_sum{{{MV}}}[$__range]))"
        f" / sum by (model, version) (increase(modelmon_absolute_error_count{{{MV}}}"
        "[$__range]))"
    )
    fleet_rmse = (
        f"sqrt(sum by (model, version) (increase(modelmon_squared_error_sum{{{MV}}}"
        f"[$__range])) / sum by (model, version) (increase(modelmon_squared_error_count"
        f"{{{MV}}}[$__range])))"
    )
    return [
        row("Regression"),
        timeseries(
            "MAE and RMSE",
            [
                target(f"modelmon_mae{{{MVW}}}", "MAE " + SERIES),
                target(f"modelmon_rmse{{{MVW}}}", "RMSE " + SERIES),
                target(f"modelmon_reference_mae{{{MV}}}", "reference MAE " + SERIES),
                target(f"modelmon_reference_rmse{{{MV}}}", "reference RMSE " + SERIES),
            ],
            description="Mean absolute and root mean squared error of labeled predictions "
            "in the window (label units), with the reference values.",
            minimum=0,
            size=(9, 8),
        ),
        versus(
            "modelmon_mape",
            "MAPE",
            "Mean absolute percentage error in the window.",
            reference="modelmon_reference_mape",
            width=9,
        ),
        stat(
            "MAE and RMSE (time range, all replicas)",
            [
                target(fleet_mae, "MAE " + SERIES, instant=True),
                target(fleet_rmse, "RMSE " + SERIES, instant=True),
            ],
            description="Errors over the whole time range from the additive error "
            "summaries of every replica.",
            size=(6, 8),
        ),
    ]


def labels() -> list[JSON]:
    """Label coverage, label delay and the join's pending, unmatched and expired counts."""
    delay = f"modelmon_label_delay_seconds_bucket{{{MV}}}"
    return [
        row("Labels"),
        timeseries(
            "Label coverage",
            [
                target(
                    f"sum by (model, version) (rate(modelmon_labeled_predictions_total"
                    f"{{{MV}}}[$__rate_interval])) / sum by (model, version) (rate("
                    f"modelmon_events_total{{{MV}}}[$__rate_interval]))",
                    SERIES,
                )
            ],
            description="Labeled predictions per prediction: how much of the traffic the "
            "performance metrics see (labels arrive late, so this lags the traffic).",
            unit="percentunit",
            minimum=0,
            size=(8, 8),
        ),
        timeseries(
            "Label delay quantiles",
            [
                target(
                    f"histogram_quantile({q}, sum by (model, le) (rate({delay}"
                    "[$__rate_interval])))",
                    f"p{round(q * 100)} {{{{model}}}}",
                )
                for q in (0.5, 0.9, 0.99)
            ],
            description="Time from a prediction to its label.",
            unit="s",
            size=(8, 8),
        ),
        heatmap_panel(
            "Label delay distribution",
            [heatmap_target(f"sum by (le) (increase({delay}[$__rate_interval]))")],
            description="Labels per delay bucket over time.",
            unit="s",
            size=(8, 8),
        ),
        timeseries(
            "Label join",
            [
                target(
                    f"sum by (model) (modelmon_pending_predictions{{{M}}})", "pending {{model}}"
                ),
                target(
                    f"sum by (model) (rate(modelmon_labels_total{{{MV}}}[$__rate_interval]))",
                    "labels/s {{model}}",
                ),
                target(
                    f"sum by (model) (rate(modelmon_unmatched_labels_total{{{M}}}"
                    "[$__rate_interval]))",
                    "unmatched labels/s {{model}}",
                ),
                target(
                    f"sum by (model) (rate(modelmon_expired_predictions_total{{{M}}}"
                    "[$__rate_interval]))",
                    "expired predictions/s {{model}}",
                ),
            ],
            description="Predictions waiting for a label; labels joined per second; labels that "
            "found no prediction "
            "and predictions that got no label in time, per second.",
            size=(12, 8),
        ),
        panel_latency(),
    ]


def panel_latency() -> JSON:
    """Model latency quantiles reported by the prediction records."""
    buckets = f"modelmon_prediction_latency_seconds_bucket{{{MV}}}"
    return timeseries(
        "Prediction latency quantiles",
        [
            target(
                f"histogram_quantile({q}, sum by (model, version, le) (rate({buckets}"
                f"[$__rate_interval])))",
                f"p{round(q * 100)} " + SERIES,
            )
            for q in (0.5, 0.9, 0.99)
        ],
        description="Latency the model reported with each prediction (latency_seconds).",
        unit="s",
    )


def build() -> JSON:
    """The modelmon-performance dashboard."""
    return dashboard(
        "modelmon-performance",
        "modelmon / Performance",
        "Model quality from delayed labels and its estimate before labels arrive.",
        [model_variable(), version_variable(), window_variable()],
        [*classification(), *regression(), *labels()],
    )
