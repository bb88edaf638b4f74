"""Helpers for tests that run real binaries: find them, give them ports, start and stop them.

Tests that concern Prometheus, Alertmanager or the Pushgateway run the real programs
(DESIGN.md section 1, principle 6). A missing program skips such a test on a developer
machine, but fails it under ``CI=true``: CI must not pass by skipping what it should test.

Typical use::

    prometheus = require_binary("prometheus")
    port = free_port()
    with running([prometheus, f"--web.listen-address=127.0.0.1:{port}", ...]) as proc:
        wait_http(f"http://127.0.0.1:{port}/-/ready", timeout=20, process=proc)
        ...
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest


def in_ci() -> bool:
    """True when ``CI`` is set to ``true`` (any case), as CI services and ``.ci/run`` do."""
    return os.environ.get("CI", "").strip().lower() == "true"


def require_binary(*names: str) -> str:
    """The path of the first of ``names`` found on PATH (or given as a path).

    Several names cover distributions that rename a program, e.g.
    ``require_binary("alertmanager", "prometheus-alertmanager")``. None found: the calling
    test fails under ``CI=true`` and is skipped otherwise.
    """
    if not names:
        raise ValueError("require_binary: give at least one program name")
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    message = f"none of the programs {', '.join(names)} is on PATH"
    if in_ci():
        pytest.fail(f"{message} (CI=true: a missing real component fails the test)")
    pytest.skip(message)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Process:
    """A started program: its ``Popen`` and the file that collects its output."""

    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        """The process id."""
        return self.popen.pid

    def alive(self) -> bool:
        """True while the process has not exited."""
        return self.popen.poll() is None

    def log(self, tail: int = 4000) -> str:
        """The last ``tail`` characters of its stdout and stderr."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return text[-tail:]


def wait_http(
    url: str,
    timeout: float = 30.0,
    *,
    status: int = 200,
    process: Process | None = None,
    interval: float = 0.1,
) -> None:
    """Wait until GET ``url`` answers ``status``; raise ``TimeoutError`` after ``timeout`` s.

    With ``process``, stop early (``RuntimeError``) when that process exits, and put its
    log tail into the error, so a program that failed to start says why.
    """
    deadline = time.monotonic() + timeout
    last_error = "no attempt"
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise RuntimeError(
                f"{process.popen.args!r} exited with {process.popen.returncode} before "
                f"{url} answered; its output:\n{process.log()}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == status:
                    return
                last_error = f"status {response.status}"
        except urllib.error.HTTPError as error:
            if error.code == status:
                return
            last_error = f"status {error.code}"
        except (urllib.error.URLError, OSError) as error:
            last_error = str(error)
        time.sleep(interval)
    tail = f"\nits output:\n{process.log()}" if process is not None else ""
    raise TimeoutError(f"{url} did not answer {status} within {timeout}s: {last_error}{tail}")


@contextlib.contextmanager
def running(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    log_path: str | os.PathLike[str] | None = None,
    stop_timeout: float = 10.0,
) -> Iterator[Process]:
    """Start ``argv``, yield it as a :class:`Process`, and stop it at exit.

    Output goes to ``log_path`` (a temporary file by default). At exit the process gets
    SIGTERM, then SIGKILL after ``stop_timeout`` seconds, and is always waited for, so no
    zombie or open pipe outlives the test.
    """
    own_log = log_path is None
    if log_path is None:
        handle, name = tempfile.mkstemp(prefix="realbin-", suffix=".log")
        os.close(handle)
        log_path = name
    path = Path(log_path)
    with path.open("wb") as log:
        popen = subprocess.Popen(
            [os.fspath(arg) for arg in argv],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    process = Process(popen, path)
    try:
        yield process
    finally:
        stop(process, timeout=stop_timeout)
        if own_log:
            path.unlink(missing_ok=True)


def stop(process: Process, timeout: float = 10.0) -> int:
    """Stop ``process`` (SIGTERM, then SIGKILL after ``timeout`` s); return its exit code."""
    if process.alive():
        process.popen.send_signal(signal.SIGTERM)
        try:
            return process.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.popen.kill()
    return process.popen.wait()
