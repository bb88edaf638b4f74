"""The framework adapters against the real frameworks.

scikit-learn always (a test dependency). Keras, PyTorch Lightning and Hugging Face
transformers are optional extras of nobody's: they are not test dependencies (torch
alone is hundreds of megabytes), so their tests skip where the framework is not
installed. Each compares what the run recorded with what the framework itself reports
(its history, its callback metrics, its log history). How to run them:
``pip install torch==2.13.0 lightning transformers accelerate keras`` then
``KERAS_BACKEND=torch python -m pytest tests/unit/test_training_adapters.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pytest
from realbin import in_ci
from sklearn.datasets import load_iris
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.metrics import accuracy_score, confusion_matrix, log_loss, mean_squared_error

from modelmon import TrainingRun
from modelmon.training.names import metric_name, numbers
from modelmon.training.partial_fit import partial_fit_epoch

# Framework imports trip deprecation warnings of their own dependencies; under
# "-W error" those would fail the tests of the adapters, which do not cause them.
F = TypeVar("F", bound=Callable[..., None])


def framework_warnings(test: F) -> F:
    """Let the framework's own deprecation and user warnings pass (not errors)."""
    for kind in ("DeprecationWarning", "PendingDeprecationWarning", "FutureWarning",
                 "UserWarning"):  # fmt: skip
        test = pytest.mark.filterwarnings(f"ignore::{kind}")(test)
    return test


def framework(name: str) -> Any:
    """Import a framework of the adapters (the ``frameworks`` extra, installed by
    scripts/install-test-deps.sh): skips without it, fails under CI=true."""
    try:
        return pytest.importorskip(name)
    except pytest.skip.Exception:
        if in_ci():
            pytest.fail(f"{name} is missing (CI=true: scripts/install-test-deps.sh installs it)")
        raise


def new_run() -> TrainingRun:
    return TrainingRun("m", "r", resources=False)


def snapshot(run: TrainingRun) -> Any:
    return run._state.snapshot()  # the test reads what the run holds


def test_metric_names_become_label_values() -> None:
    assert metric_name("val/acc") == "val_acc"
    assert numbers({"eval_f1 macro": 0.5, "eval_note": "x", "eval_n": 3}, strip="eval_") == {
        "f1_macro": 0.5,
        "n": 3.0,
    }


def test_partial_fit_classifier_logs_what_scikit_learn_computes() -> None:
    x, y = load_iris(return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    x_tr, y_tr, x_val, y_val = x[:100], y[:100], x[100:], y[100:]
    model = SGDClassifier(loss="log_loss", random_state=0)
    run = new_run()
    batches = [(x_tr[i : i + 25], y_tr[i : i + 25]) for i in range(0, 100, 25)]
    step = partial_fit_epoch(
        run, model, batches, epoch=0, classes=[0, 1, 2], validation=(x_val, y_val)
    )
    state = snapshot(run)
    assert step == 4
    assert (state.step, state.epoch, state.samples) == (4, 0, 100)
    last_x, last_y = batches[-1]
    expected_train = log_loss(last_y, model.predict_proba(last_x), labels=[0, 1, 2])
    assert state.losses["train"] == pytest.approx(expected_train, rel=1e-12)
    proba = model.predict_proba(x_val)
    expected = log_loss(y_val, proba, labels=[0, 1, 2])
    assert state.losses["validation"] == pytest.approx(expected, rel=1e-12)
    predicted = model.predict(x_val)
    accuracy = accuracy_score(y_val, predicted)
    assert state.metrics[("validation", "accuracy")] == accuracy
    matrix = confusion_matrix(y_val, predicted, labels=[0, 1, 2])
    cells = state.confusion["validation"]
    assert all(cells[(str(a), str(p))] == matrix[a, p] for a in range(3) for p in range(3))
    run.finish()


def test_partial_fit_regressor_and_hinge_classifier() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + rng.normal(0, 0.1, 200)
    model = SGDRegressor(random_state=0)
    run = new_run()
    partial_fit_epoch(run, model, [(x[:100], y[:100])], epoch=0, validation=(x[100:], y[100:]))
    state = snapshot(run)
    expected = mean_squared_error(y[100:], model.predict(x[100:]))
    assert state.losses["validation"] == pytest.approx(expected, rel=1e-12)
    assert state.confusion == {}
    hinge = SGDClassifier(loss="hinge", random_state=0)
    labels = (y > 0).astype(int)
    partial_fit_epoch(run, hinge, [(x, labels)], epoch=1, classes=[0, 1])
    assert snapshot(run).epoch == 1  # no probabilities: no loss, the rest logged
    run.finish()


@framework_warnings
def test_keras_callback() -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = framework("keras")
    from modelmon.training.keras import keras_callback

    rng = np.random.default_rng(2)
    x = rng.normal(size=(256, 4)).astype("float32")
    y = (x.sum(axis=1) > 0).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="binary_crossentropy",
                  metrics=["accuracy"])  # fmt: skip
    run = new_run()
    history = model.fit(x[:192], y[:192], validation_data=(x[192:], y[192:]), epochs=2,
                        batch_size=32, verbose=0, callbacks=[keras_callback(run)])  # fmt: skip
    state = snapshot(run)
    assert (state.step, state.epoch) == (12, 1)  # 6 batches a epoch
    assert state.losses["validation"] == pytest.approx(history.history["val_loss"][-1])
    assert state.metrics[("validation", "accuracy")] == pytest.approx(
        history.history["val_accuracy"][-1]
    )
    assert state.losses["train"] == pytest.approx(history.history["loss"][-1], rel=1e-5)
    assert state.learning_rate == pytest.approx(0.05)
    run.finish()


