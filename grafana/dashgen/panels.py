"""Builders of Grafana panels, targets and rows (dashboard JSON model, schemaVersion 39).

Every panel and target points at the dashboard's ``datasource`` variable, never at a
datasource uid, so the dashboards work with whatever uid a Grafana gives its
Prometheus (compose provisioning, kube-prometheus-stack, Grafana Cloud).
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]

DATASOURCE: JSON = {"type": "prometheus", "uid": "${datasource}"}

# Colours of threshold steps; the first step's value is null (-Infinity).
GREEN, YELLOW, ORANGE, RED, BLUE = "green", "yellow", "orange", "red", "blue"


def target(expr: str, legend: str = "", *, instant: bool = False, table: bool = False) -> JSON:
    """A Prometheus query: a range query unless ``instant``; ``table`` for table frames."""
    return {
        "datasource": dict(DATASOURCE),
        "editorMode": "code",
        "expr": expr,
        "format": "table" if table else "time_series",
        "instant": instant,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "refId": "",  # filled in by panel()
    }


def heatmap_target(expr: str) -> JSON:
    """A range query of histogram buckets read by the heatmap as ``le`` rows."""
    out = target(expr, "{{le}}")
    out["format"] = "heatmap"
    return out


def thresholds(*steps: tuple[float, str], base: str = GREEN) -> JSON:
    """Absolute thresholds: ``base`` below the first step, then each (value, colour)."""
    return {
        "mode": "absolute",
        "steps": [{"color": base, "value": None}]
        + [{"color": colour, "value": value} for value, colour in steps],
    }


def field_defaults(
    unit: str = "short",
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    steps: JSON | None = None,
    custom: JSON | None = None,
    mappings: list[JSON] | None = None,
    colour_mode: str = "palette-classic",
) -> JSON:
    """The ``fieldConfig`` of a panel: unit, range, thresholds, colour and mappings."""
    defaults: JSON = {
        "unit": unit,
        "color": {"mode": colour_mode},
        "thresholds": steps or thresholds(),
        "mappings": mappings or [],
    }
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    if custom:
        defaults["custom"] = custom
    return {"defaults": defaults, "overrides": []}


def panel(
    kind: str,
    title: str,
    targets: list[JSON],
    *,
    description: str,
    fields: JSON | None = None,
    options: JSON | None = None,
    transformations: list[JSON] | None = None,
    size: tuple[int, int] = (12, 8),
) -> JSON:
    """A panel of plugin ``kind``; ``size`` is (width of 24, height) in grid units."""
    for index, each in enumerate(targets):
        each["refId"] = chr(ord("A") + index)
    out: JSON = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": dict(DATASOURCE),
        "targets": targets,
        "fieldConfig": fields or field_defaults(),
        "options": options or {},
        "gridPos": {"w": size[0], "h": size[1], "x": 0, "y": 0},
    }
    if transformations:
        out["transformations"] = transformations
    return out


def timeseries(
    title: str,
    targets: list[JSON],
    *,
    description: str,
    unit: str = "short",
    minimum: float | None = None,
    maximum: float | None = None,
    steps: JSON | None = None,
    log_scale: bool = False,
    size: tuple[int, int] = (12, 8),
) -> JSON:
    """A time series graph with a table legend showing the last and mean values."""
    custom: JSON = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "spanNulls": False}
    if steps:
        # Draw the thresholds as dashed lines: they are the alerting boundaries.
        custom["thresholdsStyle"] = {"mode": "dashed"}
    if log_scale:
        custom["scaleDistribution"] = {"type": "log", "log": 10}
    return panel(
        "timeseries",
        title,
        targets,
        description=description,
        fields=field_defaults(unit, minimum=minimum, maximum=maximum, steps=steps, custom=custom),
        options={
            "legend": {
                "displayMode": "table",
                "placement": "bottom",
                "showLegend": True,
                "calcs": ["lastNotNull", "mean"],
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        size=size,
    )


def stat(
    title: str,
    targets: list[JSON],
    *,
    description: str,
    unit: str = "short",
    steps: JSON | None = None,
    size: tuple[int, int] = (6, 4),
) -> JSON:
    """A single-value panel of each series' last value, coloured by thresholds."""
    return panel(
        "stat",
        title,
        targets,
        description=description,
        fields=field_defaults(unit, steps=steps, colour_mode="thresholds"),
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "textMode": "auto",
            "orientation": "auto",
            "justifyMode": "auto",
        },
        size=size,
    )


