"""Send prediction and label records to a modelmon exporter from the model's process.

The client is built for the model's request path: ``log_prediction`` builds a dict and
appends it to a bounded in-memory queue, nothing more (about a microsecond). A
background daemon thread takes batches from the queue, serializes them to a JSON array,
gzips them and POSTs them over one keep-alive connection to
``{url}/v1/models/{model}/predictions`` or ``/labels`` (DESIGN.md section 5).

Nothing raises into the caller and nothing is lost silently; every record ends in one
of the counters:

- ``sent``: delivered (the exporter answered 2xx); ``rejected`` says how many of those
  the exporter rejected as unusable (its response names them, and the client logs one);
- ``failed``: given up on: a 4xx answer other than 429 (retrying cannot fix it), a value
  that cannot be serialized to JSON, or ``max_retries`` exhausted;
- ``dropped``: never sent: the queue was full, the client was closed, or ``close`` gave
  up waiting.

429 (honouring ``Retry-After``), 5xx, timeouts and connection errors are retried with
exponential backoff and jitter, by default until delivered: while the exporter is down
the queue fills up to ``queue_size`` records and the overflow is dropped and counted.
A 413 (body too large) splits the batch in two and sends each half.

Example (not run here: it needs an exporter)::

    with Client("http://127.0.0.1:9847", "credit-risk") as client:
        client.log_prediction({"age": 41, "income": 52000.0}, 1, id="req-81f2", score=0.83)
        client.log_label("req-81f2", 0)
"""

from __future__ import annotations

import atexit
import email.utils
import gzip
import importlib.util
import itertools
import json
import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import quote

import requests

from modelmon import __version__
from modelmon.sources.ratelimit import RateLimitedLog

PREDICTIONS = "predictions"
LABELS = "labels"
GZIP_MIN_BYTES = 1024  # below this, compressing costs more than it saves


def prediction_record(
    features: Mapping[str, Any],
    prediction: Any = None,
    *,
    id: str | None = None,
    score: float | None = None,
    scores: Mapping[str, float] | None = None,
    label: Any = None,
    version: str | None = None,
    timestamp: float | str | None = None,
    latency_seconds: float | None = None,
) -> dict[str, Any]:
    """A prediction record (DESIGN.md section 5) with the fields that are given;
    ``timestamp`` defaults to now. ``features`` and ``scores`` are copied (shallowly)."""
    record: dict[str, Any] = {
        "features": dict(features),
        "timestamp": time.time() if timestamp is None else timestamp,
    }
    optional = (
        ("prediction", prediction),
        ("id", id),
        ("score", score),
        ("label", label),
        ("version", version),
        ("latency_seconds", latency_seconds),
    )
    for key, value in optional:
        if value is not None:
            record[key] = value
    if scores is not None:
        record["scores"] = dict(scores)
    return record


