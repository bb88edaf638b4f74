"""Raw values of one column of a batch to the arrays the binning code takes.

Numeric columns take numbers, numeric text and booleans (as 1/0); anything else is a
type error. Categorical columns take strings, numbers and booleans (as class values,
see :func:`modelmon.values.class_value`); objects, arrays and strings over the length
limit are type errors. ``None``, an absent key and NaN are missing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from modelmon.stats.binning import FloatArray
from modelmon.values import class_value


def numeric_values(values: Sequence[Any]) -> tuple[FloatArray, int]:
    """Floats (NaN = missing) and the number of type errors."""
    try:
        arr = np.array(values, dtype=np.float64)
        if arr.ndim == 1:
            return arr, 0
    except (ValueError, TypeError, OverflowError):
        pass
    out = np.empty(len(values), dtype=np.float64)
    errors = 0
    for i, v in enumerate(values):
        if v is None:
            out[i] = math.nan
            continue
        try:
            out[i] = float(v) if isinstance(v, (int, float, str)) else _bad()
        except OverflowError:
            out[i] = math.inf if v > 0 else -math.inf
        except (TypeError, ValueError):
            out[i] = math.nan
            errors += 1
    return out, errors


def _bad() -> float:
    raise TypeError("not a number")


_NONE = {type(None)}
_INT = {int}
_STR = {str}


def categorical_values(values: Sequence[Any], max_length: int) -> tuple[list[str | None], int]:
    """Class strings (None = missing) and the number of type errors."""
    kinds = set(map(type, values))
    if kinds <= _NONE:  # e.g. the inline label column when no record carries one
        return list(values), 0
    if kinds == _INT:  # the common class value: 0, 1, 2 ...
        return list(map(str, values)), 0
    if kinds == _STR and max(map(len, values)) <= max_length:
        return list(values), 0
    out: list[str | None] = []
    errors = 0
    append = out.append
    for v in values:
        if type(v) is str:
            if len(v) <= max_length:
                append(v)
                continue
            errors += 1
            append(None)
        elif v is None:
            append(None)
        elif type(v) is int:  # the common class value: 0, 1, 2 ...
            append(str(v))
        else:
            c = class_value(v)
            if c is None and not (type(v) is float and math.isnan(v)):
                errors += 1
            append(c)
    return out, errors
