"""Pass/fail gates of ``modelmon check``: drift gates (``--fail-on``) and performance
gates (``--min-accuracy`` ...). A gate that cannot be decided (a performance gate on
data without labels, a gate that does not apply to the task) is a usage error, never a
silent pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from modelmon.checking import FAIL_ON
from modelmon.checking.result import CheckResult, ColumnResult, GateResult

CLASSIFICATION = ("binary_classification", "multiclass_classification")


class GateError(ValueError):
    """A gate that cannot be evaluated; the message names the option."""


@dataclass(frozen=True)
class Gates:
    """The gates asked for on the command line."""

    fail_on: tuple[str, ...] = ("dataset-drift",)
    min_accuracy: float | None = None
    min_roc_auc: float | None = None
    max_mae: float | None = None
    max_rmse: float | None = None
    max_accuracy_drop: float | None = None

    def validate(self, task: str) -> None:
        """Fail fast, before reading any data, on gates the task cannot have."""
        for name in self.fail_on:
            if name not in FAIL_ON:
                raise GateError(f"--fail-on: {name!r} is not one of {', '.join(FAIL_ON)}")
        if "none" in self.fail_on and len(self.fail_on) > 1:
            raise GateError("--fail-on: 'none' cannot be combined with other values")
        wanted = {
            "--min-accuracy": (self.min_accuracy, CLASSIFICATION),
            "--max-accuracy-drop": (self.max_accuracy_drop, CLASSIFICATION),
            "--min-roc-auc": (self.min_roc_auc, ("binary_classification",)),
            "--max-mae": (self.max_mae, ("regression",)),
            "--max-rmse": (self.max_rmse, ("regression",)),
        }
        for option, (value, tasks) in wanted.items():
            if value is not None and task not in tasks:
                raise GateError(
                    f"{option}: applies to {' and '.join(tasks)} models; the profile's "
                    f"task is {task}"
                )


def _names(columns: list[ColumnResult]) -> str:
    shown = ", ".join(c.column for c in columns[:10])
    return shown + (f" and {len(columns) - 10} more" if len(columns) > 10 else "")


def _dataset_drift(result: CheckResult) -> GateResult:
    features = [c for c in result.role_columns("feature") if c.drifted is not None]
    drifted = [c for c in features if c.drifted]
    if result.dataset_drift is None:
        return GateResult("dataset-drift", True, "no feature has values to test")
    share = result.drift_share or 0.0
    sign = ">=" if result.dataset_drift else "<"
    detail = (
        f"{len(drifted)} of {len(features)} features drifted "
        f"(share {share:.3g} {sign} {result.settings.share:g})"
    )
    return GateResult("dataset-drift", not result.dataset_drift, detail)


def _any_drift(result: CheckResult) -> GateResult:
    drifted = result.drifted("feature")
    if not drifted:
        return GateResult("drift", True, "no feature drifted")
    return GateResult("drift", False, f"{len(drifted)} features drifted: {_names(drifted)}")


def _prediction_drift(result: CheckResult) -> GateResult:
    tested = [c for c in result.role_columns("prediction", "score") if c.drifted is not None]
    if not tested:
        raise GateError(
            "--fail-on prediction-drift: the data has no values in a prediction or "
            "score column of the profile"
        )
    drifted = [c for c in tested if c.drifted]
    if not drifted:
        return GateResult("prediction-drift", True, "no prediction or score column drifted")
    return GateResult("prediction-drift", False, f"drifted: {_names(drifted)}")


DRIFT_GATES: dict[str, Callable[[CheckResult], GateResult]] = {
    "dataset-drift": _dataset_drift,
    "drift": _any_drift,
    "prediction-drift": _prediction_drift,
}


def _metric(result: CheckResult, name: str, option: str) -> float:
    perf = result.performance
    value = None if perf is None else perf.metrics.get(name)
    if value is None:
        need = {
            "roc_auc": "scores and both classes among the labeled rows",
        }.get(name, "rows with both a label and a prediction")
        raise GateError(f"{option}: the data gives no {name} (it needs {need})")
    return value


def _bound(name: str, option: str, value: float, limit: float, minimum: bool) -> GateResult:
    passed = value >= limit if minimum else value <= limit
    sign = (">=" if passed else "<") if minimum else ("<=" if passed else ">")
    return GateResult(option.lstrip("-"), passed, f"{name} {value:.4g} {sign} {limit:g}")


def _accuracy_drop(result: CheckResult, limit: float) -> GateResult:
    accuracy = _metric(result, "accuracy", "--max-accuracy-drop")
    reference = result.performance.reference.get("accuracy") if result.performance else None
    if reference is None:
        raise GateError(
            "--max-accuracy-drop: the profile has no reference accuracy (profile the "
            "reference with --label and --prediction)"
        )
    drop = reference - accuracy
    passed = drop <= limit
    detail = (
        f"accuracy drop {drop:.4g} {'<=' if passed else '>'} {limit:g} "
        f"(reference {reference:.4g}, now {accuracy:.4g})"
    )
    return GateResult("max-accuracy-drop", passed, detail)


def evaluate(gates: Gates, result: CheckResult) -> list[GateResult]:
    """Every requested gate's decision, drift gates first."""
    out = [DRIFT_GATES[name](result) for name in gates.fail_on if name != "none"]
    bounds = (
        ("accuracy", "--min-accuracy", gates.min_accuracy, True),
        ("roc_auc", "--min-roc-auc", gates.min_roc_auc, True),
        ("mae", "--max-mae", gates.max_mae, False),
        ("rmse", "--max-rmse", gates.max_rmse, False),
    )
    for name, option, limit, minimum in bounds:
        if limit is not None:
            out.append(_bound(name, option, _metric(result, name, option), limit, minimum))
    if gates.max_accuracy_drop is not None:
        out.append(_accuracy_drop(result, gates.max_accuracy_drop))
    return out
