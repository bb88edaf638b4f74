"""Pushing a run's registry to a Pushgateway from a background thread.

The training thread never waits for the network: ``TrainingRun.log`` only changes the
run's state, and this thread pushes the state at most once per ``interval`` when it
changed, and at least once per ``heartbeat`` when it did not (so a live but quiet run is
told apart from a killed one by ``modelmon_training_heartbeat_timestamp_seconds``).
Each push replaces the group ``job=modelmon_training, model, run`` (HTTP PUT). A failed
push is counted (``modelmon_training_push_failures_total``) and logged once per
distinct error; training goes on. The final push, with the run's status, is made by
:meth:`Pusher.close` on the caller's thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, push_to_gateway

from modelmon.training.state import RunState

JOB = "modelmon_training"
PushFunction = Callable[..., Any]


class Pusher:
    """Pushes ``registry`` under the run's grouping key, off the training thread."""

    def __init__(
        self,
        url: str,
        registry: CollectorRegistry,
        state: RunState,
        *,
        interval: float = 10.0,
        heartbeat: float = 60.0,
        timeout: float = 5.0,
        push: PushFunction = push_to_gateway,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger | None = None,
    ) -> None:
        if not interval > 0 or not heartbeat >= interval:
            raise ValueError(
                f"push_interval: expected 0 < push_interval <= heartbeat, got {interval}, "
                f"{heartbeat}"
            )
        self.url = url
        self._registry = registry
        self._state = state
        self._interval, self._heartbeat, self._timeout = interval, heartbeat, timeout
        self._push = push
        self._clock = clock
        self._logger = logger if logger is not None else logging.getLogger(__name__)
        self._stop = threading.Event()
        self._push_lock = threading.Lock()  # the thread and flush() never push at once
        self._pushed_changes = -1
        self._last_push = -float("inf")
        self._last_error: str | None = None
        self.pushes = 0
        self._thread = threading.Thread(target=self._loop, name="modelmon-push", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        self.push_now()  # the run shows up at once, with status running
        while not self._stop.wait(self._interval):
            changed = self._state.changes != self._pushed_changes
            if changed or self._clock() - self._last_push >= self._heartbeat:
                self.push_now()

    def push_now(self) -> bool:
        """Push the current state; True on success. Never raises for network errors."""
        with self._push_lock:
            changes = self._state.changes
            try:
                self._push(
                    self.url,
                    job=JOB,
                    registry=self._registry,
                    grouping_key={"model": self._state.model, "run": self._state.run},
                    timeout=self._timeout,
                )
            except Exception as error:  # any failure of the network or the gateway
                self._state.count_push_failure()
                self._report(error)
                return False
            self._pushed_changes, self._last_push = changes, self._clock()
            self.pushes += 1
            if self._last_error is not None:
                self._logger.info("push to %s works again", self.url)
                self._last_error = None
            return True

    def close(self) -> bool:
        """Stop the thread and make the final push; True when it succeeded."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._timeout + self._interval)
        return self.push_now()

    def _report(self, error: Exception) -> None:
        message = f"{type(error).__name__}: {error}"
        if message != self._last_error:
            self._last_error = message
            self._logger.warning(
                "push to %s failed (training goes on; counted in "
                "modelmon_training_push_failures_total): %s",
                self.url,
                message,
            )
