"""``modelmon check``: check data files against a reference profile, for CI/CD and
pre-launch validation (DESIGN.md section 3, docs/check.md).

The files are streamed chunk by chunk through the exporter's own binning and
performance encoders; the summed vectors are read by the exporter's drift code. Exit
codes: 0 every gate passed, 1 a gate failed, 2 usage or input error (the message names
the file, line and column).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from modelmon.checking import FAIL_ON, METHODS

if TYPE_CHECKING:
    from modelmon.checking.accumulate import BatchAccumulator
    from modelmon.checking.mapping import ColumnMap
    from modelmon.checking.result import CheckResult
    from modelmon.profile import Profile

FORMATS = ("text", "json", "markdown", "html")
#: File extension per format, for ``--output BASE`` with several formats.
EXTENSIONS = {"text": ".txt", "json": ".json", "markdown": ".md", "html": ".html"}
#: Values (rows x columns) per chunk read. A chunk's values are small string objects
#: spread over memory; while a chunk fits in the CPU caches, parsing and encoding it
#: runs 2-3x faster than with 100,000-row chunks (benchmarks/results/check.md).
CELLS_PER_CHUNK = 20_000
MIN_CHUNK_ROWS, MAX_CHUNK_ROWS = 256, 100_000
DEFAULT_VERSION = "candidate"


def _csv_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _formats(text: str) -> list[str]:
    formats = _csv_list(text)
    for name in formats:
        if name not in FORMATS:
            raise argparse.ArgumentTypeError(f"{name!r} is not one of {', '.join(FORMATS)}")
    if not formats or len(set(formats)) != len(formats):
        raise argparse.ArgumentTypeError("expected one or more distinct formats, e.g. text,html")
    return formats


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _share(text: str) -> float:
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, got {text}")
    return value


def _level(text: str) -> float:
    value = _number(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a level between 0 and 1, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = _number(text)
    if not value >= 0.0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``modelmon check`` on the CLI's subcommands."""
    p = sub.add_parser(
        "check",
        help="check data files against a reference profile (CI gates)",
        description="Stream DATA files through the exporter's statistics against a reference "
        "profile: drift per column, dataset drift, data quality and, with labels, "
        "performance against the reference baselines. Exit 0 when every gate passes, "
        "1 when one fails, 2 on a usage or input error. See docs/check.md.",
    )
    p.add_argument("data", nargs="+", metavar="DATA", help="CSV, .jsonl or .parquet files")
    p.add_argument("--profile", required=True, metavar="FILE", help="reference profile JSON")
    p.add_argument(
        "--format",
        type=_formats,
        default=["text"],
        metavar="FORMAT[,FORMAT]",
        help=f"report formats: {', '.join(FORMATS)} (default text); several comma-separated",
    )
    p.add_argument(
        "--output",
        "-o",
        metavar="FILE[,FILE]",
        help="write the reports here, not stdout: one file per format (- for stdout: "
        "--output=-,report.html), or with several formats one base name that gets each "
        "format's extension",
    )
    p.add_argument(
        "--fail-on",
        type=_csv_list,
        default=["dataset-drift"],
        metavar="WHAT[,WHAT]",
        help=f"drift that fails the check: {', '.join(FAIL_ON)} (default dataset-drift)",
    )
    _add_drift_options(p)
    _add_role_options(p)
    _add_performance_gates(p)
    p.add_argument("--push-gateway", metavar="URL", help="push results to this Pushgateway")
    p.add_argument("--model", metavar="NAME", help="model label (default: profile file stem)")
    p.add_argument(
        "--version",
        dest="model_version",
        default=DEFAULT_VERSION,
        metavar="V",
        help=f"version label (default {DEFAULT_VERSION})",
    )
    p.add_argument("--chunk-rows", type=int, help=argparse.SUPPRESS)  # default: chunk_rows()
    p.set_defaults(run=run)


