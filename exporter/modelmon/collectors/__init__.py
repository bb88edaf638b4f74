"""Scrape-time collectors: they translate current state into Prometheus metric families.

Each collector builds fresh families inside ``collect()`` at every scrape, so a label
set that disappears (a GPU lost, a process gone) disappears from ``/metrics`` without
bookkeeping. :class:`~modelmon.collectors.health.CollectorSet` runs them, isolates their
failures and reports each one's success and duration.

Names, types, HELP text and label names come from :mod:`modelmon.catalogue` through
:func:`new_family`, so no collector repeats them.
"""

from __future__ import annotations

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily

from modelmon.catalogue import spec


def new_family(name: str) -> CounterMetricFamily | GaugeMetricFamily:
    """An empty family for catalogue metric ``name`` (exposition name, ``_total`` kept).

    Only counters and gauges are built here: collectors of state export nothing else.

    >>> family = new_family("modelmon_gpu_power_watts")
    >>> family.add_metric(["0", "GPU-1"], 71.5)
    >>> family.samples[0].labels
    {'gpu': '0', 'gpu_uuid': 'GPU-1'}
    >>> new_family("modelmon_gpu_energy_joules_total").type
    'counter'
    """
    metric = spec(name)
    if metric.type == "counter":
        return CounterMetricFamily(metric.family, metric.help, labels=metric.labels)
    if metric.type == "gauge":
        return GaugeMetricFamily(metric.family, metric.help, labels=metric.labels)
    raise ValueError(f"{name}: expected a counter or gauge in the catalogue, got {metric.type}")


__all__ = ["new_family"]
