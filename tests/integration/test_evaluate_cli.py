"""``modelmon evaluate`` as a user runs it: exit codes, report files, error messages."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from realbin import free_port

pytestmark = pytest.mark.integration


def modelmon(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelmon", "evaluate", *(str(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def holdout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 rows; candidate good is right 90% of the time, candidate poor 70%."""
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 600)
    good = np.where(rng.random(600) < 0.9, y, 1 - y)
    poor = np.where(rng.random(600) < 0.7, y, 1 - y)
    path = tmp_path_factory.mktemp("evaluate") / "holdout.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["y", "good", "poor"])
        writer.writerows(zip(y, good, poor, strict=True))
    return path


def test_a_better_candidate_passes_with_exit_0(holdout: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.md"
    result = modelmon(holdout, "--label", "y", "--candidate", "serving=poor",
                      "--candidate", "new=good", "--require-better", "accuracy",
                      "--format", "markdown", "--output", report)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    text = report.read_text()
    assert text.startswith("### :white_check_mark: modelmon evaluate: PASS")
    assert "| candidate | accuracy | precision | recall | f1 |" in text


def test_a_worse_candidate_fails_with_exit_1(holdout: Path) -> None:
    result = modelmon(holdout, "--label", "y", "--candidate", "serving=good",
                      "--candidate", "new=poor", "--max-regression", "accuracy=0.02",
                      "--format", "json")  # fmt: skip
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] is False
    (gate,) = report["candidates"][1]["gates"]
    assert gate["gate"] == "max-regression accuracy=0.02"
    assert gate["passed"] is False
    assert report["candidates"][1]["differences"]["accuracy"]["test"] == "mcnemar-exact"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--candidate", "a=nope"), "holdout.csv: no column 'nope'"),
        (("--candidate", "a good"), "--candidate: expected NAME=PRED_COL[:SCORE_COL]"),
        (("--candidate", "a=good", "--require-better", "auc"), "'auc' is not a metric"),
        (("--candidate", "a=good", "--resamples", "5"), "--resamples: expected an integer"),
    ],
)
def test_usage_and_input_errors_exit_2(holdout: Path, args: tuple[str, ...], message: str) -> None:
    result = modelmon(holdout, "--label", "y", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_gateway_exits_2_after_the_report(holdout: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = modelmon(holdout, "--label", "y", "--candidate", "a=good", "--push-gateway", url)
    assert result.returncode == 2
    assert result.stdout.startswith("modelmon evaluate: PASS")
    assert f"--push-gateway {url}" in result.stderr
