"""Keras adapter: a callback that logs batches and epochs to a :class:`TrainingRun`.

::

    model.fit(x, y, validation_data=(x_val, y_val), epochs=10,
              callbacks=[keras_callback(run)])

After each training batch: step (batches since the start), epoch, the running loss and
metrics Keras reports in ``logs``, and the optimizer's learning rate. After each epoch:
the ``val_`` entries of ``logs`` as split ``validation``. Keras (3, any backend) is
imported when this function is called.
"""

from __future__ import annotations

from typing import Any

from modelmon.training.names import as_number, numbers
from modelmon.training.run import TrainingRun


def keras_callback(run: TrainingRun) -> Any:
    """A ``keras.callbacks.Callback`` reporting to ``run``."""
    import keras

    class ModelmonCallback(keras.callbacks.Callback):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.step = 0
            self.epoch = 0

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.epoch = epoch

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            self.step += 1
            values = numbers(logs or {})
            loss = values.pop("loss", None)
            run.log(step=self.step, epoch=self.epoch, loss=loss, metrics=values,
                    learning_rate=_learning_rate(self.model))  # fmt: skip

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            validation = {k: v for k, v in (logs or {}).items() if k.startswith("val_")}
            values = numbers(validation, strip="val_")
            if values:
                loss = values.pop("loss", None)
                run.log(step=self.step, epoch=epoch, split="validation", loss=loss,
                        metrics=values)  # fmt: skip

    return ModelmonCallback()


def _learning_rate(model: Any) -> float | None:
    optimizer = getattr(model, "optimizer", None)
    rate = getattr(optimizer, "learning_rate", None)
    if rate is None:
        return None
    if hasattr(rate, "numpy"):
        rate = rate.numpy()
    return as_number(rate)
