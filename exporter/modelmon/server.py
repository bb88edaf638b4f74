"""The HTTP API of DESIGN.md section 5 on the standard library's threading server.

Handlers validate at the boundary and answer every bad request with a 4xx naming what
is wrong; a bad record never raises and never stops the server. Framing is strict
(:mod:`modelmon.framing`), bodies arrive within a deadline (:mod:`modelmon.upload`), and
client text reaches the log only escaped (:mod:`modelmon.logsafe`). Ingest runs at most
``limits.max_inflight`` requests at once; past that a request waits briefly, then gets
``429`` with ``Retry-After``, so a flood queues in the senders, not in memory here. At
most ``limits.max_connections`` connections are served at once (one thread each).
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from typing import TYPE_CHECKING, Any

from modelmon.bodies import BodyError, ValueCounter, decompress, media_type, parse_records
from modelmon.compression import gzip_join
from modelmon.config import TlsConfig
from modelmon.framing import FramingError, check_framing, content_length
from modelmon.httpmetrics import handler_of
from modelmon.labels.base import StoreUnavailableError
from modelmon.logsafe import printable
from modelmon.sources.ratelimit import RateLimitedLog
from modelmon.upload import BodyReader

if TYPE_CHECKING:
    from modelmon.app import Exporter

log = logging.getLogger(__name__)

INGEST_PATH = re.compile(r"^/v1/models/([^/]+)/(predictions|labels)$")
#: How long an ingest request waits for a free slot before it gets 429.
QUEUE_WAIT_SECONDS = 0.5


class Handler(BaseHTTPRequestHandler):
    """One connection; the exporter is reached through ``self.server.exporter``."""

    protocol_version = "HTTP/1.1"
    # Headers and body are two writes: without TCP_NODELAY every keep-alive response
    # waits ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True
    server: ExporterHTTPServer
    server_version = "modelmon"

    def setup(self) -> None:
        # StreamRequestHandler applies this as the socket timeout: a slow client cannot
        # hold a worker thread longer than the configured request timeout.
        self.timeout = self.server.exporter.config.limits.request_timeout  # type: ignore[misc]
        super().setup()

    def version_string(self) -> str:
        return self.server_version  # no Python version in the Server header

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), printable(format % args))

    def parse_request(self) -> bool:
        """The standard library's parsing, then strict framing (:mod:`modelmon.framing`):
        a request that fails it is answered 4xx and its connection closed."""
        self.path = ""  # not the previous request's, if this one's line is refused
        stream = self.rfile
        recorder = _LineRecorder(stream)
        self.rfile = recorder  # type: ignore[assignment]
        try:
            if not super().parse_request():
                return False
        finally:
            self.rfile = stream
        try:
            if not getattr(self, "raw_requestline", b"").endswith(b"\r\n"):
                raise FramingError(400, "request line: not ended by CRLF")
            check_framing(self.command, self.headers, recorder.lines)
        except FramingError as exc:
            self.close_connection = True
            self._error(exc.status, exc.message, exc.headers)
            return False
        return True

    def handle_expect_100(self) -> bool:
        """``Expect: 100-continue``: no ``100`` for a request whose framing will be
        refused (parse_request answers it next), so the client does not send its body."""
        recorder = self.rfile
        if isinstance(recorder, _LineRecorder):
            try:
                check_framing(self.command, self.headers, recorder.lines)
            except FramingError:
                return True
        return super().handle_expect_100()

    def send_response(self, code: int, message: str | None = None) -> None:
        self.server.exporter.http_requests.add(handler_of(getattr(self, "path", "")), code)
        super().send_response(code, message)

    # --- responses -----------------------------------------------------------------------

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        self._send(status, body, "application/json", headers)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._json(status, {"error": message}, headers)

    # --- GET -----------------------------------------------------------------------------

    def do_GET(self) -> None:
        with self._internal_errors():
            self._get()

    @contextmanager
    def _internal_errors(self) -> Iterator[None]:
        """A bug (an exception that is not about the connection) is logged with its
        traceback and answered ``500``, instead of a silently dropped connection."""
        try:
            yield
        except (ConnectionError, TimeoutError, ssl.SSLError):
            raise  # the client went away: nothing to answer
        except Exception as exc:
            log.exception("%s %s failed", printable(self.command), printable(self.path))
            self.close_connection = True
            with suppress(OSError):
                self._error(500, f"internal error: {type(exc).__name__}: {exc}"[:500])

    def _get(self) -> None:
        path = self.path.split("?", 1)[0]
        exporter = self.server.exporter
        probe = path in ("/healthz", "/readyz")
        if not probe and exporter.config.auth.protect_metrics and not self._authorized():
            return
        if path == "/metrics":
            self._metrics()
        elif path == "/healthz":
            self._send(200, b"ok\n", "text/plain; charset=utf-8")
        elif path == "/readyz":
            ready = exporter.ready
            self._send(
                200 if ready else 503,
                b"ready\n" if ready else b"not ready\n",
                "text/plain; charset=utf-8",
            )
        elif path == "/v1/models":
            self._json(200, {"models": exporter.describe_models()})
        elif path == "/":
            self._send(200, _INDEX, "text/html; charset=utf-8")
        else:
            self._error(404, f"no such path: {path}")

    do_HEAD = do_GET  # noqa: N815 - the stdlib dispatches on this name

    def _metrics(self) -> None:
        exporter = self.server.exporter
        parts, content_type = exporter.metrics_parts(self.headers.get("Accept", ""))
        headers = {}
        raw = [p if isinstance(p, bytes) else p.raw for p in parts]
        if "gzip" in self.headers.get("Accept-Encoding", "") and sum(map(len, raw)) > 1024:
            body = gzip_join(parts)  # the statistics were deflated at the last refresh
            headers["Content-Encoding"] = "gzip"
        else:
            body = b"".join(raw)
        self._send(200, body, content_type, headers)

    # --- POST ----------------------------------------------------------------------------

    def do_POST(self) -> None:
        with self.server.exporter.inflight, self._internal_errors():
            self._post()

    def _post(self) -> None:
        exporter = self.server.exporter
        if exporter.stopping:  # a keep-alive connection that outlived the listener
            self._reject_body(503, "shutting down; retry later", {"Retry-After": "1"})
            return
        match = INGEST_PATH.match(self.path.split("?", 1)[0])
        if match is None:
            if self._authorized():  # with a token, an unknown path is 401 too
                self._reject_body(404, f"no such path: {self.path[:200]}")
            return
        if not self._authorized():
            return
        model, kind = match.group(1), match.group(2)
        if not exporter.has_model(model):
            self._reject_body(
                404,
                f"model: {model[:100]!r} is not configured; "
                f"models: {', '.join(exporter.model_names())}",
            )
            return
        # Memory is bounded twice, so that a flood waits in the senders (429), not here:
        # raw bodies share a byte budget from before they are read until they are parsed
        # (a slow uploader holds only what it sent), and parsing and ingest run in at
        # most `max_inflight` slots.
        try:
            reader = self._reserve(exporter)
        except BodyError as exc:
            self._reject_body(exc.status, exc.message, exc.headers)
            return
        try:
            records = self._parsed(exporter, reader)
        finally:
            reader.release()
        if records is None:
            return
        try:
            # Counting takes exporter.busy (see Exporter.busy); the join store does not.
            if kind == "predictions":
                result = exporter.ingest_predictions(model, records)
            else:
                result = exporter.ingest_labels(model, records)
            self._json(200, result.to_json())
        except StoreUnavailableError as exc:  # labels only: predictions are counted without it
            self._error(503, f"labels: {exc}", {"Retry-After": "1"})
        finally:
            # Held until the answer is written: a graceful shutdown waits for it.
            exporter.ingest_slots.release()

    def _parsed(self, exporter: Exporter, reader: BodyReader) -> list[Any] | None:
        """Read and parse the body in an ingest slot; None after answering an error.
        On success the caller holds the slot and must release it."""
        try:
            body = reader.read(self.rfile, self.connection)
        except BodyError as exc:
            self._reject_body(exc.status, exc.message, exc.headers)
            return None
        if not exporter.ingest_slots.acquire(timeout=QUEUE_WAIT_SECONDS):
            self._reject_body(429, "ingest queue full; retry later", {"Retry-After": "1"})
            return None
        try:
            # One parse at a time, beside (not under) the lock that counting takes: a
            # body that is refused while parsing never holds up counting.
            with exporter.parsing:
                return self._records(body)
        except BodyError as exc:
            exporter.ingest_slots.release()
            self._reject_body(exc.status, exc.message, exc.headers)
            return None

    def _authorized(self) -> bool:
        token = self.server.exporter.token
        if token is None:
            return True
        header = self.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token):
            return True
        self.close_connection = True
        self._error(
            401,
            "Authorization: expected 'Bearer <token>'",
            {"WWW-Authenticate": 'Bearer realm="modelmon"'},
        )
        return False

    def _reserve(self, exporter: Exporter) -> BodyReader:
        """Check the body's headers and reserve its length in the exporter's byte budget
        (429 when it is spent); the caller releases it. Framing was checked already."""
        limits = exporter.config.limits
        media_type(self.headers.get("Content-Type"))  # 415 before reading anything
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            raise BodyError(411, "Content-Length: required")
        length = content_length(length_text)
        if length > limits.max_body_bytes:
            raise BodyError(
                413, f"body: {length} bytes is over the limit of {limits.max_body_bytes} bytes"
            )
        reader = BodyReader(
            exporter.body_budget,
            length,
            body_timeout=limits.body_timeout,
            read_timeout=limits.request_timeout,
        )
        if not reader.reserve(wait=QUEUE_WAIT_SECONDS):
            raise BodyError(429, "ingest queue full; retry later", {"Retry-After": "1"})
        return reader

    def _records(self, body: bytearray) -> list[Any]:
        """Decompress, count the values (413 over ``max_values``, before parsing) and
        parse (413 over ``max_records``)."""
        limits = self.server.exporter.config.limits
        kind = media_type(self.headers.get("Content-Type"))
        counter = ValueCounter(kind, limits.max_values)
        data = decompress(
            body, self.headers.get("Content-Encoding"), limits.max_decompressed_bytes, counter
        )
        del body  # the compressed bytes are not needed any more
        return parse_records(data, kind, limits.max_records)

    def _reject_body(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        # Part of the body may be unread and would be taken for the next request.
        self.close_connection = True
        self._error(status, message, headers)


class ExporterHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server bound to one exporter."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], exporter: Exporter) -> None:
        self.exporter = exporter
        context = tls_context(exporter.config.tls)  # before binding: a bad file says so
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.max_connections = exporter.config.limits.max_connections
        self.connections = threading.BoundedSemaphore(self.max_connections)
        self._refusals = RateLimitedLog(log, interval=10.0)
        super().__init__(address, Handler)
        if context is not None:
            # The handshake runs in the connection's thread, not in the accept loop.
            self.socket = context.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection in its own thread, unless ``max_connections`` are open."""
        if not self.connections.acquire(blocking=False):
            self._refuse(request, client_address)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.connections.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connections.release()

    def _refuse(self, request: Any, client_address: Any) -> None:
        """Answer 503 at once (plain HTTP) and close: no thread is started for it."""
        self.exporter.http_requests.add("other", 503)
        self._refusals.warning(
            "connection refused: %d connections are open, the limit "
            "(limits.max_connections); client %s",
            self.max_connections,
            printable(client_address[0] if client_address else "?"),
        )
        if not isinstance(request, ssl.SSLSocket):  # no handshake yet: nothing to say
            with suppress(OSError):
                request.setblocking(False)
                request.send(_REFUSED)
        self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class InFlight:
    """Counts the ingest requests being handled, so a shutdown can wait for them."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = threading.Condition()

    def __enter__(self) -> None:
        with self._changed:
            self.count += 1

    def __exit__(self, *_exc: object) -> None:
        with self._changed:
            self.count -= 1
            self._changed.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """True once no request is in flight; False if some still are after ``timeout``."""
        with self._changed:
            return self._changed.wait_for(lambda: self.count == 0, timeout)


def tls_context(tls: TlsConfig) -> ssl.SSLContext | None:
    """The server's TLS context, or None without TLS; errors name the config key."""
    if tls.cert_file is None or tls.key_file is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    for key, path in (("tls.cert_file", tls.cert_file), ("tls.key_file", tls.key_file)):
        if not path.is_file():
            raise ValueError(f"{key}: {path} does not exist or is not a file")
    try:
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(
            f"tls.cert_file, tls.key_file: cannot load {tls.cert_file} with {tls.key_file}: "
            f"{getattr(exc, 'reason', None) or exc}"
        ) from None
    return context


def serve_in_thread(server: ExporterHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="modelmon-http", daemon=True)
    thread.start()
    return thread


class _LineRecorder:
    """The connection's reader, keeping the header lines read through it as they came
    (the standard library's parser drops their line ends)."""

    def __init__(self, stream: BufferedIOBase) -> None:
        self._stream = stream
        self.lines: list[bytes] = []

    def readline(self, limit: int = -1) -> bytes:
        line = self._stream.readline(limit)
        self.lines.append(line)
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


_REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\nServer: modelmon\r\nRetry-After: 1\r\n"
    b"Content-Type: application/json\r\nContent-Length: 58\r\nConnection: close\r\n\r\n"
    b'{"error":"too many connections (limits.max_connections)"}\n'
)

_INDEX = b"""<!doctype html><title>modelmon</title><h1>modelmon</h1>
<ul><li><a href="/metrics">/metrics</a><li><a href="/v1/models">/v1/models</a>
<li><a href="/healthz">/healthz</a><li><a href="/readyz">/readyz</a></ul>
"""
