"""A logger wrapper that emits at most one warning per interval.

A flood of bad lines or a full send queue must not turn into a flood of log lines: the
log is for a human, the counters are for totals. Messages held back are counted and the
count is appended to the next message that goes out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


class RateLimitedLog:
    """Forward at most one warning per ``interval`` seconds to ``logger``.

    >>> import logging
    >>> clock = iter([0.0, 1.0, 2.0, 11.0]).__next__
    >>> log = RateLimitedLog(logging.getLogger("doctest"), interval=10.0, clock=clock)
    >>> [log.warning("bad line %d", n) for n in range(4)]
    [True, False, False, True]
    >>> log.suppressed
    0
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._next_at = float("-inf")
        self.suppressed = 0
        self._lock = threading.Lock()

    def warning(self, message: str, *args: object) -> bool:
        """Log ``message % args`` unless one went out less than ``interval`` ago.

        Returns whether the message was logged. Safe to call from any thread.
        """
        with self._lock:
            now = self._clock()
            if now < self._next_at:
                self.suppressed += 1
                return False
            self._next_at = now + self._interval
            held_back, self.suppressed = self.suppressed, 0
        if held_back:
            message += " (%d similar messages suppressed)"
            args = (*args, held_back)
        self._logger.warning(message, *args)
        return True
