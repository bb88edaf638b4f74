"""One tailed file: its open descriptor, identity and read position.

The descriptor stays open for as long as the file is followed. That is what makes
rename rotation safe: a renamed or deleted file is still read to its end through the
descriptor, and its inode cannot be reused while it is open.
"""

from __future__ import annotations

import glob
import os
import re
import stat
from dataclasses import dataclass

from modelmon.sources.checkpoint import FINGERPRINT_BYTES, FileKey, Position, fingerprint


@dataclass
class TrackedFile:
    """An open file and how far it has been consumed (only whole ``\\n``-ended lines).

    ``offset`` is the byte just after the last consumed line and ``line`` the number of
    lines consumed, so ``line + 1`` is the number of the next line. ``seen_size`` and
    ``last_change`` tell when the file last changed; ``vanished_since`` is set while no
    name matching the source's pattern points to the file any more (rotated or deleted).
    """

    key: FileKey
    path: str
    fd: int
    offset: int = 0
    line: int = 0
    fingerprint: str = ""
    fingerprint_size: int = 0
    seen_size: int = 0
    last_change: float = 0.0
    vanished_since: float | None = None
    skipping_long_line: bool = False

    def size(self) -> int:
        """The file's current size, through the descriptor (works after a rename)."""
        return os.fstat(self.fd).st_size

    def advance(self, nbytes: int, nlines: int) -> None:
        """Mark ``nbytes`` more bytes holding ``nlines`` lines as consumed."""
        self.offset += nbytes
        self.line += nlines

    def rewind(self) -> None:
        """Start again from byte 0 (the file was truncated or replaced in place)."""
        self.offset = self.line = self.fingerprint_size = 0
        self.fingerprint = ""
        self.skipping_long_line = False

    def was_truncated(self, size: int) -> bool:
        """Whether the consumed part of the file is gone or no longer the same bytes.

        Copy-truncate rotation shrinks the file below the offset; if it has grown back
        past the offset before this poll, the changed first bytes still tell.
        """
        if size < self.offset:
            return True
        return bool(self.fingerprint_size) and (
            fingerprint(self.fd, self.fingerprint_size) != self.fingerprint
        )

    def position(self) -> Position:
        """The checkpoint entry for this file, its fingerprint grown up to the offset."""
        wanted = min(FINGERPRINT_BYTES, self.offset)
        if self.fingerprint_size < wanted:
            self.fingerprint, self.fingerprint_size = fingerprint(self.fd, wanted), wanted
        return Position(self.path, self.offset, self.line, self.fingerprint, self.fingerprint_size)

    def resume(self, saved: Position) -> bool:
        """Continue from ``saved`` if it describes this file; returns whether it did."""
        size = self.size()
        if saved.offset > size or saved.fingerprint_size > size:
            return False
        if saved.fingerprint_size and fingerprint(self.fd, saved.fingerprint_size) != (
            saved.fingerprint
        ):
            return False
        self.offset, self.line = saved.offset, saved.line
        self.fingerprint, self.fingerprint_size = saved.fingerprint, saved.fingerprint_size
        return True

    def close(self) -> None:
        """Close the descriptor."""
        os.close(self.fd)


class OutsideDirectoryError(PermissionError):
    """A matching name that leads (through a symbolic link) out of the source's folder."""


def open_file(path: str, root: str | None = None) -> TrackedFile | None:
    """Open ``path`` for tailing; None when it vanished or is not a regular file.

    With ``root`` (a resolved folder, see :func:`pattern_root`), a path whose real
    location is outside ``root`` raises :class:`OutsideDirectoryError`: a symbolic
    link cannot make the source read, and export, another file of this machine.
    """
    real = os.path.realpath(path) if root is not None else path
    if root is not None and os.path.commonpath([real, root]) != root:
        raise OutsideDirectoryError(
            f"{path} leads to {real}, outside {root}; set follow_symlinks: true on the "
            "source to read it"
        )
    try:
        fd = os.open(real, os.O_RDONLY | os.O_CLOEXEC | (os.O_NOFOLLOW if root else 0))
    except FileNotFoundError:
        return None
    except OSError as error:  # ELOOP: the resolved name became a link meanwhile
        if root is not None and error.errno == getattr(os, "ELOOP", -1):
            raise OutsideDirectoryError(f"{path} changed into a symbolic link") from None
        raise
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):
        os.close(fd)
        return None
    return TrackedFile(key=(status.st_dev, status.st_ino), path=path, fd=fd)


def pattern_root(pattern: str) -> str:
    """The resolved folder of a glob pattern: its leading parts without glob characters.

    >>> pattern_root("/var/log/model/predictions*.jsonl")
    '/var/log/model'
    >>> pattern_root("/var/log/*/p.jsonl")
    '/var/log'
    """
    fixed: list[str] = []
    for part in pattern.split(os.sep)[:-1]:
        if re.search(r"[*?\[]", part):
            break
        fixed.append(part)
    return os.path.realpath(os.sep.join(fixed) or ("/" if pattern.startswith(os.sep) else "."))


def matching_files(pattern: str) -> dict[FileKey, str]:
    """Regular files matching ``pattern`` by key, oldest modification first."""
    found = []
    for path in glob.glob(pattern):
        try:
            status = os.stat(path)
        except OSError:  # vanished between glob and stat
            continue
        if stat.S_ISREG(status.st_mode):
            found.append((status.st_mtime_ns, path, (status.st_dev, status.st_ino)))
    return {key: path for _, path, key in sorted(found)}


def find_by_key(directory: str, key: FileKey) -> str | None:
    """The path of the file with ``key`` in ``directory``, if it is still there."""
    dev, ino = key
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.inode() == ino and entry.stat(follow_symlinks=False).st_dev == dev:
                    return entry.path
    except OSError:
        return None
    return None
