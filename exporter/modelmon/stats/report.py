"""Drift readings of one vector (a window, or a whole batch) against the reference.

Shared by the exporter's sliding windows, by ``modelmon check`` and by the results it
pushes: all hold the same additive vector (see :mod:`modelmon.stats.binning`), read it
here and decide drift with the same :class:`Verdicts`. How a verdict is made is
described in docs/drift.md ("How a verdict is made").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from modelmon.stats import drift
from modelmon.stats.binning import (
    EVENTS_SLOT,
    ColumnSlots,
    FloatArray,
    Layout,
    reference_points,
    window_points,
)
from modelmon.stats.multiplicity import holm_levels
from modelmon.stats.null import NullInput, NullModel, NullSimulator

#: Below this many values a column gets statistics but no verdict: the noise floors are
#: simulated from 30 values up, and fewer say too little to page on.
MIN_VERDICT_VALUES = 30
#: The default family-wise false-alarm level (config ``drift.alpha``).
DEFAULT_ALPHA = 0.01
#: Rule statistic -> simulated null statistic (``ks_pvalue`` has a closed form).
_NULL_STATISTIC = {
    "psi": "psi",
    "jensen_shannon": "jensen_shannon",
    "wasserstein": "wasserstein",
    "chi2_pvalue": "chi2",
}

Key = tuple[str, str]


@dataclass
class ColumnReading:
    """The drift statistics of one column, and how its verdict was made.

    ``threshold`` is the effective threshold the verdict used: for a distance the larger
    of the effect threshold and the noise floor at this column's number of values, for
    a p-value method the level after the multiplicity correction (capped by the
    method's threshold). ``pvalue`` is the probability of a statistic at least this
    large without drift, at this number of values. Both are NaN without a verdict
    (fewer than ``MIN_VERDICT_VALUES`` values)."""

    role: str
    column: str
    values: int  # binned (non-missing, finite) values in the vector
    statistics: dict[str, float] = field(default_factory=dict)
    method: str = ""
    threshold: float = math.nan
    effect_threshold: float = math.nan  # the method's threshold (config or default)
    pvalue: float = math.nan
    level: float = math.nan  # the corrected alpha this column was tested at
    drifted: bool = False


@dataclass
class DriftReport:
    """Per-column readings plus the dataset drift decision over the features."""

    events: int
    columns: list[ColumnReading]
    drift_share: float | None
    dataset_drift: bool | None


def column_statistics(slots: ColumnSlots, vector: FloatArray) -> dict[str, float]:
    """Every statistic that applies to the column, or {} when the vector has no values."""
    counts = slots.test_counts(vector)
    if counts.sum() <= 0:
        return {}
    col = slots.column
    reference = slots.test_ratios
    out = {
        "psi": drift.population_stability_index(reference, counts),
        "jensen_shannon": drift.jensen_shannon_distance(reference, counts),
    }
    if col.binned_as_categorical:
        out["chi2_pvalue"] = drift.chi2_pvalue(reference, counts)
    if col.is_numeric:
        fine = vector[slots.counts]
        out["ks"] = drift.ks_statistic(np.asarray(col.fine_ratios), fine)
        out["ks_pvalue"] = drift.ks_pvalue(out["ks"], col.values, int(fine.sum()))
        ref_pts, ref_w = reference_points(slots)
        win_pts, win_w = window_points(slots, vector)
        out["wasserstein"] = drift.wasserstein_normalized(ref_pts, ref_w, win_pts, win_w, col.std)
    return out


def null_input(slots: ColumnSlots, statistic: str) -> NullInput:
    """What the null simulation of ``statistic`` needs of the column."""
    col = slots.column
    if col.binned_as_categorical:
        return NullInput(statistic, slots.test_ratios, col.values, None, None, 1.0)
    points = None
    if statistic == "wasserstein":
        # A fine bin empty in the reference has no mean (NaN) and no weight: any point
        # between its neighbours' leaves the distance unchanged.
        points = reference_points(slots)[0]
        index = np.arange(points.size)
        known = ~np.isnan(points)
        if known.any() and not known.all():
            points = np.interp(index, index[known], points[known])
    return NullInput(
        statistic,
        np.asarray(col.fine_ratios, dtype=np.float64),
        col.values,
        slots.fine_to_coarse,
        points,
        max(float(col.std), 0.001),
    )


class Verdicts:
    """How every column's drift is decided: its rule, the null of its statistic (the
    noise floors, simulated once here), and the family-wise level ``alpha``."""

    def __init__(
        self,
        layout: Layout,
        rules: dict[Key, drift.Rule],
        methods: dict[Key, str] | None = None,
        alpha: float = DEFAULT_ALPHA,
    ) -> None:
        if not 0 < alpha < 1:
            raise ValueError(f"alpha: expected a level between 0 and 1, got {alpha}")
        self.layout = layout
        self.rules = rules
        self.methods = methods or {}
        self.alpha = alpha
        self.nulls: dict[Key, NullModel] = {}
        simulator = NullSimulator()
        for slots in layout.columns:
            key = (slots.column.role, slots.column.name)
            statistic = _NULL_STATISTIC.get(rules[key].statistic)
            if statistic is not None and slots.column.values > 0:
                spec = null_input(slots, statistic)
                self.nulls[key] = simulator.simulate(spec)

    def pvalue(
        self, slots: ColumnSlots, vector: FloatArray, statistics: dict[str, float], n: int
    ) -> float:
        """The column's p-value under the null, at ``n`` values."""
        key = (slots.column.role, slots.column.name)
        rule = self.rules[key]
        if rule.statistic == "ks_pvalue":
            # The Kolmogorov distribution: exact for continuous data, conservative with ties.
            return statistics["ks_pvalue"]
        null = self.nulls.get(key)
        if null is None:
            return math.nan
        if rule.statistic == "chi2_pvalue":
            counts = slots.test_counts(vector)
            statistic, _ = drift.pearson_chi2(slots.test_ratios, counts)
            return null.pvalue(statistic, n)
        return null.pvalue(statistics[rule.statistic], n)

    def decide(self, reading: ColumnReading, level: float) -> None:
        """Fill ``reading``'s threshold and verdict, tested at ``level``."""
        key = (reading.role, reading.column)
        rule = self.rules[key]
        reading.level = level
        reading.effect_threshold = rule.threshold
        if rule.below:  # p-value methods: the corrected level, capped by the threshold
            reading.threshold = min(level, rule.threshold)
            reading.drifted = reading.pvalue <= reading.threshold
            return
        null = self.nulls.get(key)
        floor = null.floor(reading.values, level) if null is not None else 0.0
        reading.threshold = max(rule.threshold, floor)
        reading.drifted = reading.statistics[rule.statistic] >= reading.threshold

    def report(self, vector: FloatArray, share_threshold: float) -> DriftReport:
        """Read every column of ``vector`` and decide column and dataset drift."""
        readings: list[ColumnReading] = []
        judged: list[ColumnReading] = []
        for slots in self.layout.columns:
            key = (slots.column.role, slots.column.name)
            stats = column_statistics(slots, vector)
            reading = ColumnReading(key[0], key[1], int(vector[slots.counts].sum()), stats)
            if stats:
                reading.method = self.methods.get(key, self.rules[key].statistic)
                reading.effect_threshold = self.rules[key].threshold
                if reading.values >= MIN_VERDICT_VALUES:
                    reading.pvalue = self.pvalue(slots, vector, stats, reading.values)
                    if not math.isnan(reading.pvalue):
                        judged.append(reading)
            readings.append(reading)
        levels = holm_levels([r.pvalue for r in judged], self.alpha)
        for reading, level in zip(judged, levels, strict=True):
            self.decide(reading, level)
        features = [r for r in judged if r.role == "feature"]
        share = sum(r.drifted for r in features) / len(features) if features else None
        dataset = None if share is None else share >= share_threshold
        return DriftReport(int(vector[EVENTS_SLOT]), readings, share, dataset)