class Client:
    """Queue records on the caller's thread; deliver them in batches on a daemon thread.

    ``batch_size`` records or ``flush_interval`` seconds, whichever comes first, make a
    batch. ``queue_size`` bounds the records waiting (one batch more may be in flight).
    ``max_retries`` None retries a batch until it is delivered or the client is closed.
    Leaving a ``with`` block and interpreter exit close the client, waiting at most
    ``shutdown_timeout`` seconds, so a model's shutdown never hangs on a lost exporter.
    Create the client after a fork: its thread does not exist in a child process.
    """

    def __init__(
        self,
        url: str,
        model: str,
        token: str | None = None,
        *,
        queue_size: int = 10000,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        timeout: float = 5.0,
        max_retries: int | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        shutdown_timeout: float = 10.0,
        session: requests.Session | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        for name, value in (("queue_size", queue_size), ("batch_size", batch_size)):
            if value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value}")
        base = f"{url.rstrip('/')}/v1/models/{quote(model, safe='')}"
        self._urls = {PREDICTIONS: f"{base}/predictions", LABELS: f"{base}/labels"}
        self._headers = {
            "Content-Type": "application/json",
            "User-Agent": f"modelmon-client/{__version__}",
        }
        if token is not None:
            self._headers["Authorization"] = f"Bearer {token}"
        self._queue: deque[tuple[str, dict[str, Any]]] = deque()
        self._queue_size, self._batch_size = queue_size, batch_size
        self._flush_interval, self._timeout = flush_interval, timeout
        self._max_retries = max_retries
        self._backoff_initial, self._backoff_max = backoff_initial, backoff_max
        self._shutdown_timeout = shutdown_timeout
        self._own_session = session is None
        self._session = session or requests.Session()
        self._logger = logger or logging.getLogger(__name__)
        self._warn = RateLimitedLog(self._logger)
        self._sent = self._failed = self._rejected = self._dropped = 0
        self._drop_lock = threading.Lock()
        self._idle = threading.Condition()  # notified whenever a batch is done
        self._in_flight = False
        self._wake, self._closing, self._abort = (threading.Event() for _ in range(3))
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="modelmon-client", daemon=True)
        self._thread.start()
        atexit.register(self.close, shutdown_timeout)

    # --- the caller's side: cheap, never raises ------------------------------------------

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
        timestamp: float | str | None = None,
        latency_seconds: float | None = None,
    ) -> None:
        """Queue one prediction record; ``timestamp`` defaults to now (``time.time()``).

        ``features`` is copied (shallowly): the caller may reuse the dict, but must not
        change values nested inside it.
        """
        try:
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
        except Exception as error:  # e.g. features that are no mapping: never raise
            self._drop(1, "log_prediction: %r", error)
            return
        self._put(PREDICTIONS, record)

    def log_label(self, id: str, label: Any, *, timestamp: float | str | None = None) -> None:
        """Queue one ground-truth label for the prediction logged with ``id``."""
        record: dict[str, Any] = {"id": id, "label": label}
        if timestamp is not None:
            record["timestamp"] = timestamp
        self._put(LABELS, record)

    def _put(self, kind: str, record: dict[str, Any]) -> None:
        queue = self._queue
        if len(queue) >= self._queue_size or self._closed:
            self._drop(1, "queue full (%d records) or client closed", self._queue_size)
            return
        queue.append((kind, record))
        if len(queue) >= self._batch_size and not self._wake.is_set():
            self._wake.set()

    def _drop(self, n: int, why: str, *args: object) -> None:
        with self._drop_lock:
            self._dropped += n
        self._warn.warning("modelmon client: dropped %d record(s): " + why, n, *args)

    # --- counters ------------------------------------------------------------------------

    @property
    def sent(self) -> int:
        """Records delivered (the exporter answered 2xx), including ``rejected`` ones."""
        return self._sent

    @property
    def rejected(self) -> int:
        """Records delivered that the exporter rejected as unusable."""
        return self._rejected

    @property
    def failed(self) -> int:
        """Records given up on: 4xx other than 429, unserializable, retries exhausted."""
        return self._failed

    @property
    def dropped(self) -> int:
        """Records never sent: queue full, logged after close, or abandoned by close."""
        return self._dropped

    @property
    def queued(self) -> int:
        """Records waiting in the queue now."""
        return len(self._queue)

    # --- flushing and closing ------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Send what is queued now; True once the queue is empty and nothing is in flight.

        Returns False when ``timeout`` seconds passed first (e.g. the exporter is down).
        """
        self._wake.set()
        with self._idle:
            return self._idle.wait_for(lambda: not self._queue and not self._in_flight, timeout)

    def close(self, timeout: float | None = None) -> None:
        """Stop taking records, deliver the queue within ``timeout`` seconds, stop.

        ``timeout`` None waits as long as delivery takes. Records still undelivered when
        ``timeout`` passes count as ``dropped``.
        """
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        self._closing.set()
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._abort.set()  # stop retrying; an ongoing request ends within its timeout
            self._thread.join()
        if self._queue:
            self._drop(len(self._queue), "undelivered at close")
            self._queue.clear()
        if self._own_session:
            self._session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close(self._shutdown_timeout)

    # --- the sender thread ---------------------------------------------------------------

    def _run(self) -> None:
        while not (self._closing.is_set() and not self._queue) and not self._abort.is_set():
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            while self._queue and not self._abort.is_set():
                self._send_batch()

    def _send_batch(self) -> None:
        """Take up to ``batch_size`` records; send predictions, then labels."""
        with self._idle:
            self._in_flight = True
            queue = self._queue
            taken = [queue.popleft() for _ in range(min(self._batch_size, len(queue)))]
        try:
            for kind in (PREDICTIONS, LABELS):
                records = [record for k, record in taken if k == kind]
                if records:
                    self._deliver(kind, records)
        except Exception as error:  # a bug must not kill the sender thread
            self._failed += len(taken)
            self._logger.exception("modelmon client: sending a batch failed: %r", error)
        finally:
            with self._idle:
                self._in_flight = False
                self._idle.notify_all()

    def _deliver(self, kind: str, records: Sequence[dict[str, Any]]) -> None:
        """POST ``records`` with retries; count them as sent, failed or dropped."""
        body, records = encode_records(records, self._unserializable)
        if not records:
            return
        headers = self._headers
        if len(body) >= GZIP_MIN_BYTES:
            body = gzip.compress(body, compresslevel=1)
            headers = {**headers, "Content-Encoding": "gzip"}
        for attempt in itertools.count():
            retry = self._attempt(kind, body, headers, records, attempt)
            if retry is None:
                return
            delay, problem = retry
            if self._max_retries is not None and attempt >= self._max_retries:
                self._give_up(len(records), f"{problem} after {attempt} retries")
                return
            self._warn.warning("modelmon client: %s; retrying in %.1fs", problem, delay)
            if self._abort.wait(delay):
                self._drop(len(records), "abandoned at close while retrying")
                return

    def _attempt(
        self,
        kind: str,
        body: bytes,
        headers: Mapping[str, str],
        records: Sequence[dict[str, Any]],
        attempt: int,
    ) -> tuple[float, str] | None:
        """POST once; None when the records are settled, else (delay, problem) to retry."""
        try:
            response = self._session.post(
                self._urls[kind], data=body, headers=headers, timeout=self._timeout
            )
        except requests.RequestException as error:  # connection refused, timeout, ...
            return self._backoff(attempt), repr(error)
        status = response.status_code
        if status < 300:
            self._count_delivered(len(records), response)
            return None
        if status == 413 and len(records) > 1:  # too large: halve, and each half retries
            half = len(records) // 2
            self._deliver(kind, records[:half])
            self._deliver(kind, records[half:])
            return None
        problem = f"HTTP {status} from {self._urls[kind]}: {response.text[:200]}"
        if status == 429:
            wait = retry_after(response)
            return (self._backoff(attempt) if wait is None else wait), problem
        if status >= 500:
            return self._backoff(attempt), problem
        self._give_up(len(records), problem)  # any other 4xx: retrying cannot fix it
        return None

    def _count_delivered(self, n: int, response: requests.Response) -> None:
        self._sent += n
        try:
            answer = response.json()
            rejected, errors = int(answer.get("rejected", 0)), answer.get("errors") or []
        except (ValueError, AttributeError, TypeError):
            return  # a 2xx without the documented body: delivered, nothing more to learn
        self._rejected += rejected
        if rejected and errors:
            self._warn.warning(
                "modelmon client: the exporter rejected %d of %d records, e.g. %s",
                rejected,
                n,
                errors[0],
            )

    def _give_up(self, n: int, problem: str) -> None:
        self._failed += n
        self._warn.warning("modelmon client: gave up on %d record(s): %s", n, problem)

    def _unserializable(self, record: Mapping[str, Any], error: Exception) -> None:
        self._give_up(1, f"not serializable to JSON ({error}): {record!r:.200}")

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: a random delay in [d/2, d], d doubling."""
        delay = min(self._backoff_max, self._backoff_initial * 2.0**attempt)
        return random.uniform(delay / 2, delay)


