"""The decision of ``modelmon evaluate``: gates on each candidate's difference to serving.

- ``--require-better METRIC``: the candidate is better than the serving model on METRIC
  and the paired test says so at level alpha (p < alpha, difference in the better
  direction).
- ``--max-regression METRIC=DELTA``: non-inferiority. The whole confidence interval of
  the difference lies on the acceptable side of ``-DELTA`` (for a metric where higher
  is better; ``+DELTA`` where lower is better). With few rows the interval is wide and
  the gate fails: a candidate must show that it is not worse, not merely fail to show
  that it is.

The serving model is the baseline and passes by definition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelmon.evaluation.compare import Candidate, EvaluationResult
from modelmon.evaluation.metrics import METRICS


@dataclass(frozen=True)
class Gates:
    require_better: tuple[str, ...] = ()
    max_regression: dict[str, float] = field(default_factory=dict)

    def validate(self, metrics: tuple[str, ...]) -> None:
        """ValueError naming the option when a gate's metric is not one of this task's."""
        for option, names in (
            ("--require-better", self.require_better),
            ("--max-regression", tuple(self.max_regression)),
        ):
            for name in names:
                if name not in metrics:
                    raise ValueError(
                        f"{option}: {name!r} is not a metric of this evaluation; "
                        f"expected one of {', '.join(metrics)}"
                    )


def parse_regression(text: str) -> tuple[str, float]:
    """``METRIC=DELTA`` with DELTA >= 0.

    >>> parse_regression("accuracy=0.01")
    ('accuracy', 0.01)
    """
    name, sep, delta = text.partition("=")
    try:
        value = float(delta)
    except ValueError:
        value = -1.0
    if not sep or not name or not value >= 0:
        raise ValueError(f"--max-regression: expected METRIC=DELTA with DELTA >= 0, got {text!r}")
    return name.strip(), value


def apply(result: EvaluationResult, gates: Gates) -> None:
    """Record each gate's verdict on every candidate but the serving one."""
    for candidate in result.candidates:
        if candidate.name == result.serving:
            continue
        for metric in gates.require_better:
            candidate.gates.append(_better(candidate, metric, result.settings.alpha))
        for metric, delta in gates.max_regression.items():
            candidate.gates.append(_not_worse(candidate, metric, delta))


def _better(candidate: Candidate, metric: str, alpha: float) -> tuple[str, bool, str]:
    d = candidate.differences[metric]
    higher = METRICS[metric][1]
    direction = d.difference > 0 if higher else d.difference < 0
    ok = direction and d.pvalue < alpha
    why = f"difference {d.difference:+.4g}, p = {d.pvalue:.3g} ({d.test}), alpha {alpha:g}"
    return f"require-better {metric}", ok, why


def _not_worse(candidate: Candidate, metric: str, delta: float) -> tuple[str, bool, str]:
    d = candidate.differences[metric]
    higher = METRICS[metric][1]
    ok = d.lower >= -delta if higher else d.upper <= delta
    bound = d.lower if higher else d.upper
    why = f"interval [{d.lower:+.4g}, {d.upper:+.4g}], worst bound {bound:+.4g}, allowed {delta:g}"
    return f"max-regression {metric}={delta:g}", ok, why