def _add_drift_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", choices=METHODS, default="auto", help="drift method (default auto)")
    p.add_argument(
        "--threshold", type=_number, metavar="X", help="drift threshold (default: the method's)"
    )
    p.add_argument(
        "--share",
        type=_share,
        default=0.5,
        metavar="X",
        help="dataset drift when at least this share of features drifted (default 0.5)",
    )
    p.add_argument(
        "--alpha",
        type=_level,
        default=0.01,
        metavar="P",
        help="false-alarm level over all columns together (Holm-corrected; default 0.01): "
        "a column drifts when its statistic is above both its threshold and its noise "
        "floor at this many rows (see docs/drift.md)",
    )


def _add_role_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prediction", metavar="COL", help="prediction column, if renamed")
    p.add_argument("--label", metavar="COL", help="label column, if renamed")
    score = p.add_mutually_exclusive_group()
    score.add_argument("--score", metavar="COL", help="binary score column, if renamed")
    score.add_argument(
        "--scores",
        type=_csv_list,
        default=[],
        metavar="COL,... | CLASS=COL,...",
        help="multiclass score columns, if renamed",
    )


def _add_performance_gates(p: argparse.ArgumentParser) -> None:
    gates = (
        ("--min-accuracy", "fail when accuracy < X"),
        ("--min-roc-auc", "fail when ROC AUC < X (binary)"),
        ("--max-mae", "fail when MAE > X (regression)"),
        ("--max-rmse", "fail when RMSE > X (regression)"),
        ("--max-accuracy-drop", "fail when reference accuracy - accuracy > X"),
    )
    for option, text in gates:
        p.add_argument(option, type=_non_negative, metavar="X", help=text)


def model_name(profile_path: str) -> str:
    """The default ``model`` label: the profile's file name less ``.json`` and ``.profile``.

    >>> model_name("profiles/credit-risk.profile.json"), model_name("fraud.json")
    ('credit-risk', 'fraud')
    """
    name = Path(profile_path).name
    for suffix in (".json", ".profile"):
        name = name.removesuffix(suffix)
    return name or "model"


def chunk_rows(columns: int) -> int:
    """Rows per chunk for data with about ``columns`` columns (see CELLS_PER_CHUNK).

    >>> chunk_rows(23), chunk_rows(1), chunk_rows(1000)
    (869, 20000, 256)
    """
    rows = CELLS_PER_CHUNK // max(columns, 1)
    return min(max(rows, MIN_CHUNK_ROWS), MAX_CHUNK_ROWS)


def _accumulate(
    profile: Profile, columns: ColumnMap, paths: Sequence[str], chunk_rows: int
) -> BatchAccumulator:
    from modelmon.checking.accumulate import BatchAccumulator
    from modelmon.profiling.readers import DataError, iter_chunks

    acc = BatchAccumulator(profile, columns)
    for path in paths:
        for chunk in iter_chunks(path, chunk_rows):
            acc.add(chunk)
    if acc.rows == 0:
        raise DataError(f"{', '.join(paths)}: no data rows")
    return acc


