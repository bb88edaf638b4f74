"""Multiplicity control: many columns are tested at once, so each one's level shrinks.

modelmon uses Holm's step-down procedure (Holm 1979, "A simple sequentially rejective
multiple test procedure", Scand. J. Statist. 6:65-70). It controls the family-wise
error rate: without drift, the probability that *any* column of a model version and
window is flagged is at most ``alpha``, whatever the dependence between the columns
(features are usually correlated). That is the promise an alert needs: a stationary
model pages with probability at most ``alpha`` per evaluation. Benjamini-Hochberg would
be more powerful with many drifted columns, but it bounds only the expected share of
false verdicts among the flagged ones, needs positive dependence to hold, and says
nothing that a pager can rely on when nothing drifted.
"""

from __future__ import annotations

import numpy as np


def holm_levels(pvalues: list[float], alpha: float) -> list[float]:
    """The level each p-value is compared with under Holm's procedure at ``alpha``.

    Sorted ascending, p-value ``i`` (from 0) is tested at ``alpha / (m - i)`` while
    every smaller one was rejected; the first that fails stops the procedure, and it
    and every later one keep that step's level (none of them is below it). Hence
    ``p <= level`` is exactly Holm's rejection, and equals ``adjusted p <= alpha``.

    >>> holm_levels([0.001, 0.02, 0.04, 0.3], 0.05)
    [0.0125, 0.016666666666666666, 0.016666666666666666, 0.016666666666666666]
    >>> holm_levels([0.01, 0.011], 0.05)
    [0.025, 0.05]
    """
    m = len(pvalues)
    levels = [0.0] * m
    order = np.argsort(np.asarray(pvalues, dtype=np.float64), kind="stable")
    stopped: float | None = None
    for step, index in enumerate(order):
        level = alpha / (m - step) if stopped is None else stopped
        if stopped is None and not pvalues[index] <= level:
            stopped = level
        levels[index] = level
    return levels
