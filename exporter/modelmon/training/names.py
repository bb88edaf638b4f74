"""Metric names from training frameworks as modelmon label values.

Frameworks name metrics freely (``val/acc``, ``eval_f1 macro``); label values of
``metric`` and ``split`` are ``[A-Za-z0-9_.:-]``. Other characters become ``_``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_INVALID = re.compile(r"[^A-Za-z0-9_.:-]")


def metric_name(name: str) -> str:
    """``name`` with every character outside ``[A-Za-z0-9_.:-]`` replaced by ``_``.

    >>> metric_name("val/acc top-5")
    'val_acc_top-5'
    """
    return _INVALID.sub("_", name)[:128] or "_"


def numbers(values: Mapping[str, Any], *, strip: str = "") -> dict[str, float]:
    """The entries of ``values`` that are numbers (tensors and numpy scalars included),
    with the prefix ``strip`` removed from their names and the names made label values."""
    out = {}
    for key, value in values.items():
        number = as_number(value)
        if number is not None:
            out[metric_name(key.removeprefix(strip))] = number
    return out


def as_number(value: Any) -> float | None:
    """``value`` as a float (one-element tensors via ``.item()``), or None."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)  # NaN and inf kept: a diverged loss is data
