"""The state of one training run: what ``TrainingRun.log`` changes and the collectors read.

Writers (the training thread) and readers (the push thread, a scrape) meet under one
lock; readers take a :class:`Snapshot`, a copy, so a push never holds the lock while it
talks to the network. Every label value a writer brings in is validated here, at the
boundary, and the number of distinct splits, metrics and classes is capped so that a
bug in a training loop cannot flood Prometheus with series.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

STATUSES = ("running", "succeeded", "failed")
NAME = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
#: Caps on label values per run: splits (train, validation, test, ...), metric names
#: and confusion-matrix classes. Far above what a run logs, far below a flood.
MAX_SPLITS, MAX_METRICS, MAX_CLASSES = 16, 128, 100


def check_name(value: object, parameter: str) -> str:
    """``value`` as a label value, or ValueError naming ``parameter``.

    >>> check_name("validation", "split")
    'validation'
    >>> check_name("val loss", "split")
    Traceback (most recent call last):
    ...
    ValueError: split: expected 1-128 characters of [A-Za-z0-9_.:-], got 'val loss'
    """
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise ValueError(
            f"{parameter}: expected 1-128 characters of [A-Za-z0-9_.:-], got {value!r}"
        )
    return value


def check_number(value: object, parameter: str) -> float:
    """``value`` as a float (NaN and inf allowed: a diverged loss is data), else ValueError."""
    if type(value) is float:  # the common case, first
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            return float(value)  # type: ignore[arg-type]  # numpy and torch scalars
        except (TypeError, ValueError):
            raise ValueError(f"{parameter}: expected a number, got {value!r}") from None
    return float(value)


@dataclass(frozen=True)
class Snapshot:
    """A copy of a run's state at one instant."""

    model: str
    run: str
    version: str
    params_digest: str
    status: str
    start_time: float
    end_time: float | None
    step: float | None
    epoch: float | None
    learning_rate: float | None
    samples: float
    losses: dict[str, float]
    nonfinite_losses: dict[str, int]
    metrics: dict[tuple[str, str], float]
    confusion: dict[str, dict[tuple[str, str], int]]
    push_failures: int


@dataclass
class RunState:
    """Mutable state of a run, guarded by ``lock``; ``changes`` counts writes."""

    model: str
    run: str
    version: str
    params_digest: str
    start_time: float
    status: str = "running"
    end_time: float | None = None
    step: float | None = None
    epoch: float | None = None
    learning_rate: float | None = None
    samples: float = 0.0
    losses: dict[str, float] = field(default_factory=dict)
    nonfinite_losses: dict[str, int] = field(default_factory=dict)
    metrics: dict[tuple[str, str], float] = field(default_factory=dict)
    confusion: dict[str, dict[tuple[str, str], int]] = field(default_factory=dict)
    push_failures: int = 0
    changes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def update(
        self,
        *,
        split: str,
        step: float | None,
        epoch: float | None,
        loss: float | None,
        metrics: Mapping[str, float],
        learning_rate: float | None,
        samples: float | None,
    ) -> None:
        """Apply one ``log`` call (arguments already validated)."""
        with self.lock:
            if step is not None:
                self.step = step
            if epoch is not None:
                self.epoch = epoch
            if learning_rate is not None:
                self.learning_rate = learning_rate
            if samples is not None:
                self.samples += samples
            if loss is not None:
                self._cap(self.losses, split, MAX_SPLITS, "split")
                self.losses[split] = loss
                if not math.isfinite(loss):
                    self.nonfinite_losses[split] = self.nonfinite_losses.get(split, 0) + 1
            for name, value in metrics.items():
                self._cap(self.metrics, (split, name), MAX_METRICS, "metrics")
                self.metrics[(split, name)] = value
            self.changes += 1

    def set_confusion(self, split: str, cells: dict[tuple[str, str], int]) -> None:
        """Replace the split's confusion matrix."""
        with self.lock:
            self._cap(self.confusion, split, MAX_SPLITS, "split")
            self.confusion[split] = cells
            self.changes += 1

    def finish(self, status: str, end_time: float) -> None:
        """Record the final status once; later calls change nothing."""
        if status not in STATUSES[1:]:
            raise ValueError(f"status: expected one of succeeded, failed, got {status!r}")
        with self.lock:
            if self.status == "running":
                self.status, self.end_time = status, end_time
                self.changes += 1

    def count_push_failure(self) -> None:
        with self.lock:
            self.push_failures += 1

    def snapshot(self) -> Snapshot:
        with self.lock:
            return Snapshot(
                self.model,
                self.run,
                self.version,
                self.params_digest,
                self.status,
                self.start_time,
                self.end_time,
                self.step,
                self.epoch,
                self.learning_rate,
                self.samples,
                dict(self.losses),
                dict(self.nonfinite_losses),
                dict(self.metrics),
                {split: dict(cells) for split, cells in self.confusion.items()},
                self.push_failures,
            )

    @staticmethod
    def _cap(table: Mapping[Any, Any], key: object, limit: int, what: str) -> None:
        if key not in table and len(table) >= limit:
            raise ValueError(f"{what}: more than {limit} distinct values in one run ({key!r})")
