"""Private state: what modelmon keeps under ``state_dir`` is its owner's alone.

The join store holds prediction ids, classes and scores; the window checkpoints hold
the recent distributions of every column. Folders are made 0700 and files 0600 with
explicit ``chmod`` calls, so the result does not depend on the process's umask; state
left more open by an earlier version is tightened at start-up (or, where this user may
not change it, logged as a warning).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600
_warned: set[Path] = set()  # paths already reported: checkpoints are saved often


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) if needed and make it 0700."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _restrict(path, DIR_MODE)
    return path


def private_file(path: Path, *, create: bool = False) -> None:
    """Make ``path`` 0600; create it empty first when ``create`` and it is missing."""
    if create:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        os.close(fd)
    if path.exists():
        _restrict(path, FILE_MODE)


def open_private(path: Path) -> BinaryIO:
    """``path`` opened for writing (created or truncated) with mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "wb")


def _restrict(path: Path, mode: int) -> None:
    current = stat.S_IMODE(path.stat().st_mode)
    if current == mode:
        return
    try:
        os.chmod(path, mode)
    except PermissionError:
        if current & 0o077 and path not in _warned:
            _warned.add(path)
            log.warning(
                "%s is mode %o, readable by other users, and this user cannot change it: "
                "run chmod %o on it",
                path,
                current,
                mode,
            )
