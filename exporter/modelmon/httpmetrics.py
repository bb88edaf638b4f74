"""``modelmon_http_requests_total{handler, code}``: every response the server sends.

Overload is visible in Grafana this way: ``code="429"`` counts ingest requests turned
away (queue or byte budget full), ``code="503"`` connections refused at
``limits.max_connections`` (and requests during a shutdown), ``code="408"`` bodies that
did not arrive in time. ``handler`` is one of :data:`HANDLERS`, never the raw path.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

from prometheus_client.metrics_core import Metric

from modelmon.collectors import new_family

HANDLERS = ("predictions", "labels", "metrics", "healthz", "readyz", "models", "index", "other")
_PATHS = {
    "/metrics": "metrics",
    "/healthz": "healthz",
    "/readyz": "readyz",
    "/v1/models": "models",
    "/": "index",
}


def handler_of(path: str) -> str:
    """The ``handler`` label of a request path (query string ignored).

    >>> handler_of("/v1/models/m/labels?x=1"), handler_of("/metrics"), handler_of("/etc")
    ('labels', 'metrics', 'other')
    """
    path = path.split("?", 1)[0]
    if path.startswith("/v1/models/") and path.count("/") == 4:
        kind = path.rsplit("/", 1)[1]
        if kind in ("predictions", "labels"):
            return kind
    return _PATHS.get(path, "other")


class RequestCounter:
    """Responses by handler and status code; a prometheus_client custom collector.

    >>> counter = RequestCounter()
    >>> counter.add("predictions", 429); counter.add("predictions", 429)
    >>> [(s.labels, s.value) for s in next(counter.collect()).samples]
    [({'handler': 'predictions', 'code': '429'}, 2.0)]
    """

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def add(self, handler: str, code: int) -> None:
        with self._lock:
            self._counts[(handler, str(code))] += 1

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        family = new_family("modelmon_http_requests_total")
        with self._lock:
            counts = sorted(self._counts.items())
        for labels, value in counts:
            family.add_metric(list(labels), float(value))
        yield family
