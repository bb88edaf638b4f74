"""A real ``redis-server`` for tests, on a free loopback port (see :mod:`realbin`).

The server keeps an append-only file fsynced at every write (``appendfsync always``) in
the test's directory, so a test can kill it with SIGKILL and start it again on the same
port with every acknowledged write still there. A missing ``redis-server`` skips the
test, or fails it under ``CI=true`` (Debian package ``redis-server``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from realbin import free_port, in_ci, require_binary


def require_redis_client() -> None:
    """The ``redis`` package (the ``redis`` extra): skips without it, fails under CI."""
    try:
        import redis  # noqa: F401
    except ImportError:
        if in_ci():
            pytest.fail("the redis package is missing (CI=true: pip install -e '.[test]')")
        pytest.skip("the redis package is not installed")


class RedisServer:
    """One ``redis-server`` process that can be killed and started again."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.binary = require_binary("redis-server")
        require_redis_client()
        self.directory = directory
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        log = (self.directory / "redis.log").open("ab")
        argv = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ]
        with log:
            self.popen = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        import redis

        client = redis.Redis(port=self.port, socket_timeout=1.0)
        deadline = time.monotonic() + timeout
        try:
            while True:
                assert self.popen is not None
                if self.popen.poll() is not None:
                    raise RuntimeError(f"redis-server exited: {self.log()}")
                try:
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"redis-server not ready in {timeout} s: {self.log()}")
                time.sleep(0.05)
        finally:
            client.close()

    def log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def kill(self) -> None:
        """SIGKILL, as a crash: no shutdown save (the append-only file has every write)."""
        if self.popen is not None and self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def client(self) -> object:
        import redis

        return redis.Redis(port=self.port, socket_timeout=2.0)


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[RedisServer]:
    """A started server, stopped at exit."""
    server = RedisServer(directory)
    try:
        server.start()
        yield server
    finally:
        server.stop()
