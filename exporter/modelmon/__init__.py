"""modelmon: an ML model monitoring exporter for the Prometheus ecosystem.

``modelmon.Client`` sends records to a running exporter from the model's process;
``modelmon.Monitor`` runs the exporter inside the model's process;
``modelmon.TrainingRun`` reports a training job's progress (docs/training.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Client", "Monitor", "TrainingRun", "__version__"]

if TYPE_CHECKING:
    from modelmon.client import Client
    from modelmon.monitor import Monitor
    from modelmon.training import TrainingRun


def __getattr__(name: str) -> Any:
    # Imported on first use, so `import modelmon` stays cheap and free of side effects.
    if name == "Client":
        from modelmon.client import Client

        return Client
    if name == "Monitor":
        from modelmon.monitor import Monitor

        return Monitor
    if name == "TrainingRun":
        from modelmon.training import TrainingRun

        return TrainingRun
    raise AttributeError(f"module 'modelmon' has no attribute {name!r}")
