"""A real headless Chromium driven over the Chrome DevTools Protocol (CDP), for tests
of the HTML reports.

The browser is the Debian package ``chromium``, started on loopback with a fresh
profile, no first-run, sync, component updates or background networking, so the only
requests it makes are the ones a page asks for. The protocol runs over one websocket
(``websocket-client``); :meth:`Browser.send` returns a command's result and keeps every
event received meanwhile in :attr:`Browser.events`. Like the other real binaries
(``realbin``), a missing browser skips the test on a developer machine and fails it
under ``CI=true``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from realbin import Process, require_binary, running

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


def require_chromium() -> str:
    """The Chromium binary (skip, or fail under ``CI=true``, when it is missing)."""
    return require_binary("chromium", "chromium-browser")


def require_websocket() -> Any:
    """The ``websocket`` module of websocket-client (test extra); missing: skip, or
    fail under ``CI=true`` like a missing binary."""
    from realbin import in_ci

    try:
        import websocket
    except ImportError:
        if in_ci():
            pytest.fail("websocket-client is not installed (pip install -e '.[test]')")
        pytest.skip("websocket-client is not installed")
    return websocket


class Browser:
    """One page of a running Chromium, and the CDP events it sent."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.events: list[dict[str, Any]] = []
        self._id = 0

    def send(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        """Run a CDP command and return its result (``RuntimeError`` on a CDP error)."""
        self._id += 1
        self.socket.send(json.dumps({"id": self._id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = json.loads(self.socket.recv())
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            if "method" in message:
                self.events.append(message)
        raise TimeoutError(f"{method}: no answer within {timeout}s")

    def wait_event(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        """The first event ``method`` (already received or next to come)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if event["method"] == method:
                    return event
            self.socket.settimeout(max(deadline - time.monotonic(), 0.01))
            message = json.loads(self.socket.recv())
            if "method" in message:
                self.events.append(message)
        raise TimeoutError(f"no {method} event within {timeout}s")

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str, timeout: float = 30.0) -> None:
        """Navigate to ``url`` and wait for its load event (events so far are kept)."""
        self.events = [e for e in self.events if e["method"] != "Page.loadEventFired"]
        self.send("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired", timeout)

    def screenshot(self, path: Path, **params: Any) -> Path:
        """Save a PNG of the page (``Page.captureScreenshot``)."""
        data = self.send("Page.captureScreenshot", format="png", **params)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries seen so far."""
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e["method"] == "Runtime.exceptionThrown":
                out.append(str(p.get("exceptionDetails")))
            elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(str(p.get("args")))
            elif e["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(str(p["entry"]))
        return out

    def requests(self) -> list[str]:
        """URLs of every request the page made (``Network.requestWillBeSent``)."""
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e["method"] == "Network.requestWillBeSent"
        ]


def _devtools_port(profile: Path, process: Process, timeout: float = 60.0) -> int:
    """The port Chromium chose, from the ``DevToolsActivePort`` file of its profile."""
    deadline = time.monotonic() + timeout
    marker = profile / "DevToolsActivePort"
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError(f"chromium exited early: {process.log()}")
        with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
            return int(marker.read_text().splitlines()[0])
        time.sleep(0.1)
    raise TimeoutError(f"chromium wrote no DevTools port within {timeout}s: {process.log()}")


@contextlib.contextmanager
def chromium(width: int = 1200, height: int = 900) -> Iterator[Browser]:
    """A headless Chromium with one blank page, the Page, Runtime, Log and Network
    domains enabled and the network emulated offline."""
    binary = require_chromium()
    websocket = require_websocket()
    with tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True) as tmp:
        profile = Path(tmp)
        argv = [binary, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"]
        with running([*argv, "about:blank"], stop_timeout=5) as process:
            port = _devtools_port(profile, process)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                targets = json.load(r)
            page = next(t for t in targets if t.get("type") == "page")
            socket = websocket.create_connection(
                page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True
            )
            try:
                browser = Browser(socket)
                for domain in ("Page", "Runtime", "Log", "Network"):
                    browser.send(f"{domain}.enable")
                browser.send(
                    "Network.emulateNetworkConditions",
                    offline=True,
                    latency=0,
                    downloadThroughput=-1,
                    uploadThroughput=-1,
                )
                yield browser
            finally:
                socket.close()