@framework_warnings
def test_lightning_callback(tmp_path: Any) -> None:
    torch = framework("torch")
    pl = framework("lightning.pytorch")
    from modelmon.training.lightning import lightning_callback

    class Tiny(pl.LightningModule):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            return torch.nn.functional.mse_loss(self.layer(x).squeeze(-1), y)

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.layer(x).squeeze(-1), y)
            self.log("val_loss", loss)
            self.log("val/mae", (self.layer(x).squeeze(-1) - y).abs().mean())

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    torch.manual_seed(0)
    x = torch.randn(128, 4)
    y = x.sum(dim=1)
    train = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:96], y[:96]),
                                        batch_size=16)  # fmt: skip
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[96:], y[96:]),
                                      batch_size=32)  # fmt: skip
    run = new_run()
    trainer = pl.Trainer(max_epochs=2, callbacks=[lightning_callback(run)], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=str(tmp_path),
                         accelerator="cpu")  # fmt: skip
    trainer.fit(Tiny(), train, val)
    state = snapshot(run)
    assert (state.step, state.epoch, state.samples) == (12, 1, 192)
    expected = float(trainer.callback_metrics["val_loss"])
    assert state.losses["validation"] == pytest.approx(expected, rel=1e-6)
    assert state.metrics[("validation", "mae")] == pytest.approx(
        float(trainer.callback_metrics["val/mae"]), rel=1e-6
    )
    assert state.learning_rate == pytest.approx(0.1)
    run.finish()


@framework_warnings
def test_huggingface_callback(tmp_path: Any) -> None:
    torch = framework("torch")
    transformers = framework("transformers")
    framework("accelerate")
    from modelmon.training.huggingface import huggingface_callback

    class Tiny(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def forward(self, x: Any, labels: Any = None) -> Any:
            out = self.layer(x).squeeze(-1)
            loss = torch.nn.functional.mse_loss(out, labels)
            return {"loss": loss, "logits": out}

    class Rows(torch.utils.data.Dataset):  # type: ignore[misc]
        def __init__(self, x: Any, y: Any) -> None:
            self.x, self.y = x, y

        def __len__(self) -> int:
            return len(self.y)

        def __getitem__(self, i: int) -> dict[str, Any]:
            return {"x": self.x[i], "labels": self.y[i]}

    torch.manual_seed(0)
    x = torch.randn(96, 4)
    y = x.sum(dim=1)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), num_train_epochs=2, per_device_train_batch_size=16,
        logging_steps=1, eval_strategy="epoch", save_strategy="no", report_to=[],
        use_cpu=True, disable_tqdm=True,
    )  # fmt: skip
    run = new_run()
    trainer = transformers.Trainer(model=Tiny(), args=args, train_dataset=Rows(x[:64], y[:64]),
                                   eval_dataset=Rows(x[64:], y[64:]),
                                   callbacks=[huggingface_callback(run)])  # fmt: skip
    trainer.train()
    state = snapshot(run)
    history = trainer.state.log_history
    evaluations = [h for h in history if "eval_loss" in h]
    losses = [h for h in history if "loss" in h]
    assert state.step == trainer.state.global_step == 8
    assert state.losses["validation"] == pytest.approx(evaluations[-1]["eval_loss"])
    assert state.losses["train"] == pytest.approx(losses[-1]["loss"])
    assert state.learning_rate == pytest.approx(losses[-1]["learning_rate"])
    run.finish()
