"""The report of one ``modelmon check`` run and its JSON form.

The JSON form is a public, versioned schema (``schema_version``); docs/check.md
documents every field. A field is added in a compatible way (new keys only) without
changing the version; renaming or removing one bumps it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from modelmon import __version__
from modelmon.checking.accumulate import BatchAccumulator
from modelmon.checking.curves import (
    CalibrationBin,
    ConfusionMatrix,
    RocCurve,
    calibration_curve,
    confusion_matrix,
    roc_curve,
)
from modelmon.checking.distribution import Distribution, column_distribution
from modelmon.profile import ColumnProfile
from modelmon.stats.drift import Rule
from modelmon.stats.estimation import ConfidenceEstimator
from modelmon.stats.performance import RegressionPerformance
from modelmon.stats.report import ColumnReading, Verdicts

SCHEMA_VERSION = 1
CLASSIFICATION_METRICS = ("accuracy", "roc_auc", "log_loss", "brier_score")
REGRESSION_METRICS = ("mae", "rmse", "mape")
#: Quality counts per column kind, in the exporter's order (exposition.py).
NUMERIC_QUALITY = ("missing", "out_of_range", "type_errors")
CATEGORICAL_QUALITY = ("missing", "unseen", "type_errors")


@dataclass
class ColumnResult:
    """Drift and data quality of one profile column over the whole batch."""

    role: str
    column: str
    source: str  # the data column it was read from
    type: str  # numeric | categorical
    present: bool  # found in the data (in at least one file)
    values: int  # binned values: neither missing nor infinite
    method: str | None = None  # None: no values, so no drift reading
    statistic: str | None = None
    value: float | None = None
    threshold: float | None = None  # effective: max(effect threshold, noise floor)
    effect_threshold: float | None = None  # the method's threshold (config or default)
    pvalue: float | None = None  # probability of this statistic without drift, at n
    level: float | None = None  # the corrected alpha the column was tested at
    noise_floor: float | None = None  # distances: the statistic's floor at n and level
    drifted: bool | None = None
    statistics: dict[str, float] = field(default_factory=dict)
    quality: dict[str, int] = field(default_factory=dict)
    distribution: Distribution | None = None  # reference shares and batch counts per bin


@dataclass
class PerformanceResult:
    """Performance on the labeled rows, beside the profile's reference baselines."""

    task: str
    rows: int  # rows with both a label and a prediction
    metrics: dict[str, float | None]
    classes: dict[str, dict[str, float]]  # class -> precision, recall, f1
    reference: dict[str, float]
    confusion: ConfusionMatrix | None = None
    roc_curve: RocCurve | None = None
    calibration: list[CalibrationBin] = field(default_factory=list)

    def delta(self, name: str) -> float | None:
        """``metric - reference`` (None when either is unknown)."""
        value, ref = self.metrics.get(name), self.reference.get(name)
        return None if value is None or ref is None else value - ref


@dataclass
class EstimateResult:
    """Performance estimated from calibrated scores (no labels needed)."""

    rows: int
    estimated_accuracy: float | None
    estimated_roc_auc: float | None
    reference: dict[str, float]


@dataclass(frozen=True)
class GateResult:
    """One gate's decision, e.g. ``min-accuracy``: ``accuracy 0.912 >= 0.9``."""

    name: str
    passed: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


@dataclass
class DriftSettings:
    method: str = "auto"
    threshold: float | None = None
    share: float = 0.5
    alpha: float = 0.01


@dataclass
class CheckResult:
    """Everything one check found; gates are filled in by :mod:`.gates`."""

    profile: str
    task: str
    reference_rows: int
    model: str
    version: str
    files: list[str]
    rows: int
    settings: DriftSettings
    columns: list[ColumnResult]
    drift_share: float | None
    dataset_drift: bool | None
    performance: PerformanceResult | None = None
    estimated: EstimateResult | None = None
    absent_columns: list[ColumnResult] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)
    gates: list[GateResult] = field(default_factory=list)  # filled in by .gates

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    def role_columns(self, *roles: str) -> list[ColumnResult]:
        return [c for c in self.columns if c.role in roles]

    def drifted(self, *roles: str) -> list[ColumnResult]:
        return [c for c in self.columns if c.drifted and (not roles or c.role in roles)]


