"""The state of one monitored model: its versions' counters and sliding windows.

Ingest validates records (:mod:`modelmon.ingest`), encodes each column into the
profile's additive vector (:mod:`modelmon.stats.binning`), adds the vector to the
version's cumulative counters and to every sliding window. Reading the windows
(:meth:`ModelMonitor.readings`) copies their totals under the lock and computes the
statistics outside it, so a refresh never holds up ingest for long.
"""

from __future__ import annotations

import math
import operator
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelmon.columns import categorical_values, numeric_values
from modelmon.config import ModelConfig
from modelmon.groundtruth import GroundTruth, TruthReading, VersionTruth
from modelmon.ingest import Batch, IngestResult, parse_predictions, take
from modelmon.labels.base import JoinStore, StoreUnavailableError
from modelmon.labels.records import JoinedPair, PendingColumns
from modelmon.profile import Profile
from modelmon.recordbounds import RecordBounds, ScoreShape
from modelmon.stats import drift
from modelmon.stats.binning import (
    EVENTS_SLOT,
    ColumnSlots,
    FloatArray,
    Layout,
    NumericBlock,
    encode_block,
    encode_categorical,
    encode_numeric,
)
from modelmon.stats.report import DriftReport, Verdicts
from modelmon.stats.window import SlidingWindow
from modelmon.values import as_float
from modelmon.versions import IDLE_SECONDS, VersionSlots

#: Upper bounds of the prediction latency histogram (seconds).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: The default of ``exclusive`` in :meth:`ModelMonitor.ingest`: no lock.
_NO_LOCK = nullcontext()
#: A version with no record for this long may be evicted (see modelmon.versions).
VERSION_IDLE_SECONDS = IDLE_SECONDS


class ProfileMismatchError(ValueError):
    """The config and the profile disagree (task, columns in overrides)."""


@dataclass
class VersionState:
    """Counters and windows of one model version."""

    cumulative: FloatArray
    windows: dict[str, SlidingWindow]
    latency_buckets: FloatArray
    latency_sum: float = 0.0
    last_seen: float = 0.0
    truth: VersionTruth | None = None
    records: int = 0  # accepted since this exporter started (modelmon.versions reads it)


@dataclass
class WindowReading:
    version: str
    window: str
    events: int
    drift: DriftReport | None
    truth: TruthReading = field(default_factory=TruthReading)


def resolve_rules(
    config: ModelConfig, profile: Profile, layout: Layout
) -> tuple[dict[tuple[str, str], drift.Rule], dict[tuple[str, str], str]]:
    """The drift rule of every column from the config's method, threshold and overrides."""
    rules: dict[tuple[str, str], drift.Rule] = {}
    methods: dict[tuple[str, str], str] = {}
    names = {s.column.name for s in layout.columns}
    for name in config.drift.columns:
        if name not in names:
            raise ProfileMismatchError(
                f"models[{config.name}].drift.columns.{name}: no such column in the profile"
            )
    for slots in layout.columns:
        col = slots.column
        categorical = col.binned_as_categorical
        override = config.drift.columns.get(col.name)
        method = override.method if override else config.drift.method
        threshold = override.threshold if override else config.drift.threshold
        if override and method != "auto" and not drift.applies(method, categorical):
            raise ProfileMismatchError(
                f"drift.columns.{col.name}.method: {method!r} does not apply to a "
                f"{'categorical' if categorical else 'numeric'} column"
            )
        # DESIGN.md section 6: `auto` looks at the number of reference rows.
        chosen = (
            method
            if method != "auto" and drift.applies(method, categorical)
            else (drift.auto_method(categorical, col.count))
        )
        rules[(col.role, col.name)] = drift.resolve_rule(method, threshold, categorical, col.count)
        methods[(col.role, col.name)] = chosen
    return rules, methods


