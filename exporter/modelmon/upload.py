"""Reading a request body within a total deadline and the exporter's byte budget.

Every read waits at most ``limits.request_timeout``, and the whole body must arrive
within ``limits.body_timeout`` (else ``408``), so a client trickling one byte a second
cannot keep a request open for long. Before the first byte is read, the declared length
is reserved in the :class:`~modelmon.bodies.ByteBudget` that all uploads share (``429``
when it is spent, with the body unread, so the sender keeps its records). A body still
arriving ``GRACE_SECONDS`` after it started keeps only the bytes it has sent reserved,
and each further piece must fit in the budget at once (else ``429``): slow senders cannot
hold the budget with promises of large bodies, while a fast upload never waits.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from io import BufferedIOBase

from modelmon.bodies import BodyError, ByteBudget

#: Seconds an upload may hold its whole declared length before it holds only what it sent.
GRACE_SECONDS = 1.0
#: The most bytes one read asks for.
READ_CHUNK = 1 << 20


class BodyReader:
    """One request body: reserve its length, read it, release the reservation.

    >>> budget = ByteBudget(100)
    >>> reader = BodyReader(budget, 60, body_timeout=5.0, read_timeout=1.0)
    >>> reader.reserve(wait=0), budget.used
    (True, 60)
    >>> reader.release(); budget.used
    0
    """

    def __init__(
        self,
        budget: ByteBudget,
        length: int,
        *,
        body_timeout: float,
        read_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget = budget
        self.length = length
        self.body_timeout = body_timeout
        self.read_timeout = read_timeout
        self.clock = clock
        self.reserved = 0
        self.trickling = False

    def reserve(self, wait: float) -> bool:
        """Reserve the declared length, waiting up to ``wait`` seconds for room."""
        if not self.budget.reserve(self.length, timeout=wait):
            return False
        self.reserved = self.length
        return True

    def release(self) -> None:
        """Give back what is reserved (the body was parsed, or the request failed)."""
        self.budget.release(self.reserved)
        self.reserved = 0

    def read(self, stream: BufferedIOBase, connection: socket.socket) -> bytearray:
        """The body: first what ``stream`` (the connection's buffered reader) holds
        already, then straight from ``connection``. BodyError 400 when the client ends
        it early, 408 when a read waits ``read_timeout`` or the body takes longer than
        ``body_timeout``, 429 when a trickling body finds the budget spent.

        The socket is read directly, with a timeout recomputed before each read (the
        next of: the deadline, the per-read timeout, the end of the grace period): a
        timeout on the buffered reader would leave it unusable.
        """
        started = self.clock()
        deadline, grace = started + self.body_timeout, started + GRACE_SECONDS
        data = bytearray(self._buffered(stream, connection))
        last = started
        try:
            while len(data) < self.length:
                now = self.clock()
                if not self.trickling and now >= grace:
                    self._keep_only(len(data))
                wake = min(deadline, last + self.read_timeout)
                if now >= wake:
                    raise self._late(len(data))
                if not self.trickling:
                    wake = min(wake, grace)
                connection.settimeout(max(wake - now, 0.001))
                try:
                    chunk = connection.recv(min(self.length - len(data), READ_CHUNK))
                except TimeoutError:
                    continue
                if not chunk:
                    raise BodyError(400, f"body: ended after {len(data)} of {self.length} bytes")
                last = self.clock()
                self._account(len(chunk))
                data += chunk
        finally:
            connection.settimeout(self.read_timeout)
        return data

    def _buffered(self, stream: BufferedIOBase, connection: socket.socket) -> bytes:
        """What the buffered reader holds of the body already, without waiting."""
        connection.setblocking(False)
        try:
            return stream.read1(self.length) or b""
        except (BlockingIOError, ssl.SSLWantReadError):
            return b""
        finally:
            connection.settimeout(self.read_timeout)

    def _keep_only(self, received: int) -> None:
        self.budget.release(self.reserved - received)
        self.reserved = received
        self.trickling = True

    def _account(self, size: int) -> None:
        if not self.trickling:
            return
        if not self.budget.reserve(size, timeout=0):
            raise BodyError(429, "ingest queue full; retry later", {"Retry-After": "1"})
        self.reserved += size

    def _late(self, received: int) -> BodyError:
        return BodyError(
            408,
            f"body: {received} of {self.length} bytes arrived within the time allowed "
            f"(limits.request_timeout={self.read_timeout:g}s per read, "
            f"limits.body_timeout={self.body_timeout:g}s in all)",
        )
