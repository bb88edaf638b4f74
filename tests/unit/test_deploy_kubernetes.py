"""The Kubernetes sidecar example, validated offline.

Core objects (Deployment, Service, ConfigMaps) pass ``kubernetes-validate --strict``;
the Prometheus Operator objects pass their CRD's openAPIV3Schema from
../shared/schemas with unknown fields rejected (the API server would drop them silently).
The objects also agree with each other and with the rest of the bundle: selectors match
the pod, probes and ports match the image, the sidecar's configuration loads and reads the
files the pod mounts, and the generated objects equal their sources.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from modelmon.config import config_from_dict
from modelmon.profile import load_profile

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "kubernetes"
SCHEMAS = ROOT.parent / "shared" / "schemas"
KUBERNETES_VERSION = "1.31.0"  # a version kubernetes-validate ships; any supported >= 1.29
CRDS = {
    "PodMonitor": "crd-podmonitors.yaml",
    "ServiceMonitor": "crd-servicemonitors.yaml",
    "PrometheusRule": "crd-prometheusrules.yaml",
}


def require(available: bool, what: str) -> None:
    """Skip when ``what`` is missing on a workstation; fail in CI (CI=true)."""
    if not available:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{what} is missing and CI=true")
        pytest.skip(f"{what} is missing")


def load_gen_k8s() -> ModuleType:
    import gen_k8s  # scripts/ is on pytest's pythonpath

    return gen_k8s


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


KUSTOMIZATION = yaml.safe_load((KUBE / "kustomization.yaml").read_text())


def generated_configmaps() -> list[dict[str, Any]]:
    """The ConfigMaps kustomize's configMapGenerator makes (before its name hash)."""
    out = []
    for generator in KUSTOMIZATION.get("configMapGenerator", []):
        data = {Path(f).name: (KUBE / f).read_text(encoding="utf-8") for f in generator["files"]}
        out.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": generator["name"]},
                "data": data,
            }
        )
    return out


def kustomized_objects() -> list[dict[str, Any]]:
    objects = [d for r in KUSTOMIZATION["resources"] for d in documents(KUBE / r)]
    return objects + generated_configmaps()


def all_objects() -> list[dict[str, Any]]:
    """Everything shipped: the kustomization plus the ServiceMonitor alternative."""
    return kustomized_objects() + documents(KUBE / "servicemonitor.yaml")


