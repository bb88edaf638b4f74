"""Reading ``modelmon evaluate``'s input: labels, each candidate's predictions and scores.

One or more CSV, JSON Lines or Parquet files with the same columns; each candidate is a
prediction column and, optionally, a positive-class score column (binary tasks), given as
``NAME=PRED_COL[:SCORE_COL]``. Class values follow DESIGN.md section 5: ``1``, ``"1"``,
``1.0`` and, from CSV, ``"1.0"`` are the class ``"1"``. A row without its label, a
prediction or a score is an input error naming the file, line and column.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelmon.evaluation.metrics import Arrays
from modelmon.profiling.readers import DataError, iter_chunks
from modelmon.values import class_value

TASKS = ("binary_classification", "multiclass_classification", "regression")
CANDIDATE = re.compile(r"([A-Za-z0-9_.-]+)=([^:]+)(?::(.+))?")
#: Integral labels with more distinct values than this are taken for a regression.
MAX_INFERRED_CLASSES = 20


@dataclass(frozen=True)
class CandidateSpec:
    """``--candidate NAME=PRED_COL[:SCORE_COL]``."""

    name: str
    prediction: str
    score: str | None = None


def parse_candidate(text: str) -> CandidateSpec:
    """Parse ``NAME=PRED_COL[:SCORE_COL]``; ValueError names the option.

    >>> parse_candidate("v4=pred_v4:proba_v4")
    CandidateSpec(name='v4', prediction='pred_v4', score='proba_v4')
    """
    match = CANDIDATE.fullmatch(text.strip())
    if not match:
        raise ValueError(
            f"--candidate: expected NAME=PRED_COL[:SCORE_COL] with NAME of [A-Za-z0-9_.-], "
            f"got {text!r}"
        )
    return CandidateSpec(match.group(1), match.group(2), match.group(3))


@dataclass
class EvaluationData:
    """The labelled rows, encoded for :mod:`modelmon.evaluation.metrics`."""

    task: str
    rows: int
    classes: list[str]  # class names by code (classification), empty for regression
    positive: str | None
    candidates: dict[str, Arrays]
    segments: dict[str, np.ndarray] = field(default_factory=dict)  # column -> values


def _read(paths: Sequence[str], wanted: list[str]) -> tuple[dict[str, list[Any]], list[str]]:
    """The wanted columns of every file, and the 'file: line N' of every row."""
    columns: dict[str, list[Any]] = {name: [] for name in wanted}
    where: list[str] = []
    for path in paths:
        for chunk in iter_chunks(path, 5_000):
            missing = [name for name in wanted if name not in chunk.columns]
            if missing:
                available = ", ".join(sorted(chunk.columns))
                raise DataError(f"{path}: no column {missing[0]!r} (columns: {available})")
            for name in wanted:
                columns[name].extend(chunk.columns[name])
            where.extend(f"{path}: line {chunk.first_line + i}" for i in range(chunk.rows))
    if not where:
        raise DataError(f"{', '.join(paths)}: no data rows")
    return columns, where


def _class(value: Any) -> str | None:
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value if value != "" else None
        return class_value(number) if math.isfinite(number) else value
    return class_value(value)


def _classes(values: list[Any], column: str, where: list[str]) -> list[str]:
    out = []
    for i, value in enumerate(values):
        text = _class(value)
        if text is None:
            raise DataError(f"{where[i]}: column {column!r}: expected a class, got {value!r}")
        out.append(text)
    return out


def _numbers(
    values: list[Any], column: str, where: list[str], bounds: tuple[float, float] | None = None
) -> np.ndarray:
    out = np.empty(len(values))
    for i, value in enumerate(values):
        try:
            number = float(value) if not isinstance(value, bool) and value != "" else math.nan
        except (TypeError, ValueError):
            number = math.nan
        ok = math.isfinite(number) and (bounds is None or bounds[0] <= number <= bounds[1])
        if not ok:
            want = "a number" if bounds is None else f"a number in [{bounds[0]}, {bounds[1]}]"
            raise DataError(f"{where[i]}: column {column!r}: expected {want}, got {value!r}")
        out[i] = number
    return out


def infer_task(labels: list[Any]) -> str:
    """binary/multiclass classification or regression, from the label values.

    Numbers that are not all integral mean a regression; integral numbers with more than
    20 distinct values too. Otherwise 2 classes are binary, more multiclass.

    >>> infer_task(["0", "1", "1"]), infer_task([1.5, 2.0]), infer_task(["a", "b", "c"])
    ('binary_classification', 'regression', 'multiclass_classification')
    """
    distinct = {_class(v) for v in labels}
    try:
        numbers = [float(v) for v in labels]
    except (TypeError, ValueError):
        numbers = []
    if numbers and (
        not all(x.is_integer() for x in numbers) or len(distinct) > MAX_INFERRED_CLASSES
    ):
        return "regression"
    return "binary_classification" if len(distinct) <= 2 else "multiclass_classification"


def positive_class(classes: list[str], given: str | None) -> str:
    """The given class, else ``1`` or ``true`` when present, else the last class in order."""
    if given is not None:
        if given not in classes:
            raise ValueError(f"--positive-class: {given!r} is not one of {', '.join(classes)}")
        return given
    for usual in ("1", "true", "True"):
        if usual in classes:
            return usual
    return classes[-1]


def load(
    paths: Sequence[str],
    label: str,
    candidates: Sequence[CandidateSpec],
    *,
    segments: Sequence[str] = (),
    task: str | None = None,
    positive: str | None = None,
) -> EvaluationData:
    """Read and encode the rows; ValueError (DataError) names the file, line and column."""
    wanted = [label, *segments]
    for c in candidates:
        wanted += [c.prediction] + ([c.score] if c.score else [])
    columns, where = _read(paths, list(dict.fromkeys(wanted)))
    task = task or infer_task(columns[label])
    segment_values = {s: np.asarray([str(v) for v in columns[s]]) for s in segments}
    if task == "regression":
        y = _numbers(columns[label], label, where)
        arrays = {
            c.name: Arrays(y, _numbers(columns[c.prediction], c.prediction, where))
            for c in candidates
        }
        return EvaluationData(task, len(y), [], None, arrays, segment_values)
    label_text = _classes(columns[label], label, where)
    predictions = {c.name: _classes(columns[c.prediction], c.prediction, where) for c in candidates}
    classes = sorted(set(label_text).union(*predictions.values()))
    code = {name: i for i, name in enumerate(classes)}
    y = np.asarray([code[v] for v in label_text])
    pos = positive_class(classes, positive) if task == "binary_classification" else None
    arrays = {}
    for c in candidates:
        score = None
        if c.score:
            if task != "binary_classification":
                raise ValueError(f"--candidate {c.name}: scores are for binary tasks only")
            score = _numbers(columns[c.score], c.score, where, (0.0, 1.0))
        pred = np.asarray([code[v] for v in predictions[c.name]])
        arrays[c.name] = Arrays(y, pred, score, code[pos] if pos else 0, len(classes))
    return EvaluationData(task, len(y), classes, pos, arrays, segment_values)
