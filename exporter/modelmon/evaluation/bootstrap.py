"""The bootstrap of ``modelmon evaluate``: resample indices, percentile intervals, p-values.

Resample ``b`` (``b = 1..B``) is the row indices ``rng.integers(0, n, size=n)`` drawn in
order from ``rng = numpy.random.default_rng(seed)``, one call per resample, so anyone can
rebuild the same resamples. Every candidate is evaluated on the same resamples: the
differences are *paired*. Resamples are produced in blocks so memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

#: Index cells (resamples x rows) per block: 4 million int64 are 32 MB.
BLOCK_CELLS = 4_000_000


def resample_blocks(n: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Blocks of resample indices, shape (k, n), B rows over all blocks."""
    rng = np.random.default_rng(seed)
    per_block = max(1, BLOCK_CELLS // max(n, 1))
    done = 0
    while done < resamples:
        k = min(per_block, resamples - done)
        yield np.stack([rng.integers(0, n, size=n) for _ in range(k)])
        done += k


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """The percentile bootstrap interval: the (1-c)/2 and (1+c)/2 quantiles of ``values``.

    Quantiles are numpy's default (linear interpolation). Resamples where the statistic
    is undefined (NaN, e.g. a ROC AUC of a resample holding one class) are left out.

    >>> percentile_interval(np.arange(101.0), 0.5)
    (25.0, 75.0)
    """
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        return float("nan"), float("nan")
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


def paired_pvalue(differences: np.ndarray) -> float:
    """Two-sided bootstrap p-value of ``difference == 0`` from paired resample differences.

    ``p = min(1, 2 min((1 + #{d <= 0}) / (B + 1), (1 + #{d >= 0}) / (B + 1)))``: twice the
    smaller tail share, with the +1 that keeps a finite number of resamples from
    claiming p = 0 (Davison and Hinkley, Bootstrap Methods, 1997, section 4.4).

    >>> paired_pvalue(np.array([0.1, 0.2, 0.3, -0.1]))
    0.8
    """
    finite = differences[~np.isnan(differences)]
    count = finite.size
    low = (1 + int(np.sum(finite <= 0))) / (count + 1)
    high = (1 + int(np.sum(finite >= 0))) / (count + 1)
    return float(min(1.0, 2.0 * min(low, high)))
