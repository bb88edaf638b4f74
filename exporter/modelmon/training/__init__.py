"""Training runs in the Prometheus stack: :class:`TrainingRun` and its framework adapters.

Importing this package imports no training framework; the adapters
(:mod:`modelmon.training.partial_fit`, ...) import theirs when used.
"""

from __future__ import annotations

from modelmon.training.run import TrainingRun, params_digest

__all__ = ["TrainingRun", "params_digest"]
