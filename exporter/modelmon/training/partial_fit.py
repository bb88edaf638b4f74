"""scikit-learn adapter: one epoch of ``partial_fit`` over mini-batches, logged to a run.

::

    step = 0
    for epoch in range(20):
        step = partial_fit_epoch(run, model, batches(x, y), epoch=epoch, step=step,
                                 classes=[0, 1], validation=(x_val, y_val))

Per batch: ``partial_fit``, then step, epoch, samples and the batch's training loss
(log loss from ``predict_proba`` for classifiers that have it, mean squared error for
regressors). After the epoch, on ``validation``: the loss, each of ``metrics``
(name -> ``f(y_true, y_pred)``; accuracy by default for classifiers) and, for
classifiers, the confusion matrix. scikit-learn is imported when this runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from modelmon.training.run import TrainingRun

Metric = Callable[[Any, Any], float]


def partial_fit_epoch(
    run: TrainingRun,
    estimator: Any,
    batches: Iterable[tuple[Any, Any]],
    *,
    epoch: int,
    step: int = 0,
    classes: Sequence[Any] | None = None,
    validation: tuple[Any, Any] | None = None,
    metrics: Mapping[str, Metric] | None = None,
) -> int:
    """Train ``estimator`` on ``batches`` and log to ``run``; returns the next step."""
    from sklearn.base import is_classifier

    classifier = is_classifier(estimator)
    for x, y in batches:
        if classes is not None:
            estimator.partial_fit(x, y, classes=classes)
        else:
            estimator.partial_fit(x, y)
        step += 1
        run.log(step=step, epoch=epoch, loss=loss(estimator, x, y, classifier), samples=len(y))
    if validation is not None:
        log_validation(run, estimator, *validation, step=step, epoch=epoch, metrics=metrics)
    return step


def log_validation(
    run: TrainingRun,
    estimator: Any,
    x: Any,
    y: Any,
    *,
    step: int,
    epoch: int,
    metrics: Mapping[str, Metric] | None = None,
) -> None:
    """Log the validation loss, metrics and (classifiers) confusion matrix."""
    from sklearn.base import is_classifier
    from sklearn.metrics import accuracy_score

    classifier = is_classifier(estimator)
    if metrics is None:
        metrics = {"accuracy": accuracy_score} if classifier else {}
    predicted = estimator.predict(x)
    values = {name: float(score(y, predicted)) for name, score in metrics.items()}
    run.log(
        step=step,
        epoch=epoch,
        split="validation",
        loss=loss(estimator, x, y, classifier),
        metrics=values,
    )
    if classifier:
        run.log_confusion(y, predicted, split="validation")


def loss(estimator: Any, x: Any, y: Any, classifier: bool) -> float | None:
    """Log loss (classifiers with ``predict_proba``) or mean squared error (regressors)."""
    from sklearn.metrics import log_loss, mean_squared_error

    if not classifier:
        return float(mean_squared_error(y, estimator.predict(x)))
    if not hasattr(estimator, "predict_proba"):
        return None  # e.g. SGDClassifier with the hinge loss has no probabilities
    return float(log_loss(y, estimator.predict_proba(x), labels=estimator.classes_))
