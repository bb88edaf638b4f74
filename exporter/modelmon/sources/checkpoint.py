"""Durable read positions of tailed files.

Files are identified by ``(st_dev, st_ino)``, not by name, because rotation renames
them. An inode number is reused once its file is deleted, so each position carries a
fingerprint (SHA-256) of the file's first bytes up to the offset: a file whose first
bytes differ is another file and is read from the start.

The checkpoint is one JSON file, replaced atomically (write a temporary file in the same
directory, fsync, rename), so a crash leaves either the old or the new positions:

.. code-block:: json

    {"version": 1, "files": {"2049:1835011": {"path": "/var/log/model/p.jsonl",
     "offset": 81920, "line": 640, "fingerprint": "9f86d0...", "fingerprint_size": 256}}}
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from modelmon.statefiles import FILE_MODE, private_dir

FileKey = tuple[int, int]
"""``(st_dev, st_ino)`` of a file: stable across renames."""

FINGERPRINT_BYTES = 256
"""How many leading bytes identify a file: enough to cover the first record's id or
timestamp in practice, small enough to read on every poll."""

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Position:
    """How far one file has been read: ``offset`` bytes, ``line`` lines."""

    path: str
    offset: int
    line: int
    fingerprint: str
    fingerprint_size: int


def fingerprint(fd: int, size: int) -> str:
    """SHA-256 (hex) of the first ``size`` bytes of the open file ``fd``."""
    return hashlib.sha256(os.pread(fd, size, 0)).hexdigest()


class OffsetCheckpoint:
    """Load and atomically save the positions of one source's files in ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[FileKey, Position]:
        """The saved positions; empty when no checkpoint exists yet.

        Raises ValueError naming the file and the key when the file is not a checkpoint
        (it is only ever replaced atomically, so that means someone else wrote it).
        Temporary files left by a crash in the middle of ``save`` are removed.
        """
        for leftover in self.path.parent.glob(f".{self.path.name}.*"):
            leftover.unlink(missing_ok=True)
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            document = json.loads(text)
            if document.get("version") != FORMAT_VERSION:
                raise ValueError(f"version: expected {FORMAT_VERSION}")
            return {
                _parse_key(key): _parse_position(key, value)
                for key, value in document["files"].items()
            }
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"{self.path}: not a modelmon JSONL checkpoint: {error}") from None

    def save(self, positions: Mapping[FileKey, Position]) -> None:
        """Replace the checkpoint with ``positions`` (temporary file, fsync, rename)."""
        document = {
            "version": FORMAT_VERSION,
            "files": {f"{dev}:{ino}": asdict(pos) for (dev, ino), pos in positions.items()},
        }
        private_dir(self.path.parent)
        fd, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            os.fchmod(fd, FILE_MODE)  # mkstemp's 0600 is subject to the umask
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(document, file, separators=(",", ":"))
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def _parse_key(key: str) -> FileKey:
    dev, _, ino = key.partition(":")
    try:
        return int(dev), int(ino)
    except ValueError:
        raise ValueError(f"files.{key}: expected a key 'st_dev:st_ino'") from None


def _parse_position(key: str, value: object) -> Position:
    if not isinstance(value, dict):
        raise ValueError(f"files.{key}: expected an object")
    position = Position(**value)
    for name in ("offset", "line", "fingerprint_size"):
        number = getattr(position, name)
        if not isinstance(number, int) or number < 0:
            raise ValueError(f"files.{key}.{name}: expected an integer >= 0, got {number!r}")
    return position
