"""The Versions dashboard: two versions of one model side by side (canary, shadow, A/B)."""

from __future__ import annotations

from .dashboard import dashboard, model_variable, query_variable, window_variable
from .panels import (
    JSON,
    RED,
    YELLOW,
    barchart,
    bargauge,
    row,
    table,
    target,
    thresholds,
    timeseries,
)

VERSIONS = ("a", "b")


def sel(side: str, *, window: bool = False) -> str:
    """The selector of version A or B of the model (optionally in the chosen window)."""
    out = f'model=~"$model", version=~"$version_{side}"'
    return out + ', window=~"$window"' if window else out


def variables() -> list[JSON]:
    """model (one), version_a (oldest first) and version_b (newest first), window."""
    versions = 'label_values(modelmon_events_total{model=~"$model"}, version)'
    return [
        model_variable(multi=False),
        # Opposite sort orders make A default to the oldest and B to the newest version.
        query_variable(
            "version_a",
            versions,
            label="Version A",
            sort=7,
            description="The baseline version (default: the first by name).",
        ),
        query_variable(
            "version_b",
            versions,
            label="Version B",
            sort=8,
            description="The candidate version (default: the last by name).",
        ),
        window_variable(),
    ]


def pair(
    title: str,
    template: str,
    description: str,
    *,
    unit: str = "percentunit",
    window: bool = True,
    size: tuple[int, int] = (12, 8),
) -> JSON:
    """One graph with the same query for version A and version B.

    ``template`` holds ``{sel}`` where the version's selector goes.
    """
    targets = [
        target(template.format(sel=sel(side, window=window)), f"$version_{side}")
        for side in VERSIONS
    ]
    return timeseries(title, targets, description=description, unit=unit, minimum=0, size=size)


def quality() -> list[JSON]:
    """Traffic, accuracy, estimated accuracy, ROC AUC and errors for both versions."""
    return [
        row("Traffic and quality"),
        pair(
            "Predictions per second",
            "sum(rate(modelmon_events_total{{{sel}}}[$__rate_interval]))",
            "Accepted prediction records per second, all replicas.",
            unit="reqps",
            window=False,
        ),
        pair(
            "Accuracy",
            "max(modelmon_accuracy{{{sel}}})",
            "Realized accuracy of labeled predictions in the window.",
        ),
        pair(
            "Estimated accuracy",
            "max(modelmon_estimated_accuracy{{{sel}}})",
            "Accuracy estimated from calibrated scores before labels arrive.",
            size=(8, 8),
        ),
        pair(
            "ROC AUC",
            "max(modelmon_roc_auc{{{sel}}})",
            "ROC AUC of labeled binary scores in the window.",
            unit="none",
            size=(8, 8),
        ),
        pair(
            "MAE",
            "max(modelmon_mae{{{sel}}})",
            "Mean absolute error of labeled regression predictions in the window.",
            unit="none",
            size=(8, 8),
        ),
        pair(
            "Prediction latency p90",
            "histogram_quantile(0.9, sum by (le) (rate("
            "modelmon_prediction_latency_seconds_bucket{{{sel}}}[$__rate_interval])))",
            "90th percentile of the latency reported with the predictions.",
            unit="s",
            window=False,
        ),
        pair(
            "Missing share",
            "sum(rate(modelmon_column_missing_total{{{sel}}}[$__rate_interval])) / "
            "sum(rate(modelmon_events_total{{{sel}}}[$__rate_interval]))",
            "Missing values per record, all columns.",
            window=False,
        ),
    ]


def drift() -> list[JSON]:
    """Dataset drift share and PSI per column for both versions."""
    psi = [
        bargauge(
            f"PSI by column: $version_{side}",
            [
                target(
                    f"max by (column) (modelmon_drift_psi{{{sel(side, window=True)}}})",
                    "{{column}}",
                    instant=True,
                )
            ],
            description="Population stability index of each column in the window.",
            steps=thresholds((0.1, YELLOW), (0.2, RED)),
        )
        for side in VERSIONS
    ]
    return [
        row("Drift"),
        pair(
            "Dataset drift share",
            "max(modelmon_dataset_drift_share{{{sel}}})",
            "Share of features that drifted in the window.",
            size=(24, 6),
        ),
        *psi,
    ]


def predictions() -> list[JSON]:
    """The prediction distribution and the confusion matrix of both versions."""
    shares = [
        target(
            f"sum by (column, bin) (increase(modelmon_column_bin_total{{{sel(side)}, "
            f'role="prediction"}}[$__range])) / ignoring (bin) group_left sum by (column) '
            f'(increase(modelmon_column_bin_total{{{sel(side)}, role="prediction"}}'
            "[$__range]))",
            instant=True,
            table=True,
        )
        for side in VERSIONS
    ]
    confusion = [
        table(
            f"Confusion matrix: $version_{side}",
            [
                target(
                    f"sum by (actual, predicted) (increase(modelmon_confusion_total"
                    f"{{{sel(side)}}}[$__range]))",
                    instant=True,
                    table=True,
                )
            ],
            description="Labeled predictions over the time range: rows actual, columns predicted.",
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
            size=(6, 8),
        )
        for side in VERSIONS
    ]
    return [
        row("Predictions"),
        barchart(
            "Prediction distribution",
            shares,
            description="Share of predictions in each bin (class, or value bin for "
            "regression) over the time range, version A against version B.",
            x_field="bin",
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True, "column": True},
                        "renameByName": {"Value #A": "$version_a", "Value #B": "$version_b"},
                    },
                },
                {"id": "sortBy", "options": {"sort": [{"field": "bin"}]}},
            ],
        ),
        *confusion,
    ]


def build() -> JSON:
    """The modelmon-versions dashboard."""
    return dashboard(
        "modelmon-versions",
        "modelmon / Versions",
        "Two versions of a model side by side: traffic, quality, drift and predictions.",
        variables(),
        [*quality(), *drift(), *predictions()],
    )
