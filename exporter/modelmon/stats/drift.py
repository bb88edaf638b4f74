"""Drift statistics of a window against the reference, from binned counts.

Every function takes the reference shares (or the reference profile's bins) and the
window's bin counts, so the same code serves the exporter's sliding windows and the
batch ``check`` command. Definitions follow DESIGN.md section 6.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special as _special
from scipy import stats as _sps

FloatArray = npt.NDArray[np.float64]

#: Shares below this are raised to it before PSI (an empty bin would make PSI infinite).
PSI_EPSILON = 1e-4


def _shares(counts: npt.ArrayLike) -> FloatArray:
    arr = np.asarray(counts, dtype=np.float64)
    total = arr.sum()
    if total <= 0:
        raise ValueError("counts: expected at least one observation")
    shares: FloatArray = arr / total
    return shares


def population_stability_index(reference: npt.ArrayLike, window: npt.ArrayLike) -> float:
    """PSI = sum over bins of (c - r) * ln(c / r), shares floored at ``PSI_EPSILON``.

    ``reference`` and ``window`` are bin counts or shares over the same bins.

    >>> round(population_stability_index([0.5, 0.5], [0.9, 0.1]), 4)
    0.8789
    >>> population_stability_index([1, 2, 3], [1, 2, 3])
    0.0
    """
    r = np.maximum(_shares(reference), PSI_EPSILON)
    c = np.maximum(_shares(window), PSI_EPSILON)
    return float(np.sum((c - r) * np.log(c / r)))


def jensen_shannon_distance(reference: npt.ArrayLike, window: npt.ArrayLike) -> float:
    """Jensen-Shannon distance with base-2 logarithms (in [0, 1]); equals
    ``scipy.spatial.distance.jensenshannon(reference, window, base=2)``.

    >>> jensen_shannon_distance([1, 0], [0, 1])
    1.0
    """
    p = _shares(reference)
    q = _shares(window)
    m = 0.5 * (p + q)

    def kl(a: FloatArray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    divergence = 0.5 * kl(p) + 0.5 * kl(q)
    return float(np.sqrt(max(divergence, 0.0)))


def ks_statistic(reference_fine: npt.ArrayLike, window_fine: npt.ArrayLike) -> float:
    """Max absolute difference of the cumulative shares at the fine bin edges.

    Exact to within one fine bin of the two-sample KS statistic of the raw values.

    >>> ks_statistic([0.5, 0.5, 0.0], [0.0, 0.5, 0.5])
    0.5
    """
    r = np.cumsum(_shares(reference_fine))[:-1]
    w = np.cumsum(_shares(window_fine))[:-1]
    if r.size == 0:
        return 0.0
    return float(np.max(np.abs(w - r)))


#: Effective sizes above this use the limiting Kolmogorov distribution (see ks_pvalue).
KS_EXACT_SIZE = 1000


def ks_pvalue(statistic: float, n_reference: int, n_window: int) -> float:
    """Two-sided asymptotic p-value of a two-sample KS statistic.

    With the effective size ``en = round(n*m/(n+m))`` up to ``KS_EXACT_SIZE`` this is
    exactly ``scipy.stats.ks_2samp(..., method="asymp")``: the Kolmogorov distribution
    ``kstwo.sf(D, en)``. Above it, the limiting distribution ``kolmogorov(D * sqrt(en))``
    (the classic asymptotic formula), within 0.01 of ``kstwo`` at en = 1000 and closer
    beyond, at a microsecond a call instead of up to a second. The ``auto`` method uses
    the p-value only for references of at most 1000 rows, where the value is exact.

    >>> round(ks_pvalue(0.1, 500, 500), 4) == round(float(_sps.kstwo.sf(0.1, 250)), 4)
    True
    """
    if n_reference <= 0 or n_window <= 0:
        raise ValueError("n_reference, n_window: expected positive sizes")
    effective = max(round(n_reference * n_window / (n_reference + n_window)), 1)
    if effective <= KS_EXACT_SIZE:
        p = float(_sps.kstwo.sf(statistic, effective))
    else:
        p = float(_special.kolmogorov(statistic * math.sqrt(effective)))
    return float(np.clip(p, 0.0, 1.0))


def wasserstein_normalized(
    reference_points: npt.ArrayLike,
    reference_weights: npt.ArrayLike,
    window_points: npt.ArrayLike,
    window_weights: npt.ArrayLike,
    reference_std: float,
) -> float:
    """Wasserstein-1 distance between two weighted point sets, divided by
    ``max(reference_std, 0.001)``.

    Binned columns pass each fine bin as a point at the mean of its values, weighted by
    its count; the result is then within a bin's spread of the exact distance.

    >>> wasserstein_normalized([0.0], [1], [2.0], [1], 1.0)
    2.0
    """
    rp = np.asarray(reference_points, dtype=np.float64)
    wp = np.asarray(window_points, dtype=np.float64)
    rw = _shares(reference_weights)
    ww = _shares(window_weights)
    keep_r, keep_w = rw > 0, ww > 0
    points = np.concatenate([rp[keep_r], wp[keep_w]])
    mass = np.concatenate([rw[keep_r], -ww[keep_w]])
    order = np.argsort(points, kind="stable")
    points, mass = points[order], mass[order]
    cdf_gap = np.cumsum(mass)[:-1]
    distance = float(np.sum(np.abs(cdf_gap) * np.diff(points)))
    return distance / max(float(reference_std), 0.001)


def pearson_chi2(reference: npt.ArrayLike, window_counts: npt.ArrayLike) -> tuple[float, int]:
    """Pearson's X^2 of the window counts against the reference shares, and its degrees
    of freedom. Reference shares below ``PSI_EPSILON`` are raised to it (and the shares
    renormalised), so a category unseen in the reference gives a large, finite X^2.
    Bins empty in both the reference and the window are left out.

    >>> pearson_chi2([0.5, 0.5, 0.0], [30, 10, 0])
    (10.0, 1)
    """
    counts = np.asarray(window_counts, dtype=np.float64)
    n = counts.sum()
    if n <= 0:
        raise ValueError("window_counts: expected at least one observation")
    reference_shares = _shares(reference)
    # A bin empty in both (e.g. an unused __other__) is no category of the test.
    used = (reference_shares > 0) | (counts > 0)
    counts = counts[used]
    shares = np.maximum(reference_shares[used], PSI_EPSILON)
    expected = shares / shares.sum() * n
    return float(np.sum((counts - expected) ** 2 / expected)), counts.size - 1


def chi2_pvalue(reference: npt.ArrayLike, window_counts: npt.ArrayLike) -> float:
    """Chi-square goodness-of-fit p-value of the window counts against the reference
    shares (:func:`pearson_chi2`). Equals ``scipy.stats.chisquare(window_counts,
    expected)`` with those expectations. This is the one-sample test of the contract's
    ``chi2_pvalue`` statistic; verdicts use the calibrated two-sample null of X^2 instead
    (:mod:`modelmon.stats.null`)."""
    statistic, dof = pearson_chi2(reference, window_counts)
    if dof <= 0:
        return 1.0
    return float(_sps.chi2.sf(statistic, dof))


# --- detection ----------------------------------------------------------------------

METHODS = ("auto", "psi", "ks", "wasserstein", "jensen_shannon", "chi2")


@dataclass(frozen=True)
class Rule:
    """How a column's drift is decided: which statistic, which side of which threshold."""

    statistic: str  # the key of the statistic in a column reading
    threshold: float
    below: bool  # True: drift when statistic < threshold (p-values)

    def drifted(self, value: float) -> bool:
        return value < self.threshold if self.below else value >= self.threshold


