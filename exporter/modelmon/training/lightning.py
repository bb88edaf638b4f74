"""PyTorch Lightning adapter: a callback that logs to a :class:`TrainingRun`.

::

    trainer = Trainer(max_epochs=10, callbacks=[lightning_callback(run)])

After each training batch: ``trainer.global_step``, the epoch, the batch's loss (the
``loss`` of the training step's output), the samples in the batch (the length of its
first tensor) and the first optimizer's learning rate. After each validation epoch (not
the sanity check): the ``val_`` and ``val/`` entries of ``trainer.callback_metrics`` as
split ``validation``. Lightning (``lightning`` or ``pytorch_lightning``) is imported
when this function is called.
"""

from __future__ import annotations

from typing import Any

from modelmon.training.names import as_number, numbers
from modelmon.training.run import TrainingRun


def _callback_base() -> Any:
    try:
        from lightning.pytorch import Callback
    except ModuleNotFoundError:
        from pytorch_lightning import Callback
    return Callback


def lightning_callback(run: TrainingRun) -> Any:
    """A Lightning ``Callback`` reporting to ``run``."""

    class ModelmonCallback(_callback_base()):  # type: ignore[misc]
        def on_train_batch_end(
            self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
        ) -> None:
            loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
            run.log(
                step=trainer.global_step,
                epoch=trainer.current_epoch,
                loss=as_number(getattr(loss, "detach", lambda: loss)()),
                samples=_batch_size(batch),
                learning_rate=_learning_rate(trainer),
            )

        def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            if trainer.sanity_checking:
                return
            metrics = {
                k: v for k, v in trainer.callback_metrics.items() if k.startswith(("val_", "val/"))
            }
            values = numbers({k[4:]: v for k, v in metrics.items()})
            if values:
                loss = values.pop("loss", None)
                run.log(step=trainer.global_step, epoch=trainer.current_epoch,
                        split="validation", loss=loss, metrics=values)  # fmt: skip

    return ModelmonCallback()


def _batch_size(batch: Any) -> int | None:
    first = batch[0] if isinstance(batch, (list, tuple)) and batch else batch
    return len(first) if hasattr(first, "__len__") else None


def _learning_rate(trainer: Any) -> float | None:
    optimizers = getattr(trainer, "optimizers", None) or []
    if not optimizers:
        return None
    return as_number(optimizers[0].param_groups[0].get("lr"))
