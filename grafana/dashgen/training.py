"""The Training dashboard: runs of TrainingRun, their learning curves and resources.

Training series carry ``model`` and ``run`` (the Pushgateway's grouping key, or the
labels of a directly scraped job). Runs started at different times lie side by side on
the time axis; select a time range around them to compare their curves.
"""

from __future__ import annotations

from .dashboard import dashboard, query_variable
from .panels import (
    JSON,
    RED,
    field_defaults,
    panel,
    row,
    stat,
    table,
    target,
    thresholds,
    timeseries,
)

RUN = 'model=~"$model", run=~"$run"'
LEGEND = "{{run}}"


def variables() -> list[JSON]:
    """model, run (several), metric, and the one run whose confusion matrix is shown."""
    return [
        query_variable(
            "model",
            "label_values(modelmon_training_run_info, model)",
            label="Model",
            multi=True,
            description="Models with training runs.",
        ),
        query_variable(
            "run",
            'label_values(modelmon_training_run_info{model=~"$model"}, run)',
            label="Runs",
            multi=True,
            sort=8,
            description="Training runs to overlay (newest names first).",
        ),
        query_variable(
            "metric",
            'label_values(modelmon_training_metric{model=~"$model", run=~"$run"}, metric)',
            label="Metric",
            multi=True,
            description="Metrics logged by the runs.",
        ),
        query_variable(
            "confusion_run",
            'label_values(modelmon_training_confusion_matrix{model=~"$model"}, run)',
            label="Confusion matrix of run",
            sort=8,
            description="The run whose last confusion matrix is shown.",
        ),
    ]


def runs() -> list[JSON]:
    """Counts by status and the table of runs."""
    drop = {"Time": True, "__name__": True, "job": True, "instance": True}
    return [
        row("Runs"),
        stat(
            "Running",
            [target(f'sum(modelmon_training_status{{{RUN}, status="running"}})')],
            description="Selected runs whose last reported status is running.",
            size=(4, 8),
        ),
        stat(
            "Failed",
            [target(f'sum(modelmon_training_status{{{RUN}, status="failed"}})')],
            description="Selected runs that ended with an exception.",
            steps=thresholds((1, RED)),
            size=(4, 8),
        ),
        table(
            "Runs",
            [
                target(
                    f"max by (model, run, status) (modelmon_training_status{{{RUN}}} == 1)",
                    instant=True,
                    table=True,
                ),
                target(
                    f"(max by (model, run) (modelmon_training_end_time_seconds{{{RUN}}})"
                    " or max by (model, run) "
                    f"(0 * modelmon_training_start_time_seconds{{{RUN}}} + time()))"
                    " - on (model, run) max by (model, run) "
                    f"(modelmon_training_start_time_seconds{{{RUN}}})",
                    instant=True,
                    table=True,
                ),
                target(
                    "min by (model, run) (min_over_time("
                    f'modelmon_training_loss{{{RUN}, split="validation"}}[$__range]))',
                    instant=True,
                    table=True,
                ),
                target(
                    "max by (model, run, version, params_digest) "
                    f"(modelmon_training_run_info{{{RUN}}})",
                    instant=True,
                    table=True,
                ),
            ],
            description="Each selected run: status, duration (to its end, or to now while "
            "running), lowest validation loss in the time range, version and parameters' "
            "digest. Runs with the same digest had the same parameters.",
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {**drop, "Value #A": True, "Value #D": True},
                        "renameByName": {
                            "Value #B": "duration (s)",
                            "Value #C": "best validation loss",
                        },
                    },
                },
            ],
            size=(16, 8),
        ),
        table(
            "Best validation metrics",
            [
                target(
                    "max by (model, run, metric) (max_over_time("
                    f'modelmon_training_metric{{{RUN}, split="validation", metric=~"$metric"}}'
                    "[$__range]))",
                    instant=True,
                    table=True,
                )
            ],
            description="Highest value of each validation metric per run in the time range "
            "(for metrics where lower is better, read the learning curve instead).",
            transformations=[
                {
                    "id": "organize",
                    "options": {"excludeByName": drop, "renameByName": {"Value": "best"}},
                }
            ],
            size=(24, 6),
        ),
    ]


