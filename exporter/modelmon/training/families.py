"""The ``modelmon_training_*`` families of a run, built from a snapshot at collect time.

The same collector serves the push (the registry handed to the Pushgateway client) and
the optional in-process ``/metrics``. The resource collectors of the run (process, GPU)
are read through :class:`~modelmon.collectors.health.CollectorSet`, so one failing
collector leaves the rest in, and their families get the run's ``model`` and ``run``
labels: on a Pushgateway those are the grouping key, on a direct scrape they tell runs
apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.metrics_core import Metric

from modelmon.collectors import new_family
from modelmon.training.state import STATUSES, RunState, Snapshot


class RunCollector:
    """prometheus_client custom collector of one run's families."""

    def __init__(
        self,
        state: RunState,
        resources: Iterable[Metric] | Callable[[], Iterable[Metric]] | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._state = state
        self._resources = resources
        self._clock = clock

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        snap = self._state.snapshot()
        yield from run_families(snap, self._clock())
        if self._resources is not None:
            families = self._resources() if callable(self._resources) else self._resources
            yield from (with_run_labels(f, snap.model, snap.run) for f in families)


def run_families(snap: Snapshot, now: float) -> Iterator[Metric]:
    """Every training family of the snapshot; families without samples left out."""
    run = [snap.model, snap.run]
    out: list[Metric] = []

    def one(name: str, value: float | None, *extra: str) -> None:
        family = new_family(name)
        if value is not None:
            family.add_metric([*run, *extra], value)
        out.append(family)

    one("modelmon_training_run_info", 1.0, snap.version, snap.params_digest)
    status = new_family("modelmon_training_status")
    for name in STATUSES:
        status.add_metric([*run, name], 1.0 if name == snap.status else 0.0)
    out.append(status)
    one("modelmon_training_start_time_seconds", snap.start_time)
    one("modelmon_training_end_time_seconds", snap.end_time)
    one("modelmon_training_heartbeat_timestamp_seconds", now)
    one("modelmon_training_step", snap.step)
    one("modelmon_training_epoch", snap.epoch)
    one("modelmon_training_learning_rate", snap.learning_rate)
    one("modelmon_training_samples_total", snap.samples)
    one("modelmon_training_push_failures_total", float(snap.push_failures))
    out += _by_split(snap, run)
    return (family for family in out if family.samples)


def _by_split(snap: Snapshot, run: list[str]) -> list[Metric]:
    loss = new_family("modelmon_training_loss")
    nonfinite = new_family("modelmon_training_nonfinite_loss_total")
    for split, value in sorted(snap.losses.items()):
        loss.add_metric([*run, split], value)
        nonfinite.add_metric([*run, split], float(snap.nonfinite_losses.get(split, 0)))
    metric = new_family("modelmon_training_metric")
    for (split, name), value in sorted(snap.metrics.items()):
        metric.add_metric([*run, split, name], value)
    confusion = new_family("modelmon_training_confusion_matrix")
    for split, cells in sorted(snap.confusion.items()):
        for (actual, predicted), count in sorted(cells.items()):
            confusion.add_metric([*run, split, actual, predicted], float(count))
    return [loss, nonfinite, metric, confusion]


def with_run_labels(family: Metric, model: str, run: str) -> Metric:
    """A copy of ``family`` whose samples also carry ``model`` and ``run``."""
    out = Metric(family.name, family.documentation, family.type, family.unit)
    for sample in family.samples:
        labels = {"model": model, "run": run, **sample.labels}
        out.add_sample(sample.name, labels, sample.value, sample.timestamp, sample.exemplar)
    return out
