"""Normalisation of raw values: class labels, categories and timestamps.

Class values (predictions, labels, keys of ``scores``) and categories are compared and
exported as strings, so ``1``, ``"1"`` and ``1.0`` are the same class ``"1"``.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

MAX_CATEGORY_LENGTH = 256


def class_value(value: object) -> str | None:
    """The canonical string of a class or category value; ``None`` when it is not one.

    >>> class_value(1), class_value("1"), class_value(1.0), class_value(True)
    ('1', '1', '1', 'true')
    >>> class_value(0.25), class_value(None), class_value([1]) is None
    ('0.25', None, True)
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
        return repr(value)
    return None


def as_float(value: float) -> float:
    """A JSON number as a float: an integer beyond float range becomes +-inf.

    >>> as_float(3), as_float(10**400), as_float(-(10**400))
    (3.0, inf, -inf)
    """
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


class TimestampError(ValueError):
    """A timestamp that is neither Unix seconds nor RFC 3339."""


def parse_timestamp(value: object) -> float:
    """Unix seconds from a number or an RFC 3339 string (naive times are UTC).

    >>> parse_timestamp(1764075600.25)
    1764075600.25
    >>> parse_timestamp("2025-11-25T13:00:00Z")
    1764075600.0
    """
    if isinstance(value, bool):
        raise TimestampError("expected Unix seconds or an RFC 3339 string, got a boolean")
    if isinstance(value, (int, float)):
        seconds = as_float(value)
        if not math.isfinite(seconds) or seconds < 0:
            raise TimestampError(f"expected finite, non-negative Unix seconds, got {seconds!r}")
        return seconds
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise TimestampError(
                f"expected Unix seconds or an RFC 3339 string, got {value[:64]!r}"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    raise TimestampError(f"expected Unix seconds or an RFC 3339 string, got {type(value).__name__}")


def parse_duration(text: object) -> float:
    """Seconds from a Prometheus-style duration: ``30s``, ``5m``, ``1h``, ``7d``, ``1w``.

    >>> parse_duration("5m"), parse_duration("1h30m"), parse_duration("7d")
    (300.0, 5400.0, 604800.0)
    """
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
    if not isinstance(text, str) or not text:
        raise ValueError(f"expected a duration such as 5m, 1h or 7d, got {text!r}")
    total, number = 0.0, ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = "ms" if text.startswith("ms", i) else ch
        if unit not in units or not number:
            raise ValueError(f"expected a duration such as 5m, 1h or 7d, got {text!r}")
        total += float(number) * units[unit]
        number = ""
        i += len(unit)
    if number or total <= 0:
        raise ValueError(f"expected a duration such as 5m, 1h or 7d, got {text!r}")
    return total
