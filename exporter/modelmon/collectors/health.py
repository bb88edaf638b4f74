"""Run named collectors with failure isolation; report each one's success and duration.

The pattern is node_exporter's: every collector reports
``modelmon_collector_success{collector}`` and ``modelmon_collector_duration_seconds
{collector}``, and one failing collector never fails the scrape. A collector's families
are materialised before any is yielded, so a collector that fails half-way contributes
nothing rather than a partial, misleading set of series.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Protocol

from prometheus_client.metrics_core import Metric

from modelmon.collectors import new_family


class Collector(Protocol):
    """Anything with a prometheus_client-style ``collect()``."""

    def collect(self) -> Iterable[Metric]: ...


class CollectorSet:
    """A prometheus_client custom collector wrapping named collectors.

    ``describe()`` returns nothing, so registering it never runs the collectors (the
    registry would otherwise call ``collect()`` once to learn the names).

    A collector that raises is logged once per distinct error message (not at every
    scrape) and reports success 0 until it succeeds again; recovery is logged too.
    """

    def __init__(
        self,
        collectors: Mapping[str, Collector],
        *,
        clock: Callable[[], float] = time.perf_counter,
        logger: logging.Logger | None = None,
    ) -> None:
        self._collectors = dict(collectors)
        self._clock = clock
        self._logger = logger if logger is not None else logging.getLogger(__name__)
        self._last_error: dict[str, str] = {}  # collector -> message last logged

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        """Yield every collector's families, then the success and duration families."""
        success = new_family("modelmon_collector_success")
        duration = new_family("modelmon_collector_duration_seconds")
        for name, collector in self._collectors.items():
            start = self._clock()
            families = self._run(name, collector)
            duration.add_metric([name], max(self._clock() - start, 0.0))
            success.add_metric([name], 0.0 if families is None else 1.0)
            yield from families or ()
        yield success
        yield duration

    def _run(self, name: str, collector: Collector) -> list[Metric] | None:
        """The collector's families, or None when it raised."""
        try:
            families = list(collector.collect())
        except Exception as error:  # isolate every failure: the scrape must be served
            self._report_failure(name, error)
            return None
        if self._last_error.pop(name, None) is not None:
            self._logger.info("collector %s recovered", name)
        return families

    def _report_failure(self, name: str, error: Exception) -> None:
        message = f"{type(error).__name__}: {error}"
        if self._last_error.get(name) == message:
            return
        self._last_error[name] = message
        self._logger.error(
            "collector %s failed (reported as modelmon_collector_success 0): %s",
            name,
            message,
            exc_info=error,
        )
