"""Raw values of a data file's column to the arrays the binning code takes.

``modelmon check`` reads files the way ``modelmon profile`` read the reference, so a
value means the same on both sides: text in
:data:`~modelmon.profiling.readers.MISSING_TOKENS` (``""``, ``NA``, ``null``, ...) is
missing, and class columns (prediction and label of a classifier) read numeric text as
a number, so CSV's ``1.0`` is the class ``1``. Everything else follows the exporter's
column rules (:mod:`modelmon.columns`): booleans count as 1/0 in numeric columns, and a
value of the wrong type is a type error of its column.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelmon.columns import categorical_values, numeric_values
from modelmon.profiling.readers import MISSING_TOKENS
from modelmon.stats.binning import FloatArray
from modelmon.values import MAX_CATEGORY_LENGTH, class_value


def _missing_as_none(value: Any) -> Any:
    if type(value) is str and value.strip() in MISSING_TOKENS:
        return None
    return value


def _class_text(value: Any) -> Any:
    """Numeric text as its class string (``"1.0"`` -> ``"1"``), as the profile reads it."""
    value = _missing_as_none(value)
    if type(value) is str:
        try:
            return class_value(float(value))
        except ValueError:
            return value
    return value


def _mapped(values: list[Any], convert: Any) -> list[Any]:
    """``convert`` applied to every value, once per distinct value where they hash.

    Columns repeat few distinct values (classes, categories), so a memo turns a
    per-row Python call into a dictionary look-up.
    """
    try:
        distinct = set(values)
    except TypeError:  # unhashable values (JSON arrays or objects): no memo
        return [convert(v) for v in values]
    # True == 1 and False == 0: a bool may hide behind a number in the set.
    if (True in distinct or False in distinct) and any(type(v) is bool for v in values):
        return [convert(v) for v in values]
    memo = {v: convert(v) for v in distinct}
    return [memo[v] for v in values]


def numeric_column(values: list[Any]) -> tuple[FloatArray, int]:
    """Floats (NaN = missing) and the number of type errors of a numeric column.

    >>> arr, errors = numeric_column(["1.5", "", "NA", "hot", "2"])
    >>> arr.tolist()[:1], int(np.isnan(arr).sum()), errors
    ([1.5], 3, 1)
    """
    try:
        arr = np.array(values, dtype=np.float64)
        if arr.ndim == 1:
            return arr, 0
    except (ValueError, TypeError, OverflowError):
        pass
    return numeric_values([_missing_as_none(v) for v in values])


def categorical_column(values: list[Any], *, classes: bool) -> tuple[list[str | None], int]:
    """Category strings (None = missing) and the number of type errors; ``classes``
    reads numeric text as a number (class columns).

    >>> categorical_column(["DE", "", "NA", 3], classes=False)
    (['DE', None, None, '3'], 0)
    >>> categorical_column(["1.0", "0", "null", 1], classes=True)
    (['1', '0', None, '1'], 0)
    """
    cleaned = _mapped(values, _class_text if classes else _missing_as_none)
    return categorical_values(cleaned, MAX_CATEGORY_LENGTH)
