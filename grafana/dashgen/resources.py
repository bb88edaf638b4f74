"""The Resources dashboard: the model process, its GPUs and the exporter's collectors."""

from __future__ import annotations

from .dashboard import dashboard, model_variable, query_variable
from .panels import JSON, RED, row, state_timeline, table, target, thresholds, timeseries

# Resource series carry no model label: they belong to the scrape target (instance)
# that serves the model, which the instance variable selects.
INSTANCE = 'instance=~"$instance"'
GPU_SELECTOR = 'instance=~"$instance", gpu=~"$gpu"'
GPU_LEGEND = "GPU {{gpu}} {{instance}}"


def variables() -> list[JSON]:
    """model, the instances serving it, and their GPUs."""
    return [
        model_variable(),
        query_variable(
            "instance",
            'label_values(modelmon_model_info{model=~"$model"}, instance)',
            label="Instance",
            multi=True,
            description="modelmon instances (sidecars) serving the selected models.",
        ),
        query_variable(
            "gpu",
            'label_values(modelmon_gpu_info{instance=~"$instance"}, gpu)',
            label="GPU",
            multi=True,
            description="GPU indexes seen by the selected instances (empty without GPUs).",
        ),
    ]


def process() -> list[JSON]:
    """CPU, memory, threads and file descriptors of the model process."""

    def graph(title: str, expr: str, unit: str, description: str) -> JSON:
        return timeseries(
            title,
            [target(expr, "{{instance}}")],
            description=description,
            unit=unit,
            minimum=0,
            size=(6, 8),
        )

    return [
        row("Model process"),
        graph(
            "CPU (cores)",
            f"rate(modelmon_model_process_cpu_seconds_total{{{INSTANCE}}}[$__rate_interval])",
            "none",
            "CPU seconds per second of the model process and its children.",
        ),
        graph(
            "Resident memory",
            f"modelmon_model_process_resident_memory_bytes{{{INSTANCE}}}",
            "bytes",
            "Resident memory of the model process and its children.",
        ),
        graph(
            "Threads",
            f"modelmon_model_process_threads{{{INSTANCE}}}",
            "short",
            "Threads of the model process and its children.",
        ),
        graph(
            "Open file descriptors",
            f"modelmon_model_process_open_fds{{{INSTANCE}}}",
            "short",
            "Open file descriptors of the model process and its children.",
        ),
    ]


def gpu() -> list[JSON]:
    """Utilization, memory, temperature, power and energy of the GPUs."""
    return [
        row("GPU"),
        timeseries(
            "GPU utilization",
            [target(f"modelmon_gpu_utilization_ratio{{{GPU_SELECTOR}}}", GPU_LEGEND)],
            description="Share of the last sample period in which the GPU was busy.",
            unit="percentunit",
            minimum=0,
            maximum=1,
            size=(8, 8),
        ),
        timeseries(
            "GPU memory",
            [
                target(f"modelmon_gpu_memory_used_bytes{{{GPU_SELECTOR}}}", "used " + GPU_LEGEND),
                target(f"modelmon_gpu_memory_total_bytes{{{GPU_SELECTOR}}}", "total " + GPU_LEGEND),
                target(
                    f"modelmon_gpu_memory_reserved_bytes{{{GPU_SELECTOR}}}",
                    "reserved " + GPU_LEGEND,
                ),
            ],
            description="GPU memory in use (as nvidia-smi shows it), in all, and reserved "
            "by the driver (drivers with NVML's version 2 memory query).",
            unit="bytes",
            minimum=0,
            size=(8, 8),
        ),
        timeseries(
            "GPU memory of the model's processes",
            [
                target(
                    f"modelmon_gpu_process_memory_used_bytes{{{GPU_SELECTOR}}}",
                    "pid {{pid}} " + GPU_LEGEND,
                )
            ],
            description="GPU memory used by each process of the model.",
            unit="bytes",
            minimum=0,
            size=(8, 8),
        ),
        timeseries(
            "GPU temperature",
            [target(f"modelmon_gpu_temperature_celsius{{{GPU_SELECTOR}}}", GPU_LEGEND)],
            description="GPU core temperature.",
            unit="celsius",
            steps=thresholds((85, RED)),
            size=(8, 8),
        ),
        timeseries(
            "GPU power",
            [
                target(f"modelmon_gpu_power_watts{{{GPU_SELECTOR}}}", "draw " + GPU_LEGEND),
                target(
                    f"rate(modelmon_gpu_energy_joules_total{{{GPU_SELECTOR}}}[$__rate_interval])",
                    "mean from energy " + GPU_LEGEND,
                ),
            ],
            description="Power draw sampled at scrape time, and the mean power between "
            "scrapes from the energy counter.",
            unit="watt",
            minimum=0,
            size=(8, 8),
        ),
        table(
            "GPUs",
            [target(f"modelmon_gpu_info{{{GPU_SELECTOR}}}", instant=True, table=True)],
            description="GPU models and driver versions.",
            transformations=[
                {
                    "id": "organize",
                    "options": {"excludeByName": {"Time": True, "Value": True, "__name__": True}},
                }
            ],
            size=(8, 8),
        ),
    ]


def exporter() -> list[JSON]:
    """Collector success and duration, scrape health and build."""
    return [
        row("Exporter"),
        state_timeline(
            "Collector success",
            [target(f"modelmon_collector_success{{{INSTANCE}}}", "{{collector}} {{instance}}")],
            description="1 when the collector's last run succeeded; a failing collector "
            "never fails the scrape, it shows here.",
            mappings=[
                {
                    "type": "value",
                    "options": {
                        "0": {"text": "failed", "color": RED, "index": 0},
                        "1": {"text": "ok", "color": "green", "index": 1},
                    },
                }
            ],
            steps=thresholds((1, "green"), base=RED),
            size=(8, 8),
        ),
        timeseries(
            "Collector duration",
            [
                target(
                    f"modelmon_collector_duration_seconds{{{INSTANCE}}}",
                    "{{collector}} {{instance}}",
                )
            ],
            description="Duration of each collector's last run.",
            unit="s",
            minimum=0,
            size=(8, 8),
        ),
        table(
            "Instances",
            [
                target(f"up{{{INSTANCE}}}", instant=True, table=True),
                target(f"modelmon_build_info{{{INSTANCE}}}", instant=True, table=True),
            ],
            description="Scrape health (up) and modelmon version of each instance.",
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True, "Value #B": True, "__name__": True},
                        "renameByName": {"Value #A": "up"},
                    },
                },
            ],
            size=(8, 8),
        ),
        timeseries(
            "HTTP responses by code",
            [
                target(
                    "sum by (handler, code) "
                    f"(rate(modelmon_http_requests_total{{{INSTANCE}}}[$__rate_interval]))",
                    "{{handler}} {{code}}",
                )
            ],
            description="Responses per second by handler and status code. 429: ingest "
            "turned away (queue or byte budget full; senders retry); 503: connections "
            "refused at limits.max_connections; 408: bodies that did not arrive within "
            "limits.body_timeout. See docs/security.md.",
            unit="reqps",
            minimum=0,
            size=(24, 8),
        ),
    ]


def build() -> JSON:
    """The modelmon-resources dashboard."""
    return dashboard(
        "modelmon-resources",
        "modelmon / Resources",
        "CPU, memory and GPU of the model process, and the exporter's own health.",
        variables(),
        [*process(), *gpu(), *exporter()],
    )
