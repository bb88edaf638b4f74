"""Telling the lines of a model's JSONL log apart.

One log may interleave prediction records and label records (DESIGN.md section 5). A
line is classified by its keys alone, so the rule is easy to state and to check:

- an object with a ``features`` key is a **prediction record** (whether its
  ``features`` are usable is the sink's decision, like for the HTTP API);
- an object with ``id`` and ``label`` and no ``features`` is a **label record**;
- any other JSON value is rejected with reason ``not_a_record``;
- a line that is not JSON (or not UTF-8) is rejected with reason ``invalid_json``;
- an empty or all-whitespace line is no record and is skipped without a count.

>>> batch = classify_lines([b'{"features": {"x": 1}}', b'', b'{"id": "a", "label": 1}',
...                         b'[1, 2]', b'{"x": '], first_line=10)
>>> batch.predictions, batch.prediction_lines
([{'features': {'x': 1}}], [10])
>>> batch.labels, batch.label_lines
([{'id': 'a', 'label': 1}], [12])
>>> batch.rejected
[(13, 'not_a_record'), (14, 'invalid_json')]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from modelmon.bodies import loads as _loads

INVALID_JSON = "invalid_json"
NOT_A_RECORD = "not_a_record"


@dataclass
class ClassifiedLines:
    """The records of a run of lines, split by kind, each kind in file order.

    ``*_lines`` hold the 1-based line number of each record, parallel to the records,
    so that an error the sink reports by index can be traced back to the file.
    """

    predictions: list[dict[str, Any]] = field(default_factory=list)
    prediction_lines: list[int] = field(default_factory=list)
    labels: list[dict[str, Any]] = field(default_factory=list)
    label_lines: list[int] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)


def classify_lines(lines: Sequence[bytes], first_line: int) -> ClassifiedLines:
    """Parse and classify ``lines`` (without their ``\\n``); the first is ``first_line``."""
    batch = ClassifiedLines()
    for number, raw in enumerate(lines, start=first_line):
        if not raw.strip():
            continue
        try:
            value = _loads(raw)
        except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError
            batch.rejected.append((number, INVALID_JSON))
            continue
        kind = record_kind(value)
        if kind == "prediction":
            batch.predictions.append(value)
            batch.prediction_lines.append(number)
        elif kind == "label":
            batch.labels.append(value)
            batch.label_lines.append(number)
        else:
            batch.rejected.append((number, NOT_A_RECORD))
    return batch


def record_kind(value: object) -> str | None:
    """``"prediction"``, ``"label"`` or None (not a record), by the rule above."""
    if not isinstance(value, dict):
        return None
    if "features" in value:
        return "prediction"
    if "id" in value and "label" in value:
        return "label"
    return None
