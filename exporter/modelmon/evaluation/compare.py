"""Candidates side by side: metrics with bootstrap intervals, paired tests, segments, gates.

For each candidate and metric: the value on the data set and its percentile bootstrap
interval (:mod:`.bootstrap`). For each candidate other than the serving one and each
metric: the difference candidate - serving on the same rows, its paired bootstrap
interval, and a two-sided p-value: McNemar's exact test for accuracy (:mod:`.mcnemar`),
the paired bootstrap p-value for every other metric.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from modelmon.evaluation.bootstrap import paired_pvalue, percentile_interval, resample_blocks
from modelmon.evaluation.data import EvaluationData
from modelmon.evaluation.mcnemar import discordant_counts, mcnemar_exact_pvalue
from modelmon.evaluation.metrics import METRICS, Arrays, full, metric_names

#: Segment values kept per segment column (by row count); the rest are ``__other__``.
SEGMENT_TOP = 10
OTHER = "__other__"


@dataclass(frozen=True)
class Settings:
    resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0
    alpha: float = 0.05


@dataclass
class Estimate:
    value: float
    lower: float
    upper: float


@dataclass
class Difference:
    difference: float
    lower: float
    upper: float
    pvalue: float
    test: str  # mcnemar-exact | paired-bootstrap


@dataclass
class Candidate:
    name: str
    metrics: dict[str, Estimate]
    confusion: list[list[int]] | None
    differences: dict[str, Difference] = field(default_factory=dict)
    segments: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    gates: list[tuple[str, bool, str]] = field(default_factory=list)  # (gate, passed, why)

    @property
    def passed(self) -> bool:
        return all(ok for _, ok, _ in self.gates)


@dataclass
class EvaluationResult:
    model: str
    dataset: str
    task: str
    rows: int
    classes: list[str]
    positive: str | None
    serving: str
    metrics: tuple[str, ...]
    settings: Settings
    candidates: list[Candidate]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.candidates)


def compare(
    data: EvaluationData, serving: str, settings: Settings, *, model: str, dataset: str
) -> EvaluationResult:
    """Evaluate every candidate and compare each with ``serving`` (gates not applied)."""
    if serving not in data.candidates:
        raise ValueError(f"--serving: {serving!r} is not one of {', '.join(data.candidates)}")
    scored = all(a.score is not None for a in data.candidates.values())
    names = metric_names(data.task, scored)
    draws = _bootstrap(data.candidates, names, data.rows, settings)
    candidates = []
    for cname, arrays in data.candidates.items():
        estimates = {}
        for metric in names:
            value = float(METRICS[metric][0](arrays, full(data.rows))[0])
            lower, upper = percentile_interval(draws[cname][metric], settings.confidence)
            estimates[metric] = Estimate(value, lower, upper)
        out = Candidate(cname, estimates, _confusion(arrays, data))
        if cname != serving:
            out.differences = _differences(data, cname, serving, names, draws, settings)
        out.segments = _segments(data, arrays, names)
        candidates.append(out)
    return EvaluationResult(
        model, dataset, data.task, data.rows, data.classes, data.positive, serving, names,
        settings, candidates,
    )  # fmt: skip


def _bootstrap(
    candidates: dict[str, Arrays], names: tuple[str, ...], rows: int, settings: Settings
) -> dict[str, dict[str, np.ndarray]]:
    """candidate -> metric -> the B resample values (the same resamples for all)."""
    parts: dict[str, dict[str, list[np.ndarray]]] = {c: {m: [] for m in names} for c in candidates}
    for idx in resample_blocks(rows, settings.resamples, settings.seed):
        for cname, arrays in candidates.items():
            for metric in names:
                parts[cname][metric].append(METRICS[metric][0](arrays, idx))
    return {c: {m: np.concatenate(v) for m, v in ms.items()} for c, ms in parts.items()}


def _differences(
    data: EvaluationData,
    cname: str,
    serving: str,
    names: tuple[str, ...],
    draws: dict[str, dict[str, np.ndarray]],
    settings: Settings,
) -> dict[str, Difference]:
    out = {}
    a, s = data.candidates[cname], data.candidates[serving]
    for metric in names:
        function = METRICS[metric][0]
        point = float(function(a, full(data.rows))[0] - function(s, full(data.rows))[0])
        paired = draws[cname][metric] - draws[serving][metric]
        lower, upper = percentile_interval(paired, settings.confidence)
        if metric == "accuracy":
            b, c = discordant_counts(a.pred == a.y, s.pred == s.y)
            pvalue, test = mcnemar_exact_pvalue(b, c), "mcnemar-exact"
        else:
            pvalue, test = paired_pvalue(paired), "paired-bootstrap"
        out[metric] = Difference(point, lower, upper, pvalue, test)
    return out


def _confusion(arrays: Arrays, data: EvaluationData) -> list[list[int]] | None:
    if data.task == "regression":
        return None
    k = len(data.classes)
    counts = np.bincount(arrays.y * k + arrays.pred, minlength=k * k).reshape(k, k)
    return [[int(v) for v in row] for row in counts]


def segment_values(values: np.ndarray) -> np.ndarray:
    """Values beyond the 10 most frequent become ``__other__`` (ties by name)."""
    counts = Counter(values.tolist())
    top = {v for v, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:SEGMENT_TOP]}
    return np.where(np.isin(values, list(top)), values, OTHER)


def _segments(
    data: EvaluationData, arrays: Arrays, names: tuple[str, ...]
) -> dict[str, dict[str, dict[str, float]]]:
    """segment column -> value -> {"rows": n, metric: value, ...} (point estimates)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for column, raw in data.segments.items():
        values = segment_values(raw)
        out[column] = {}
        for value in sorted(set(values.tolist())):
            rows = np.flatnonzero(values == value)
            entry = {"rows": float(rows.size)}
            for metric in names:
                entry[metric] = float(METRICS[metric][0](arrays, rows[None, :])[0])
            out[column][value] = entry
    return out
