"""Noise floors: what a drift statistic looks like when nothing drifted.

For a column, a statistic and a window of ``n`` values, the *null distribution* is the
distribution of the statistic when the reference's ``N`` rows and the window's ``n``
rows are drawn from the same population (a two-sample null: the reference's own
sampling error counts too, which matters once ``n`` approaches ``N``). It is simulated
once per column from the profile's bin shares, at start-up:

- the reference as ``N`` draws from the reference shares (normal approximation of the
  multinomial for fine numeric bins, exact multinomial for categories);
- the window as ``n`` exact multinomial draws at ``n`` in :data:`EXACT_SIZES`, where the
  discreteness of small windows matters, and by the normal approximation (whose law,
  scaled by the effective size ``n*N/(n+N)``, no longer depends on ``n``) beyond.

At each simulated size the draws are summarized by a two-parameter family (see
:data:`FAMILY`) fitted by moments, its spread widened by :data:`SPREAD_MARGIN`; the fit
extends the simulation smoothly to the small levels that a multiplicity correction asks
for. The parameters, in a form that does not depend on ``n`` asymptotically, are
interpolated in ``log n`` between the simulated sizes and held constant beyond them, so
a p-value or a floor at any ``n`` costs a few special-function calls.

The simulation is seeded by the column's shares: every replica and every run of
``modelmon check`` gets the same floors. docs/drift.md gives the measured
false-alarm rates and power.
"""

from __future__ import annotations

import bisect
import math
import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special as _special

from modelmon.stats.drift import PSI_EPSILON

FloatArray = npt.NDArray[np.float64]

#: Window sizes simulated exactly (multinomial draws) for numeric columns; larger sizes
#: use the normal approximation, accurate once the cumulative counts are in the tens.
EXACT_SIZES = (30, 100, 300)
#: Categories are simulated exactly at every size (rare categories stay discrete).
CATEGORICAL_SIZES = (30, 100, 300, 1000, 3000)
#: The size at which the normal approximation's (size-free, scaled) law is placed.
ASYMPTOTIC_SIZE = 1000
#: Simulated window pairs per size.
DRAWS = 1000
#: A deliberate margin: the fitted spread is widened by this factor, which keeps the
#: fitted tail at or above the simulated one at the small levels Holm asks for
#: (measured by benchmarks/bench_detection.py --calibration).
SPREAD_MARGIN = 1.1

#: Statistic -> fitted family. PSI, the squared Jensen-Shannon distance and Pearson's X^2
#: are chi-square-like: a gamma by mean and variance. The Wasserstein distance is a sum
#: of absolute Gaussian-like terms whose right tail is heavier than a gamma's (it is
#: dominated by the widest, sparsest tail bins): a log-normal by the mean and standard
#: deviation of its logarithm.
FAMILY = {"psi": "gamma", "jensen_shannon": "gamma", "wasserstein": "lognormal", "chi2": "gamma"}
#: Statistics fitted through their square (the gamma then shrinks like 1/n).
SQUARED = frozenset({"jensen_shannon"})


def effective_size(n: float, reference: float) -> float:
    """``n * N / (n + N)``: the size that sets a two-sample statistic's noise."""
    return n * reference / (n + reference)


def _size_term(statistic: str, n: float, reference: float) -> float:
    """What the log-scale (gamma) or location (log-normal) gains in its size-free form."""
    if statistic == "chi2":  # X^2 does not shrink; the reference's noise inflates it
        return -math.log1p(n / reference)
    if statistic == "wasserstein":  # shrinks like 1/sqrt(n)
        return 0.5 * math.log(effective_size(n, reference))
    return math.log(effective_size(n, reference))  # shrinks like 1/n


def fit(statistic: str, values: FloatArray, n: float, reference: float) -> tuple[float, float]:
    """Shape (gamma shape, or log-normal spread) and size-free log-scale (or location) of
    ``statistic``'s family fitted to simulated ``values`` (squared where the family is
    fitted to the square) at ``n`` values.

    >>> rng = np.random.default_rng(0)
    >>> shape, _ = fit("psi", rng.gamma(4.0, 0.5, 40000), 1e12, 1e12)
    >>> round(shape * SPREAD_MARGIN**2, 1)
    4.0
    """
    size = _size_term(statistic, n, reference)
    if FAMILY[statistic] == "lognormal":
        logs = np.log(np.maximum(values, 1e-300))
        return max(float(logs.std()), 1e-6) * SPREAD_MARGIN, float(logs.mean()) + size
    mean, var = float(values.mean()), float(values.var()) * SPREAD_MARGIN**2
    if not (mean > 0 and var > 0):
        return 1.0, math.log(max(mean, 1e-300)) + size
    return mean * mean / var, math.log(var / mean) + size