def bargauge(
    title: str,
    targets: list[JSON],
    *,
    description: str,
    unit: str = "short",
    steps: JSON | None = None,
    maximum: float | None = None,
    size: tuple[int, int] = (12, 8),
) -> JSON:
    """Horizontal bars of each series' last value, coloured by thresholds."""
    return panel(
        "bargauge",
        title,
        targets,
        description=description,
        fields=field_defaults(
            unit, minimum=0, maximum=maximum, steps=steps, colour_mode="thresholds"
        ),
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "orientation": "horizontal",
            "displayMode": "gradient",
            "showUnfilled": True,
            "valueMode": "color",
        },
        size=size,
    )


def state_timeline(
    title: str,
    targets: list[JSON],
    *,
    description: str,
    mappings: list[JSON],
    steps: JSON,
    size: tuple[int, int] = (12, 8),
) -> JSON:
    """One coloured band per series over time: a state (0/1) at a glance."""
    return panel(
        "state-timeline",
        title,
        targets,
        description=description,
        fields=field_defaults(
            "short",
            steps=steps,
            mappings=mappings,
            colour_mode="thresholds",
            custom={"fillOpacity": 80, "lineWidth": 0},
        ),
        options={
            "showValue": "never",
            "mergeValues": True,
            "rowHeight": 0.9,
            "alignValue": "left",
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "single", "sort": "none"},
        },
        size=size,
    )


def table(
    title: str,
    targets: list[JSON],
    *,
    description: str,
    transformations: list[JSON],
    unit: str = "short",
    size: tuple[int, int] = (12, 8),
) -> JSON:
    """A table of instant results, shaped by ``transformations``."""
    return panel(
        "table",
        title,
        targets,
        description=description,
        fields=field_defaults(unit, custom={"align": "auto", "cellOptions": {"type": "auto"}}),
        options={"showHeader": True, "cellHeight": "sm", "footer": {"show": False}},
        transformations=transformations,
        size=size,
    )


def barchart(
    title: str,
    targets: list[JSON],
    *,
    description: str,
    x_field: str,
    transformations: list[JSON],
    unit: str = "percentunit",
    size: tuple[int, int] = (12, 8),
) -> JSON:
    """Grouped bars of table columns against ``x_field`` (e.g. bin shares by bin)."""
    return panel(
        "barchart",
        title,
        targets,
        description=description,
        fields=field_defaults(unit, minimum=0, custom={"fillOpacity": 80, "lineWidth": 1}),
        options={
            "xField": x_field,
            "orientation": "vertical",
            "groupWidth": 0.7,
            "barWidth": 0.9,
            "showValue": "never",
            "stacking": "none",
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "none"},
        },
        transformations=transformations,
        size=size,
    )


def heatmap(
    title: str,
    targets: list[JSON],
    *,
    description: str,
    unit: str = "short",
    size: tuple[int, int] = (12, 8),
) -> JSON:
    """A heatmap of pre-bucketed series (one row per series, no re-bucketing)."""
    return panel(
        "heatmap",
        title,
        targets,
        description=description,
        fields=field_defaults("short", custom={"scaleDistribution": {"type": "linear"}}),
        options={
            "calculate": False,
            "cellGap": 1,
            "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64, "exponent": 0.5},
            "yAxis": {"axisPlacement": "left", "unit": unit},
            "rowsFrame": {"layout": "auto"},
            "legend": {"show": True},
            "tooltip": {"mode": "single", "yHistogram": False, "showColorScale": False},
            "exemplars": {"color": "rgba(255,0,255,0.7)"},
        },
        size=size,
    )


def row(title: str) -> JSON:
    """A row header; its panels follow it in the dashboard's flat panel list."""
    return {
        "type": "row",
        "title": title,
        "collapsed": False,
        "panels": [],
        "id": 0,
        "gridPos": {"w": 24, "h": 1, "x": 0, "y": 0},
    }


def repeated(out: JSON, variable: str, per_row: int = 2) -> JSON:
    """Repeat ``out`` once per selected value of ``variable`` (horizontally)."""
    out["repeat"] = variable
    out["repeatDirection"] = "h"
    out["maxPerRow"] = per_row
    return out


# Value mappings shared by the 0/1 state panels.
STATE_MAPPINGS: list[JSON] = [
    {
        "type": "value",
        "options": {
            "0": {"text": "stable", "color": GREEN, "index": 0},
            "1": {"text": "drift", "color": RED, "index": 1},
        },
    }
]
