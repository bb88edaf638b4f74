"""The ``modelmon`` command line (DESIGN.md section 3) as a user runs it: real processes.

Exit codes: 0 success, 2 usage or input error with a message naming the file, the line
or column, or the config key path. ``demo --duration`` serves drifting traffic and
stops by itself; its drift gauges must move.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from modelmon.cli import main

pytestmark = pytest.mark.integration

COMMANDS = ("serve", "profile", "check", "demo")


def modelmon(*args: str, timeout: float = 60, cwd: Path | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "modelmon", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        check=False,
    )


# --- help -----------------------------------------------------------------------------------


def test_top_level_help_lists_every_command() -> None:
    result = modelmon("--help")
    assert result.returncode == 0, result.stderr
    for command in COMMANDS:
        assert command in result.stdout


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("serve", ["--config", "--listen"]),
        (
            "profile",
            [
                "--output",
                "--task",
                "--prediction",
                "--score",
                "--scores",
                "--label",
                "--id",
                "--categorical",
                "--exclude",
            ],
        ),
        ("check", ["--profile", "--format", "--fail-on", "--push-gateway"]),
        ("demo", ["--listen", "--duration"]),
    ],
)
def test_each_command_has_help(
    capsys: pytest.CaptureFixture[str], command: str, options: list[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for option in options:
        assert option in text, f"{command} --help does not mention {option}"


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["frobnicate"])
    assert exited.value.code == 2


# --- profile -------------------------------------------------------------------------------


def test_profile_writes_a_profile(tmp_path: Path) -> None:
    data = tmp_path / "train.csv"
    rows = ["age,country,pred,proba"] + [
        f"{20 + i % 50},{'DE' if i % 3 else 'FR'},{i % 2},{(i % 10) / 10}" for i in range(100)
    ]
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "model.profile.json"
    result = modelmon(
        "profile", str(data), "--output", str(out), "--prediction", "pred", "--score", "proba"
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(out.read_text(encoding="utf-8"))
    assert body["rows"] == 100
    assert body["task"] == "binary_classification"
    names = {(c["role"], c["name"]) for c in body["columns"]}
    assert names == {
        ("feature", "age"),
        ("feature", "country"),
        ("prediction", "prediction"),
        ("score", "score"),
    }


@pytest.mark.parametrize(
    ("content", "args", "expected"),
    [
        ("a,b\n1,2\n3\n", [], [r"bad.csv", "line 3"]),
        (
            "x,pred,proba\n1,0,0.5\n2,1,sure\n",
            ["--prediction", "pred", "--score", "proba"],
            [
                "bad.csv",
                "line 3",
                "proba",
            ],
        ),
        ("x,y\n1,2\n", ["--label", "truth"], ["bad.csv", "truth", "--label"]),
    ],
    ids=["field_count", "non_numeric_score", "missing_role_column"],
)
def test_profile_input_errors_exit_2_naming_file_line_and_column(
    tmp_path: Path, content: str, args: list[str], expected: list[str]
) -> None:
    data = tmp_path / "bad.csv"
    data.write_text(content, encoding="utf-8")
    result = modelmon("profile", str(data), "--output", str(tmp_path / "out.json"), *args)
    assert result.returncode == 2, result.stderr
    for text in expected:
        assert text in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out.json").exists()


def test_profile_invalid_jsonl_line_exits_2(tmp_path: Path) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"x": 1}\n{"x": \n', encoding="utf-8")
    result = modelmon("profile", str(data), "--output", str(tmp_path / "out.json"))
    assert result.returncode == 2
    assert "bad.jsonl" in result.stderr
    assert "line 2" in result.stderr


def test_profile_without_output_is_a_usage_error(tmp_path: Path) -> None:
    result = modelmon("profile", str(tmp_path / "x.csv"))
    assert result.returncode == 2
    assert "--output" in result.stderr


# --- serve ---------------------------------------------------------------------------------


def write_config(directory: Path, reference: Path, **model: Any) -> Path:
    raw = {
        "collectors": {"gpu": False},
        "models": [{"name": "credit-risk", "reference": str(reference), **model}],
    }
    path = directory / "modelmon.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


@pytest.fixture
def reference(make_profile: Any) -> Path:
    rows = [{"x": float(i), "c": "ab"[i % 2], "pred": i % 2} for i in range(50)]
    path: Path = make_profile(rows, "cli", prediction="pred").path
    return path


def test_serve_with_a_bad_config_exits_2_naming_the_key_path(
    tmp_path: Path, reference: Path
) -> None:
    """Every key path of every error is checked in tests/unit/test_config.py; here the
    process's exit code and message."""
    config = write_config(tmp_path, reference, drift={"method": "psi2"})
    result = modelmon("serve", "--config", str(config), "--listen", "127.0.0.1:0", timeout=30)
    assert result.returncode == 2, result.stderr
    assert "models[0].drift.method: 'psi2' is not one of" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_with_a_missing_reference_exits_2_naming_it(tmp_path: Path) -> None:
    config = write_config(tmp_path, tmp_path / "absent.profile.json")
    result = modelmon("serve", "--config", str(config), "--listen", "127.0.0.1:0", timeout=30)
    assert result.returncode == 2
    assert "absent.profile.json" in result.stderr