def one(kind: str, objects: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    (found,) = [o for o in (objects or all_objects()) if o["kind"] == kind]
    return found


def container(name: str) -> dict[str, Any]:
    pod = one("Deployment")["spec"]["template"]["spec"]
    (found,) = [c for c in pod["containers"] if c["name"] == name]
    return found


# --- strict schema validation ---------------------------------------------------------


def strict(schema: Any) -> Any:
    """A copy of an OpenAPI schema in which objects with properties reject unknown keys."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def crd_validator(kind: str) -> jsonschema.Draft7Validator:
    path = SCHEMAS / CRDS[kind]
    require(path.is_file(), str(path))
    (crd,) = [d for d in documents(path) if d.get("kind") == "CustomResourceDefinition"]
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
    # The CRD leaves metadata open; it is checked as ObjectMeta by validate_metadata.
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft7Validator(strict(schema))


def validate_metadata(metadata: dict[str, Any]) -> None:
    """ObjectMeta, strictly, by wrapping it in a ConfigMap for kubernetes-validate."""
    wrapper = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}
    kubernetes_validate.validate(wrapper, KUBERNETES_VERSION, strict=True)


def crd_errors(document: dict[str, Any]) -> list[str]:
    errors = crd_validator(document["kind"]).iter_errors(document)
    return [f"{list(e.absolute_path)}: {e.message}" for e in errors]


CORE_OBJECTS = [o for o in all_objects() if o["kind"] not in CRDS]


@pytest.mark.parametrize(
    "document", CORE_OBJECTS, ids=[f"{o['kind']}/{o['metadata']['name']}" for o in CORE_OBJECTS]
)
def test_core_object_validates_strictly(document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_operator_object_validates_strictly_against_its_crd(kind: str) -> None:
    document = one(kind)
    assert document["apiVersion"] == "monitoring.coreos.com/v1"
    assert crd_errors(document) == []
    validate_metadata(document["metadata"])


def test_strict_validation_rejects_unknown_fields() -> None:
    """Both validators can fail: a misspelled field is an error, not silently dropped."""
    monitor = copy.deepcopy(one("PodMonitor"))
    monitor["spec"]["podMetricsEndpoints"][0]["intervall"] = "15s"
    assert any("intervall" in error for error in crd_errors(monitor))
    rule = copy.deepcopy(one("PrometheusRule"))
    rule["spec"]["groups"][0]["rules"][0]["expresion"] = "up"
    assert any("expresion" in error for error in crd_errors(rule))
    deployment = copy.deepcopy(one("Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][1]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


# --- the kustomization ------------------------------------------------------------------


def test_kustomization_lists_existing_files_and_not_the_servicemonitor() -> None:
    for resource in KUSTOMIZATION["resources"]:
        assert (KUBE / resource).is_file(), resource
    for generator in KUSTOMIZATION["configMapGenerator"]:
        for name in generator["files"]:
            assert (KUBE / name).is_file(), name
    assert "servicemonitor.yaml" not in KUSTOMIZATION["resources"]
    generated = {f"generated/{p.name}" for p in (KUBE / "generated").glob("*.yaml")}
    assert generated <= set(KUSTOMIZATION["resources"])
    kinds = sorted(o["kind"] for o in kustomized_objects())
    assert kinds.count("ConfigMap") == 8  # 7 dashboards + the sidecar's configuration


def test_generated_objects_are_current() -> None:
    assert load_gen_k8s().stale_files() == [], "run python scripts/gen_k8s.py"


def test_prometheusrule_holds_every_rule_group() -> None:
    sources = sorted((ROOT / "prometheus" / "rules").glob("*.yml"))
    require(bool(sources), "prometheus/rules/*.yml")
    expected = [g for path in sources for g in yaml.safe_load(path.read_text())["groups"]]
    rule = one("PrometheusRule")
    assert rule["spec"]["groups"] == expected
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_one_dashboard_configmap_per_dashboard() -> None:
    maps = {
        o["metadata"]["name"]: o
        for o in kustomized_objects()
        if o["kind"] == "ConfigMap" and "grafana_dashboard" in o["metadata"].get("labels", {})
    }
    for path in sorted((ROOT / "grafana" / "dashboards").glob("*.json")):
        configmap = maps.pop(f"grafana-dashboard-{path.stem}")
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
        (text,) = configmap["data"].values()
        assert text == path.read_text(encoding="utf-8")
        assert json.loads(text)["uid"] == f"modelmon-{path.stem}"
    assert maps == {}


# --- the sidecar ------------------------------------------------------------------------


def sidecar_config() -> tuple[dict[str, Any], dict[str, str]]:
    """The raw modelmon.yaml and the files of the ConfigMap it ships in."""
    (configmap,) = [c for c in generated_configmaps() if c["metadata"]["name"] == "modelmon-config"]
    data: dict[str, str] = configmap["data"]
    return yaml.safe_load(data["modelmon.yaml"]), data


def mounts(name: str) -> dict[str, dict[str, Any]]:
    """mountPath -> volumeMount of a container."""
    return {m["mountPath"]: m for m in container(name).get("volumeMounts", [])}


def volume(name: str) -> dict[str, Any]:
    pod = one("Deployment")["spec"]["template"]["spec"]
    (found,) = [v for v in pod["volumes"] if v["name"] == name]
    return found


def mount_covering(container_name: str, path: str) -> dict[str, Any]:
    """The volumeMount of ``container_name`` under which ``path`` lies."""
    for mount_path, mount in mounts(container_name).items():
        if PurePosixPath(path).is_relative_to(mount_path):
            return mount
    raise AssertionError(f"{path} is on no volume of container {container_name}")


def test_pod_shares_its_process_namespace_and_runs_unprivileged() -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    assert pod["shareProcessNamespace"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    dockerfile = (ROOT / "Dockerfile").read_text()
    (user,) = re.findall(r"^USER (\d+)", dockerfile, flags=re.MULTILINE)
    # The model runs as the image's user too, so /proc/<pid>/fd of the model is readable.
    assert str(pod["securityContext"]["runAsUser"]) == user.split(":")[0]
    for each in pod["containers"]:
        context = each["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, each["name"]
        assert context["allowPrivilegeEscalation"] is False, each["name"]
        assert context["capabilities"] == {"drop": ["ALL"]}, each["name"]
        assert "memory" in each["resources"]["limits"], each["name"]
        assert {"cpu", "memory"} <= set(each["resources"]["requests"]), each["name"]


def test_sidecar_probes_and_port() -> None:
    sidecar = container("modelmon")
    (port,) = sidecar["ports"]
    assert port == {"name": "metrics", "containerPort": 9847}
    assert sidecar["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert sidecar["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}


def test_sidecar_configuration_loads_and_matches_the_pod() -> None:
    raw, data = sidecar_config()
    sidecar = container("modelmon")
    config_path = PurePosixPath(sidecar["args"][sidecar["args"].index("--config") + 1])
    config_mount = mount_covering("modelmon", str(config_path))
    assert volume(config_mount["name"])["configMap"]["name"] == "modelmon-config"
    assert config_path.name in data
    # The exporter's own validator, with paths relative to the mounted folder.
    config = config_from_dict(raw, Path(str(config_path.parent)))
    for model in config.models:
        assert model.reference.name in data, f"{model.reference.name} not in the ConfigMap"
        # The shipped profile is one the exporter reads, for the configured task.
        profile = load_profile(KUBE / "config" / model.reference.name)
        assert profile.task == model.task
    assert config.listen.endswith(":9847")
    state = mount_covering("modelmon", str(config.state_dir))
    assert not state.get("readOnly"), "state_dir must be writable"
    assert "emptyDir" in volume(state["name"]) or "persistentVolumeClaim" in volume(state["name"])


def test_sidecar_tails_the_log_the_model_writes() -> None:
    raw, _ = sidecar_config()
    config = config_from_dict(raw, Path("/etc/modelmon"))
    assert config.sources, "the example ingests the model's JSONL log"
    assert config.collectors.process is not None, "the example watches the model process"
    for source in config.sources:
        folder = str(PurePosixPath(source.path).parent)
        sidecar_mount = mount_covering("modelmon", folder)
        model_mount = mount_covering("model", folder)
        assert sidecar_mount["name"] == model_mount["name"]
        assert sidecar_mount.get("readOnly") is True
        assert "emptyDir" in volume(sidecar_mount["name"])


def test_every_volume_mount_names_a_volume() -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    names = {v["name"] for v in pod["volumes"]}
    for each in pod["containers"]:
        for mount in each.get("volumeMounts", []):
            assert mount["name"] in names, (each["name"], mount)


# --- selectors --------------------------------------------------------------------------


def pod_labels() -> dict[str, str]:
    labels: dict[str, str] = one("Deployment")["spec"]["template"]["metadata"]["labels"]
    return labels


def test_deployment_service_and_monitors_select_the_pod() -> None:
    deployment = one("Deployment")
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels().items()
    service = one("Service")
    assert service["spec"]["selector"].items() <= pod_labels().items()
    container_ports = {
        p["name"]
        for c in deployment["spec"]["template"]["spec"]["containers"]
        for p in c.get("ports", [])
    }
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= container_ports
    podmonitor = one("PodMonitor")
    assert podmonitor["spec"]["selector"]["matchLabels"].items() <= pod_labels().items()
    assert podmonitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    servicemonitor = one("ServiceMonitor")
    assert servicemonitor["spec"]["selector"]["matchLabels"].items() <= (
        service["metadata"]["labels"].items()
    )
    assert servicemonitor["spec"]["endpoints"][0]["port"] in {
        p["name"] for p in service["spec"]["ports"]
    }


def test_monitors_set_the_job_the_alert_rules_select() -> None:
    rules = (ROOT / "kubernetes" / "generated" / "prometheusrule.yaml").read_text()
    jobs = set(re.findall(r'job="([^"]+)"', rules))
    require(bool(jobs), "alert rules selecting a job")
    for kind, endpoints in (("PodMonitor", "podMetricsEndpoints"), ("ServiceMonitor", "endpoints")):
        relabel = one(kind)["spec"][endpoints][0]["relabelings"]
        assert {"targetLabel": "job", "replacement": "modelmon"} in relabel, kind
    assert jobs == {"modelmon"}
