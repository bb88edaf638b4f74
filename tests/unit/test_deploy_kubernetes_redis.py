"""kubernetes/components/redis: the sidecar example with its label join in Redis,
validated offline like the base manifests (test_deploy_kubernetes.py).

The Component's objects pass ``kubernetes-validate --strict``; its Deployment patch is
applied here as kustomize's strategic merge applies it (replicas, and the container's
``env`` merged by name) and the result validates too. The pieces agree: the sidecar's
configuration (the base's, plus the store) loads and names the Redis Service and port,
and the password variable it reads is set from the same Secret that Redis uses.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from modelmon.config import config_from_dict

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "kubernetes"
COMPONENT = KUBE / "components" / "redis"
KUBERNETES_VERSION = "1.31.0"


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def kustomization(folder: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((folder / "kustomization.yaml").read_text())
    return loaded


def redis_objects() -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in documents(COMPONENT / "redis.yaml")}


def patched_deployment() -> dict[str, Any]:
    """The base Deployment with the Component's patch, merged as kustomize does."""
    (base,) = [d for d in documents(KUBE / "deployment.yaml") if d["kind"] == "Deployment"]
    (patch,) = documents(COMPONENT / "deployment-patch.yaml")
    assert (patch["kind"], patch["metadata"]["name"]) == ("Deployment", base["metadata"]["name"])
    merged = copy.deepcopy(base)
    merged["spec"]["replicas"] = patch["spec"]["replicas"]
    containers = {c["name"]: c for c in merged["spec"]["template"]["spec"]["containers"]}
    for change in patch["spec"]["template"]["spec"]["containers"]:
        target = containers[change["name"]]  # a patch for a container the base lacks: error
        env = {e["name"]: e for e in target.get("env", [])}
        env.update({e["name"]: e for e in change["env"]})
        target["env"] = list(env.values())
    return merged


def container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == name
    ]
    return found


def test_the_component_lists_existing_files_and_merges_the_base_configmap() -> None:
    component = kustomization(COMPONENT)
    assert component["kind"] == "Component"
    for resource in component["resources"]:
        assert (COMPONENT / resource).is_file()
    for patch in component["patches"]:
        assert (COMPONENT / patch["path"]).is_file()
    (generator,) = component["configMapGenerator"]
    assert generator["behavior"] == "merge"
    (base_generator,) = kustomization(KUBE)["configMapGenerator"]
    assert generator["name"] == base_generator["name"]
    base_files = {Path(f).name for f in base_generator["files"]}
    assert {Path(f).name for f in generator["files"]} <= base_files  # replaces, adds nothing
    assert "components/redis" in (KUBE / "kustomization.yaml").read_text()


def test_redis_objects_validate_strictly() -> None:
    for document in documents(COMPONENT / "redis.yaml"):
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_patched_deployment_validates_and_runs_three_replicas() -> None:
    deployment = patched_deployment()
    kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    assert deployment["spec"]["replicas"] == 3


def test_redis_service_selects_its_pod_and_persists_with_a_password() -> None:
    objects = redis_objects()
    service, stateful = objects["Service"], objects["StatefulSet"]
    pod_labels = stateful["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert stateful["spec"]["serviceName"] == service["metadata"]["name"]
    (redis,) = stateful["spec"]["template"]["spec"]["containers"]
    command = " ".join(redis["command"] + redis["args"])
    assert "--appendonly yes" in command
    assert '--requirepass "$REDIS_PASSWORD"' in command
    (mount,) = redis["volumeMounts"]
    assert "--dir " + mount["mountPath"] in command
    claims = {c["metadata"]["name"] for c in stateful["spec"]["volumeClaimTemplates"]}
    assert mount["name"] in claims


def test_the_sidecar_config_names_the_redis_service_and_the_secret() -> None:
    raw = yaml.safe_load((COMPONENT / "modelmon.yaml").read_text(encoding="utf-8"))
    config = config_from_dict(raw, Path("/etc/modelmon"))
    (model,) = config.models
    labels = model.labels
    assert labels.store is not None
    match = re.match(r"redis://([^:/]+):(\d+)/\d+$", labels.store)
    assert match is not None
    service = redis_objects()["Service"]
    assert match.group(1) == service["metadata"]["name"]
    assert int(match.group(2)) in {p["port"] for p in service["spec"]["ports"]}
    sidecar_env = {e["name"]: e for e in container(patched_deployment(), "modelmon")["env"]}
    (redis,) = redis_objects()["StatefulSet"]["spec"]["template"]["spec"]["containers"]
    redis_env = {e["name"]: e for e in redis["env"]}
    secret = sidecar_env[labels.password_env]["valueFrom"]["secretKeyRef"]
    assert secret == redis_env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]


def test_the_sidecar_config_is_the_base_config_plus_the_store() -> None:
    component = yaml.safe_load((COMPONENT / "modelmon.yaml").read_text(encoding="utf-8"))
    base = yaml.safe_load((KUBE / "config" / "modelmon.yaml").read_text(encoding="utf-8"))
    added = {"store", "password_env", "timeout"}
    for model in component["models"]:
        model["labels"] = {k: v for k, v in model["labels"].items() if k not in added}
    assert component == base