def _noise_floor(verdicts: Verdicts, reading: ColumnReading, rule: Rule) -> float | None:
    """The floor a distance was held to (None for p-value methods and without a verdict)."""
    null = verdicts.nulls.get((reading.role, reading.column))
    if rule.below or null is None or math.isnan(reading.level):
        return None
    return null.floor(reading.values, reading.level)


def _column_result(
    col: ColumnProfile, source: str, present: bool, reading: ColumnReading, rule: Rule
) -> ColumnResult:
    out = ColumnResult(col.role, col.name, source, col.type, present, reading.values)
    if reading.statistics:
        out.method = reading.method
        out.statistic = rule.statistic
        out.value = reading.statistics[rule.statistic]
        out.threshold = reading.threshold
        out.effect_threshold = rule.threshold
        out.pvalue = reading.pvalue
        out.level = reading.level
        out.drifted = reading.drifted
        out.statistics = dict(reading.statistics)
    return out


def _performance(acc: BatchAccumulator) -> PerformanceResult | None:
    encoder, vector = acc.performance, acc.performance_vector
    if encoder is None or vector is None or acc.labeled_rows == 0:
        return None
    baselines = dict(acc.profile.baselines)
    if isinstance(encoder, RegressionPerformance):
        r = encoder.metrics(vector)
        metrics = {"mae": r.mae, "rmse": r.rmse, "mape": r.mape}
        return PerformanceResult(acc.profile.task, r.n, metrics, {}, baselines)
    c = encoder.metrics(vector)
    metrics = {
        "accuracy": c.accuracy,
        "roc_auc": c.roc_auc,
        "log_loss": c.log_loss,
        "brier_score": c.brier_score,
    }
    classes = {
        k: {"precision": c.precision[k], "recall": c.recall[k], "f1": c.f1[k]} for k in c.precision
    }
    return PerformanceResult(
        acc.profile.task,
        c.n,
        metrics,
        classes,
        baselines,
        confusion=confusion_matrix(encoder, vector),
        roc_curve=roc_curve(encoder, vector),
        calibration=calibration_curve(encoder, vector),
    )


def _estimated(acc: BatchAccumulator) -> EstimateResult | None:
    est, vector = acc.estimator, acc.estimate_vector
    if not isinstance(est, ConfidenceEstimator) or vector is None:
        return None
    r = est.metrics(vector)
    if r.n == 0:
        return None
    ref = {k: v for k, v in acc.profile.baselines.items() if k in ("accuracy", "roc_auc")}
    return EstimateResult(r.n, r.estimated_accuracy, r.estimated_roc_auc, ref)


def build_result(
    acc: BatchAccumulator,
    verdicts: Verdicts,
    settings: DriftSettings,
    *,
    profile_path: str,
    model: str,
    version: str,
    files: list[str],
) -> CheckResult:
    """Read the summed vectors: drift per column, dataset drift, quality, performance."""
    report = verdicts.report(acc.vector, settings.share)
    columns = []
    for slots, reading in zip(acc.layout.columns, report.columns, strict=True):
        col = slots.column
        key = (col.role, col.name)
        present = key in acc.present
        rule = verdicts.rules[key]
        result = _column_result(col, acc.columns.source(col), present, reading, rule)
        result.noise_floor = _noise_floor(verdicts, reading, rule)
        result.distribution = column_distribution(slots, acc.vector)
        kinds = NUMERIC_QUALITY if slots.numeric else CATEGORICAL_QUALITY
        result.quality = {q: int(acc.vector[slots.quality(q)]) for q in kinds}
        columns.append(result)
    return CheckResult(
        profile=profile_path,
        task=acc.profile.task,
        reference_rows=acc.profile.rows,
        model=model,
        version=version,
        files=files,
        rows=acc.rows,
        settings=settings,
        columns=columns,
        drift_share=report.drift_share,
        dataset_drift=report.dataset_drift,
        performance=_performance(acc),
        estimated=_estimated(acc),
        absent_columns=[c for c in columns if (c.role, c.column) in acc.absent],
        unknown_columns=list(acc.unknown),
    )