@dataclass(frozen=True)
class NullModel:
    """The fitted null of one statistic of one column at every window size (see
    :func:`fit`), interpolated in ``log n`` between the simulated sizes."""

    statistic: str
    reference: int  # N, the reference's values
    sizes: tuple[float, ...]  # simulated n, ascending
    shapes: tuple[float, ...]
    scales: tuple[float, ...]  # size-free

    def _at(self, n: float) -> tuple[float, float]:
        x = math.log(max(n, 1.0))
        logs = [math.log(s) for s in self.sizes]
        i = bisect.bisect_right(logs, x)
        if i == 0:
            shape, scale = self.shapes[0], self.scales[0]
        elif i == len(logs):
            shape, scale = self.shapes[-1], self.scales[-1]
        else:
            t = (x - logs[i - 1]) / (logs[i] - logs[i - 1])
            shape = self.shapes[i - 1] + t * (self.shapes[i] - self.shapes[i - 1])
            scale = self.scales[i - 1] + t * (self.scales[i] - self.scales[i - 1])
        return shape, scale - _size_term(self.statistic, n, self.reference)

    def pvalue(self, value: float, n: float) -> float:
        """Probability of a statistic at least ``value`` without drift, at ``n`` values."""
        if math.isnan(value):
            return math.nan
        if value <= 0:
            return 1.0
        if math.isinf(value):
            return 0.0
        shape, location = self._at(n)
        if FAMILY[self.statistic] == "lognormal":
            return float(_special.ndtr(-(math.log(value) - location) / shape))
        g = value * value if self.statistic in SQUARED else value
        return float(_special.gammaincc(shape, g / math.exp(location)))

    def floor(self, n: float, level: float) -> float:
        """The noise floor: the ``1 - level`` quantile of the statistic at ``n`` values."""
        level = min(max(level, 1e-300), 1.0)
        shape, location = self._at(n)
        if FAMILY[self.statistic] == "lognormal":
            return math.exp(location - shape * float(_special.ndtri(level)))
        g = math.exp(location) * float(_special.gammainccinv(shape, level))
        return math.sqrt(g) if self.statistic in SQUARED else g


# --- the statistics, vectorized over rows of shares -----------------------------------


def _psi(ref: FloatArray, win: FloatArray) -> FloatArray:
    r = np.maximum(ref, PSI_EPSILON)
    c = np.maximum(win, PSI_EPSILON)
    out: FloatArray = np.sum((c - r) * np.log(c / r), axis=1)
    return out


def _js_squared(ref: FloatArray, win: FloatArray) -> FloatArray:
    m = 0.5 * (ref + win)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(ref > 0, ref * np.log2(ref / m), 0.0)
        b = np.where(win > 0, win * np.log2(win / m), 0.0)
    out: FloatArray = np.maximum(0.5 * (a.sum(axis=1) + b.sum(axis=1)), 0.0)
    return out


def _pearson(ref: FloatArray, counts: FloatArray) -> FloatArray:
    """Pearson's X^2 of window counts against each row's reference shares, with the
    floor and the left-out empty bins of :func:`modelmon.stats.drift.pearson_chi2`."""
    n = counts.sum(axis=1, keepdims=True)
    used = (ref > 0) | (counts > 0)
    shares = np.where(used, np.maximum(ref, PSI_EPSILON), 0.0)
    expected = shares / shares.sum(axis=1, keepdims=True) * n
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(used, (counts - expected) ** 2 / expected, 0.0)
    out: FloatArray = terms.sum(axis=1)
    return out


def _shares(counts: FloatArray) -> FloatArray:
    total = counts.sum(axis=1, keepdims=True)
    out: FloatArray = counts / np.where(total > 0, total, 1.0)
    return out


@dataclass(frozen=True)
class NullInput:
    """What the simulation needs of a column (see ``report.null_input``)."""

    statistic: str  # psi | jensen_shannon | wasserstein | chi2
    shares: FloatArray  # reference shares of the simulated bins (fine bins for numeric)
    reference: int  # N
    coarse: npt.NDArray[np.intp] | None  # fine -> coarse bin map (numeric columns)
    points: FloatArray | None  # fine bin points (wasserstein)
    scale: float  # wasserstein's normalizer


