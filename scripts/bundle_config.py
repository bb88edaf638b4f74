"""Derive local and test variants of the shipped Prometheus and Alertmanager configs.

The bundle ships one ``prometheus/prometheus.yml``, one ``prometheus/rules/`` and one
``alertmanager/alertmanager.yml``, written for the docker-compose stack. A local run
(``scripts/stack.sh``) and the end-to-end test need the same files with other
addresses and faster timings. This module makes those variants from the shipped files
instead of keeping copies that drift apart:

- Prometheus: scrape targets, Alertmanager address and intervals replaced; rule files
  pointed at a (possibly rewritten) rules directory.
- Rules: copied unchanged, except optionally every alert's ``for`` (the end-to-end test
  shortens minutes to seconds; expressions stay identical).
- Alertmanager: routes, grouping and inhibition unchanged; every receiver replaced by a
  webhook to ``<base>/<receiver name>`` (or by nothing), timings optionally shortened,
  template paths made absolute.

Command line (used by scripts/stack.sh)::

    python3 scripts/bundle_config.py --out DIR --exporter 127.0.0.1:9847 \\
        --prometheus 127.0.0.1:9090 --alertmanager 127.0.0.1:9093 [--webhook URL]
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
PROMETHEUS_YML = REPO / "prometheus" / "prometheus.yml"
RULES_DIR = REPO / "prometheus" / "rules"
ALERTMANAGER_YML = REPO / "alertmanager" / "alertmanager.yml"
TEMPLATES_DIR = REPO / "alertmanager" / "templates"

ROUTE_TIMINGS = ("group_wait", "group_interval", "repeat_interval")


def load_yaml(path: Path) -> dict[str, Any]:
    """The YAML mapping in ``path``; ``ValueError`` naming the file when it is not one."""
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a YAML mapping at the top level")
    return data


def dump_yaml(data: Mapping[str, Any], path: Path) -> Path:
    """Write ``data`` to ``path`` as YAML, keys in their given order; return ``path``."""
    path.write_text(yaml.safe_dump(dict(data), sort_keys=False))
    return path


def derive_prometheus(
    source: Mapping[str, Any],
    *,
    targets: Mapping[str, Sequence[str]],
    alertmanagers: Sequence[str],
    rule_files: Sequence[str],
    scrape_interval: str | None = None,
    evaluation_interval: str | None = None,
) -> dict[str, Any]:
    """A copy of the Prometheus config ``source`` with new addresses and intervals.

    ``targets`` maps a job name to its targets; jobs of ``source`` not in it are dropped
    (a local run has no such hosts), and a job in it that ``source`` lacks is an error.
    No ``alertmanagers`` removes the alerting section. A scrape interval below the
    default scrape timeout (10s) also sets the timeout to it, as Prometheus requires.
    """
    config = copy.deepcopy(dict(source))
    config["global"] = dict(config.get("global") or {})
    if scrape_interval is not None:
        config["global"]["scrape_interval"] = scrape_interval
        config["global"]["scrape_timeout"] = scrape_interval
    if evaluation_interval is not None:
        config["global"]["evaluation_interval"] = evaluation_interval
    config["rule_files"] = list(rule_files)
    if alertmanagers:
        config["alerting"] = {
            "alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]
        }
    else:
        config.pop("alerting", None)
    jobs = {job["job_name"]: job for job in config.get("scrape_configs") or []}
    unknown = sorted(set(targets) - set(jobs))
    if unknown:
        raise ValueError(f"scrape_configs: no job named {', '.join(unknown)} in the source config")
    config["scrape_configs"] = [
        {**jobs[name], "static_configs": [{"targets": list(addresses)}]}
        for name, addresses in targets.items()
    ]
    return config


def derive_rules(rules_dir: Path, out_dir: Path, *, for_override: str | None = None) -> list[Path]:
    """Copy every ``*.yml`` rule file of ``rules_dir`` into ``out_dir``; return the copies.

    With ``for_override``, every alerting rule that has a ``for`` gets that duration
    instead; nothing else changes, expressions included.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(rules_dir.glob("*.yml")):
        rules = load_yaml(path)
        if for_override is not None:
            for group in rules.get("groups") or []:
                for rule in group.get("rules") or []:
                    if "alert" in rule and "for" in rule:
                        rule["for"] = for_override
        written.append(dump_yaml(rules, out_dir / path.name))
    return written


@dataclass(frozen=True)
class RouteTimings:
    """Alertmanager's notification timings: wait for a new group, between updates, repeats."""

    group_wait: str
    group_interval: str
    repeat_interval: str


