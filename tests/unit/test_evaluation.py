"""``modelmon evaluate``'s numbers against independent oracles.

Point metrics against scikit-learn; intervals against a bootstrap written here (NumPy
resamples drawn by the documented protocol, each metric computed by scikit-learn on
each resample); McNemar's p-value against scipy's exact binomial test on a table counted
here; the paired bootstrap p-value against its formula.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn import metrics as skm

from modelmon.evaluation.bootstrap import paired_pvalue
from modelmon.evaluation.command import add_parser, evaluate
from modelmon.evaluation.compare import EvaluationResult
from modelmon.evaluation.mcnemar import mcnemar_exact_pvalue
from modelmon.evaluation.render import render, to_json

N, B, SEED = 400, 200, 11


def binary_rows(n: int = N, seed: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    # Candidate scores: informative, rounded to 2 digits so that ties occur.
    sa = np.clip(np.round(0.5 * y + rng.normal(0.25, 0.25, n), 2), 0.01, 0.99)
    sb = np.clip(np.round(0.3 * y + rng.normal(0.35, 0.25, n), 2), 0.01, 0.99)
    seg = rng.choice([f"s{i}" for i in range(13)], n)
    return {
        "y": y,
        "sa": sa,
        "pa": (sa >= 0.5).astype(int),
        "sb": sb,
        "pb": (sb >= 0.5).astype(int),
        "seg": seg,
    }


def write(path: Path, columns: dict[str, np.ndarray]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(list(columns))
        for row in zip(*columns.values(), strict=True):
            writer.writerow([repr(float(v)) if isinstance(v, float) else v for v in row])
    return path


def arguments(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["evaluate", *argv])


def run_evaluate(path: Path, *extra: str) -> EvaluationResult:
    args = arguments(
        str(path), "--label", "y", "--candidate", "b=pb:sb", "--candidate", "a=pa:sa",
        "--resamples", str(B), "--seed", str(SEED), *extra,
    )  # fmt: skip
    return evaluate(args)


SKLEARN: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], float]] = {
    "accuracy": lambda y, p, s: skm.accuracy_score(y, p),
    "precision": lambda y, p, s: skm.precision_score(y, p, zero_division=0),
    "recall": lambda y, p, s: skm.recall_score(y, p, zero_division=0),
    "f1": lambda y, p, s: skm.f1_score(y, p, zero_division=0),
    "roc_auc": lambda y, p, s: skm.roc_auc_score(y, s),
    "log_loss": lambda y, p, s: skm.log_loss(y, s, labels=[0, 1]),
    "brier_score": lambda y, p, s: skm.brier_score_loss(y, s),
}


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, np.ndarray], Any]:
    rows = binary_rows()
    path = write(tmp_path_factory.mktemp("eval") / "holdout.csv", rows)
    return rows, run_evaluate(path, "--segment", "seg")


def oracle_resamples() -> list[np.ndarray]:
    rng = np.random.default_rng(SEED)
    return [rng.integers(0, N, size=N) for _ in range(B)]


def test_point_metrics_equal_scikit_learn(binary: tuple[dict[str, np.ndarray], Any]) -> None:
    rows, result = binary
    assert result.metrics == tuple(SKLEARN)
    for candidate in result.candidates:
        p, s = rows[f"p{candidate.name}"], rows[f"s{candidate.name}"]
        for metric, oracle in SKLEARN.items():
            expected = oracle(rows["y"], p, s)
            assert candidate.metrics[metric].value == pytest.approx(expected, rel=1e-12), metric


def test_intervals_equal_a_numpy_bootstrap_with_the_same_seed(
    binary: tuple[dict[str, np.ndarray], Any],
) -> None:
    rows, result = binary
    y = rows["y"]
    resamples = oracle_resamples()
    for candidate in result.candidates:
        p, s = rows[f"p{candidate.name}"], rows[f"s{candidate.name}"]
        for metric, oracle in SKLEARN.items():
            values = [
                oracle(y[i], p[i], s[i])
                for i in resamples
                if metric != "roc_auc" or len(set(y[i])) == 2
            ]
            low, high = np.percentile(values, [2.5, 97.5])
            e = candidate.metrics[metric]
            assert (e.lower, e.upper) == pytest.approx((low, high), rel=1e-9), metric


def test_differences_and_bootstrap_pvalues(binary: tuple[dict[str, np.ndarray], Any]) -> None:
    rows, result = binary
    y = rows["y"]
    (challenger,) = [c for c in result.candidates if c.name == "a"]
    assert result.serving == "b"
    for metric, oracle in SKLEARN.items():
        diffs = np.array(
            [
                oracle(y[i], rows["pa"][i], rows["sa"][i])
                - oracle(y[i], rows["pb"][i], rows["sb"][i])
                for i in oracle_resamples()
            ]
        )
        d = challenger.differences[metric]
        point = oracle(y, rows["pa"], rows["sa"]) - oracle(y, rows["pb"], rows["sb"])
        assert d.difference == pytest.approx(point, rel=1e-9, abs=1e-12)
        assert (d.lower, d.upper) == pytest.approx(tuple(np.percentile(diffs, [2.5, 97.5])))
        if metric == "accuracy":
            continue
        le, ge = np.sum(diffs <= 0), np.sum(diffs >= 0)
        expected = min(1.0, 2 * min((1 + le) / (B + 1), (1 + ge) / (B + 1)))
        assert d.pvalue == pytest.approx(expected, rel=1e-12), metric
        assert d.test == "paired-bootstrap"


def test_mcnemar_pvalue_equals_scipy_exact_binomial(
    binary: tuple[dict[str, np.ndarray], Any],
) -> None:
    rows, result = binary
    right_a, right_b = rows["pa"] == rows["y"], rows["pb"] == rows["y"]
    table = np.zeros((2, 2), dtype=int)
    for ra, rb in zip(right_a, right_b, strict=True):
        table[int(ra), int(rb)] += 1
    b, c = int(table[1, 0]), int(table[0, 1])
    assert b + c > 10
    expected = binomtest(b, b + c, 0.5, alternative="two-sided").pvalue
    (challenger,) = [x for x in result.candidates if x.name == "a"]
    d = challenger.differences["accuracy"]
    assert d.test == "mcnemar-exact"
    assert d.pvalue == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("b", "c"), [(0, 0), (0, 7), (3, 3), (12, 30), (100, 71), (1, 0)])
def test_mcnemar_on_tables(b: int, c: int) -> None:
    expected = 1.0 if b + c == 0 else binomtest(b, b + c, 0.5).pvalue
    assert mcnemar_exact_pvalue(b, c) == pytest.approx(expected, rel=1e-12)


def test_paired_pvalue_of_identical_candidates_is_one() -> None:
    assert paired_pvalue(np.zeros(500)) == 1.0


def test_confusion_and_segments(binary: tuple[dict[str, np.ndarray], Any]) -> None:
    rows, result = binary
    for candidate in result.candidates:
        p = rows[f"p{candidate.name}"]
        assert candidate.confusion == skm.confusion_matrix(rows["y"], p).tolist()
        segments = candidate.segments["seg"]
        values, counts = np.unique(rows["seg"], return_counts=True)
        order = sorted(zip(values, counts, strict=True), key=lambda vc: (-vc[1], vc[0]))
        top = {str(v) for v, _ in order[:10]}
        assert set(segments) == top | {"__other__"}
        for value in top:
            mask = rows["seg"] == value
            assert segments[value]["rows"] == mask.sum()
            expected = skm.accuracy_score(rows["y"][mask], p[mask])
            assert segments[value]["accuracy"] == pytest.approx(expected, rel=1e-12)
        assert segments["__other__"]["rows"] == sum(c for v, c in order[10:])


def test_multiclass_and_regression_against_scikit_learn(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    y = rng.integers(0, 4, 300)
    p1 = np.where(rng.random(300) < 0.6, y, rng.integers(0, 4, 300))
    p2 = np.where(rng.random(300) < 0.5, y, rng.integers(0, 4, 300))
    path = write(tmp_path / "mc.csv", {"y": y, "pb": p2, "pa": p1})
    args = arguments(str(path), "--label", "y", "--candidate", "b=pb", "--candidate", "a=pa",
                     "--resamples", "100")  # fmt: skip
    result = evaluate(args)
    assert result.task == "multiclass_classification"
    a = result.candidates[1]
    assert a.metrics["macro_f1"].value == pytest.approx(skm.f1_score(y, p1, average="macro"))
    rng2 = np.random.default_rng(0)
    values = [skm.f1_score(y[i], p1[i], average="macro") for i in
              (rng2.integers(0, 300, size=300) for _ in range(100))]  # fmt: skip
    low, high = np.percentile(values, [2.5, 97.5])
    assert (a.metrics["macro_f1"].lower, a.metrics["macro_f1"].upper) == pytest.approx((low, high))
    t = rng.normal(10, 3, 200)
    path = write(tmp_path / "reg.csv", {"y": t, "pb": t + rng.normal(0, 2, 200),
                                         "pa": t + rng.normal(0, 1, 200)})  # fmt: skip
    args = arguments(str(path), "--label", "y", "--candidate", "b=pb", "--candidate", "a=pa",
                     "--resamples", "100", "--task", "regression")  # fmt: skip
    result = evaluate(args)
    reader = np.genfromtxt(path, delimiter=",", names=True)
    for c in result.candidates:
        pred = reader[f"p{c.name}"]
        assert c.metrics["mae"].value == pytest.approx(skm.mean_absolute_error(reader["y"], pred))
        rmse = np.sqrt(skm.mean_squared_error(reader["y"], pred))
        assert c.metrics["rmse"].value == pytest.approx(rmse)
    assert result.candidates[1].differences["mae"].difference < 0


def test_gates(binary: tuple[dict[str, np.ndarray], Any], tmp_path: Path) -> None:
    path = write(tmp_path / "h.csv", binary_rows())
    better = run_evaluate(path, "--require-better", "roc_auc")
    (a,) = [c for c in better.candidates if c.name == "a"]
    d = a.differences["roc_auc"]
    assert better.passed == (d.difference > 0 and d.pvalue < 0.05)
    worse = run_evaluate(path, "--serving", "a", "--require-better", "roc_auc")
    assert not worse.passed  # b is the worse model: never significantly better
    tolerant = run_evaluate(path, "--serving", "a", "--max-regression", "roc_auc=1")
    assert tolerant.passed
    strict = run_evaluate(path, "--serving", "a", "--max-regression", "roc_auc=0")
    (b,) = [c for c in strict.candidates if c.name == "b"]
    assert strict.passed == (b.differences["roc_auc"].lower >= 0)
    assert not strict.passed


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--require-better", "auc"), "--require-better: 'auc' is not a metric"),
        (("--max-regression", "accuracy"), "--max-regression: expected METRIC=DELTA"),
        (("--serving", "c"), "--serving: 'c' is not one of b, a"),
        (("--positive-class", "7"), "--positive-class: '7' is not one of 0, 1"),
    ],
)
def test_usage_errors_name_the_option(tmp_path: Path, extra: tuple[str, ...], message: str) -> None:
    path = write(tmp_path / "h.csv", binary_rows(50))
    with pytest.raises(ValueError, match=message):
        run_evaluate(path, *extra)


def test_input_errors_name_file_line_and_column(tmp_path: Path) -> None:
    rows = binary_rows(50)
    path = write(tmp_path / "h.csv", rows)
    args = arguments(str(path), "--label", "y", "--candidate", "a=pa:nope")
    with pytest.raises(ValueError, match=r"h\.csv: no column 'nope'"):
        evaluate(args)
    rows["sa"] = rows["sa"].copy()
    rows["sa"][4] = 1.5
    bad = write(tmp_path / "bad.csv", rows)
    args = arguments(str(bad), "--label", "y", "--candidate", "a=pa:sa")
    with pytest.raises(ValueError, match=r"bad\.csv: line 6: column 'sa': expected a number in"):
        evaluate(args)


def test_reports(binary: tuple[dict[str, np.ndarray], Any]) -> None:
    _, result = binary
    document = json.loads(render(result, "json"))
    assert document == json.loads(json.dumps(to_json(result)))
    assert document["candidates"][1]["differences"]["accuracy"]["test"] == "mcnemar-exact"
    assert document["bootstrap"] == {"method": "percentile", "resamples": B, "seed": SEED,
                                     "confidence": 0.95}  # fmt: skip
    markdown = render(result, "markdown")
    assert "| candidate | accuracy | precision |" in markdown
    assert "| a | " in markdown
    assert "|   vs b | " in markdown
    assert render(result, "text").startswith("modelmon evaluate: PASS")
