"""The composition root: builds every part of a running exporter from its config."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from modelmon.bodies import ByteBudget
from modelmon.checkpoint import Checkpointer
from modelmon.compression import DeflatedPart
from modelmon.config import Config, LabelsConfig, parse_listen
from modelmon.exposition import ModelCollector, Refresher, render_registry
from modelmon.httpmetrics import RequestCounter
from modelmon.ingest import IngestResult
from modelmon.labels import JoinStore, StoreUnavailableError, open_store
from modelmon.model import ModelMonitor
from modelmon.profile import load_profile
from modelmon.server import ExporterHTTPServer, InFlight, serve_in_thread
from modelmon.sources.jsonl import JsonlSource
from modelmon.statefiles import private_dir, private_file

log = logging.getLogger(__name__)


class UnknownModelError(KeyError):
    """A request for a model that is not configured."""


class Exporter:
    """Models, registry, refresher and (once started) the HTTP server and sources."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.monitors: dict[str, ModelMonitor] = {}
        for model in config.models:
            profile = load_profile(model.reference)
            self.monitors[model.name] = ModelMonitor(
                model,
                profile,
                max_category_length=config.limits.max_category_length,
                max_id_length=config.limits.max_id_length,
                clock=clock,
            )
        #: The join store of each model (one store object per distinct store).
        self.stores = label_stores(config)
        for name, monitor in self.monitors.items():
            monitor.store = self.stores[name]
        self.store = self.stores[config.models[0].name]
        self.token = _read_token(config.auth.token_file)
        self.registry = registry or CollectorRegistry(auto_describe=False)
        self.http_requests = RequestCounter()
        self.refresher = Refresher(
            list(self.monitors.values()), config.refresh_interval, clock=clock
        )
        self.ingest_slots = threading.BoundedSemaphore(config.limits.max_inflight)
        # Parsing and counting are CPU work under the GIL: one request's at a time.
        # Requests in their slots wait here, blocked, instead of taking turns on the GIL
        # every few milliseconds (which costs each a cold cache at every turn). The join
        # store's write is outside it: SQLite works without the GIL meanwhile.
        self.busy = threading.Lock()
        # Parsing takes its own lock, one body at a time: a body refused while it is
        # parsed (a bomb) never holds up counting (see docs/security.md).
        self.parsing = threading.Lock()
        self.inflight = InFlight()
        # Raw bodies from before they are read until they are parsed: as many maximal
        # bodies as there are ingest slots.
        limits = config.limits
        self.body_budget = ByteBudget(limits.max_inflight * limits.max_body_bytes)
        self.collectors: dict[str, Collector] = {
            "models": ModelCollector(list(self.monitors.values()), self.refresher)
        }
        self._register()
        self.checkpointer: Checkpointer | None = None
        if config.state_dir is not None:
            self.checkpointer = Checkpointer(
                list(self.monitors.values()), config.state_dir, config.checkpoint_interval
            )
            self.checkpointer.restore_all()
        self.sources = [
            JsonlSource(
                s.path,
                s.model,
                self,
                state_dir=config.state_dir,
                follow_symlinks=s.follow_symlinks,
                logger=log,
            )
            for s in config.sources
        ]
        self.server: ExporterHTTPServer | None = None
        self.ready = False
        self.stopping = False
        self._stopped = threading.Event()

    def _register(self) -> None:
        from modelmon.collectors.health import CollectorSet
        from modelmon.resources import resource_collectors

        self.collectors.update(resource_collectors(self.config.collectors))
        shared = [s for s in _distinct(self.stores.values()) if s.shared]
        if shared:
            from modelmon.collectors.label_store import LabelStoreCollector

            self.collectors["label_store"] = LabelStoreCollector(shared)
        self.registry.register(CollectorSet(self.collectors, logger=log))
        self.registry.register(self.http_requests)

    # --- the sink interface (HTTP, tailed files, in-process use) ----------------------

    def has_model(self, model: str) -> bool:
        return model in self.monitors

    def model_names(self) -> list[str]:
        return list(self.monitors)

    def _monitor(self, model: str) -> ModelMonitor:
        try:
            return self.monitors[model]
        except KeyError:
            raise UnknownModelError(model) from None

    def ingest_predictions(self, model: str, records: Sequence[Any]) -> IngestResult:
        return self._monitor(model).ingest(records, exclusive=self.busy)

    def ingest_labels(self, model: str, records: Sequence[Any]) -> IngestResult:
        return self._monitor(model).ingest_labels(records, exclusive=self.busy)

    def count_rejected(self, model: str, reason: str, n: int = 1) -> None:
        self._monitor(model).count_rejected(reason, n)

    def render_metrics(self, accept: str = "") -> tuple[bytes, str]:
        """The /metrics body for an Accept header, and its content type.

        Counters and the resource collectors are rendered at every scrape; the computed
        statistics were rendered at the last refresh (:func:`static_exposition`).
        """
        parts, content_type = self.metrics_parts(accept)
        return b"".join(p if isinstance(p, bytes) else p.raw for p in parts), content_type

    def metrics_parts(self, accept: str = "") -> tuple[list[bytes | DeflatedPart], str]:
        """:meth:`render_metrics` in parts: the counters rendered now, the computed
        statistics of the last refresh (raw and deflated, for gzip) and, in
        OpenMetrics, the closing ``# EOF``."""
        encoder, content_type = choose_encoder(accept)
        openmetrics = content_type.startswith("application/openmetrics-text")
        body = render_registry(self.registry, openmetrics)
        if body is None:  # a family the fast renderer leaves to prometheus_client
            body = encoder(self.registry)
        static = self.refresher.exposition
        if openmetrics:
            eof = b"# EOF\n"
            if body.endswith(eof):
                body = body[: -len(eof)]
            return [body, static, eof], content_type
        return [body, static], content_type

    def describe_models(self) -> list[dict[str, Any]]:
        out = []
        for monitor in self.monitors.values():
            cfg = monitor.config
            with monitor.lock:
                versions = list(monitor.versions)
            out.append(
                {
                    "name": monitor.name,
                    "task": monitor.task,
                    "default_version": cfg.version,
                    "versions": versions,
                    "reference": cfg.reference.name,  # not the absolute path
                    "classes": monitor.profile.classes,
                    "positive_class": monitor.positive_class,
                    "windows": [w.name for w in cfg.windows],
                    "min_window_events": cfg.min_window_events,
                    "columns": [
                        {
                            "name": s.column.name,
                            "role": s.column.role,
                            "type": s.column.type,
                            "drift_method": monitor.methods[(s.column.role, s.column.name)],
                        }
                        for s in monitor.layout.columns
                    ],
                }
            )
        return out

    # --- lifecycle ---------------------------------------------------------------------

    def start(self, listen: str | None = None) -> tuple[str, int]:
        """Start the refresher and the HTTP server; returns the bound address."""
        host, port = parse_listen(listen or self.config.listen)
        self.refresher.start()
        if self.checkpointer is not None:
            self.checkpointer.start()
        self.server = ExporterHTTPServer((host, port), self)
        serve_in_thread(self.server)
        for source in self.sources:
            source.start()
        self.ready = True
        bound = self.server.server_address
        log.info(
            "modelmon serving on %s://%s:%s/metrics (models: %s)",
            "https" if self.config.tls.cert_file is not None else "http",
            bound[0],
            bound[1],
            ", ".join(self.monitors),
        )
        return str(bound[0]), int(bound[1])

    def stop(self) -> None:
        """Stop accepting, finish in-flight requests, stop the background work."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.ready = False
        self.stopping = True
        if self.server is not None:
            self.server.shutdown()  # no new connections
            self.server.server_close()
        for source in self.sources:
            source.stop()  # checkpoints its file offsets
        self._drain_ingest()
        self.refresher.stop()
        if self.checkpointer is not None:
            self.checkpointer.stop()  # a last checkpoint
        for store in _distinct(self.stores.values()):
            store.close()

    def _drain_ingest(self) -> None:
        """Wait for the ingest requests in flight (their body may still be arriving)."""
        timeout = self.config.limits.request_timeout + 5.0
        if not self.inflight.wait_idle(timeout):
            log.warning(
                "shutdown: %d ingest request(s) still running after %.0f s",
                self.inflight.count,
                timeout,
            )

    def wait(self) -> None:
        self._stopped.wait()


#: Allocations between two young-generation collections in a modelmon server process.
GC_THRESHOLD = 10_000


def tune_garbage_collector() -> None:
    """Collect the young generation every 10,000 container allocations instead of 700.

    A body of 1,000 records allocates thousands of dictionaries that live for one
    request; at the interpreter's default a collection runs every few records and
    costs about a fifth of ingest time. Objects in reference cycles are still
    collected, a little later. Called by ``modelmon serve`` and ``modelmon demo`` (never
    on import: an application that embeds :class:`modelmon.monitor.Monitor` keeps its
    own settings); ``gc.freeze`` moves the start-up objects out of every collection.
    """
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, older, oldest)


def label_stores(config: Config) -> dict[str, JoinStore]:
    """The join store of each model: one embedded store (SQLite under state_dir, else in
    memory) for the models without ``labels.store``, one Redis store per distinct
    ``labels.store`` settings for the others."""
    stores: dict[str, JoinStore] = {}
    opened: dict[tuple[Any, ...], JoinStore] = {}
    for model in config.models:
        cfg = model.labels
        key = (cfg.store, cfg.password_file, cfg.password_env, cfg.ca_file, cfg.timeout)
        store = opened.get(key)
        if store is None:
            store = opened[key] = _open_store(config, cfg)
        store.set_limits(model.name, ttl_seconds=cfg.ttl, max_pending=cfg.max_pending)
        stores[model.name] = store
    return stores


def _open_store(config: Config, cfg: LabelsConfig) -> JoinStore:
    if cfg.store is not None:
        from modelmon.labels.redis_store import RedisLabelStore

        store = RedisLabelStore.from_url(
            cfg.store,
            password=cfg.store_password(),
            ca_file=None if cfg.ca_file is None else str(cfg.ca_file),
            timeout=cfg.timeout,
            ttl_seconds=cfg.ttl,
            max_pending=cfg.max_pending,
        )
        try:
            store.check()
        except StoreUnavailableError as exc:  # start anyway: labels get 503 until it answers
            log.warning("%s", exc)
        return store
    path = None
    if config.state_dir is not None:
        private_dir(config.state_dir)
        path = config.state_dir / "labels.sqlite"
        for name in ("labels.sqlite", "labels.sqlite-wal", "labels.sqlite-shm"):
            # SQLite gives its WAL and shared-memory files the database file's mode.
            private_file(config.state_dir / name, create=name == "labels.sqlite")
    return open_store(path, ttl_seconds=cfg.ttl, max_pending=cfg.max_pending)


def _distinct(stores: Iterable[JoinStore]) -> list[JoinStore]:
    return list({id(s): s for s in stores}.values())


def _read_token(path: Path | None) -> bytes | None:
    """The bearer token: printable ASCII (a header carries it), from a file that other
    users cannot read (else a loud warning: Kubernetes mounts secrets 0644 by default)."""
    if path is None:
        return None
    try:
        raw = path.read_bytes()
        mode = path.stat().st_mode
    except OSError as exc:
        raise ValueError(f"auth.token_file: cannot read {path}: {exc.strerror}") from None
    token = raw.strip()
    if not token:
        raise ValueError(f"auth.token_file: {path} is empty")
    if not all(0x21 <= byte <= 0x7E for byte in token):
        raise ValueError(
            f"auth.token_file: {path} holds characters other than printable ASCII "
            "(no client could send it in an Authorization header)"
        )
    if mode & 0o004:
        log.warning(
            "auth.token_file: %s is readable by every user of this machine (mode %o); "
            "run chmod 600 on it (Kubernetes: defaultMode: 0400 on the secret volume)",
            path,
            mode & 0o777,
        )
    return token
