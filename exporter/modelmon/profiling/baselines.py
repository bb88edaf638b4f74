"""Reference performance baselines and the score calibration map of a profile."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from modelmon.profile import Profile
from modelmon.profiling.builder_types import RolesLike
from modelmon.values import class_value

log = logging.getLogger(__name__)


def add_baselines(
    profile: Profile, roles: RolesLike, data: dict[str, list[Any]], score_names: dict[str, str]
) -> None:
    """Fill ``profile.baselines`` and ``profile.calibration`` from the reference rows."""
    if roles.label is None or roles.label not in data:
        return
    from modelmon.stats import estimation

    task = profile.task
    labels = data[roles.label]
    if task == "regression":
        actual = np.array([_num(v) for v in labels])
        predicted = np.array([_num(v) for v in data.get(roles.prediction or "", [])])
        keep = ~np.isnan(actual) & ~np.isnan(predicted) if predicted.size else None
        if keep is None or not keep.any():
            return
        profile.baselines = estimation.reference_baselines(
            task, [], None, actual[keep], predicted[keep], None
        )
        return
    actual_c = [_cls(v) for v in labels]
    predicted_c = [_cls(v) for v in data.get(roles.prediction or "", [None] * len(labels))]
    scores = _scores(profile, roles, data, score_names, len(labels))
    keep = [
        i
        for i, (a, p) in enumerate(zip(actual_c, predicted_c, strict=True))
        if a is not None and p is not None
    ]
    if not keep:
        return
    a = [actual_c[i] for i in keep]
    p = [predicted_c[i] for i in keep]
    s = None if scores is None else scores[keep]
    profile.baselines = estimation.reference_baselines(
        task, profile.classes, profile.positive_class, a, p, s
    )
    if s is not None:
        calibrator = estimation.fit_reference_calibration(
            task, profile.classes, profile.positive_class, a, p, s
        )
        profile.calibration = None if calibrator is None else calibrator.to_dict()


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _cls(value: Any) -> str | None:
    if isinstance(value, str):
        try:
            return class_value(float(value))
        except ValueError:
            return value or None
    return class_value(value)


def _scores(
    profile: Profile,
    roles: RolesLike,
    data: dict[str, list[Any]],
    score_names: dict[str, str],
    n: int,
) -> np.ndarray[Any, np.dtype[np.float64]] | None:
    if roles.score and roles.score in data:
        return np.array([_num(v) for v in data[roles.score]])
    if roles.scores and all(c in data for c in roles.scores):
        by_class = {score_names[c]: [_num(v) for v in data[c]] for c in roles.scores}
        matrix = np.array([by_class.get(k, [float("nan")] * n) for k in profile.classes])
        return np.asarray(matrix.T, dtype=np.float64)
    return None
