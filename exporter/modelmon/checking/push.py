"""Pushing a check's results to a Prometheus Pushgateway.

The results go out under the exporter's own metric names (DESIGN.md section 7) with
``window="check"``, grouped by job ``modelmon_check`` and the grouping key ``model`` and
``version``, so a pipeline's latest check of each model version sits beside the live
exporter in the same dashboards. Two families are specific to checks:
``modelmon_check_passed`` and ``modelmon_check_timestamp_seconds``.

Not pushed: the exporter's counters (bin counts, data quality counts) and reference
baselines. Those carry no ``window`` label, so batch values under the same names would
mix into ``rate()`` and ``on(model, version)`` matches over the live exporter's series.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, push_to_gateway
from prometheus_client.core import GaugeMetricFamily, Metric

from modelmon.catalogue import BY_NAME, CHECK_CATALOGUE, MetricSpec
from modelmon.checking.result import CheckResult

CHECK_BY_NAME = {s.name: s for s in CHECK_CATALOGUE}
JOB = "modelmon_check"
WINDOW = "check"

PERFORMANCE = {
    "accuracy": "modelmon_accuracy",
    "roc_auc": "modelmon_roc_auc",
    "log_loss": "modelmon_log_loss",
    "brier_score": "modelmon_brier_score",
    "mae": "modelmon_mae",
    "rmse": "modelmon_rmse",
    "mape": "modelmon_mape",
}


def _spec(name: str) -> MetricSpec:
    return BY_NAME.get(name) or CHECK_BY_NAME[name]


class _Families(dict[str, GaugeMetricFamily]):
    def add(self, name: str, labels: list[str], value: float | None) -> None:
        if value is None:
            return
        if name not in self:
            s = _spec(name)
            self[name] = GaugeMetricFamily(s.family, s.help, labels=s.labels)
        self[name].add_metric(labels, float(value))


class CheckCollector:
    """The families of one check result (built at collect time, like the exporter's)."""

    def __init__(self, result: CheckResult, timestamp: float) -> None:
        self.result = result
        self.timestamp = timestamp

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        r = self.result
        base = [r.model, r.version]
        out = _Families()
        out.add("modelmon_window_events", [*base, WINDOW], r.rows)
        for c in r.columns:
            labels = [*base, c.role, c.column, WINDOW]
            for stat, value in sorted(c.statistics.items()):
                out.add(f"modelmon_drift_{stat}", labels, value)
            if c.drifted is not None and c.pvalue is not None and math.isfinite(c.pvalue):
                out.add("modelmon_drift_detected", labels, float(c.drifted))
                out.add("modelmon_drift_threshold", labels, c.threshold)
                out.add("modelmon_drift_pvalue", labels, c.pvalue)
        if r.dataset_drift is not None:
            out.add("modelmon_dataset_drift_share", [*base, WINDOW], r.drift_share)
            out.add("modelmon_dataset_drift_detected", [*base, WINDOW], float(r.dataset_drift))
        self._performance(out, base)
        out.add("modelmon_check_passed", base, float(r.passed))
        out.add("modelmon_check_timestamp_seconds", base, self.timestamp)
        yield from out.values()

    def _performance(self, out: _Families, base: list[str]) -> None:
        perf, est = self.result.performance, self.result.estimated
        if perf is not None:
            for key, name in PERFORMANCE.items():
                out.add(name, [*base, WINDOW], perf.metrics.get(key))
            for cls, scores in sorted(perf.classes.items()):
                for key in ("precision", "recall", "f1"):
                    out.add(f"modelmon_{key}", [*base, WINDOW, cls], scores[key])
        if est is not None:
            out.add("modelmon_estimated_accuracy", [*base, WINDOW], est.estimated_accuracy)
            out.add("modelmon_estimated_roc_auc", [*base, WINDOW], est.estimated_roc_auc)


def check_registry(result: CheckResult, timestamp: float) -> CollectorRegistry:
    """A fresh registry holding only the check's families."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CheckCollector(result, timestamp))
    return registry


def push(url: str, result: CheckResult, timestamp: float, *, timeout: float = 10.0) -> None:
    """Replace the group ``job=modelmon_check, model, version`` on the Pushgateway."""
    push_to_gateway(
        url,
        job=JOB,
        registry=check_registry(result, timestamp),
        grouping_key={"model": result.model, "version": result.version},
        timeout=timeout,
    )