class _Draws:
    """Reference and window draws from one share vector, seeded by the shares: columns
    with the same shares (quantile bins of continuous data with the same N) share them,
    which keeps start-up cost nearly flat in the number of such columns."""

    def __init__(self, shares: FloatArray, reference: int, categorical: bool) -> None:
        self.p = shares / shares.sum()
        seed = zlib.crc32(self.p.tobytes()) ^ reference
        self.rng = np.random.default_rng(seed)
        self.categorical = categorical
        self.reference = reference
        self.windows: dict[tuple[int, bool], FloatArray] = {}
        if categorical or reference < 1000:
            counts = self.rng.multinomial(reference, self.p, size=DRAWS).astype(np.float64)
            self.ref = _shares(counts)
        else:
            self.ref = self._normal(reference)

    def _normal(self, n: float) -> FloatArray:
        """Share vectors with the multinomial's mean and covariance at n draws."""
        z = self.rng.standard_normal((DRAWS, self.p.size)) * np.sqrt(self.p)
        dev = z - np.outer(z.sum(axis=1), self.p)
        out: FloatArray = self.p + dev / math.sqrt(n)
        return out

    def window(self, n: int, exact: bool) -> FloatArray:
        """DRAWS window count vectors of n values each."""
        key = (n, exact)
        if key not in self.windows:
            self.windows[key] = self._window(n, exact)
        return self.windows[key]

    def _window(self, n: int, exact: bool) -> FloatArray:
        if not exact:
            return self._normal(n) * n
        k = self.p.size
        if n * 8 < k * 3:  # few values: inverse-CDF draws beat k binomials a row
            cdf = np.cumsum(self.p)
            idx = np.searchsorted(cdf[:-1], self.rng.random((DRAWS, n)), side="right")
            idx += np.arange(DRAWS)[:, None] * k
            counts = np.bincount(idx.ravel(), minlength=DRAWS * k).reshape(DRAWS, k)
            return counts.astype(np.float64)
        return self.rng.multinomial(n, self.p, size=DRAWS).astype(np.float64)


class _Simulation:
    def __init__(self, spec: NullInput, draws: _Draws) -> None:
        self.spec = spec
        self.draws = draws
        self.categorical = spec.coarse is None
        self.ref = draws.ref
        self._onehot: FloatArray | None = None

    def window(self, n: int, exact: bool) -> FloatArray:
        return self.draws.window(n, exact)

    def statistic(self, counts: FloatArray) -> FloatArray:
        """The statistic (squared where its family is fitted to the square) per draw."""
        spec = self.spec
        if spec.statistic == "chi2":
            return _pearson(self.ref, self._coarse(counts))
        win = _shares(counts)
        if spec.statistic == "wasserstein" and spec.points is not None:
            gap = np.cumsum(win - self.ref, axis=1)[:, :-1]
            out: FloatArray = np.abs(gap) @ np.diff(spec.points) / spec.scale
            return out
        ref, win = self._coarse(self.ref), self._coarse(win)
        return _psi(ref, win) if spec.statistic == "psi" else _js_squared(ref, win)

    def _coarse(self, shares: FloatArray) -> FloatArray:
        coarse = self.spec.coarse
        if coarse is None:
            out: FloatArray = np.clip(shares, 0.0, None)
            return out
        if self._onehot is None:
            self._onehot = np.zeros((coarse.size, int(coarse.max()) + 1))
            self._onehot[np.arange(coarse.size), coarse] = 1.0
        summed: FloatArray = np.clip(shares, 0.0, None) @ self._onehot
        return summed


class NullSimulator:
    """Simulates and fits nulls, reusing the draws of columns with the same shares."""

    def __init__(self) -> None:
        self._draws: dict[tuple[bytes, int, bool], _Draws] = {}

    def simulate(self, spec: NullInput) -> NullModel:
        """Simulate and fit the null of ``spec``'s statistic."""
        categorical = spec.coarse is None
        key = (spec.shares.tobytes(), spec.reference, categorical)
        if key not in self._draws:
            self._draws[key] = _Draws(spec.shares, spec.reference, categorical)
        sim = _Simulation(spec, self._draws[key])
        if categorical:
            plan = [(n, True) for n in CATEGORICAL_SIZES]
        else:
            plan = [(n, True) for n in EXACT_SIZES] + [(ASYMPTOTIC_SIZE, False)]
        shapes, scales = [], []
        for n, exact in plan:
            values = sim.statistic(sim.window(n, exact))
            shape, scale = fit(spec.statistic, values, n, spec.reference)
            shapes.append(shape)
            scales.append(scale)
        sizes = tuple(float(n) for n, _ in plan)
        return NullModel(spec.statistic, spec.reference, sizes, tuple(shapes), tuple(scales))


def simulate_null(spec: NullInput) -> NullModel:
    """The null of one column's statistic (see :class:`NullSimulator`)."""
    return NullSimulator().simulate(spec)