def encode_records(
    records: Sequence[dict[str, Any]],
    on_error: Callable[[Mapping[str, Any], Exception], None] | None,
) -> tuple[bytes, Sequence[dict[str, Any]]]:
    """A JSON array of ``records`` and the records it holds.

    numpy scalars and arrays become numbers and lists. A record that still cannot be
    serialized is left out and passed to ``on_error(record, error)``; the others go.

    >>> encode_records([{"id": "a", "label": 1}], None)
    (b'[{"id":"a","label":1}]', [{'id': 'a', 'label': 1}])
    """
    try:
        return _dumps(records), records
    except (TypeError, ValueError):
        pass
    kept, parts = [], []
    for record in records:
        try:
            parts.append(_dumps(record))
        except (TypeError, ValueError) as error:
            if on_error is not None:
                on_error(record, error)
            continue
        kept.append(record)
    return b"[" + b",".join(parts) + b"]", kept


def dumps_json(value: object) -> bytes:
    """JSON with the standard library: numpy values as numbers, NaN and infinity as null.

    >>> dumps_json({"x": float("nan"), 1: 2.5})
    b'{"x":null,"1":2.5}'
    """
    try:
        text = json.dumps(value, separators=(",", ":"), default=_jsonable, allow_nan=False)
    except ValueError:  # NaN or infinity somewhere: JSON has neither
        text = json.dumps(_finite(value), separators=(",", ":"), allow_nan=False)
    return text.encode()


def dumps_orjson(value: object) -> bytes:
    """The same as :func:`dumps_json`, several times faster: orjson (the "fast" extra)."""
    import orjson

    options = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    return orjson.dumps(value, default=_jsonable, option=options)


# Serializing holds the GIL: a faster encoder also takes less time from the model's threads.
_dumps = dumps_orjson if importlib.util.find_spec("orjson") else dumps_json


def _jsonable(value: Any) -> Any:
    """numpy scalars and arrays, by their ``tolist()``; anything else is an error."""
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by None (the exporter counts missing).

    >>> _finite({"x": float("nan"), "y": [1.5, float("inf")]})
    {'x': None, 'y': [1.5, None]}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    if callable(getattr(value, "tolist", None)):
        return _finite(value.tolist())
    return value


def retry_after(response: requests.Response) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or HTTP date), if any."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
