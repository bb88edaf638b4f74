"""``modelmon check`` as CI runs it: ``python -m modelmon check`` in a subprocess.

Exit codes (DESIGN.md section 3): 0 every gate passed, 1 a gate failed, 2 usage or input
error with a message naming the file and line. The model is scikit-learn's
LogisticRegression on the breast cancer data; the reference is its training half.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

pytestmark = pytest.mark.integration


def modelmon(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelmon", *(str(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """train.csv profiled with the real CLI, test.csv (held out), shifted.csv."""
    directory = tmp_path_factory.mktemp("check-cli")
    data = load_breast_cancer()
    x_tr, x_te, y_tr, y_te = train_test_split(
        data.data, data.target, test_size=0.5, random_state=0, stratify=data.target
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x_tr, y_tr)
    header = [*(n.replace(" ", "_") for n in data.feature_names), "pred", "proba", "y"]

    def rows(x: np.ndarray, y: np.ndarray) -> list[list[str]]:
        proba = model.predict_proba(x)[:, 1]
        return [
            [*(repr(float(v)) for v in r), str(p), repr(float(s)), str(t)]
            for r, p, s, t in zip(x, model.predict(x), proba, y, strict=True)
        ]

    shifted = x_te.copy()
    shifted[:, :20] *= 1.5
    out = {
        "train": write_csv(directory / "train.csv", header, rows(x_tr, y_tr)),
        "test": write_csv(directory / "test.csv", header, rows(x_te, y_te)),
        "shifted": write_csv(directory / "shifted.csv", header, rows(shifted, y_te)),
        "profile": directory / "cancer.profile.json",
        "accuracy": float(accuracy_score(y_te, model.predict(x_te))),
        "dir": directory,
    }
    made = modelmon(
        "profile", out["train"], "-o", out["profile"], "--prediction", "pred", "--score", "proba",
        "--label", "y",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return out


def test_held_out_data_exits_0(files: dict[str, Any]) -> None:
    result = modelmon("check", "--profile", files["profile"], files["test"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith("modelmon check: PASS")


def test_shifted_data_exits_1(files: dict[str, Any]) -> None:
    result = modelmon("check", "--profile", files["profile"], files["shifted"])
    assert result.returncode == 1, result.stderr
    assert result.stdout.rstrip().endswith("modelmon check: FAIL")
    assert "DATASET DRIFT" in result.stdout


def test_json_report_on_stdout(files: dict[str, Any]) -> None:
    result = modelmon("check", "--profile", files["profile"], files["test"], "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["schema_version"] == 1
    assert report["exit_code"] == 0
    assert report["performance"]["metrics"]["accuracy"] == pytest.approx(
        files["accuracy"], abs=1e-12
    )


def test_markdown_report_to_a_file(files: dict[str, Any]) -> None:
    target = files["dir"] / "comment.md"
    result = modelmon(
        "check", "--profile", files["profile"], files["shifted"], "--format", "markdown",
        "--output", target,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stdout == ""
    text = target.read_text(encoding="utf-8")
    assert text.startswith("**FAIL**")
    assert "### Drifted columns" in text


@pytest.mark.parametrize(
    ("limit", "code"),
    [(-1e-6, 0), (1e-6, 1)],
    ids=["just-below-accuracy", "just-above-accuracy"],
)
def test_min_accuracy_gate_exit_codes(files: dict[str, Any], limit: float, code: int) -> None:
    result = modelmon(
        "check", "--profile", files["profile"], files["test"], "--min-accuracy",
        repr(files["accuracy"] + limit),
    )  # fmt: skip
    assert result.returncode == code, result.stderr


def test_input_error_exits_2_naming_file_and_line(files: dict[str, Any]) -> None:
    lines = files["test"].read_text(encoding="utf-8").splitlines()
    lines[9] = lines[9] + ",surplus"
    bad = files["dir"] / "bad.csv"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = modelmon("check", "--profile", files["profile"], bad)
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"{bad}: line 10" in result.stderr


def test_usage_errors_exit_2(files: dict[str, Any]) -> None:
    no_data = modelmon("check", "--profile", files["profile"])
    assert no_data.returncode == 2
    assert "DATA" in no_data.stderr
    bad_format = modelmon("check", "--profile", files["profile"], files["test"], "--format", "x")
    assert bad_format.returncode == 2
    bad_share = modelmon("check", "--profile", files["profile"], files["test"], "--share", "2")
    assert bad_share.returncode == 2
    assert "expected a share between 0 and 1" in bad_share.stderr
    no_profile = modelmon("check", "--profile", files["dir"] / "nope.json", files["test"])
    assert no_profile.returncode == 2
    assert "nope.json" in no_profile.stderr
