"""tests/integration/realbin.py: missing programs fail under CI, processes never outlive a test."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
import realbin  # tests/integration, scripts: on pytest's pythonpath

REPO = Path(__file__).resolve().parents[2]


MISSING = "modelmon-no-such-program-7f3a"


def test_require_binary_returns_the_first_program_found() -> None:
    assert Path(realbin.require_binary(MISSING, "sh")).name == "sh"


def test_missing_binary_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=MISSING):
        realbin.require_binary(MISSING)


def test_missing_binary_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=MISSING):
        realbin.require_binary(MISSING)


def test_free_port_can_be_bound() -> None:
    port = realbin.free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))


def test_running_serves_then_stops_the_process(tmp_path: Path) -> None:
    port = realbin.free_port()
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    with realbin.running(argv, cwd=tmp_path, log_path=tmp_path / "log") as process:
        realbin.wait_http(f"http://127.0.0.1:{port}/", 20, process=process)
        assert process.alive()
    assert not process.alive()
    with pytest.raises(TimeoutError):
        realbin.wait_http(f"http://127.0.0.1:{port}/", 0.3)


def test_wait_http_reports_a_process_that_exited_with_its_output() -> None:
    argv = [sys.executable, "-c", "print('cannot start: port taken'); raise SystemExit(3)"]
    with realbin.running(argv) as process:
        with pytest.raises(RuntimeError, match="cannot start: port taken"):
            realbin.wait_http(f"http://127.0.0.1:{realbin.free_port()}/", 20, process=process)
        assert process.popen.returncode == 3
