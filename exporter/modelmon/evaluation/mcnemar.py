"""McNemar's exact test of paired accuracies.

Of the rows where exactly one of two classifiers is right, ``b`` favour the candidate and
``c`` the serving model. Without a difference in accuracy, ``b`` is binomial with
``b + c`` trials and probability 1/2; the exact two-sided p-value is
``min(1, 2 P(X <= min(b, c)))`` (McNemar 1947; the exact conditional form of Fagerland,
Lydersen and Laake, BMC Med Res Methodol 13:91, 2013). It is exact at any number of
discordant rows, where the chi-square form needs about 25; it is conservative, which a
release gate should be (the mid-p variant rejects more often than its level at small
``b + c``).
"""

from __future__ import annotations

import numpy as np


def discordant_counts(
    candidate_correct: np.ndarray, serving_correct: np.ndarray
) -> tuple[int, int]:
    """(b, c): rows only the candidate got right, rows only the serving model got right."""
    b = int(np.sum(candidate_correct & ~serving_correct))
    c = int(np.sum(~candidate_correct & serving_correct))
    return b, c


def mcnemar_exact_pvalue(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value of the discordant counts ``b`` and ``c``.

    >>> mcnemar_exact_pvalue(0, 0)
    1.0
    >>> round(mcnemar_exact_pvalue(10, 2), 6)  # 2 * P(Binomial(12, 1/2) <= 2)
    0.038574
    """
    if b < 0 or c < 0:
        raise ValueError(f"b, c: expected counts >= 0, got {b}, {c}")
    trials = b + c
    if trials == 0:
        return 1.0
    from scipy.stats import binom  # heavy import, only when a comparison is made

    return float(min(1.0, 2.0 * binom.cdf(min(b, c), trials, 0.5)))
