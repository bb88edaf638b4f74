"""Zero-code ingestion: follow a model's JSON Lines log and feed its records to a sink.

``JsonlSource`` follows every file matching a glob pattern, like ``tail -F`` over a set
of files, and survives what log files go through:

- **new files** matching the pattern later are picked up (read from their start);
- **rename rotation** (``p.jsonl`` renamed to ``p.jsonl.1``, a new ``p.jsonl``
  created): files are tracked by ``(st_dev, st_ino)`` through a descriptor kept open,
  so the renamed file is read to its end, then closed once it has not grown for
  ``rotated_grace`` seconds; the new file is read from its start;
- **copy-truncate rotation**: a file shorter than the offset (or whose first bytes
  changed) is read again from byte 0; lines written between the copy and the
  truncation are lost, which is inherent to copy-truncate;
- **partial lines**: only whole ``\\n``-terminated lines are consumed; the rest is read
  again once the writer has finished it;
- **symbolic links**: a matching name whose real location is outside the pattern's
  folder is skipped with a warning unless ``follow_symlinks`` (a link must not make the
  exporter read, and export, another file of the machine);
- **restarts**: with a ``state_dir`` the offset of every file is checkpointed right after
  the sink accepted each batch, and a restarted source resumes there (a file rotated
  away while the source was down is found again by its inode in the same directory).

Lines are told apart as :mod:`modelmon.sources.lines` describes; unusable lines are
counted through ``sink.count_rejected`` with reason ``invalid_json``, ``not_a_record``,
``line_too_long`` or ``incomplete_line`` and logged (file and line number, rate-limited).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from modelmon.sources.checkpoint import FileKey, OffsetCheckpoint, Position
from modelmon.sources.lines import classify_lines
from modelmon.sources.ratelimit import RateLimitedLog
from modelmon.sources.tailer import (
    TrackedFile,
    find_by_key,
    matching_files,
    open_file,
    pattern_root,
)

LINE_TOO_LONG = "line_too_long"
INCOMPLETE_LINE = "incomplete_line"

MAX_CHUNKS_PER_POLL = 64
"""Chunks of ``max_line_bytes`` read from one file per poll, so one busy file cannot
starve the others and ``stop()`` stays prompt; the loop polls again at once."""


class IngestOutcome(Protocol):
    """What a sink answers for a batch (the exporter's ``IngestResult``)."""

    @property
    def accepted(self) -> int: ...

    @property
    def rejected(self) -> int: ...

    @property
    def errors(self) -> Sequence[Mapping[str, object]]: ...


class RecordSink(Protocol):
    """Where records go: the exporter's ingest path, synchronously."""

    def ingest_predictions(self, model: str, records: Sequence[object]) -> IngestOutcome: ...

    def ingest_labels(self, model: str, records: Sequence[object]) -> IngestOutcome: ...

    def count_rejected(self, model: str, reason: str, n: int = 1) -> None: ...


class JsonlSource:
    """Follow the files matching ``pattern`` and send their records for ``model``.

    Call ``poll_once()`` to read what is there now, or ``start()`` to poll on a daemon
    thread every ``poll_interval`` seconds until ``stop()``. One batch (at most
    ``batch_size`` lines of one file) gives at most one ``ingest_labels`` and one
    ``ingest_predictions`` call, labels first (see ``_deliver``), each in file order.
    """

    def __init__(
        self,
        pattern: str,
        model: str,
        sink: RecordSink,
        *,
        state_dir: Path | None = None,
        poll_interval: float = 0.5,
        batch_size: int = 1000,
        max_line_bytes: int = 1 << 20,
        rotated_grace: float = 5.0,
        follow_symlinks: bool = False,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size: expected an integer >= 1, got {batch_size}")
        self.pattern, self.model = pattern, model
        # Without follow_symlinks, only files whose real location is under the
        # pattern's folder are read.
        self._root = None if follow_symlinks else pattern_root(pattern)
        self._sink = sink
        self._poll_interval, self._batch_size = poll_interval, batch_size
        self._max_line_bytes, self._rotated_grace = max_line_bytes, rotated_grace
        self._clock = clock
        self._logger = logger or logging.getLogger(__name__)
        self._warn = RateLimitedLog(self._logger, clock=clock)
        self._checkpoint = (
            OffsetCheckpoint(state_dir / checkpoint_name(pattern, model)) if state_dir else None
        )
        # Positions of the previous run; consumed by the first poll.
        self._saved: dict[FileKey, Position] | None = (
            self._checkpoint.load() if self._checkpoint else {}
        )
        self._files: dict[FileKey, TrackedFile] = {}  # insertion order = reading order
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # --- running -----------------------------------------------------------------------

    def poll_once(self) -> int:
        """Read every followed file up to its last whole line; return lines consumed."""
        self._discover()
        consumed = sum(self._read_file(tracked) for tracked in list(self._files.values()))
        self._close_drained()
        return consumed

    def start(self) -> None:
        """Poll on a background daemon thread until ``stop()``."""
        if self._thread is not None:
            raise RuntimeError(f"JsonlSource({self.pattern!r}) was already started")
        self._thread = threading.Thread(
            target=self._run, name=f"modelmon-jsonl-{self.model}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop polling, checkpoint every position and close the files."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        self._save()
        for tracked in self._files.values():
            tracked.close()
        self._files.clear()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                consumed = self.poll_once()
            except Exception as error:  # keep following; the next poll may succeed
                self._warn.warning("JSONL source %s: poll failed: %r", self.pattern, error)
                consumed = 0
            if not consumed:
                self._stopping.wait(self._poll_interval)

    # --- which files -------------------------------------------------------------------

    def _discover(self) -> None:
        """Track new files matching the pattern; mark followed ones that no longer do."""
        known = len(self._files)
        matched = matching_files(self.pattern)
        if self._saved is not None:
            self._recover_rotated(matched)
        for key, path in matched.items():
            if key in self._files:
                self._files[key].path, self._files[key].vanished_since = path, None
            else:
                self._track(path)
        self._saved = None
        now = self._clock()
        for key, tracked in self._files.items():
            if key not in matched and tracked.vanished_since is None:
                tracked.vanished_since = now
        if len(self._files) > known:
            self._save()  # a file seen once is found again after a restart, even renamed

    def _track(self, path: str) -> None:
        try:
            tracked = open_file(path, self._root)
        except OSError as error:  # permissions, a link out of the folder: skip it
            self._warn.warning("%s: cannot be read, skipped: %s", path, error)
            return
        if tracked is None:
            return
        if tracked.key in self._files:  # renamed between glob and open
            tracked.close()
            return
        saved = (self._saved or {}).pop(tracked.key, None)
        if saved is not None and not tracked.resume(saved):
            self._logger.info(
                "%s: not the file checkpointed for its inode; reading it from the start", path
            )
        tracked.seen_size, tracked.last_change = -1, self._clock()
        self._files[tracked.key] = tracked

    def _recover_rotated(self, matched: Mapping[FileKey, str]) -> None:
        """Find files checkpointed last run and renamed since, to read them to the end."""
        for key, saved in (self._saved or {}).items():
            if key in matched:
                continue
            path = find_by_key(os.path.dirname(saved.path) or ".", key)
            try:
                tracked = open_file(path, self._root) if path else None
            except OSError:
                tracked = None
            if tracked is None:
                continue
            if tracked.key == key and tracked.resume(saved):
                tracked.seen_size = -1
                tracked.last_change = tracked.vanished_since = self._clock()
                self._files[key] = tracked
            else:
                tracked.close()

    def _close_drained(self) -> None:
        """Close rotated-away files that were read to the end and stayed idle."""
        now, closed = self._clock(), False
        for key, tracked in list(self._files.items()):
            since = tracked.vanished_since
            if since is None or now - max(since, tracked.last_change) < self._rotated_grace:
                continue
            rest = os.pread(tracked.fd, self._max_line_bytes, tracked.offset)
            if b"\n" in rest:
                continue  # whole lines left: not drained yet
            if rest:
                reason = LINE_TOO_LONG if tracked.skipping_long_line else INCOMPLETE_LINE
                self._reject(tracked, [(tracked.line + 1, reason)])
            tracked.close()
            del self._files[key]
            closed = True
        if closed:
            self._save()

    # --- reading -----------------------------------------------------------------------

    def _read_file(self, tracked: TrackedFile) -> int:
        """Consume whole lines of one file; return how many."""
        size = tracked.size()
        if size != tracked.seen_size:
            if tracked.was_truncated(size):
                self._warn.warning(
                    "%s: truncated (copy-truncate rotation?); reading it again from the start",
                    tracked.path,
                )
                tracked.rewind()
            tracked.seen_size, tracked.last_change = size, self._clock()
        first_line = tracked.line
        try:
            for _ in range(MAX_CHUNKS_PER_POLL):
                offset = tracked.offset
                if offset >= size:
                    break
                self._read_chunk(tracked)
                if tracked.offset == offset:
                    break  # only a partial line left
        except Exception as error:  # the sink or the checkpoint failed: retry next poll
            self._warn.warning(
                "%s: stopped before line %d, will retry: %r",
                tracked.path,
                tracked.line + 1,
                error,
            )
        return tracked.line - first_line

    def _read_chunk(self, tracked: TrackedFile) -> None:
        """Consume the whole lines of the next ``max_line_bytes`` bytes, batch by batch."""
        data = os.pread(tracked.fd, self._max_line_bytes, tracked.offset)
        end = data.rfind(b"\n")
        if tracked.skipping_long_line or (end < 0 and len(data) >= self._max_line_bytes):
            self._skip_long_line(tracked, data)
            return
        lines = data[:end].split(b"\n") if end >= 0 else []
        for start in range(0, len(lines), self._batch_size):
            batch = lines[start : start + self._batch_size]
            self._deliver(tracked, batch)
            tracked.advance(sum(map(len, batch)) + len(batch), len(batch))
            self._save()

    def _skip_long_line(self, tracked: TrackedFile, data: bytes) -> None:
        """Drop a line longer than ``max_line_bytes`` without holding it in memory."""
        newline = data.find(b"\n")
        if newline < 0:
            tracked.skipping_long_line = True
            tracked.advance(len(data), 0)
            return
        tracked.skipping_long_line = False
        tracked.advance(newline + 1, 1)
        self._reject(tracked, [(tracked.line, LINE_TOO_LONG)])
        self._save()

    def _deliver(self, tracked: TrackedFile, lines: Sequence[bytes]) -> None:
        """Send one batch of lines: labels, then predictions, then rejections.

        Labels go first because only they can fail as a whole (a shared join store that
        is down): the batch is then read again at the next poll, and nothing of it was
        counted. A label before its prediction waits as an orphan and joins when the
        prediction follows, so the order changes no join."""
        batch = classify_lines(lines, first_line=tracked.line + 1)
        if batch.labels:
            outcome = self._sink.ingest_labels(self.model, batch.labels)
            self._log_sink_errors(tracked, outcome, batch.label_lines)
        if batch.predictions:
            outcome = self._sink.ingest_predictions(self.model, batch.predictions)
            self._log_sink_errors(tracked, outcome, batch.prediction_lines)
        self._reject(tracked, batch.rejected)

    def _reject(self, tracked: TrackedFile, rejected: Sequence[tuple[int, str]]) -> None:
        for reason, count in Counter(reason for _, reason in rejected).items():
            self._sink.count_rejected(self.model, reason, count)
        if rejected:
            line, reason = rejected[0]
            self._warn.warning("%s:%d: line rejected: %s", tracked.path, line, reason)

    def _log_sink_errors(
        self, tracked: TrackedFile, outcome: IngestOutcome, lines: Sequence[int]
    ) -> None:
        for error in outcome.errors[:1]:
            index = error.get("index")
            line = lines[index] if isinstance(index, int) and 0 <= index < len(lines) else 0
            self._warn.warning("%s:%d: record rejected: %s", tracked.path, line, error.get("error"))

    def _save(self) -> None:
        if self._checkpoint is not None:
            self._checkpoint.save({key: f.position() for key, f in self._files.items()})


def checkpoint_name(pattern: str, model: str) -> str:
    """The checkpoint file of one source: several sources may share a ``state_dir``.

    >>> checkpoint_name("/var/log/p*.jsonl", "credit-risk")
    'jsonl-credit-risk-83a025b19102.json'
    """
    digest = hashlib.sha256(pattern.encode()).hexdigest()[:12]
    return f"jsonl-{model}-{digest}.json"
