"""The docker-compose stack and the Dockerfile, checked without a Docker daemon.

``docker-compose config`` (Compose 1.29, Debian package docker-compose) validates the file
against the Compose schema; the bind mounts must point at files of this repository, and
Prometheus, Alertmanager and Grafana must find their configuration where the mounted
files say.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"


def require(available: bool, what: str) -> None:
    """Skip when ``what`` is missing on a workstation; fail in CI (CI=true)."""
    if not available:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{what} is missing and CI=true")
        pytest.skip(f"{what} is missing")


@pytest.fixture(scope="module", name="config")
def config_fixture() -> dict[str, Any]:
    """The configuration as docker-compose resolves it (paths made absolute)."""
    binary = shutil.which("docker-compose")
    require(binary is not None, "docker-compose (Debian package docker-compose)")
    assert binary is not None
    result = subprocess.run(
        [binary, "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "COMPOSE_PROJECT_NAME": "modelmon-test"},
    )
    assert result.returncode == 0, result.stderr
    resolved: dict[str, Any] = yaml.safe_load(result.stdout)
    return resolved


def bind_mounts(service: dict[str, Any]) -> list[tuple[Path, str]]:
    """(host path, container path) of every bind mount of a resolved service."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume.get("source", ""), volume["target"]
        if source.startswith("/"):
            mounts.append((Path(source), target))
    return mounts


def test_docker_compose_rejects_a_broken_file(tmp_path: Path) -> None:
    """The validation can fail: an unknown service key is an error."""
    binary = shutil.which("docker-compose")
    require(binary is not None, "docker-compose (Debian package docker-compose)")
    assert binary is not None
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  x:\n    image: busybox\n    portz: ['1:1']\n")
    result = subprocess.run(
        [binary, "-f", str(broken), "config"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0


def test_the_five_services(config: dict[str, Any]) -> None:
    assert set(config["services"]) == {
        "modelmon",
        "prometheus",
        "alertmanager",
        "pushgateway",
        "grafana",
    }
    assert config["services"]["pushgateway"]["image"].startswith("prom/pushgateway:")
    modelmon = config["services"]["modelmon"]
    assert modelmon["command"][0] == "demo"
    assert "build" in modelmon


def test_bind_mounts_exist_in_the_repository(config: dict[str, Any]) -> None:
    mounts = [m for s in config["services"].values() for m in bind_mounts(s)]
    assert len(mounts) >= 4
    for source, target in mounts:
        assert source.exists(), f"{source} (mounted at {target}) is missing"
        assert source.resolve().is_relative_to(ROOT), source


def mount_of(config: dict[str, Any], service: str, target: str) -> Path:
    found = {t: s for s, t in bind_mounts(config["services"][service])}
    return found[target]


def test_prometheus_finds_its_config_and_rules(config: dict[str, Any]) -> None:
    prometheus = config["services"]["prometheus"]
    config_flag = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    config_path = Path(config_flag.split("=", 1)[1])
    folder = mount_of(config, "prometheus", str(config_path.parent))
    document = yaml.safe_load((folder / config_path.name).read_text())
    rules = [p for pattern in document["rule_files"] for p in folder.glob(pattern)]
    assert rules, document["rule_files"]
    targets = [
        target
        for job in document["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    ]
    # Prometheus reaches the exporter and Alertmanager by their compose service names.
    assert "modelmon:9847" in targets
    alertmanagers = document["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanagers == ["alertmanager:9093"]


def test_alertmanager_finds_its_config(config: dict[str, Any]) -> None:
    alertmanager = config["services"]["alertmanager"]
    config_flag = next(a for a in alertmanager["command"] if a.startswith("--config.file="))
    config_path = Path(config_flag.split("=", 1)[1])
    folder = mount_of(config, "alertmanager", str(config_path.parent))
    require((folder / config_path.name).is_file(), "alertmanager/alertmanager.yml")


def test_grafana_finds_provisioning_and_dashboards(config: dict[str, Any]) -> None:
    grafana = config["services"]["grafana"]
    provisioning = mount_of(config, "grafana", "/etc/grafana/provisioning")
    assert provisioning == ROOT / "grafana" / "provisioning"
    provider = yaml.safe_load((provisioning / "dashboards" / "modelmon.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    dashboards = mount_of(config, "grafana", path)
    assert sorted(p.name for p in dashboards.glob("*.json")) == [
        "drift.json",
        "evaluations.json",
        "overview.json",
        "performance.json",
        "resources.json",
        "training.json",
        "versions.json",
    ]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (dashboards / Path(home).relative_to(path)).is_file()
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"


def test_ports_are_published_on_localhost_only(config: dict[str, Any]) -> None:
    for name, service in config["services"].items():
        for port in service.get("ports", []):
            host_ip = port.get("host_ip") if isinstance(port, dict) else port.split(":")[0]
            assert host_ip == "127.0.0.1", (name, port)


# --- Dockerfile -----------------------------------------------------------------------


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_dockerfile_is_multi_stage_on_a_slim_base() -> None:
    steps = instructions()
    assert sum(word == "FROM" for word, _ in steps) == 2
    assert any("slim" in rest for word, rest in steps if word == "ARG")
    assert any("--from=build" in rest for word, rest in final_stage() if word == "COPY")


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = [rest for word, rest in final_stage() if word == "USER"]
    assert users, "no USER in the final stage"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_dockerfile_entrypoint_port_and_healthcheck() -> None:
    steps = dict(final_stage())
    assert steps["EXPOSE"] == "9847"
    assert steps["ENTRYPOINT"] == '["modelmon"]'
    assert steps["CMD"] == '["demo", "--listen", "0.0.0.0:9847"]'
    health = steps["HEALTHCHECK"]
    assert "/healthz" in health or "MODELMON_HEALTHCHECK_URL" in health
    assert "urllib.request" in health, "slim images have no curl: use the standard library"
    assert "curl" not in health
    assert "wget" not in health


def test_healthcheck_command_probes_a_server(tmp_path: Path) -> None:
    """The HEALTHCHECK's Python one-liner exits 0 on a 200 and non-zero when nothing listens."""
    health = dict(final_stage())["HEALTHCHECK"]
    argv = json.loads(health[health.index("CMD") + 3 :].strip())
    assert argv[:2] == ["python", "-c"]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/healthz"
        env = {**os.environ, "MODELMON_HEALTHCHECK_URL": url}
        ok = subprocess.run([sys.executable, "-c", argv[2]], env=env, timeout=30)
        assert ok.returncode == 0
        env["MODELMON_HEALTHCHECK_URL"] = url.replace("/healthz", "/missing")
        missing = subprocess.run(
            [sys.executable, "-c", argv[2]], env=env, timeout=30, capture_output=True
        )
        assert missing.returncode != 0
    finally:
        server.shutdown()
        server.server_close()


def test_dockerignore_keeps_the_build_context_small() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert lines[next(i for i, line in enumerate(lines) if not line.startswith("#"))] == "*"
    assert "!exporter/" in lines
    assert "!pyproject.toml" in lines
