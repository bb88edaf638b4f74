"""The role options of ``modelmon profile`` as the baseline code reads them."""

from __future__ import annotations

from typing import Protocol


class RolesLike(Protocol):
    prediction: str | None
    score: str | None
    scores: list[str]
    label: str | None
