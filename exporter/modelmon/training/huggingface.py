"""Hugging Face adapter: a ``transformers.TrainerCallback`` that logs to a
:class:`TrainingRun`.

::

    trainer = Trainer(model=model, args=args, ..., callbacks=[huggingface_callback(run)])

At each of the Trainer's logging events (``logging_steps``): ``state.global_step``,
``state.epoch``, the training ``loss``, the ``learning_rate`` and the other numbers it
logs (``grad_norm``). At each evaluation: the ``eval_`` entries as split
``validation`` (``eval_loss`` as the loss). transformers is imported when this function
is called.
"""

from __future__ import annotations

from typing import Any

from modelmon.training.names import numbers
from modelmon.training.run import TrainingRun

_TRAINING_KEYS = ("loss", "learning_rate")


def huggingface_callback(run: TrainingRun) -> Any:
    """A ``TrainerCallback`` reporting to ``run``."""
    from transformers import TrainerCallback

    class ModelmonCallback(TrainerCallback):  # type: ignore[misc]
        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
            **kwargs: Any,
        ) -> None:  # fmt: skip
            logs = logs or {}
            evaluation = numbers(
                {k: v for k, v in logs.items() if k.startswith("eval_")}, strip="eval_"
            )
            if evaluation:
                run.log(step=state.global_step, epoch=state.epoch, split="validation",
                        loss=evaluation.pop("loss", None), metrics=evaluation)  # fmt: skip
            if "loss" in logs:
                training = numbers({k: v for k, v in logs.items() if not k.startswith("eval_")})
                run.log(
                    step=state.global_step,
                    epoch=state.epoch,
                    loss=training.pop("loss", None),
                    learning_rate=training.pop("learning_rate", None),
                    metrics={k: v for k, v in training.items() if k not in ("epoch", "step")},
                )

    return ModelmonCallback()
