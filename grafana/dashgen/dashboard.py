"""Dashboard assembly: variables, annotations, grid layout and the top-level JSON."""

from __future__ import annotations

from .panels import DATASOURCE, JSON

SCHEMA_VERSION = 39  # Grafana 10.4/11.x dashboard JSON; validated against schemaVersion <= 42
TAG = "modelmon"

# Selectors shared by the panels: multi-value variables are matched with =~ so that a
# selection of several values (Grafana formats them as a regex alternation) works.
M = 'model=~"$model"'
MV = 'model=~"$model", version=~"$version"'
MVW = 'model=~"$model", version=~"$version", window=~"$window"'
MVC = 'model=~"$model", version=~"$version", column=~"$column"'
MVCW = 'model=~"$model", version=~"$version", column=~"$column", window=~"$window"'


def datasource_variable() -> JSON:
    """The ``datasource`` variable: every panel queries the Prometheus chosen here."""
    return {
        "type": "datasource",
        "name": "datasource",
        "label": "Data source",
        "query": "prometheus",
        "refresh": 1,
        "regex": "",
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
    }


def query_variable(
    name: str,
    query: str,
    *,
    label: str,
    multi: bool = False,
    sort: int = 7,
    description: str = "",
) -> JSON:
    """A variable filled by ``label_values()``; ``multi`` adds an "All" choice.

    ``sort`` follows Grafana's codes: 7 natural ascending, 8 natural descending. The
    variable is refreshed on every time-range change so new versions and windows
    appear without reloading the dashboard.
    """
    out: JSON = {
        "type": "query",
        "name": name,
        "label": label,
        "description": description or f"Values of the {name} label.",
        "datasource": dict(DATASOURCE),
        "definition": query,
        "query": query,
        "refresh": 2,
        "regex": "",
        "sort": sort,
        "hide": 0,
        "multi": multi,
        "includeAll": multi,
        "options": [],
    }
    if multi:
        # ".*" instead of Grafana's alternation of every value keeps queries short.
        out["allValue"] = ".*"
    return out


def model_variable(*, multi: bool = True) -> JSON:
    """The ``model`` variable (DESIGN.md section 8: from modelmon_events_total)."""
    return query_variable(
        "model", "label_values(modelmon_events_total, model)", label="Model", multi=multi
    )


def version_variable() -> JSON:
    """The ``version`` variable: versions of the selected models that saw traffic."""
    return query_variable(
        "version",
        'label_values(modelmon_events_total{model=~"$model"}, version)',
        label="Version",
        multi=True,
    )


def window_variable() -> JSON:
    """The ``window`` variable: the sliding windows the exporter computes statistics over.

    It defaults to ``1h``, the window the alert rules watch; Grafana falls back to the
    first window when a deployment has no ``1h`` window.
    """
    out = query_variable(
        "window",
        'label_values(modelmon_window_events{model=~"$model"}, window)',
        label="Window",
        description="Sliding window of the statistics computed by the exporter.",
    )
    out["current"] = {"selected": True, "text": "1h", "value": "1h"}
    return out


def column_variable() -> JSON:
    """The ``column`` variable: every binned column (features, prediction, score, label)."""
    return query_variable(
        "column",
        'label_values(modelmon_column_bin_total{model=~"$model"}, column)',
        label="Column",
        multi=True,
    )


def version_change_annotation() -> JSON:
    """Marks when a model version first appears (deployments, canaries, rollbacks).

    A series of ``modelmon_model_info`` that has no sample 10 minutes earlier is a
    version that just started; it is marked for those 10 minutes.
    """
    expr = (
        f"count by (model, version) (modelmon_model_info{{{M}}})"
        f" unless count by (model, version) (modelmon_model_info{{{M}}} offset 10m)"
    )
    return {
        "name": "Version changes",
        "datasource": dict(DATASOURCE),
        "enable": True,
        "hide": False,
        "iconColor": "blue",
        "expr": expr,
        "step": "1m",
        "titleFormat": "{{model}} {{version}} started",
        "textFormat": "New version {{version}} of {{model}}",
        "tagKeys": "model,version",
        "useValueForTime": False,
    }


# Firing modelmon alerts of the selected models, and those with no model label (exporter
# health): "$model|" also matches the empty value of an absent label.
ALERTS_SELECTOR = 'alertstate="firing", alertname=~"Modelmon.+", model=~"$model|"'


def alerts_annotation() -> JSON:
    """Marks the time ranges in which a modelmon alert about the selected models fired."""
    return {
        "name": "Alerts",
        "datasource": dict(DATASOURCE),
        "enable": True,
        "hide": False,
        "iconColor": "red",
        "expr": f"ALERTS{{{ALERTS_SELECTOR}}}",
        "step": "1m",
        "titleFormat": "{{alertname}}",
        "textFormat": "{{severity}}: {{alertname}} ({{model}} {{version}})",
        "tagKeys": "alertname,severity",
        "useValueForTime": False,
    }


def layout(panels: list[JSON]) -> list[JSON]:
    """Place panels left to right in rows of 24 columns, rows on their own line.

    Panel sizes come from each panel's ``gridPos`` w/h; ids are numbered in order.
    """
    x = y = line_height = 0
    for number, each in enumerate(panels, start=1):
        pos = each["gridPos"]
        if each["type"] == "row" or x + pos["w"] > 24:
            x, y, line_height = 0, y + line_height, 0
        pos["x"], pos["y"] = x, y
        each["id"] = number
        x += pos["w"]
        line_height = max(line_height, pos["h"])
        if each["type"] == "row":
            x, y, line_height = 0, y + pos["h"], 0
    return panels


def dashboard(
    uid: str, title: str, description: str, variables: list[JSON], panels: list[JSON]
) -> JSON:
    """The top-level dashboard JSON with the shared annotations, tags and time settings."""
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": [TAG],
        "editable": True,
        "graphTooltip": 1,
        "timezone": "browser",
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "timepicker": {},
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "links": [
            {
                "title": "modelmon dashboards",
                "type": "dashboards",
                "icon": "external link",
                "tooltip": "",
                "tags": [TAG],
                "asDropdown": True,
                "targetBlank": False,
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "annotations": {"list": [version_change_annotation(), alerts_annotation()]},
        "templating": {"list": [datasource_variable(), *variables]},
        "panels": layout(panels),
    }
