"""Private state (modelmon.statefiles): 0600 files, 0700 folders, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelmon.statefiles import open_private, private_dir, private_file


@pytest.fixture(params=[0o000, 0o022, 0o077, 0o277])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_folders_and_files_are_private_under_any_umask(tmp_path: Path, umask: int) -> None:
    folder = private_dir(tmp_path / "state" / "windows")
    assert mode(folder) == 0o700
    private_file(folder / "labels.sqlite", create=True)
    assert mode(folder / "labels.sqlite") == 0o600
    with open_private(folder / "w.tmp") as handle:
        handle.write(b"x")
    assert mode(folder / "w.tmp") == 0o600


def test_state_left_open_by_an_earlier_version_is_tightened(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    old = folder / "labels.sqlite"
    old.write_bytes(b"")
    os.chmod(old, 0o644)
    private_dir(folder)
    private_file(old)
    assert (mode(folder), mode(old)) == (0o700, 0o600)
    assert old.read_bytes() == b""  # never truncated
