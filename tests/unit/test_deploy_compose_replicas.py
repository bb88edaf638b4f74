"""docker-compose.replicas.yml: three replicas sharing the label join in Redis, checked
without a Docker daemon (``docker-compose config``, as test_deploy_compose.py does).

The pieces must agree: each replica's configuration loads and points its label store at
the ``redis`` service with the password from an environment variable the replica has;
the proxy spreads requests over the three replicas; Prometheus scrapes each replica
(not the proxy) under the job the alert rules select.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelmon.config import config_from_dict

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.replicas.yml"
REPLICAS = ["modelmon-1", "modelmon-2", "modelmon-3"]


def require(available: bool, what: str) -> None:
    """Skip when ``what`` is missing on a workstation; fail in CI (CI=true)."""
    if not available:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{what} is missing and CI=true")
        pytest.skip(f"{what} is missing")


def compose_config(**env: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    require(binary is not None, "docker-compose (Debian package docker-compose)")
    assert binary is not None
    environ = {k: v for k, v in os.environ.items() if k != "REDIS_PASSWORD"}
    return subprocess.run(
        [binary, "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**environ, "COMPOSE_PROJECT_NAME": "modelmon-test", **env},
    )


@pytest.fixture(scope="module", name="config")
def config_fixture() -> dict[str, Any]:
    result = compose_config(REDIS_PASSWORD="example-only")
    assert result.returncode == 0, result.stderr
    resolved: dict[str, Any] = yaml.safe_load(result.stdout)
    return resolved


def mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of a resolved service's bind mounts."""
    out = {}
    for volume in service.get("volumes", []):
        parts = volume.split(":") if isinstance(volume, str) else None
        if parts and parts[0].startswith("/"):
            out[parts[1]] = Path(parts[0])
    return out


def test_the_password_must_come_from_the_environment() -> None:
    result = compose_config()
    assert result.returncode != 0
    assert "set REDIS_PASSWORD" in result.stderr
    assert (
        "REDIS_PASSWORD"
        not in (ROOT / "compose/replicas/modelmon.yaml").read_text().split("password_env:")[0]
    )  # the config names the variable only


def test_services(config: dict[str, Any]) -> None:
    assert set(config["services"]) == {"redis", "proxy", "prometheus", *REPLICAS}


def test_each_replica_loads_its_config_and_reaches_redis(config: dict[str, Any]) -> None:
    services = config["services"]
    for name in REPLICAS:
        service = services[name]
        files = mounts(service)
        args = service["command"]
        config_path = args[args.index("--config") + 1]
        raw = yaml.safe_load(files[config_path].read_text(encoding="utf-8"))
        loaded = config_from_dict(raw, Path(config_path).parent)
        (model,) = loaded.models
        assert str(model.reference) in files, "the profile is mounted next to the config"
        assert files[str(model.reference)].is_file()
        labels = model.labels
        assert labels.store is not None
        host = re.match(r"redis://([^:/]+):(\d+)/\d+$", labels.store)
        assert host is not None
        assert (host.group(1), host.group(2)) == ("redis", "6379")
        assert host.group(1) in services
        assert labels.password_env in service["environment"]
        assert "redis" in service["build"]["args"]["EXTRAS"].split(",")
        assert {"redis"} <= set(service["depends_on"])


def test_redis_persists_and_requires_the_password(config: dict[str, Any]) -> None:
    redis = config["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    # "$$" is compose's escaped "$": the shell in the container expands the variable.
    assert '--requirepass "$$REDIS_PASSWORD"' in command
    assert redis["environment"]["REDIS_PASSWORD"] == "example-only"
    assert "ports" not in redis  # reachable from the replicas only


def test_the_proxy_spreads_over_every_replica(config: dict[str, Any]) -> None:
    proxy = config["services"]["proxy"]
    conf = mounts(proxy)["/etc/nginx/nginx.conf"].read_text(encoding="utf-8")
    upstream = re.findall(r"server (\S+):9847;", conf)
    assert sorted(upstream) == REPLICAS
    assert [str(p).split(":")[0] for p in proxy["ports"]] == ["127.0.0.1"]


def test_prometheus_scrapes_each_replica_and_loads_the_rules(config: dict[str, Any]) -> None:
    prometheus = config["services"]["prometheus"]
    files = mounts(prometheus)
    prom = yaml.safe_load(files["/etc/prometheus/prometheus.yml"].read_text(encoding="utf-8"))
    (job,) = prom["scrape_configs"]
    assert job["job_name"] == "modelmon"
    (static,) = job["static_configs"]
    assert sorted(static["targets"]) == [f"{name}:9847" for name in REPLICAS]
    rules_dir = files["/etc/prometheus/rules"]
    (pattern,) = prom["rule_files"]
    assert pattern == "/etc/prometheus/rules/*.yml"
    assert any(rules_dir.glob("*.yml"))
