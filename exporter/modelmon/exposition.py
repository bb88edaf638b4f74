"""Scrape-time translation of model state into Prometheus metric families.

Counters come straight from the versions' cumulative vectors (copied under the model's
lock) at every scrape (:class:`ModelCollector`). The computed statistics, reference
shares and baselines change only at a refresh: :class:`Refresher` recomputes them in the
background every few seconds and renders them once (:func:`static_exposition`), so a
scrape neither recomputes nor re-renders them.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.utils import floatToGoString

from modelmon import __version__
from modelmon.catalogue import BY_NAME, spec
from modelmon.compression import deflate_part
from modelmon.groundtruth import DELAY_BUCKETS
from modelmon.model import LATENCY_BUCKETS, ModelMonitor, WindowReading
from modelmon.profile import OTHER
from modelmon.stats.binning import EVENTS_SLOT
from modelmon.stats.performance import (
    ClassificationPerformance,
    PerformanceReading,
    RegressionReading,
)

log = logging.getLogger(__name__)

#: How often predictions past labels.ttl are expired (seconds).
LABEL_EXPIRY_INTERVAL = 30.0
DRIFT_STATISTICS = ("psi", "jensen_shannon", "ks", "ks_pvalue", "wasserstein", "chi2_pvalue")
QUALITY_METRICS = {
    "missing": "modelmon_column_missing_total",
    "out_of_range": "modelmon_column_out_of_range_total",
    "unseen": "modelmon_column_unseen_total",
    "type_errors": "modelmon_column_type_errors_total",
}
NUMERIC_QUALITY = ("missing", "out_of_range", "type_errors")
CATEGORICAL_QUALITY = ("missing", "unseen", "type_errors")


def counter(name: str) -> CounterMetricFamily:
    s = spec(name)
    return CounterMetricFamily(s.family, s.help, labels=s.labels)


def gauge(name: str) -> GaugeMetricFamily:
    s = spec(name)
    return GaugeMetricFamily(s.family, s.help, labels=s.labels)


@dataclass
class Readings:
    """Computed statistics of every model, as of ``at`` (Unix seconds)."""

    at: float = 0.0
    models: dict[str, list[WindowReading]] = field(default_factory=dict)


class Refresher:
    """Recomputes the windowed statistics every ``interval`` seconds in a daemon thread."""

    def __init__(
        self,
        monitors: Sequence[ModelMonitor],
        interval: float = 2.0,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.monitors = monitors
        self.interval = interval
        self.clock = clock
        self.readings = Readings()
        #: The rendered computed families (see static_exposition), deflated once for
        #: the scrapes that ask for gzip.
        self.exposition = deflate_part(b"")
        self._expired_at = 0.0
        self.last_duration = 0.0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def static(self) -> bytes:
        return self.exposition.raw

    def refresh(self) -> Readings:
        started = time.perf_counter()
        if self.clock() - self._expired_at >= LABEL_EXPIRY_INTERVAL:
            self._expired_at = self.clock()
            for monitor in self.monitors:
                monitor.expire_labels()
        readings = Readings(at=self.clock())
        for monitor in self.monitors:
            readings.models[monitor.name] = monitor.readings()
        self.exposition = deflate_part(static_exposition(self.monitors, readings))
        self.readings = readings
        self.last_duration = time.perf_counter() - started
        return readings

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
                self.last_error = None
            except Exception as exc:  # keep refreshing; the scrape reports the failure
                self.last_error = repr(exc)
                self.exposition = deflate_part(b"")  # no stale statistics
                log.exception("statistics refresh failed")

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="modelmon-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


class ModelCollector:
    """The model counters of DESIGN.md section 7, read at every scrape (the computed
    families are in :attr:`Refresher.static`)."""

    def __init__(
        self,
        monitors: Sequence[ModelMonitor],
        refresher: Refresher,
    ) -> None:
        self.monitors = monitors
        self.refresher = refresher

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        if self.refresher.last_error is not None:
            raise RuntimeError(f"statistics refresh failed: {self.refresher.last_error}")
        info = gauge("modelmon_build_info")
        info.add_metric([__version__], 1.0)
        yield info
        families = _Families()
        for monitor in self.monitors:
            _counters(monitor, families)
            _truth_counters(monitor, families)
        yield from families.all()


class _Families(dict[str, Any]):
    def get_family(self, name: str) -> Any:
        if name not in self:
            s = spec(name)
            self[name] = counter(name) if s.type == "counter" else gauge(name)
        return self[name]

    def add(self, name: str, labels: list[str], value: float) -> None:
        self.get_family(name).add_metric(labels, value)

    def all(self) -> Iterator[Metric]:
        yield from self.values()


def _counters(monitor: ModelMonitor, out: _Families) -> None:
    with monitor.lock:
        states = {
            v: (s.cumulative.copy(), s.latency_buckets.copy(), s.latency_sum)
            for v, s in monitor.versions.items()
        }
        rejected = dict(monitor.rejected)
        unknown = monitor.unknown_fields
    model = monitor.name
    ref = str(monitor.config.reference.name)
    out.get_family("modelmon_rejected_records_total")
    for reason, n in sorted(rejected.items()):
        out.add("modelmon_rejected_records_total", [model, reason], n)
    out.add("modelmon_unknown_fields_total", [model], unknown)
    for version, (vector, latency, latency_sum) in states.items():
        out.add("modelmon_model_info", [model, version, monitor.task, ref], 1.0)
        out.add("modelmon_events_total", [model, version], vector[EVENTS_SLOT])
        for slots in monitor.layout.columns:
            col = slots.column
            base = [model, version, col.role, col.name]
            counts = slots.coarse_counts(vector)
            for name, n in zip(col.bin_names(), counts, strict=True):
                out.add("modelmon_column_bin_total", [*base, name], float(n))
            for q in NUMERIC_QUALITY if slots.numeric else CATEGORICAL_QUALITY:
                out.add(QUALITY_METRICS[q], base, float(vector[slots.quality(q)]))
        if latency.sum() > 0:
            _histogram(
                out,
                "modelmon_prediction_latency_seconds",
                [model, version],
                LATENCY_BUCKETS,
                latency,
                latency_sum,
            )


def _reference(monitor: ModelMonitor, versions: Iterable[str], out: _Families) -> None:
    """Reference bin shares and performance baselines, per served version."""
    model = monitor.name
    baselines = [
        (f"modelmon_reference_{key}", value)
        for key, value in monitor.profile.baselines.items()
        if f"modelmon_reference_{key}" in BY_NAME
    ]
    for version in versions:
        for slots in monitor.layout.columns:
            col = slots.column
            base = [model, version, col.role, col.name]
            for name, ratio in zip(col.bin_names(), col.reference_ratios(), strict=True):
                out.add("modelmon_reference_bin_ratio", [*base, name], ratio)
        for name, value in baselines:
            out.add(name, [model, version], value)


def static_exposition(monitors: Sequence[ModelMonitor], readings: Readings) -> bytes:
    """The families that change only at a refresh (computed statistics, reference
    shares and baselines), rendered once per refresh so a scrape only copies them."""
    families = _Families()
    for monitor in monitors:
        per_model = readings.models.get(monitor.name, [])
        _computed(monitor, per_model, families)
        _reference(monitor, dict.fromkeys(r.version for r in per_model), families)
    return render_gauges(families.values())


def render_gauges(families: Iterable[Metric]) -> bytes:
    """Gauge families in the text format, which is also valid OpenMetrics for gauges
    (the catalogue's HELP texts hold no characters the two formats escape differently)."""
    body = render_families(families, openmetrics=False)
    if body is None:
        raise ValueError("families: expected gauges with plain metric and label names")
    return body


_FAST_TYPES = frozenset({"counter", "gauge", "histogram", "summary"})
_LEGACY_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LEGACY_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


def render_registry(registry: Any, openmetrics: bool) -> bytes | None:
    """Every family of ``registry``; see :func:`render_families`."""
    return render_families(registry.collect(), openmetrics)


def render_families(families: Iterable[Metric], openmetrics: bool) -> bytes | None:
    """``families`` in the text format, or in OpenMetrics without the closing ``# EOF``,
    byte for byte as prometheus_client's encoders write them, several times faster.
    None when a family needs what only those encoders handle (other types, units,
    timestamps, exemplars, ``_created`` samples, names to escape): the caller then
    uses them."""
    lines: list[str] = []
    append = lines.append
    for family in families:
        kind, name = family.type, family.name
        if kind not in _FAST_TYPES or family.unit or not _LEGACY_NAME.match(name):
            return None
        header = f"{name}_total" if kind == "counter" and not openmetrics else name
        doc = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
        if openmetrics:
            doc = doc.replace('"', r"\"")
        append(f"# HELP {header} {doc}\n# TYPE {header} {kind}\n")
        special = (f"{name}_created", f"{name}_gsum", f"{name}_gcount")
        known: Any = None  # the label names of the sample before ...
        keys: list[str] = []  # ... sorted, as both encoders write them
        for sample in family.samples:
            if (
                sample.timestamp is not None
                or sample.exemplar is not None
                or sample.native_histogram is not None
                or sample.name in special
                or sample.value is None
            ):
                return None
            value = floatToGoString(sample.value)  # type: ignore[no-untyped-call]
            got = sample.labels
            if not got:
                append(f"{sample.name} {value}\n")
                continue
            if got.keys() != known:
                if not all(_LEGACY_LABEL.match(k) for k in got):
                    return None
                known, keys = got.keys(), sorted(got)
            labels = ",".join(f'{k}="{_escape(got[k])}"' for k in keys)
            append(f"{sample.name}{{{labels}}} {value}\n")
    return "".join(lines).encode("utf-8")


def _escape(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


def _computed(monitor: ModelMonitor, readings: list[WindowReading], out: _Families) -> None:
    model = monitor.name
    out.get_family("modelmon_window_events")
    for r in readings:
        out.add("modelmon_window_events", [model, r.version, r.window], r.events)
        _truth_gauges(model, r, out)
        report = r.drift
        if report is None:
            continue
        for c in report.columns:
            labels = [model, r.version, c.role, c.column, r.window]
            for stat, value in c.statistics.items():
                out.add(f"modelmon_drift_{stat}", labels, value)
            if not math.isnan(c.pvalue):  # a verdict was made (see stats/report.py)
                out.add("modelmon_drift_detected", labels, float(c.drifted))
                out.add("modelmon_drift_threshold", labels, c.threshold)
                out.add("modelmon_drift_pvalue", labels, c.pvalue)
        if report.drift_share is not None:
            labels = [model, r.version, r.window]
            out.add("modelmon_dataset_drift_share", labels, report.drift_share)
            out.add("modelmon_dataset_drift_detected", labels, float(bool(report.dataset_drift)))


def _truth_counters(monitor: ModelMonitor, out: _Families) -> None:
    """Label counters, confusion cells, error summaries, delays and baselines."""
    truth = monitor.truth
    model = monitor.name
    with monitor.lock:
        states = {
            v: (
                s.truth.cumulative.copy(),
                s.truth.delay_buckets.copy(),
                s.truth.delay_sum,
                s.truth.labels,
            )
            for v, s in monitor.versions.items()
            if s.truth is not None
        }
        unmatched, expired = truth.counters.unmatched, truth.counters.expired
    out.add("modelmon_unmatched_labels_total", [model], unmatched)
    out.add("modelmon_expired_predictions_total", [model], expired)
    out.add("modelmon_pending_predictions", [model], monitor.pending_predictions())
    perf = truth.performance
    for version, (vector, delays, delay_sum, labels) in states.items():
        base = [model, version]
        out.add("modelmon_labels_total", base, labels)
        if isinstance(perf, ClassificationPerformance):
            confusion = perf.confusion(vector)
            out.add("modelmon_labeled_predictions_total", base, float(confusion.sum()))
            out.add("modelmon_correct_predictions_total", base, float(np.trace(confusion)))
            for i, actual in enumerate(perf.classes):
                for j, predicted in enumerate(perf.classes):
                    cell = float(confusion[i, j])
                    if cell or (actual != OTHER and predicted != OTHER):
                        out.add("modelmon_confusion_total", [*base, actual, predicted], cell)
        else:
            n = float(vector[0])
            out.add("modelmon_labeled_predictions_total", base, n)
            _summary(out, "modelmon_absolute_error", base, n, float(vector[1]))
            _summary(out, "modelmon_squared_error", base, n, float(vector[2]))
        if labels:
            _histogram(out, "modelmon_label_delay_seconds", base, DELAY_BUCKETS, delays, delay_sum)


def _summary(out: _Families, name: str, labels: list[str], count: float, total: float) -> None:
    if name not in out:
        s = spec(name)
        out[name] = SummaryMetricFamily(s.family, s.help, labels=s.labels)
    out[name].add_metric(labels, count_value=count, sum_value=total)


def _histogram(
    out: _Families,
    name: str,
    labels: list[str],
    bounds: Sequence[float],
    counts: np.ndarray,
    total: float,
) -> None:
    if name not in out:
        s = spec(name)
        out[name] = HistogramMetricFamily(s.family, s.help, labels=s.labels)
    cumulative = np.cumsum(counts)
    buckets = [(repr(float(b)), float(c)) for b, c in zip(bounds, cumulative, strict=False)]
    buckets.append(("+Inf", float(cumulative[-1])))
    out[name].add_metric(labels, buckets, total)


def _truth_gauges(model: str, r: WindowReading, out: _Families) -> None:
    labels = [model, r.version, r.window]
    perf, est = r.truth.performance, r.truth.estimate
    scalars: dict[str, float | None] = {}
    if isinstance(perf, PerformanceReading):
        scalars = {
            "accuracy": perf.accuracy,
            "roc_auc": perf.roc_auc,
            "log_loss": perf.log_loss,
            "brier_score": perf.brier_score,
        }
        for key, per_class in (
            ("precision", perf.precision),
            ("recall", perf.recall),
            ("f1", perf.f1),
        ):
            for cls, share in per_class.items():
                out.add(f"modelmon_{key}", [*labels, cls], share)
    elif isinstance(perf, RegressionReading):
        scalars = {"mae": perf.mae, "rmse": perf.rmse, "mape": perf.mape}
    for key, value in scalars.items():
        if value is not None:
            out.add(f"modelmon_{key}", labels, value)
    if est is not None:
        if est.estimated_accuracy is not None:
            out.add("modelmon_estimated_accuracy", labels, est.estimated_accuracy)
        if est.estimated_roc_auc is not None:
            out.add("modelmon_estimated_roc_auc", labels, est.estimated_roc_auc)
