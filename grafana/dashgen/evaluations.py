"""The Evaluations dashboard: ``modelmon evaluate`` results pushed to the Pushgateway.

Each candidate is a group (model, version, dataset); the Pushgateway keeps the latest
evaluation of each, and Prometheus keeps their history.
"""

from __future__ import annotations

from .dashboard import dashboard, query_variable
from .panels import (
    GREEN,
    JSON,
    RED,
    bargauge,
    field_defaults,
    panel,
    row,
    state_timeline,
    table,
    target,
    thresholds,
    timeseries,
)

EVAL = 'model=~"$model", dataset=~"$dataset", version=~"$version"'
METRIC = f'{EVAL}, metric=~"$metric"'
DROP = {"Time": True, "__name__": True, "job": True, "instance": True}


def variables() -> list[JSON]:
    """model, data set, candidates, metrics, and one candidate for its confusion matrix."""
    return [
        query_variable(
            "model",
            "label_values(modelmon_evaluation_metric, model)",
            label="Model",
            multi=True,
            description="Models with evaluations.",
        ),
        query_variable(
            "dataset",
            'label_values(modelmon_evaluation_metric{model=~"$model"}, dataset)',
            label="Data set",
            description="The labelled data set the candidates were evaluated on.",
        ),
        query_variable(
            "version",
            'label_values(modelmon_evaluation_metric{model=~"$model", dataset=~"$dataset"}, '
            "version)",
            label="Candidates",
            multi=True,
        ),
        query_variable(
            "metric",
            'label_values(modelmon_evaluation_metric{model=~"$model", dataset=~"$dataset"}, '
            "metric)",
            label="Metric",
            multi=True,
        ),
        query_variable(
            "confusion_version",
            'label_values(modelmon_evaluation_confusion_matrix{model=~"$model", '
            'dataset=~"$dataset"}, version)',
            label="Confusion matrix of",
            description="The candidate whose confusion matrix is shown.",
        ),
    ]


def side_by_side() -> list[JSON]:
    """Each metric per candidate with its interval, and the differences to serving."""
    return [
        row("Candidates side by side"),
        bargauge(
            "Metrics",
            [target(f"modelmon_evaluation_metric{{{METRIC}}}", "{{metric}} {{version}}")],
            description="Each candidate's metrics on the data set (see the table for the "
            "confidence intervals).",
            size=(12, 10),
        ),
        table(
            "Metrics with confidence intervals",
            [
                target(f"modelmon_evaluation_metric_lower{{{METRIC}}}", instant=True, table=True),
                target(f"modelmon_evaluation_metric{{{METRIC}}}", instant=True, table=True),
                target(f"modelmon_evaluation_metric_upper{{{METRIC}}}", instant=True, table=True),
            ],
            description="Value and percentile bootstrap interval of each metric.",
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": DROP,
                        "renameByName": {
                            "Value #A": "lower",
                            "Value #B": "value",
                            "Value #C": "upper",
                        },
                    },
                },
            ],
            size=(12, 10),
        ),
        table(
            "Differences to the serving model",
            [
                target(f"modelmon_evaluation_difference{{{METRIC}}}", instant=True, table=True),
                target(
                    f"modelmon_evaluation_difference_pvalue{{{METRIC}}}", instant=True, table=True
                ),
            ],
            description="Candidate minus serving model (the baseline label) on the same rows, "
            "and the p-value of the paired test: McNemar's exact test for accuracy, the "
            "paired bootstrap otherwise.",
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": DROP,
                        "renameByName": {"Value #A": "difference", "Value #B": "p-value"},
                    },
                },
            ],
            size=(12, 8),
        ),
        table(
            "Segments",
            [target(f"modelmon_evaluation_segment_metric{{{METRIC}}}", instant=True, table=True)],
            description="Each metric per segment value (segments given to modelmon evaluate "
            "with --segment).",
            transformations=[{"id": "organize", "options": {"excludeByName": DROP}}],
            size=(12, 8),
        ),
    ]


def confusion() -> list[JSON]:
    fields = field_defaults(
        "short",
        colour_mode="continuous-YlRd",
        custom={"align": "center", "cellOptions": {"type": "color-background"}},
    )
    return [
        row("Confusion matrix"),
        panel(
            "table",
            "Confusion matrix",
            [
                target(
                    "sum by (actual, predicted) (modelmon_evaluation_confusion_matrix"
                    '{model=~"$model", dataset=~"$dataset", version="$confusion_version"})',
                    instant=True,
                    table=True,
                )
            ],
            description="Rows of the data set by actual class (rows) and the candidate's "
            "predicted class (columns).",
            fields=fields,
            options={"showHeader": True, "cellHeight": "sm", "footer": {"show": False}},
            transformations=[
                {
                    "id": "groupingToMatrix",
                    "options": {
                        "columnField": "predicted",
                        "rowField": "actual",
                        "valueField": "Value",
                    },
                }
            ],
            size=(12, 10),
        ),
        state_timeline(
            "Gates",
            [target(f"modelmon_evaluation_passed{{{EVAL}}}", "{{version}} {{dataset}}")],
            description="1 when the candidate passed the evaluation's gates.",
            mappings=[
                {
                    "type": "value",
                    "options": {
                        "0": {"text": "failed", "color": RED, "index": 0},
                        "1": {"text": "passed", "color": GREEN, "index": 1},
                    },
                }
            ],
            steps=thresholds((1, GREEN), base=RED),
            size=(12, 10),
        ),
    ]


def history() -> list[JSON]:
    return [
        row("History"),
        timeseries(
            "Metrics over time",
            [target(f"modelmon_evaluation_metric{{{METRIC}}}", "{{version}} {{metric}}")],
            description="The latest evaluation of each candidate as time passes: a step is "
            "a new evaluation of that candidate.",
            size=(12, 8),
        ),
        table(
            "Evaluations",
            [
                target(
                    f"modelmon_evaluation_timestamp_seconds{{{EVAL}}} * 1000",
                    instant=True,
                    table=True,
                ),
                target(f"modelmon_evaluation_rows{{{EVAL}}}", instant=True, table=True),
            ],
            description="When each candidate was last evaluated, and on how many rows.",
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": DROP,
                        "renameByName": {"Value #A": "evaluated at (ms)", "Value #B": "rows"},
                    },
                },
            ],
            size=(12, 8),
        ),
    ]


def build() -> JSON:
    """The modelmon-evaluations dashboard."""
    return dashboard(
        "modelmon-evaluations",
        "modelmon / Evaluations",
        "Candidate models compared by modelmon evaluate: metrics with intervals, paired "
        "differences to the serving model, segments, confusion matrices and history.",
        variables(),
        [*side_by_side(), *confusion(), *history()],
    )
