"""Health of a shared join store, as ``modelmon_collector_success{collector="label_store"}``.

The collector exports no family of its own: it pings each shared store at scrape time
and raises when one does not answer, so :class:`~modelmon.collectors.health.CollectorSet`
reports success 0 (and logs the error once) while labels are answered ``503``. A store
that failed a moment ago is not dialled again before its retry interval, so a scrape
during an outage does not wait for a timeout.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.metrics_core import Metric

from modelmon.labels.base import JoinStore


class LabelStoreCollector:
    """Checks ``stores`` at every scrape; raises the first one's error."""

    def __init__(self, stores: Sequence[JoinStore]) -> None:
        self.stores = list(stores)

    def collect(self) -> Iterator[Metric]:
        for store in self.stores:
            store.check()
        yield from ()