def _retime(route: dict[str, Any], timings: RouteTimings) -> None:
    """Set every timing that ``route`` or a child route sets (the root sets all three)."""
    for key in ROUTE_TIMINGS:
        if key in route:
            route[key] = getattr(timings, key)
    for child in route.get("routes") or []:
        _retime(child, timings)


def derive_alertmanager(
    source: Mapping[str, Any],
    *,
    webhook_base_url: str | None,
    timings: RouteTimings | None = None,
    templates_dir: Path = TEMPLATES_DIR,
) -> dict[str, Any]:
    """A copy of the Alertmanager config ``source`` that notifies only a local webhook.

    Each receiver keeps its name but its integrations are replaced by one webhook to
    ``<webhook_base_url>/<receiver name>`` (so a test sees which receiver got what), or
    by none when ``webhook_base_url`` is None. Routes, grouping and inhibit rules stay as
    shipped; template paths become absolute so the copy works from any directory.
    """
    config = copy.deepcopy(dict(source))
    receivers = []
    for receiver in config.get("receivers") or []:
        derived: dict[str, Any] = {"name": receiver["name"]}
        if webhook_base_url is not None:
            url = f"{webhook_base_url.rstrip('/')}/{receiver['name']}"
            derived["webhook_configs"] = [{"url": url, "send_resolved": True, "max_alerts": 0}]
        receivers.append(derived)
    config["receivers"] = receivers
    config["templates"] = [str(templates_dir / "*.tmpl")]
    if timings is not None:
        _retime(config["route"], timings)
    return config


@dataclass(frozen=True)
class StackFiles:
    """The derived configuration of one local stack."""

    prometheus_yml: Path
    rules_dir: Path
    alertmanager_yml: Path


def write_stack(
    out_dir: Path,
    *,
    exporter: str,
    prometheus: str,
    alertmanager: str,
    webhook_base_url: str | None,
    scrape_interval: str = "5s",
    evaluation_interval: str = "5s",
    for_override: str | None = None,
    timings: RouteTimings | None = None,
) -> StackFiles:
    """Write prometheus.yml, rules/ and alertmanager.yml for a stack on local addresses."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rules_dir = out_dir / "rules"
    derive_rules(RULES_DIR, rules_dir, for_override=for_override)
    prometheus_config = derive_prometheus(
        load_yaml(PROMETHEUS_YML),
        targets={
            "modelmon": [exporter],
            "prometheus": [prometheus],
            "alertmanager": [alertmanager],
        },
        alertmanagers=[alertmanager],
        rule_files=[str(rules_dir / "*.yml")],
        scrape_interval=scrape_interval,
        evaluation_interval=evaluation_interval,
    )
    alertmanager_config = derive_alertmanager(
        load_yaml(ALERTMANAGER_YML), webhook_base_url=webhook_base_url, timings=timings
    )
    return StackFiles(
        prometheus_yml=dump_yaml(prometheus_config, out_dir / "prometheus.yml"),
        rules_dir=rules_dir,
        alertmanager_yml=dump_yaml(alertmanager_config, out_dir / "alertmanager.yml"),
    )


def build_parser() -> argparse.ArgumentParser:
    """The command line of scripts/stack.sh's configuration step."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory to write into")
    parser.add_argument("--exporter", required=True, help="modelmon HOST:PORT")
    parser.add_argument("--prometheus", required=True, help="Prometheus HOST:PORT")
    parser.add_argument("--alertmanager", required=True, help="Alertmanager HOST:PORT")
    parser.add_argument("--webhook", default=None, help="base URL of a webhook for all receivers")
    parser.add_argument("--scrape-interval", default="5s")
    parser.add_argument("--evaluation-interval", default="5s")
    parser.add_argument(
        "--for", dest="for_override", default=None, help="replace every alert's for"
    )
    parser.add_argument(
        "--timings",
        default=None,
        metavar="WAIT,INTERVAL,REPEAT",
        help="Alertmanager group_wait,group_interval,repeat_interval (e.g. 5s,30s,1h)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Write the derived files; print their paths, one per line."""
    args = build_parser().parse_args(argv)
    timings = None
    if args.timings is not None:
        parts = args.timings.split(",")
        if len(parts) != 3:
            print(
                f"--timings: expected WAIT,INTERVAL,REPEAT, got {args.timings!r}", file=sys.stderr
            )
            return 2
        timings = RouteTimings(*parts)
    files = write_stack(
        args.out,
        exporter=args.exporter,
        prometheus=args.prometheus,
        alertmanager=args.alertmanager,
        webhook_base_url=args.webhook,
        scrape_interval=args.scrape_interval,
        evaluation_interval=args.evaluation_interval,
        for_override=args.for_override,
        timings=timings,
    )
    print(files.prometheus_yml, files.rules_dir, files.alertmanager_yml, sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
