"""The distribution of one column over the profile's bins: reference shares beside the
batch's counts, as the HTML report draws them and the JSON report lists them.

Numeric columns use the profile's *coarse* bins (``(-inf, e1), [e1, e2), ...,
[e_last, +inf)``, the ``bin`` label of ``modelmon_column_bin_total``), categorical
columns its top categories and ``__other__``. The counts are the binned values of the
batch (missing, infinite and type errors left out), so they sum to the column's
``values``.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from modelmon.stats.binning import ColumnSlots, FloatArray


@dataclass(frozen=True)
class Distribution:
    """Reference shares and batch counts per bin of one column.

    ``bins`` are the exporter's bin names (``"0"``, ``"1"``, ... for numeric columns,
    the categories then ``__other__`` for categorical ones); ``edges`` the numeric
    column's coarse edges (one fewer than ``bins``; empty for categorical columns).
    """

    bins: list[str]
    edges: list[float]
    reference: list[float]
    counts: list[int]

    @property
    def total(self) -> int:
        return sum(self.counts)

    def shares(self) -> list[float]:
        """The batch's share of each bin (all 0 without values).

        >>> Distribution(["a", "b"], [], [0.5, 0.5], [1, 3]).shares()
        [0.25, 0.75]
        """
        total = self.total
        return [c / total if total else 0.0 for c in self.counts]

    def labels(self) -> list[str]:
        """Readable bin names: intervals of the edges (4 significant digits) or the
        categories.

        >>> Distribution(["0", "1", "2"], [1.0, 2.5], [0.3, 0.4, 0.3], [1, 1, 1]).labels()
        ['< 1', '[1, 2.5)', '>= 2.5']
        """
        if not self.edges:
            return list(self.bins)
        e = [f"{x:.4g}" for x in self.edges]
        middle = [f"[{a}, {b})" for a, b in pairwise(e)]
        return [f"< {e[0]}", *middle, f">= {e[-1]}"]

    def to_json(self) -> dict[str, Any]:
        return {
            "bins": self.bins,
            "edges": self.edges,
            "reference": self.reference,
            "counts": self.counts,
        }


def column_distribution(slots: ColumnSlots, vector: FloatArray) -> Distribution:
    """The column's reference shares and the counts summed in ``vector``."""
    col = slots.column
    counts = [round(float(c)) for c in slots.coarse_counts(vector)]
    edges = [float(e) for e in col.coarse_edges] if col.is_numeric else []
    reference = [float(r) for r in col.reference_ratios()]
    return Distribution(col.bin_names(), edges, reference, counts)