#: method -> (statistic, default threshold, drift when below) for explicit methods.
RULES: dict[str, tuple[str, float, bool]] = {
    "psi": ("psi", 0.2, False),
    "ks": ("ks_pvalue", 0.05, True),
    "wasserstein": ("wasserstein", 0.1, False),
    "jensen_shannon": ("jensen_shannon", 0.1, False),
    "chi2": ("chi2_pvalue", 0.05, True),
}
NUMERIC_ONLY = frozenset({"ks", "wasserstein"})
CATEGORICAL_ONLY = frozenset({"chi2"})
#: Reference sizes up to this use a p-value test in ``auto`` mode, larger ones a distance.
AUTO_SMALL_REFERENCE = 1000


def auto_method(categorical: bool, reference_rows: int) -> str:
    """The ``auto`` choice of DESIGN.md section 6 for a column.

    >>> auto_method(False, 500), auto_method(False, 50_000), auto_method(True, 50_000)
    ('ks', 'wasserstein', 'jensen_shannon')
    """
    small = reference_rows <= AUTO_SMALL_REFERENCE
    if categorical:
        return "chi2" if small else "jensen_shannon"
    return "ks" if small else "wasserstein"


def applies(method: str, categorical: bool) -> bool:
    """Whether an explicit method can be computed for a column of this kind."""
    if categorical:
        return method not in NUMERIC_ONLY
    return method not in CATEGORICAL_ONLY


def resolve_rule(
    method: str, threshold: float | None, categorical: bool, reference_rows: int
) -> Rule:
    """The rule for a column: ``auto`` (or a method that does not apply to the column's
    kind) resolves to the ``auto`` choice; ``threshold`` None means the default."""
    if method == "auto":
        method = auto_method(categorical, reference_rows)
    elif not applies(method, categorical):
        method, threshold = auto_method(categorical, reference_rows), None
    statistic, default, below = RULES[method]
    return Rule(statistic, default if threshold is None else float(threshold), below)
