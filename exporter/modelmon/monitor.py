"""In-process mode: the exporter inside the model's own process.

For deployments without a sidecar. :class:`Monitor` builds the same
:class:`~modelmon.app.Exporter` that ``modelmon serve`` runs, serves ``/metrics`` on a
port of the caller's choice, and takes records through :meth:`Monitor.log_prediction`
and :meth:`Monitor.log_label`. Those calls only append to a bounded queue (a full queue
drops the record and counts it in :attr:`Monitor.dropped`); a background thread hands
the queue to the exporter every ``flush_interval`` seconds, so the model's request path
never waits for statistics.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from modelmon.app import Exporter
from modelmon.client import prediction_record
from modelmon.config import Config, config_from_dict, load_config

log = logging.getLogger(__name__)


class Monitor:
    """Run the exporter in this process and log records to it directly.

    ``config`` is a YAML path, a mapping shaped like the YAML file (relative paths are
    relative to ``base_dir``), or a :class:`~modelmon.config.Config`. ``listen`` overrides
    the config's address (``None`` keeps it; port 0 picks a free port, see :attr:`port`).
    """

    def __init__(
        self,
        config: str | Path | Mapping[str, Any] | Config,
        *,
        listen: str | None = "127.0.0.1:9847",
        base_dir: str | Path = ".",
        queue_size: int = 100_000,
        flush_interval: float = 0.2,
    ) -> None:
        if isinstance(config, Config):
            self.config = config
        elif isinstance(config, Mapping):
            self.config = config_from_dict(dict(config), Path(base_dir))
        else:
            self.config = load_config(config)
        self.exporter = Exporter(self.config)
        self.listen = listen
        self.queue_size = queue_size
        self.flush_interval = flush_interval
        self.dropped = 0
        self._queue: deque[tuple[str, str, dict[str, Any]]] = deque()
        self._default_model = self.config.models[0].name if len(self.config.models) == 1 else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._flush_lock = threading.Lock()
        self.port = 0

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> Monitor:
        _, self.port = self.exporter.start(self.listen)
        self._thread = threading.Thread(target=self._run, name="modelmon-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()
        self.exporter.stop()

    def __enter__(self) -> Monitor:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- logging -----------------------------------------------------------------------

    def log_prediction(
        self,
        features: Mapping[str, Any],
        prediction: Any = None,
        *,
        id: str | None = None,
        score: float | None = None,
        scores: Mapping[str, float] | None = None,
        label: Any = None,
        version: str | None = None,
        timestamp: float | None = None,
        latency_seconds: float | None = None,
        model: str | None = None,
    ) -> None:
        """Queue a prediction record (DESIGN.md section 5); never raises on bad values."""
        record = prediction_record(
            features,
            prediction,
            id=id,
            score=score,
            scores=scores,
            label=label,
            version=version,
            timestamp=timestamp,
            latency_seconds=latency_seconds,
        )
        self._put(model, "predictions", record)

    def log_label(
        self,
        id: str,
        label: Any,
        *,
        timestamp: float | None = None,
        model: str | None = None,
    ) -> None:
        """Queue a ground-truth label for the prediction with this ``id``."""
        record = {
            "id": id,
            "label": label,
            "timestamp": time.time() if timestamp is None else timestamp,
        }
        self._put(model, "labels", record)

    def _put(self, model: str | None, kind: str, record: dict[str, Any]) -> None:
        name = model or self._default_model
        if name is None or len(self._queue) >= self.queue_size:
            self.dropped += 1
            return
        self._queue.append((name, kind, record))

    def flush(self) -> None:
        """Hand every queued record to the exporter now."""
        with self._flush_lock:
            batches: dict[tuple[str, str], list[dict[str, Any]]] = {}
            while self._queue:
                name, kind, record = self._queue.popleft()
                batches.setdefault((name, kind), []).append(record)
            for (name, kind), records in batches.items():
                if not self.exporter.has_model(name):
                    self.dropped += len(records)
                    continue
                if kind == "predictions":
                    self.exporter.ingest_predictions(name, records)
                else:
                    self.exporter.ingest_labels(name, records)

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            try:
                self.flush()
            except Exception:  # never let the monitor thread die
                log.exception("modelmon monitor: flushing records failed")
