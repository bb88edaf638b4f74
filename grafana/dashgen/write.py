"""Render every dashboard to ``grafana/dashboards/<uid minus prefix>.json`` or check them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from . import drift, evaluations, overview, performance, resources, training, versions
from .panels import JSON

BUILDERS: tuple[Callable[[], JSON], ...] = (
    overview.build,
    drift.build,
    performance.build,
    resources.build,
    versions.build,
    training.build,
    evaluations.build,
)

DASHBOARDS_DIR = Path(__file__).resolve().parent.parent / "dashboards"


def render(board: JSON) -> str:
    """The file text of a dashboard: stable, two-space indented JSON."""
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


def file_name(board: JSON) -> str:
    """``modelmon-drift`` -> ``drift.json``."""
    uid: str = board["uid"]
    return uid.removeprefix("modelmon-") + ".json"


def expected_files() -> dict[str, str]:
    """File name -> text of every dashboard the generator builds."""
    return {file_name(board): render(board) for board in (b() for b in BUILDERS)}


def stale_files(directory: Path = DASHBOARDS_DIR) -> list[str]:
    """Dashboard files that are missing, differ from the generator, or are not generated."""
    expected = expected_files()
    present = {p.name for p in directory.glob("*.json")}
    stale = [
        name
        for name, text in expected.items()
        if name not in present or (directory / name).read_text() != text
    ]
    return sorted(stale + sorted(present - expected.keys()))


def write(directory: Path = DASHBOARDS_DIR) -> list[str]:
    """Write every dashboard; return the names of the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in expected_files().items():
        (directory / name).write_text(text)
        written.append(name)
    return written