def check(args: argparse.Namespace) -> CheckResult:
    """Run the check and decide the gates; raises ``ValueError`` (``DataError``,
    ``ProfileError``, ``GateError``) on usage and input errors."""
    from modelmon.checking.gates import Gates, evaluate
    from modelmon.checking.mapping import ColumnMap, RoleColumns
    from modelmon.checking.result import DriftSettings, build_result
    from modelmon.config import DriftConfig, ModelConfig
    from modelmon.model import resolve_rules
    from modelmon.profile import load_profile
    from modelmon.stats.report import Verdicts

    gates = Gates(
        fail_on=tuple(args.fail_on) or ("none",),
        min_accuracy=args.min_accuracy,
        min_roc_auc=args.min_roc_auc,
        max_mae=args.max_mae,
        max_rmse=args.max_rmse,
        max_accuracy_drop=args.max_accuracy_drop,
    )
    if args.threshold is not None and args.method == "auto":
        raise ValueError(
            "--threshold: give --method too; `auto` picks p-values for some columns and "
            "distances for others, so one threshold cannot fit both"
        )
    profile = load_profile(args.profile)
    gates.validate(profile.task)
    settings = DriftSettings(
        method=args.method, threshold=args.threshold, share=args.share, alpha=args.alpha
    )
    config = ModelConfig(
        name=args.model or model_name(args.profile),
        reference=Path(args.profile),
        drift=DriftConfig(settings.method, settings.threshold, settings.share, {}, settings.alpha),
    )
    roles = RoleColumns(args.prediction, args.label, args.score, tuple(args.scores))
    columns = ColumnMap(profile, roles)
    rows = args.chunk_rows or chunk_rows(len(profile.columns))
    acc = _accumulate(profile, columns, args.data, rows)
    rules, methods = resolve_rules(config, profile, acc.layout)
    verdicts = Verdicts(acc.layout, rules, methods, settings.alpha)
    result = build_result(
        acc,
        verdicts,
        settings,
        profile_path=args.profile,
        model=config.name,
        version=args.model_version,
        files=list(args.data),
    )
    result.gates = evaluate(gates, result)
    return result


def render(result: CheckResult, fmt: str) -> str:
    """The report in one of :data:`FORMATS`."""
    from modelmon.checking.render import render_markdown, render_text
    from modelmon.checking.result import to_json

    if fmt == "json":
        return json.dumps(to_json(result), indent=2, allow_nan=False) + "\n"
    if fmt == "markdown":
        return render_markdown(result)
    if fmt == "html":
        from modelmon.checking.html_report import render_html

        return render_html(result)
    return render_text(result)


def output_paths(formats: Sequence[str], output: str | None) -> list[str | None]:
    """Where each format's report goes (None: stdout); ``ValueError`` names the option.

    One file per format, in order (``-`` for stdout, at most once), or with several
    formats one base name whose extension (if one of :data:`EXTENSIONS`) is replaced by
    each format's:

    >>> output_paths(["text"], None), output_paths(["text", "html"], "-,report.html")
    ([None], [None, 'report.html'])
    >>> output_paths(["markdown", "html"], "out/check.html")
    ['out/check.md', 'out/check.html']
    """
    items = _csv_list(output) if output else []
    if not items:
        if len(formats) > 1:
            raise ValueError(
                f"--output: --format {','.join(formats)} writes several reports; give one "
                "file per format (- for stdout) or a base name"
            )
        return [None]
    if len(items) == 1 and len(formats) > 1:
        base = items[0]
        stem, ext = os.path.splitext(base)
        stem = stem if ext in EXTENSIONS.values() else base
        return [stem + EXTENSIONS[f] for f in formats]
    if len(items) != len(formats):
        raise ValueError(
            f"--output: {len(items)} files for {len(formats)} formats ({','.join(formats)})"
        )
    if items.count("-") > 1:
        raise ValueError("--output: stdout (-) can take only one report")
    return [None if item == "-" else item for item in items]


def _error(message: str) -> int:
    print(f"modelmon check: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """The ``check`` subcommand: 0 pass, 1 a gate failed, 2 usage or input error."""
    try:
        paths = output_paths(args.format, args.output)
        result = check(args)
    except ValueError as exc:  # DataError, ProfileError, GateError and the like
        return _error(str(exc))
    except OSError as exc:
        if exc.filename is None or exc.strerror is None:
            return _error(str(exc))
        return _error(f"{exc.filename}: {exc.strerror}")
    for fmt, path in zip(args.format, paths, strict=True):
        report = render(result, fmt)
        try:
            if path is None:
                sys.stdout.write(report)
            else:
                Path(path).write_text(report, encoding="utf-8")
        except OSError as exc:
            return _error(f"{path}: {exc.strerror}")
    if args.push_gateway:
        from modelmon.checking.push import push

        try:
            push(args.push_gateway, result, time.time())
        except OSError as exc:
            return _error(f"--push-gateway {args.push_gateway}: {exc}")
    return 0 if result.passed else 1
