"""Drift readings of one vector (a window, or a whole batch) against the reference.

Shared by the exporter's sliding windows and by ``modelmon check``: both hold the same
additive vector (see :mod:`modelmon.stats.binning`) and read it here.
"""

from __future__ import annotations

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


@dataclass
class ColumnReading:
    """The drift statistics of one column, and whether its rule says it drifted."""

    role: str
    column: str
    values: int  # binned (non-missing, finite) values in the vector
    statistics: dict[str, float] = field(default_factory=dict)
    method: str = ""
    threshold: float = float("nan")
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
    counts = slots.coarse_counts(vector)
    if counts.sum() <= 0:
        return {}
    col = slots.column
    reference = np.asarray(col.reference_ratios(), dtype=np.float64)
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


def drift_report(
    layout: Layout,
    vector: FloatArray,
    rules: dict[tuple[str, str], drift.Rule],
    share_threshold: float,
    method_names: dict[tuple[str, str], str] | None = None,
) -> DriftReport:
    """Read every column of ``vector`` and decide column and dataset drift."""
    readings: list[ColumnReading] = []
    features = drifted = 0
    for slots in layout.columns:
        key = (slots.column.role, slots.column.name)
        stats = column_statistics(slots, vector)
        reading = ColumnReading(key[0], key[1], int(vector[slots.counts].sum()), stats)
        rule = rules[key]
        if stats:
            reading.method = (method_names or {}).get(key, rule.statistic)
            reading.threshold = rule.threshold
            reading.drifted = rule.drifted(stats[rule.statistic])
            if key[0] == "feature":
                features += 1
                drifted += reading.drifted
        readings.append(reading)
    share = drifted / features if features else None
    dataset = None if share is None else share >= share_threshold
    return DriftReport(int(vector[EVENTS_SLOT]), readings, share, dataset)
