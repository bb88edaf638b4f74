"""Read the PromQL out of dashboard JSON: every query, its variables, its metric names.

Used by the bundle's tests (schema, contract and live panel checks) on the JSON files,
whichever tool wrote them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# Grafana's built-in variables that the dashboards use, with the meaning they have.
GLOBAL_VARIABLES = ("__rate_interval", "__interval", "__range", "__range_s")

_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
# An identifier not preceded by another name character or "$" (a variable).
_NAME = r"(?<![\w:$.])([a-zA-Z_:][\w:]*)"
_SELECTOR = re.compile(_NAME + r"(?=\s*\{)")
_SERIES_LIKE = re.compile(_NAME + r"(?=\s*[\[)\s,]|\s*$)")


@dataclass(frozen=True)
class Query:
    """One PromQL expression of a dashboard and where it sits."""

    where: str  # "panel 'Title' A", "annotation 'Alerts'", "variable model"
    expr: str
    instant: bool
    panel_type: str  # the panel plugin, "annotation" or "variable"


def iter_queries(board: Mapping[str, Any]) -> Iterator[Query]:
    """Every panel target, annotation and query variable of a dashboard."""
    for panel in _panels(board.get("panels", [])):
        for target in panel.get("targets", []):
            yield Query(
                f"panel {panel.get('title')!r} {target.get('refId')}",
                target["expr"],
                bool(target.get("instant")),
                panel["type"],
            )
    for note in board.get("annotations", {}).get("list", []):
        if "expr" in note:
            yield Query(f"annotation {note['name']!r}", note["expr"], False, "annotation")
    for variable in board.get("templating", {}).get("list", []):
        if variable["type"] == "query":
            yield Query(f"variable {variable['name']}", variable["query"], True, "variable")


def _panels(panels: list[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def variables_used(expr: str) -> set[str]:
    """Names of the ``$name`` / ``${name}`` variables in an expression."""
    return {braced or plain for braced, plain in _VARIABLE.findall(expr)}


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace ``$name`` and ``${name}`` with ``values[name]`` (KeyError when absent)."""
    return _VARIABLE.sub(lambda m: values[m.group(1) or m.group(2)], expr)


def label_values_call(query: str) -> tuple[str, str] | None:
    """(series selector, label) of a ``label_values(selector, label)`` variable query."""
    match = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", query)
    return (match.group(1).strip(), match.group(2)) if match else None


def metric_names(expr: str) -> set[str]:
    """Series names an expression reads.

    A name is a series when a selector follows it (``up{...}``), or when it is a
    ``modelmon_`` metric or a recording rule (it has a colon) followed by a range,
    a closing parenthesis, a comma, whitespace or the end. String literals and label
    matchers are removed first, and so are Grafana variables such as ``$__range``.

    >>> sorted(metric_names('sum by (model) (rate(modelmon_events_total{a="x{y}"}[5m]))'))
    ['modelmon_events_total']
    >>> sorted(metric_names('ALERTS{alertname=~"M.+"} or job:up:sum > 0 unless up'))
    ['ALERTS', 'job:up:sum']
    """
    text = _STRING.sub('""', expr)
    names = set(_SELECTOR.findall(text))
    text = _MATCHERS.sub(" ", text)
    names |= {
        name for name in _SERIES_LIKE.findall(text) if name.startswith("modelmon_") or ":" in name
    }
    return names