# --- JSON ------------------------------------------------------------------------------


def _num(value: float | None) -> float | None:
    """JSON has no NaN or infinity: those become null."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _share(count: int, rows: int) -> float:
    return count / rows if rows else 0.0


def _column_json(c: ColumnResult, rows: int) -> dict[str, Any]:
    quality: dict[str, Any] = {}
    for name, count in c.quality.items():
        quality[name] = count
        quality[f"{name}_share"] = _share(count, rows)
    return {
        "role": c.role,
        "column": c.column,
        "source": c.source,
        "type": c.type,
        "present": c.present,
        "values": c.values,
        "drift": None
        if c.method is None
        else {
            "method": c.method,
            "statistic": c.statistic,
            "value": _num(c.value),
            "threshold": _num(c.threshold),
            "effect_threshold": _num(c.effect_threshold),
            "pvalue": _num(c.pvalue),
            "level": _num(c.level),
            "noise_floor": _num(c.noise_floor),
            "drifted": c.drifted,
            "statistics": {k: _num(v) for k, v in sorted(c.statistics.items())},
        },
        "quality": quality,
        "distribution": None if c.distribution is None else c.distribution.to_json(),
    }


def _performance_json(p: PerformanceResult | None) -> dict[str, Any] | None:
    if p is None:
        return None
    names = REGRESSION_METRICS if p.task == "regression" else CLASSIFICATION_METRICS
    return {
        "rows": p.rows,
        "metrics": {k: _num(p.metrics.get(k)) for k in names},
        "reference": {k: _num(p.reference.get(k)) for k in names},
        "delta": {k: _num(p.delta(k)) for k in names},
        "classes": {
            k: {m: _num(v) for m, v in scores.items()} for k, scores in sorted(p.classes.items())
        },
        "confusion_matrix": None if p.confusion is None else p.confusion.to_json(),
        "roc_curve": None if p.roc_curve is None else p.roc_curve.to_json(),
        "calibration_curve": [b.to_json() for b in p.calibration],
    }


def _estimated_json(e: EstimateResult | None) -> dict[str, Any] | None:
    if e is None:
        return None
    return {
        "rows": e.rows,
        "accuracy": _num(e.estimated_accuracy),
        "roc_auc": _num(e.estimated_roc_auc),
        "reference": {k: _num(e.reference.get(k)) for k in ("accuracy", "roc_auc")},
    }


def to_json(result: CheckResult) -> dict[str, Any]:
    """The documented JSON report (docs/check.md, "JSON report")."""
    features = [c for c in result.role_columns("feature") if c.drifted is not None]
    return {
        "schema_version": SCHEMA_VERSION,
        "modelmon_version": __version__,
        "passed": result.passed,
        "exit_code": 0 if result.passed else 1,
        "model": result.model,
        "version": result.version,
        "profile": {
            "path": result.profile,
            "task": result.task,
            "rows": result.reference_rows,
        },
        "data": {
            "files": result.files,
            "rows": result.rows,
            "absent_columns": [
                {"role": c.role, "column": c.column, "source": c.source}
                for c in result.absent_columns
            ],
            "unknown_columns": result.unknown_columns,
        },
        "drift": {
            "method": result.settings.method,
            "threshold": result.settings.threshold,
            "share_threshold": result.settings.share,
            "alpha": result.settings.alpha,
            "features": len(features),
            "drifted_features": sum(1 for c in features if c.drifted),
            "drift_share": _num(result.drift_share),
            "dataset_drift": result.dataset_drift,
            "drifted_columns": [{"role": c.role, "column": c.column} for c in result.drifted()],
        },
        "columns": [_column_json(c, result.rows) for c in result.columns],
        "performance": _performance_json(result.performance),
        "estimated_performance": _estimated_json(result.estimated),
        "gates": [g.to_json() for g in result.gates],
    }
