"""An optional in-process ``/metrics`` endpoint for long training jobs.

A Kubernetes Job that runs for hours is better scraped (a PodMonitor) than pushed: the
scrape's ``up`` says when the job dies, and there is nothing to clean up on a
Pushgateway afterwards. The server runs in a daemon thread and serves the run's registry
only (no default registry, no process metrics of prometheus_client).
"""

from __future__ import annotations

import threading
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # base signature
        """Scrapes are not logged: one line per scrape would flood the job's log."""


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as (host, port); ValueError names ``listen``.

    >>> parse_listen("0.0.0.0:9848"), parse_listen("[::1]:0")
    (('0.0.0.0', 9848), ('::1', 0))
    """
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"listen: expected HOST:PORT, got {listen!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


class MetricsEndpoint:
    """Serves ``registry`` on ``GET /metrics`` at ``listen`` until :meth:`close`."""

    def __init__(self, listen: str, registry: CollectorRegistry) -> None:
        host, port = parse_listen(listen)
        self._server: WSGIServer = make_server(
            host, port, make_wsgi_app(registry), handler_class=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="modelmon-metrics", daemon=True
        )
        self._thread.start()

    @property
    def address(self) -> str:
        """The bound ``HOST:PORT`` (the real port when 0 was asked for)."""
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
