"""The reference profile: frozen bins and shares of every column of the reference data.

A profile is a JSON document written by ``modelmon profile`` and read by ``serve`` and
``check``. Its bin edges never change after it is written, so a statistic computed
against it today means what it meant last month (DESIGN.md section 6).

Numeric columns carry *coarse* edges at the reference quantiles k/B and *fine* edges at
k/F (duplicates collapsed). Bins are ``(-inf, e1), [e1, e2), ..., [e_last, +inf)``, so a
column with E edges has E + 1 bins. The coarse edges are a subset of the fine edges,
which lets a window count fine bins only and derive the coarse counts from them.
Categorical columns carry the reference share of their top categories and of
``__other__``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "modelmon-profile"
FORMAT_VERSION = 1
OTHER = "__other__"
ROLES = ("feature", "prediction", "score", "label")
TASKS = ("binary_classification", "multiclass_classification", "regression")


class ProfileError(ValueError):
    """A profile file that cannot be used; the message names the file and the key."""


@dataclass
class ColumnProfile:
    """The reference distribution of one column."""

    name: str
    role: str
    type: str  # numeric | categorical
    count: int  # rows in the reference
    missing: int  # of which missing
    distinct: int = 0  # distinct non-missing values (capped for large columns)
    source: str | None = None  # data column, when it differs from name (multiclass scores)
    # numeric
    min: float = math.nan
    max: float = math.nan
    mean: float = math.nan
    std: float = math.nan
    coarse_edges: list[float] = field(default_factory=list)
    coarse_ratios: list[float] = field(default_factory=list)
    fine_edges: list[float] = field(default_factory=list)
    fine_ratios: list[float] = field(default_factory=list)
    fine_means: list[float] = field(default_factory=list)  # mean reference value per fine bin
    # categorical
    categories: dict[str, float] = field(default_factory=dict)  # top categories -> share
    other_ratio: float = 0.0
    known_values: list[str] = field(default_factory=list)  # every category seen, capped
    known_values_complete: bool = True

    @property
    def values(self) -> int:
        """Non-missing reference values."""
        return self.count - self.missing

    @property
    def is_numeric(self) -> bool:
        return self.type == "numeric"

    @property
    def binned_as_categorical(self) -> bool:
        """Numeric columns with at most 5 distinct values are tested like categories."""
        return not self.is_numeric or self.distinct <= 5

    def bin_names(self) -> list[str]:
        """Names of the exported coarse bins (``bin`` label values)."""
        if self.is_numeric:
            return [str(i) for i in range(len(self.coarse_edges) + 1)]
        return [*self.categories, OTHER]

    def reference_ratios(self) -> list[float]:
        """Reference share of each exported bin, in ``bin_names()`` order."""
        if self.is_numeric:
            return list(self.coarse_ratios)
        return [*self.categories.values(), self.other_ratio]


@dataclass
class Profile:
    """A reference profile: task, classes and the per-column reference distributions."""

    task: str
    rows: int
    columns: list[ColumnProfile]
    classes: list[str] = field(default_factory=list)
    positive_class: str | None = None
    coarse_bins: int = 10
    fine_bins: int = 100
    created: str = ""
    sources: list[str] = field(default_factory=list)
    quantiles: str = "exact"  # exact | approximate (see docs/profiles.md)
    calibration: dict[str, Any] | None = None
    baselines: dict[str, float] = field(default_factory=dict)
    id_column: str | None = None

    def column(self, role: str, name: str) -> ColumnProfile | None:
        for col in self.columns:
            if col.role == role and col.name == name:
                return col
        return None

    def role_columns(self, role: str) -> list[ColumnProfile]:
        return [c for c in self.columns if c.role == role]

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "task": self.task,
            "rows": self.rows,
            "classes": self.classes,
            "positive_class": self.positive_class,
            "coarse_bins": self.coarse_bins,
            "fine_bins": self.fine_bins,
            "created": self.created,
            "sources": self.sources,
            "quantiles": self.quantiles,
            "id_column": self.id_column,
            "calibration": self.calibration,
            "baselines": self.baselines,
            "columns": [_column_to_dict(c) for c in self.columns],
        }
        return body

    def save(self, path: str | Path) -> None:
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False)
        Path(path).write_text(text + "\n", encoding="utf-8")


def _column_to_dict(col: ColumnProfile) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": col.name,
        "role": col.role,
        "type": col.type,
        "count": col.count,
        "missing": col.missing,
        "distinct": col.distinct,
    }
    if col.source is not None:
        out["source"] = col.source
    if col.is_numeric:
        for key in ("min", "max", "mean", "std"):
            value = getattr(col, key)
            out[key] = None if math.isnan(value) else value
        for key in ("coarse_edges", "coarse_ratios", "fine_edges", "fine_ratios", "fine_means"):
            out[key] = [None if math.isnan(v) else v for v in getattr(col, key)]
    else:
        out["categories"] = col.categories
        out["other_ratio"] = col.other_ratio
        out["known_values"] = col.known_values
        out["known_values_complete"] = col.known_values_complete
    return out


def load_profile(path: str | Path) -> Profile:
    """Read and check a profile written by ``modelmon profile``."""
    where = str(path)
    try:
        body = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"{where}: cannot read the profile: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ProfileError(f"{where}: line {exc.lineno}: not valid JSON: {exc.msg}") from None
    return profile_from_dict(body, where)


def profile_from_dict(body: Any, where: str = "profile") -> Profile:
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise ProfileError(f"{where}: not a modelmon profile (expected format: {FORMAT!r})")
    version = body.get("format_version")
    if version != FORMAT_VERSION:
        raise ProfileError(f"{where}: format_version: expected {FORMAT_VERSION}, got {version!r}")
    task = body.get("task")
    if task not in TASKS:
        raise ProfileError(f"{where}: task: {task!r} is not one of {', '.join(TASKS)}")
    columns_raw = body.get("columns")
    if not isinstance(columns_raw, list) or not columns_raw:
        raise ProfileError(f"{where}: columns: expected a non-empty list")
    columns = [_column_from_dict(c, f"{where}: columns[{i}]") for i, c in enumerate(columns_raw)]
    return Profile(
        task=task,
        rows=int(body.get("rows", 0)),
        columns=columns,
        classes=[str(c) for c in body.get("classes") or []],
        positive_class=body.get("positive_class"),
        coarse_bins=int(body.get("coarse_bins", 10)),
        fine_bins=int(body.get("fine_bins", 100)),
        created=str(body.get("created", "")),
        sources=list(body.get("sources") or []),
        quantiles=str(body.get("quantiles", "exact")),
        calibration=body.get("calibration"),
        baselines={k: float(v) for k, v in (body.get("baselines") or {}).items()},
        id_column=body.get("id_column"),
    )


def _floats(values: Any, where: str) -> list[float]:
    if not isinstance(values, list):
        raise ProfileError(f"{where}: expected a list of numbers")
    return [math.nan if v is None else float(v) for v in values]


def _column_from_dict(raw: Any, where: str) -> ColumnProfile:
    if not isinstance(raw, dict):
        raise ProfileError(f"{where}: expected an object")
    try:
        col = ColumnProfile(
            name=str(raw["name"]),
            role=str(raw["role"]),
            type=str(raw["type"]),
            count=int(raw["count"]),
            missing=int(raw["missing"]),
            distinct=int(raw.get("distinct", 0)),
            source=raw.get("source"),
        )
    except KeyError as exc:
        raise ProfileError(f"{where}: missing key {exc.args[0]!r}") from None
    if col.role not in ROLES:
        raise ProfileError(f"{where}.role: {col.role!r} is not one of {', '.join(ROLES)}")
    if col.type == "numeric":
        for key in ("min", "max", "mean", "std"):
            value = raw.get(key)
            setattr(col, key, math.nan if value is None else float(value))
        col.coarse_edges = _floats(raw.get("coarse_edges", []), f"{where}.coarse_edges")
        col.coarse_ratios = _floats(raw.get("coarse_ratios", []), f"{where}.coarse_ratios")
        col.fine_edges = _floats(raw.get("fine_edges", []), f"{where}.fine_edges")
        col.fine_ratios = _floats(raw.get("fine_ratios", []), f"{where}.fine_ratios")
        col.fine_means = _floats(raw.get("fine_means", []), f"{where}.fine_means")
        if len(col.fine_ratios) != len(col.fine_edges) + 1:
            raise ProfileError(f"{where}.fine_ratios: expected len(fine_edges) + 1 entries")
        if len(col.coarse_ratios) != len(col.coarse_edges) + 1:
            raise ProfileError(f"{where}.coarse_ratios: expected len(coarse_edges) + 1 entries")
        if not set(col.coarse_edges) <= set(col.fine_edges):
            raise ProfileError(f"{where}.coarse_edges: expected a subset of fine_edges")
    elif col.type == "categorical":
        cats = raw.get("categories", {})
        if not isinstance(cats, dict):
            raise ProfileError(f"{where}.categories: expected an object of shares")
        col.categories = {str(k): float(v) for k, v in cats.items()}
        col.other_ratio = float(raw.get("other_ratio", 0.0))
        col.known_values = [str(v) for v in raw.get("known_values", [])]
        col.known_values_complete = bool(raw.get("known_values_complete", True))
    else:
        raise ProfileError(f"{where}.type: {col.type!r} is not one of numeric, categorical")
    return col
