"""The ``modelmon evaluate`` subcommand (docs/evaluate.md).

Exit codes: 0 every candidate passed its gates, 1 a gate failed, 2 usage or input error
(the message names the option, or the file, line and column).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelmon.evaluation.compare import EvaluationResult

FORMATS = ("text", "json", "markdown")
TASKS = ("binary_classification", "multiclass_classification", "regression")


def _confidence(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.5 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a level in [0.5, 1), got {text!r}")
    return value


def _resamples(text: str) -> int:
    if not text.isdigit() or not 100 <= int(text) <= 100_000:
        raise argparse.ArgumentTypeError(f"expected an integer in [100, 100000], got {text!r}")
    return int(text)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``modelmon evaluate`` on the CLI's subcommands."""
    p = sub.add_parser(
        "evaluate",
        help="compare candidate models on one labelled data set",
        description="Evaluate several candidates' predictions (and scores) on one labelled "
        "data set, side by side: each metric with a bootstrap confidence interval, each "
        "candidate's difference to the serving model with a paired test (McNemar's exact "
        "test for accuracy, paired bootstrap otherwise), per-segment results, and gates "
        "as the exit code (0 pass, 1 fail, 2 usage or input error). See docs/evaluate.md.",
    )
    p.add_argument("data", nargs="+", metavar="DATA", help="CSV, .jsonl or .parquet files")
    p.add_argument("--label", required=True, metavar="COL", help="ground-truth column")
    p.add_argument(
        "--candidate",
        action="append",
        required=True,
        metavar="NAME=PRED_COL[:SCORE_COL]",
        help="a candidate: its prediction column and, for binary tasks, its positive-class "
        "score column; repeat for each candidate",
    )
    p.add_argument("--serving", metavar="NAME", help="the baseline (default: first candidate)")
    p.add_argument("--task", choices=TASKS, help="default: inferred from the labels")
    p.add_argument("--positive-class", metavar="CLASS", help="binary: default 1/true if present")
    p.add_argument(
        "--segment", action="append", default=[], metavar="COL", help="per-segment results"
    )
    p.add_argument("--format", choices=FORMATS, default="text", help="report format")
    p.add_argument("--output", "-o", metavar="FILE", help="write the report here, not stdout")
    p.add_argument(
        "--resamples", type=_resamples, default=1000, help="bootstrap resamples (default 1000)"
    )
    p.add_argument(
        "--confidence", type=_confidence, default=0.95, help="interval level (default 0.95)"
    )
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument(
        "--alpha", type=_confidence_alpha, default=0.05, help="test level (default 0.05)"
    )
    p.add_argument(
        "--require-better",
        action="append",
        default=[],
        metavar="METRIC",
        help="fail unless each candidate is significantly better than serving on METRIC",
    )
    p.add_argument(
        "--max-regression",
        action="append",
        default=[],
        metavar="METRIC=DELTA",
        help="fail unless the interval of the difference to serving stays within DELTA",
    )
    p.add_argument("--push-gateway", metavar="URL", help="push results to this Pushgateway")
    p.add_argument("--model", default="model", metavar="NAME", help="model label (default model)")
    p.add_argument("--dataset", metavar="NAME", help="dataset label (default: first file's stem)")
    p.set_defaults(run=run)


def _confidence_alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 < value < 0.5:
        raise argparse.ArgumentTypeError(f"expected a level in (0, 0.5), got {text!r}")
    return value


def evaluate(args: argparse.Namespace) -> EvaluationResult:
    """Read, compare and decide; ValueError (DataError) on usage and input errors."""
    from modelmon.evaluation.compare import Settings, compare
    from modelmon.evaluation.data import load, parse_candidate
    from modelmon.evaluation.gates import Gates, apply, parse_regression
    from modelmon.training.state import check_name

    specs = [parse_candidate(text) for text in args.candidate]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"--candidate: names must differ, got {', '.join(names)}")
    gates = Gates(
        tuple(args.require_better), dict(parse_regression(t) for t in args.max_regression)
    )
    dataset = args.dataset or Path(args.data[0]).name.split(".")[0]
    check_name(args.model, "--model")
    check_name(dataset, "--dataset")
    data = load(
        args.data,
        args.label,
        specs,
        segments=args.segment,
        task=args.task,
        positive=args.positive_class,
    )
    settings = Settings(args.resamples, args.confidence, args.seed, args.alpha)
    result = compare(data, args.serving or names[0], settings, model=args.model, dataset=dataset)
    gates.validate(result.metrics)
    apply(result, gates)
    return result


def _error(message: str) -> int:
    print(f"modelmon evaluate: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """The subcommand: 0 pass, 1 a gate failed, 2 usage or input error."""
    from modelmon.evaluation.render import render

    try:
        result = evaluate(args)
    except ValueError as exc:
        return _error(str(exc))
    except OSError as exc:
        return _error(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc))
    report = render(result, args.format)
    try:
        if args.output:
            Path(args.output).write_text(report, encoding="utf-8")
        else:
            sys.stdout.write(report)
    except OSError as exc:
        return _error(f"{args.output}: {exc.strerror}")
    if args.push_gateway:
        from modelmon.evaluation.push import push

        try:
            push(args.push_gateway, result, time.time())
        except OSError as exc:
            return _error(f"--push-gateway {args.push_gateway}: {exc}")
    return 0 if result.passed else 1