def test_serve_serves_and_stops_on_sigterm(tmp_path: Path, reference: Path) -> None:
    from realbin import free_port, wait_http

    config = write_config(tmp_path, reference)
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelmon",
            "serve",
            "--config",
            str(config),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", timeout=30)
        response = requests.post(
            f"http://127.0.0.1:{port}/v1/models/credit-risk/predictions",
            json=[{"features": {"x": 3.0, "c": "a"}, "prediction": 1}],
            timeout=10,
        )
        assert response.json()["accepted"] == 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stderr is not None
        process.stderr.close()


# --- demo ----------------------------------------------------------------------------------

DEMO_DURATION = 20.0
DRIFT_AFTER = 5.0


def drift_gauges(url: str) -> dict[tuple[str, str], float]:
    """(metric, column) -> value for the 5m window's Wasserstein and detection gauges."""
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(f"{url}/metrics", timeout=5).text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("window") == "5m" and s.name in (
                "modelmon_drift_wasserstein",
                "modelmon_drift_detected",
            ):
                out[(s.name, s.labels["column"])] = float(s.value)
    return out


def test_demo_runs_for_its_duration_and_its_drift_gauges_move(tmp_path: Path) -> None:
    from realbin import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "demo.log"
    started = time.monotonic()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modelmon",
                "demo",
                "--listen",
                f"127.0.0.1:{port}",
                "--duration",
                str(DEMO_DURATION),
                "--drift-after",
                str(DRIFT_AFTER),
                "--rate",
                "200",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        before = poll(url, lambda g: ("modelmon_drift_wasserstein", "income") in g, 15, process)
        assert "drift starts" not in log.read_text(), "read too late: the drift had begun"
        assert before[("modelmon_drift_detected", "income")] == 0
        assert before[("modelmon_drift_detected", "age")] == 0

        def drifted(g: dict[tuple[str, str], float]) -> bool:
            detected = max(
                g.get(("modelmon_drift_detected", "income"), 0),
                g.get(("modelmon_drift_detected", "age"), 0),
            )
            income = g.get(("modelmon_drift_wasserstein", "income"), 0.0)
            # a rise well beyond the noise of a few hundred stationary records
            return (
                detected == 1 and income > before[("modelmon_drift_wasserstein", "income")] + 0.05
            )

        poll(url, drifted, DEMO_DURATION, process)
        assert process.wait(timeout=DEMO_DURATION + 15) == 0  # stops by itself
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    elapsed = time.monotonic() - started
    assert DEMO_DURATION <= elapsed < DEMO_DURATION + 15
    assert "stopped after sending" in log.read_text()


def poll(url: str, ready: Any, timeout: float, process: subprocess.Popen[bytes]) -> Any:
    deadline = time.monotonic() + timeout
    last: dict[tuple[str, str], float] = {}
    while time.monotonic() < deadline:
        assert process.poll() is None, f"demo exited early with {process.returncode}"
        try:
            last = drift_gauges(url)
        except requests.RequestException:
            last = {}
        if ready(last):
            return last
        time.sleep(0.25)
    raise AssertionError(f"not reached within {timeout}s; last gauges: {last}")