def curves() -> list[JSON]:
    """Loss and metrics over time, overlaid per run; step, epoch, learning rate."""

    def graph(
        title: str,
        expr: str,
        description: str,
        legend: str = LEGEND,
        *,
        log_scale: bool = False,
        size: tuple[int, int] = (12, 8),
    ) -> JSON:
        return timeseries(
            title,
            [target(expr, legend)],
            description=description,
            log_scale=log_scale,
            size=size,
        )

    return [
        row("Learning curves"),
        graph(
            "Training loss",
            f'modelmon_training_loss{{{RUN}, split="train"}}',
            "Last logged training loss of each run, as Prometheus sampled it.",
        ),
        graph(
            "Validation loss",
            f'modelmon_training_loss{{{RUN}, split="validation"}}',
            "Validation loss of each run at its last evaluation.",
        ),
        graph(
            "Validation metrics",
            f'modelmon_training_metric{{{RUN}, split="validation", metric=~"$metric"}}',
            "Validation metrics of each run at its last evaluation.",
            "{{run}} {{metric}}",
        ),
        graph(
            "Learning rate",
            f"modelmon_training_learning_rate{{{RUN}}}",
            "Learning rate of each run (schedules show here).",
            log_scale=True,
        ),
        graph(
            "Step",
            f"modelmon_training_step{{{RUN}}}",
            "Last logged step: a flat line while the run is running is a stalled run.",
            size=(8, 8),
        ),
        graph(
            "Epoch",
            f"modelmon_training_epoch{{{RUN}}}",
            "Last logged epoch.",
            size=(8, 8),
        ),
        graph(
            "Non-finite losses",
            f"modelmon_training_nonfinite_loss_total{{{RUN}}}",
            "Losses logged as NaN or infinite, per split.",
            "{{run}} {{split}}",
            size=(8, 8),
        ),
    ]


def confusion() -> list[JSON]:
    """The last confusion matrix of one run, as a colour-scaled matrix."""
    fields = field_defaults(
        "short",
        colour_mode="continuous-YlRd",
        custom={"align": "center", "cellOptions": {"type": "color-background"}},
    )
    return [
        row("Confusion matrix"),
        panel(
            "table",
            "Confusion matrix at the last evaluation",
            [
                target(
                    "sum by (actual, predicted) (modelmon_training_confusion_matrix"
                    '{model=~"$model", run="$confusion_run", split="validation"})',
                    instant=True,
                    table=True,
                )
            ],
            description="Validation examples by actual class (rows) and predicted class "
            "(columns) at the run's last logged evaluation; the diagonal is correct.",
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
        timeseries(
            "Throughput",
            [target(f"rate(modelmon_training_samples_total{{{RUN}}}[$__rate_interval])", LEGEND)],
            description="Training samples per second of each run.",
            unit="short",
            minimum=0,
            size=(12, 10),
        ),
    ]


def resources() -> list[JSON]:
    """GPU and CPU of the training job, and the health of its reporting."""
    gpu_legend = "{{run}} GPU {{gpu}}"
    return [
        row("Resources during training"),
        timeseries(
            "GPU utilization",
            [target(f"modelmon_gpu_utilization_ratio{{{RUN}}}", gpu_legend)],
            description="GPU busy share of the GPUs seen by each run's job.",
            unit="percentunit",
            minimum=0,
            maximum=1,
            size=(8, 8),
        ),
        timeseries(
            "GPU memory",
            [
                target(f"modelmon_gpu_memory_used_bytes{{{RUN}}}", "used " + gpu_legend),
                target(f"modelmon_gpu_memory_reserved_bytes{{{RUN}}}", "reserved " + gpu_legend),
                target(
                    f"modelmon_gpu_process_memory_used_bytes{{{RUN}}}",
                    "pid {{pid}} " + gpu_legend,
                ),
            ],
            description="GPU memory in use (as nvidia-smi shows it), reserved by the driver, "
            "and used by the job's own processes.",
            unit="bytes",
            minimum=0,
            size=(8, 8),
        ),
        timeseries(
            "CPU and memory",
            [
                target(
                    f"rate(modelmon_model_process_cpu_seconds_total{{{RUN}}}[$__rate_interval])",
                    "CPU cores {{run}}",
                ),
                target(
                    f"modelmon_model_process_resident_memory_bytes{{{RUN}}} / 2^30",
                    "resident GiB {{run}}",
                ),
            ],
            description="CPU cores in use and resident memory (GiB) of the training job's "
            "process tree.",
            minimum=0,
            size=(8, 8),
        ),
        timeseries(
            "Reporting health",
            [
                target(
                    f"time() - modelmon_training_heartbeat_timestamp_seconds{{{RUN}}}",
                    "age {{run}}",
                ),
                target(f"modelmon_training_push_failures_total{{{RUN}}}", "push failures {{run}}"),
            ],
            description="Seconds since each run last reported (a killed job's age grows "
            "without bound) and its failed pushes.",
            minimum=0,
            size=(24, 6),
        ),
    ]


def build() -> JSON:
    """The modelmon-training dashboard."""
    return dashboard(
        "modelmon-training",
        "modelmon / Training",
        "Training runs reported by modelmon.TrainingRun: status, learning curves, the "
        "confusion matrix at the last evaluation, throughput, GPU and CPU.",
        variables(),
        [*runs(), *curves(), *confusion(), *resources()],
    )