class ModelMonitor:
    """Everything modelmon knows about one model, all versions together."""

    def __init__(
        self,
        config: ModelConfig,
        profile: Profile,
        *,
        max_category_length: int = 256,
        max_id_length: int = 256,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if config.task is not None and config.task != profile.task:
            raise ProfileMismatchError(
                f"models[{config.name}].task: {config.task!r} but the profile "
                f"{config.reference} is for {profile.task!r}"
            )
        self.config = config
        self.profile = profile
        self.name = config.name
        self.task = profile.task
        self.positive_class = config.positive_class or profile.positive_class
        self.layout = Layout(profile)
        self.rules, self.methods = resolve_rules(config, profile, self.layout)
        self.verdicts = Verdicts(self.layout, self.rules, self.methods, config.drift.alpha)
        self.feature_names = frozenset(
            s.column.name for s in self.layout.columns if s.column.role == "feature"
        )
        numeric = [s for s in self.layout.columns if s.column.role == "feature" and s.numeric]
        self.numeric_block = NumericBlock(numeric) if numeric else None
        self.max_category_length = max_category_length
        self.clock = clock
        self.lock = threading.Lock()
        self.versions: dict[str, VersionState] = {}
        self.slots = VersionSlots(config.version, config.max_versions)
        self.rejected: Counter[str] = Counter()
        self.unknown_fields = 0
        self.truth = GroundTruth(
            profile, self.positive_class, [(w.name, w.seconds) for w in config.windows]
        )
        self.store: JoinStore | None = None  # attached by the exporter
        self.max_id_length = max_id_length
        self.truth.max_id_length = max_id_length
        self.truth.max_class_length = max_category_length
        classes = [*self.truth.score_classes, *filter(None, [self.positive_class])]
        self.bounds = RecordBounds(
            ScoreShape(self.task, classes, self.positive_class), max_category_length
        )

    # --- ingest ------------------------------------------------------------------------

    def ingest(
        self, records: Sequence[Any], *, exclusive: AbstractContextManager[Any] = _NO_LOCK
    ) -> IngestResult:
        """Count a body's prediction records; never raises on bad records.

        ``exclusive`` is held while the records are checked and counted (Python work
        under the interpreter lock), not while the join store writes them: a SQLite
        store then runs while the next request is counted.
        """
        with exclusive:
            now = self.clock()
            batch, result = parse_predictions(
                records,
                regression=self.task == "regression",
                default_version=self.config.version,
                now=now,
                max_id_length=self.max_id_length,
            )
            batch = self.bounds.apply(batch, result)
            live = self._count(batch, result, now)
            waiting = self.truth.pending(batch) if self.store is not None else None
        if self.store is not None and waiting is not None:
            if not live.issuperset(waiting.versions):  # rows of a version refused above
                waiting = PendingColumns.of([p for p in waiting.rows() if p.version in live])
            if waiting.ids:
                try:
                    stored = self.store.add_pending(self.name, waiting)
                except StoreUnavailableError:
                    # Counted into drift above; they cannot wait for their labels, so
                    # they end now, as if evicted (the store logs the outage).
                    with self.lock:
                        self.truth.counters.expired += len(waiting.ids)
                    return result
                self.add_joined(stored.joined, now)
                with self.lock:
                    self.truth.counters.expired += stored.evicted
        return result

    def _count(self, batch: Batch, result: IngestResult, now: float) -> set[str]:
        """Add a checked batch to its versions' counters and windows; the versions that
        are live afterwards (rows of a version over ``max_versions`` are rejected)."""
        batch.feature_columns = _feature_columns(batch.features)
        unknown = self._unknown_fields(batch)
        groups = _group(batch.versions)
        with self.lock:
            self.unknown_fields += unknown
            for version, rows in groups.items():
                sub = batch if len(groups) == 1 else take(batch, rows)
                state = self._version(version, now, len(rows))
                if state is None:
                    for r in rows:
                        result.reject(
                            batch.indices[r],
                            "too_many_versions",
                            f"version: {version!r:.140} would exceed max_versions="
                            f"{self.config.max_versions} active versions (see "
                            "README, Versions)",
                        )
                    result.accepted -= len(rows)
                    continue
                self._add(state, sub, now)
            if result.reasons:
                self.rejected.update(result.reasons)
            return set(self.versions)

    def ingest_labels(
        self, records: Sequence[Any], *, exclusive: AbstractContextManager[Any] = _NO_LOCK
    ) -> IngestResult:
        """Join ground-truth records with their predictions; never raises on bad records.
        ``exclusive`` is held while the records are checked (see :meth:`ingest`).

        Raises :class:`~modelmon.labels.base.StoreUnavailableError` when the join store cannot
        be reached: nothing of the body is counted, and the sender is to retry it."""
        with exclusive:
            now = self.clock()
            labels, result = self.truth.parse_labels(records, now)
        if labels and self.store is not None:
            stored = self.store.add_labels(self.name, labels)
            self.add_joined(stored.joined, now)
            _reject_duplicates(result, labels, stored.duplicate_ids)
            with self.lock:
                self.truth.counters.unmatched += stored.unmatched
        with self.lock:
            self.rejected.update(result.reasons)
        return result

    def add_joined(self, pairs: Sequence[JoinedPair], now: float) -> None:
        """Count joined prediction/label pairs into their versions' performance."""
        if not pairs:
            return
        by_version: dict[str, list[JoinedPair]] = {}
        for pair in pairs:
            by_version.setdefault(pair.version, []).append(pair)
        with self.lock:
            for version, group in by_version.items():
                state = self._version(version, now)
                if state is None or state.truth is None:
                    self.truth.counters.unmatched += len(group)
                    continue
                self.truth.add_pairs(state.truth, group)

    def expire_labels(self) -> None:
        """Expire predictions past labels.ttl and orphan labels past their wait."""
        if self.store is None:
            return
        try:
            expired = self.store.expire()
        except StoreUnavailableError:
            return  # the store logged it; the next refresh tries again
        with self.lock:
            self.truth.counters.expired += expired.expired.get(self.name, 0)
            self.truth.counters.unmatched += expired.unmatched.get(self.name, 0)

    def pending_predictions(self) -> int:
        return 0 if self.store is None else self.store.pending(self.name)

    def count_rejected(self, reason: str, n: int = 1) -> None:
        with self.lock:
            self.rejected[reason] += n

    def _unknown_fields(self, batch: Batch) -> int:
        names = self.feature_names
        if batch.feature_columns is not None:  # every record has the same keys
            return len(batch.feature_columns.keys() - names) * len(batch)
        return sum(len(f.keys() - names) for f in batch.features if not f.keys() <= names)

    def _version(self, version: str, now: float, records: int = 0) -> VersionState | None:
        """The live state of ``version``, given a slot if :class:`VersionSlots` allows
        (``records``: how many records of it arrive now); None when refused."""
        state = self.versions.get(version)
        if state is not None:
            return state
        admitted, evicted = self.slots.place(version, records, now, self.versions)
        if not admitted:
            return None
        if evicted is not None:
            del self.versions[evicted]
        state = self.new_version_state()
        self.versions[version] = state
        return state

    def new_version_state(self) -> VersionState:
        size = self.layout.size
        windows = {w.name: SlidingWindow(w.seconds, size) for w in self.config.windows}
        return VersionState(
            self.layout.zeros(),
            windows,
            np.zeros(len(LATENCY_BUCKETS) + 1),
            truth=self.truth.new_version(),
        )

    def encode(self, batch: Batch) -> FloatArray:
        """The additive vector of a batch (all rows, whatever their time)."""
        vector = self.layout.zeros()
        vector[EVENTS_SLOT] = len(batch)
        features = batch.feature_columns
        if features is None:
            features = batch.feature_columns = _feature_columns(batch.features)
        done = self._encode_block(features, vector) if features is not None else False
        for slots in self.layout.columns:
            if done and slots.numeric and slots.column.role == "feature":
                continue  # in the block
            if features is not None and slots.column.role == "feature":
                values: Sequence[Any] = features.get(slots.column.name) or [None] * len(batch)
            else:
                values = self._column_values(slots, batch)
            if slots.numeric:
                nums, errors = numeric_values(values)
                encode_numeric(slots, nums, errors, vector)
            else:
                cats, errors = categorical_values(values, self.max_category_length)
                encode_categorical(slots, cats, errors, vector)
                if slots.column.role == "prediction":
                    batch.classes = cats
        return vector

    def _encode_block(self, features: dict[str, Sequence[Any]], vector: FloatArray) -> bool:
        """Encode the numeric features together when every record gave every one of them
        a finite number (see :class:`~modelmon.stats.binning.NumericBlock`)."""
        block = self.numeric_block
        if block is None:
            return False
        columns = [features.get(slots.column.name) for slots in block.columns]
        if None in columns:
            return False
        try:
            values = np.array(columns, dtype=np.float64)
        except (ValueError, TypeError, OverflowError):
            return False  # text or objects among them: column by column
        return values.ndim == 2 and encode_block(block, values, vector)

    def _column_values(self, slots: ColumnSlots, batch: Batch) -> list[Any]:
        role, name = slots.column.role, slots.column.name
        if role == "feature":
            return [f.get(name) for f in batch.features]
        if role == "prediction":
            return batch.predictions
        if role == "label":
            return batch.labels
        if name == "score" and self.task == "binary_classification":
            return [s if type(s) is not dict else None for s in batch.scores]
        return [s.get(name) if type(s) is dict else None for s in batch.scores]

    def _add(self, state: VersionState, batch: Batch, now: float) -> None:
        state.last_seen = now
        state.records += len(batch)
        smallest = min(w.resolution for w in state.windows.values())
        stamps = batch.timestamps
        if math.floor(min(stamps) / smallest) == math.floor(max(stamps) / smallest):
            parts = [(stamps[0], batch)]  # one sub-window bucket: the common case
        else:
            buckets = [math.floor(t / smallest) for t in stamps]
            by_bucket: dict[int, list[int]] = {}
            for i, b in enumerate(buckets):
                by_bucket.setdefault(b, []).append(i)
            parts = [(batch.timestamps[rows[0]], take(batch, rows)) for rows in by_bucket.values()]
        for timestamp, part in parts:
            vector = self.encode(part)
            state.cumulative += vector
            for window in state.windows.values():
                window.add(timestamp, vector)
            if state.truth is not None:
                self.truth.on_predictions(state.truth, part, timestamp)
        self._latencies(state, batch.latencies)

    def _latencies(self, state: VersionState, latencies: list[Any]) -> None:
        if latencies.count(None) == len(latencies):
            return
        values = [as_float(v) for v in latencies if type(v) is float or type(v) is int]
        if not values:
            return
        arr = np.asarray(values, dtype=np.float64)
        arr = arr[np.isfinite(arr) & (arr >= 0)]
        idx = np.searchsorted(np.asarray(LATENCY_BUCKETS), arr, side="left")
        state.latency_buckets += np.bincount(idx, minlength=len(LATENCY_BUCKETS) + 1)
        state.latency_sum += float(arr.sum())

    # --- reading -----------------------------------------------------------------------

    def window_totals(
        self,
    ) -> dict[str, dict[str, tuple[FloatArray, FloatArray | None, FloatArray | None]]]:
        """A copy of every version's window totals (drift, performance, estimate),
        moved to the present first."""
        now = self.clock()
        out = {}
        with self.lock:
            for version, state in self.versions.items():
                truth = state.truth
                per_window = {}
                for name, w in state.windows.items():
                    w.advance(now)
                    perf = est = None
                    if truth is not None:
                        truth.windows[name].advance(now)
                        perf = truth.windows[name].total()
                        if name in truth.estimate_windows:
                            truth.estimate_windows[name].advance(now)
                            est = truth.estimate_windows[name].total()
                    per_window[name] = (w.total(), perf, est)
                out[version] = per_window
        return out

    def readings(self) -> list[WindowReading]:
        """Readings of every version and window; statistics only where the window holds
        at least ``min_window_events`` records (labeled pairs for performance)."""
        out = []
        minimum = max(1, self.config.min_window_events)
        for version, totals in self.window_totals().items():
            for name, (vector, perf, est) in totals.items():
                events = int(vector[EVENTS_SLOT])
                report = None
                if events >= minimum:
                    report = self.verdicts.report(vector, self.config.drift.share)
                truth = self.truth.read(perf, est)
                # Performance needs labeled pairs, estimates scored predictions.
                if truth.performance is not None and truth.performance.n < minimum:
                    truth.performance = None
                if truth.estimate is not None and truth.estimate.n < minimum:
                    truth.estimate = None
                out.append(WindowReading(version, name, events, report, truth))
        return out


def _group(versions: list[str]) -> dict[str, list[int]]:
    if not versions:
        return {}
    first = versions[0]
    if versions.count(first) == len(versions):
        return {first: list(range(len(versions)))}
    groups: dict[str, list[int]] = {}
    for i, v in enumerate(versions):
        groups.setdefault(v, []).append(i)
    return groups


def _feature_columns(features: list[dict[str, Any]]) -> dict[str, Sequence[Any]] | None:
    """Feature values column by column, gathered and transposed in C when every record
    has the same keys (as one client's records do); None otherwise."""
    if not features:
        return None
    keys = tuple(features[0])
    if len(keys) < 2:
        return None  # itemgetter of one key returns the value, not a tuple
    if len(set(map(len, features))) != 1:
        return None
    try:
        rows = list(map(operator.itemgetter(*keys), features))
    except KeyError:
        return None
    return dict(zip(keys, zip(*rows, strict=True), strict=True))


def _reject_duplicates(result: IngestResult, labels: Sequence[Any], ids: Sequence[str]) -> None:
    """Report labels the store dropped as duplicates, each with its body index: a repeat
    within the body at its later position, an id labeled before at its first."""
    positions: dict[str, list[int]] = {}
    for label, index in zip(labels, result.positions, strict=True):
        positions.setdefault(label.id, []).append(index)
    for ident in ids:
        at = positions.get(ident)
        index = at.pop() if at else -1
        result.accepted -= 1
        result.reject(index, "duplicate_label", f"id: {ident!r:.80} already has its label")
