"""The ``modelmon`` command line (DESIGN.md section 3).

Exit codes: 0 success, 1 a ``check`` gate failed, 2 usage or input error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from modelmon import __version__

log = logging.getLogger("modelmon")

EPILOG = """Examples:
  modelmon demo                                     # synthetic model with live traffic
  modelmon profile train.csv --output model.profile.json --prediction pred --score proba --label y
  modelmon serve --config modelmon.yaml
  modelmon check --profile model.profile.json today.csv --format markdown
  modelmon evaluate holdout.csv --label y --candidate v3=pred3:proba3 --candidate v4=pred4:proba4

Documentation: README.md (configuration and metric reference), docs/.
"""


def _csv_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve",
        help="run the exporter from a YAML config",
        description="Run the exporter: ingest prediction and label records over HTTP (and "
        "from tailed JSONL files) and expose /metrics. The config is validated at start-up.",
    )
    p.add_argument("--config", required=True, metavar="FILE", help="YAML config file")
    p.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="listen address; overrides the config's `listen` (default 0.0.0.0:9847)",
    )


def _add_profile(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "profile",
        help="build a reference profile from training data",
        description="Read CSV or JSON Lines files (Parquet with pyarrow) in one streaming pass "
        "and write the reference profile: frozen quantile bins of numeric columns, category "
        "shares, reference performance and the score calibration map. Every column that is "
        "not the prediction, a score, the label, the id or excluded is a feature.",
    )
    p.add_argument("data", nargs="+", metavar="DATA", help="CSV, .jsonl or .parquet files")
    p.add_argument("--output", "-o", required=True, metavar="FILE", help="profile JSON to write")
    p.add_argument(
        "--task",
        choices=["binary_classification", "multiclass_classification", "regression"],
        help="default: inferred from the data",
    )
    p.add_argument("--prediction", metavar="COL", help="column holding the model's prediction")
    score = p.add_mutually_exclusive_group()
    score.add_argument("--score", metavar="COL", help="positive-class probability (binary)")
    score.add_argument(
        "--scores",
        type=_csv_list,
        default=[],
        metavar="COL,COL...",
        help="per-class probabilities (multiclass); class names are the column "
        "names less their common prefix",
    )
    p.add_argument("--label", metavar="COL", help="ground-truth column")
    p.add_argument("--id", metavar="COL", help="record id column (not profiled)")
    p.add_argument(
        "--positive-class",
        metavar="CLASS",
        help="binary positive class (default: 1/true when present)",
    )
    p.add_argument(
        "--categorical",
        type=_csv_list,
        default=[],
        metavar="COL,...",
        help="treat these columns as categorical even if numeric",
    )
    p.add_argument(
        "--exclude", type=_csv_list, default=[], metavar="COL,...", help="columns to leave out"
    )
    p.add_argument("--bins", type=int, default=10, help="coarse bins B (default 10)")
    p.add_argument("--fine-bins", type=int, default=100, help="fine bins F (default 100)")


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="serve a synthetic model with live, drifting traffic",
        description="Build a synthetic reference, serve it, and send live traffic (predictions "
        "and delayed labels) that drifts after a minute, so the drift gauges visibly move.",
    )
    p.add_argument(
        "--listen",
        default="0.0.0.0:9847",
        metavar="HOST:PORT",
        help="listen address (default 0.0.0.0:9847)",
    )
    p.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this long")
    p.add_argument("--rate", type=float, default=40.0, help="predictions per second (default 40)")
    p.add_argument(
        "--drift-after",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="seconds of stationary traffic before the drift (default 60)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelmon",
        description="ML model monitoring exporter for Prometheus: drift, prediction "
        "distributions, data quality, accuracy from labels and resource gauges.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"modelmon {__version__}")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="default: info",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(sub)
    _add_profile(sub)
    try:  # the check command lands separately; serve/profile/demo work without it
        check = importlib.import_module("modelmon.check")
    except ModuleNotFoundError:  # pragma: no cover
        check = None
    if check is not None:
        check.add_parser(sub)
    from modelmon.evaluation.command import add_parser as add_evaluate

    add_evaluate(sub)
    _add_demo(sub)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from modelmon.app import Exporter, tune_garbage_collector
    from modelmon.config import ConfigError, load_config
    from modelmon.profile import ProfileError

    try:
        config = load_config(args.config)
        exporter = Exporter(config)
        tune_garbage_collector()
        exporter.start(args.listen)
    except (ConfigError, ProfileError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:
        log.error("cannot listen on %s: %s", args.listen or config.listen, exc.strerror)
        return 2

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: shutting down", signal.Signals(signum).name)
        exporter.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    exporter.wait()
    return 0


def _profile(args: argparse.Namespace) -> int:
    from modelmon.profiling.builder import Roles, build_profile
    from modelmon.profiling.readers import DataError

    roles = Roles(
        prediction=args.prediction,
        score=args.score,
        scores=args.scores,
        label=args.label,
        id=args.id,
        categorical=set(args.categorical),
        exclude=set(args.exclude),
    )
    try:
        profile = build_profile(
            args.data,
            roles,
            task=args.task,
            positive_class=args.positive_class,
            coarse_bins=args.bins,
            fine_bins=args.fine_bins,
        )
        profile.save(args.output)
    except (DataError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:
        log.error("%s: %s", exc.filename or args.output, exc.strerror)
        return 2
    features = len(profile.role_columns("feature"))
    print(
        f"modelmon profile: wrote {args.output}: {profile.rows:,} rows, {features} features, "
        f"task {profile.task}, quantiles {profile.quantiles}",
        file=sys.stderr,
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from modelmon.demo import run_demo

    return run_demo(args.listen, args.duration, args.rate, args.drift_after)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handlers = {"serve": _serve, "profile": _profile, "demo": _demo}
    if args.command in ("check", "evaluate"):
        return int(args.run(args))
    return handlers[args.command](args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
