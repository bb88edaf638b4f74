"""Window checkpoints: the recent windows survive a restart.

Every ``checkpoint_interval`` (and on a graceful shutdown) each model's sliding windows
are written to ``state_dir/windows/<model>.npz`` (mode 0600, folder 0700) — written to a
temporary file, flushed and renamed over the old one, so a crash leaves the previous
checkpoint intact. At start-up they are restored when the profile's layout is
unchanged. A SIGKILL loses at most one checkpoint interval of window data. Counters are
*not* restored: they restart from zero, which Prometheus reads as a counter reset, so
``rate()`` stays right.
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from modelmon.model import ModelMonitor
from modelmon.statefiles import open_private, private_dir
from modelmon.stats.binning import EVENTS_SLOT

log = logging.getLogger(__name__)


def checkpoint_path(state_dir: Path, model: str) -> Path:
    return state_dir / "windows" / f"{model}.npz"


def save(monitor: ModelMonitor, path: Path) -> None:
    """Write the model's windows atomically."""
    with monitor.lock:
        meta: dict[str, Any] = {"layout_size": monitor.layout.size, "versions": {}}
        arrays: dict[str, np.ndarray[Any, Any]] = {}
        for v_index, (version, state) in enumerate(monitor.versions.items()):
            windows = {}
            for w_index, (name, window) in enumerate(state.windows.items()):
                s = window.state()
                key = f"v{v_index}w{w_index}"
                arrays[f"{key}_ids"] = np.asarray(s["ids"], dtype=np.int64)
                arrays[f"{key}_sums"] = np.asarray(s["sums"], dtype=np.float64).reshape(
                    -1, monitor.layout.size
                )
                windows[name] = {
                    "key": key,
                    "length": s["length"],
                    "buckets": s["buckets"],
                    "newest": s["newest"],
                }
            meta["versions"][version] = {"windows": windows, "last_seen": state.last_seen}
    buffer = io.BytesIO()
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    private_dir(path.parent)
    tmp = path.with_suffix(".tmp")
    with open_private(tmp) as handle:
        handle.write(buffer.getvalue())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def restore(monitor: ModelMonitor, path: Path) -> int:
    """Load a checkpoint into a fresh monitor; returns the versions restored."""
    if not path.exists():
        return 0
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            if meta.get("layout_size") != monitor.layout.size:
                log.warning(
                    "%s: the profile changed since this checkpoint; windows start empty", path
                )
                return 0
            restored = 0
            with monitor.lock:
                for version, vmeta in meta["versions"].items():
                    full = len(monitor.versions) >= monitor.config.max_versions
                    if full and version not in monitor.versions:
                        continue
                    state = monitor.new_version_state()
                    state.last_seen = float(vmeta.get("last_seen", 0.0))
                    for name, wmeta in vmeta["windows"].items():
                        if name in state.windows:
                            key = wmeta["key"]
                            state.windows[name].restore(
                                {
                                    "length": wmeta["length"],
                                    "buckets": wmeta["buckets"],
                                    "newest": wmeta["newest"],
                                    "ids": data[f"{key}_ids"],
                                    "sums": data[f"{key}_sums"],
                                }
                            )
                    # Counted as seen: a restored version is no junk to evict.
                    state.records = int(max(w.total()[EVENTS_SLOT] for w in state.windows.values()))
                    monitor.versions[version] = state
                    restored += 1
            return restored
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        log.warning("%s: unreadable window checkpoint (%s); windows start empty", path, exc)
        return 0


class Checkpointer:
    """Saves every model's windows every ``interval`` seconds in a daemon thread."""

    def __init__(self, monitors: list[ModelMonitor], state_dir: Path, interval: float) -> None:
        self.monitors = monitors
        self.state_dir = state_dir
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def restore_all(self) -> None:
        for monitor in self.monitors:
            n = restore(monitor, checkpoint_path(self.state_dir, monitor.name))
            if n:
                log.info("restored the windows of %d version(s) of model %s", n, monitor.name)

    def save_all(self) -> None:
        for monitor in self.monitors:
            try:
                save(monitor, checkpoint_path(self.state_dir, monitor.name))
            except OSError as exc:
                log.error("cannot checkpoint the windows of model %s: %s", monitor.name, exc)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.save_all()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="modelmon-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.save_all()
