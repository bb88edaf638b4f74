"""``modelmon.TrainingRun``: a training job's progress in the Prometheus stack.

::

    with TrainingRun(model="credit-risk", run="2026-12-04-a", params={"lr": 0.01},
                     push_gateway="http://pushgateway:9091") as run:
        for epoch in range(10):
            ...
            run.log(step=step, epoch=epoch, loss=loss, samples=len(batch))
            run.log(split="validation", loss=val_loss, metrics={"accuracy": acc})
            run.log_confusion(y_val, predicted, split="validation")

``log`` only updates the run's state under a lock (a few microseconds); a background
thread pushes it to the Pushgateway (job ``modelmon_training``, grouping key model and
run) and/or an in-process ``/metrics`` serves it. Leaving the ``with`` block makes the
final push with status ``succeeded``, or ``failed`` when an exception escapes. A
Pushgateway that cannot be reached never breaks training: failed pushes are counted and
logged. See docs/training.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType, TracebackType
from typing import Any

import numpy as np
import psutil
from prometheus_client import CollectorRegistry, push_to_gateway

from modelmon.training.endpoint import MetricsEndpoint
from modelmon.training.families import RunCollector
from modelmon.training.pusher import Pusher, PushFunction
from modelmon.training.resources import run_resources
from modelmon.training.state import MAX_CLASSES, STATUSES, RunState, check_name, check_number
from modelmon.values import class_value

log = logging.getLogger(__name__)


def params_digest(params: Mapping[str, Any]) -> str:
    """First 12 hex digits of the SHA-256 of the parameters as canonical JSON.

    Two runs with the same parameters have the same digest, whatever the key order.

    >>> params_digest({"lr": 0.01, "layers": [64, 32]}) == params_digest(
    ...     {"layers": [64, 32], "lr": 0.01})
    True
    >>> len(params_digest({}))
    12
    """
    text = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


class TrainingRun:
    """One training run, reported by push (``push_gateway``) and/or scrape (``listen``).

    ``resources`` runs the process collector (this process and its children) and the GPU
    collector (``gpu``: ``auto``, ``true`` or ``false``, as ``collectors.gpu``) inside
    the run. ``nvml``, ``psutil_module``, ``push`` and ``clock`` are injected by tests.
    """

    def __init__(
        self,
        model: str,
        run: str,
        *,
        version: str = "",
        params: Mapping[str, Any] | None = None,
        push_gateway: str | None = None,
        listen: str | None = None,
        push_interval: float = 10.0,
        heartbeat: float = 60.0,
        push_timeout: float = 5.0,
        resources: bool = True,
        gpu: str | bool = "auto",
        nvml: ModuleType | Any | None = None,
        psutil_module: Any = None,
        push: PushFunction = push_to_gateway,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._state = RunState(
            model=check_name(model, "model"),
            run=check_name(run, "run"),
            version=version if version == "" else check_name(version, "version"),
            params_digest=params_digest(params or {}),
            start_time=clock(),
        )
        self.params = dict(params or {})
        self._checked_names: set[str] = set()
        self._clock = clock
        collectors = run_resources(
            process=resources,
            gpu=gpu if resources else "false",
            nvml=nvml,
            psutil_module=psutil if psutil_module is None else psutil_module,
        )
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(
            RunCollector(self._state, collectors.collect if collectors else None, clock=clock)
        )
        self._pusher = (
            Pusher(
                push_gateway,
                self.registry,
                self._state,
                interval=push_interval,
                heartbeat=heartbeat,
                timeout=push_timeout,
                push=push,
            )
            if push_gateway
            else None
        )
        self._endpoint = MetricsEndpoint(listen, self.registry) if listen else None
        if self._pusher is not None:
            self._pusher.start()
        self._closed = False

    # --- reporting ------------------------------------------------------------------------

    def log(
        self,
        *,
        step: float | None = None,
        epoch: float | None = None,
        split: str = "train",
        loss: float | None = None,
        metrics: Mapping[str, float] | None = None,
        learning_rate: float | None = None,
        samples: float | None = None,
    ) -> None:
        """Record progress: any of step, epoch, the split's loss and metrics, the learning
        rate, and ``samples`` processed since the previous call (summed into a counter).

        NaN and infinite losses are recorded (and counted): they are what the
        ``ModelmonTrainingLossNotFinite`` alert is for. Invalid arguments raise ValueError.
        """
        checked = (
            {
                self._name(name, "metrics"): check_number(value, f"metrics[{name!r}]")
                for name, value in metrics.items()
            }
            if metrics
            else {}
        )
        if samples is not None and not (number := check_number(samples, "samples")) >= 0:
            raise ValueError(f"samples: expected a number >= 0, got {samples!r}")
        self._state.update(
            split=self._name(split, "split"),
            step=None if step is None else check_number(step, "step"),
            epoch=None if epoch is None else check_number(epoch, "epoch"),
            loss=None if loss is None else check_number(loss, "loss"),
            metrics=checked,
            learning_rate=None
            if learning_rate is None
            else check_number(learning_rate, "learning_rate"),
            samples=None if samples is None else number,
        )

    def _name(self, value: object, parameter: str) -> str:
        """:func:`check_name`, remembering the names already checked (the hot path)."""
        if isinstance(value, str) and value in self._checked_names:
            return value
        name = check_name(value, parameter)
        self._checked_names.add(name)
        return name

    def log_confusion(
        self, y_true: Iterable[Any], y_pred: Iterable[Any], *, split: str = "validation"
    ) -> None:
        """Replace the split's confusion matrix with the counts of (actual, predicted).

        Classes are compared and exported as strings (``1``, ``"1"`` and ``1.0`` are the
        class ``"1"``), at most 100 distinct classes.
        """
        actual = _class_strings(y_true, "y_true")
        predicted = _class_strings(y_pred, "y_pred")
        if actual.shape != predicted.shape:
            raise ValueError(
                f"y_pred: expected {actual.shape[0]} values like y_true, got {predicted.shape[0]}"
            )
        classes, codes = np.unique(np.concatenate([actual, predicted]), return_inverse=True)
        if len(classes) > MAX_CLASSES:
            raise ValueError(f"y_true, y_pred: more than {MAX_CLASSES} distinct classes")
        n = len(actual)
        counts = np.bincount(codes[:n] * len(classes) + codes[n:], minlength=len(classes) ** 2)
        cells = {
            (str(classes[i // len(classes)]), str(classes[i % len(classes)])): int(c)
            for i, c in enumerate(counts)
        }
        self._state.set_confusion(check_name(split, "split"), cells)

    def flush(self) -> bool:
        """Push now, on the calling thread; True on success (False without a gateway)."""
        return self._pusher.push_now() if self._pusher is not None else False

    # --- life cycle -----------------------------------------------------------------------

    def finish(self, status: str = "succeeded") -> None:
        """End the run with ``status`` (succeeded or failed) and make the final push."""
        if status not in STATUSES[1:]:
            raise ValueError(f"status: expected one of succeeded, failed, got {status!r}")
        if self._closed:
            return
        self._closed = True
        self._state.finish(status, self._clock())
        if self._pusher is not None and not self._pusher.close():
            log.error("final push of run %s to %s failed", self._state.run, self._pusher.url)
        if self._endpoint is not None:
            self._endpoint.close()

    def __enter__(self) -> TrainingRun:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.finish("failed" if kind is not None else "succeeded")

    @property
    def status(self) -> str:
        return self._state.snapshot().status

    @property
    def metrics_address(self) -> str | None:
        """``HOST:PORT`` of the in-process ``/metrics``, None without ``listen``."""
        return self._endpoint.address if self._endpoint is not None else None

    @property
    def push_failures(self) -> int:
        return self._state.snapshot().push_failures


def _class_strings(values: Iterable[Any], parameter: str) -> np.ndarray:
    """Class values as the exporter's canonical strings (:func:`modelmon.values.class_value`)."""
    out = []
    for index, value in enumerate(values):
        text = class_value(value.item() if isinstance(value, np.generic) else value)
        if text is None:
            raise ValueError(f"{parameter}[{index}]: expected a class value, got {value!r}")
        out.append(text)
    if not out:
        raise ValueError(f"{parameter}: expected at least one value")
    return np.asarray(out, dtype=str)
