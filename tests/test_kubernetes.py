"""The manifests in ``examples/kubernetes``: valid against the Kubernetes API schema
(``kubernetes-validate`` ships the schemas, so this runs offline), and the settings the
example promises are really there and agree with each other and with zerohttp.
"""

from __future__ import annotations

import copy
import os
import shlex
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from conftest import start_server

from zerohttp.cli import parse_config

KUBERNETES_VERSION = "1.32"  # the API the manifests are written for
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "kubernetes"
MANIFEST_FILES = sorted(p for p in EXAMPLE.glob("*.yaml") if p.name != "kustomization.yaml")


def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifests() -> dict[str, dict[str, Any]]:
    """kind -> the one object of that kind."""
    found: dict[str, dict[str, Any]] = {}
    for path in MANIFEST_FILES:
        for doc in load(path):
            assert doc["kind"] not in found, f"two {doc['kind']} objects"
            found[doc["kind"]] = doc
    return found


@pytest.fixture(scope="module")
def objects() -> dict[str, dict[str, Any]]:
    return manifests()


@pytest.fixture(scope="module")
def pod(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = objects["Deployment"]["spec"]["template"]["spec"]
    return spec


@pytest.fixture(scope="module")
def container(pod: dict[str, Any]) -> dict[str, Any]:
    (found,) = [c for c in pod["containers"] if c["name"] == "zerohttp"]
    return found


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container.get("env", [])}


def seconds_of(sleep_command: list[str]) -> int:
    assert sleep_command[0] == "sleep"
    return int(sleep_command[1])


# --- schema ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, index",
    [(path, i) for path in MANIFEST_FILES for i in range(len(load(path)))],
    ids=lambda v: v.name if isinstance(v, Path) else str(v),
)
def test_schema_valid(path: Path, index: int) -> None:
    """strict: an unknown (misspelt) field is an error too, not silently ignored."""
    document = load(path)[index]
    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{path.name}: {exc.message} at {'.'.join(map(str, exc.path))}")


def test_the_validator_bites(objects: dict[str, dict[str, Any]]) -> None:
    """A misspelt field and a wrongly typed value are both refused."""
    deployment = copy.deepcopy(objects["Deployment"])
    deployment["spec"]["replica"] = 3
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    deployment = copy.deepcopy(objects["Deployment"])
    deployment["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((EXAMPLE / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in MANIFEST_FILES)


def test_the_expected_objects(objects: dict[str, dict[str, Any]]) -> None:
    assert set(objects) >= {"Deployment", "Service", "ConfigMap", "HorizontalPodAutoscaler"}


# --- the Deployment -------------------------------------------------------------------


def test_replicas_and_labels(objects: dict[str, dict[str, Any]]) -> None:
    deployment = objects["Deployment"]
    assert deployment["spec"]["replicas"] == 3
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


def test_probes(container: dict[str, Any]) -> None:
    """The probes fetch zerohttp's health path, which answers whatever /srv holds (``/``
    needs an index.html: a site without one would never get a ready pod)."""
    health_path = parse_config([], environ=env_of(container)).health_path
    assert health_path == "/healthz"
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == health_path
        assert get["port"] in port_names or get["port"] in port_names.values()
        assert container[probe]["timeoutSeconds"] >= 1


def test_resources(pod: dict[str, Any]) -> None:
    for each in pod["containers"] + pod.get("initContainers", []):
        resources = each["resources"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= resources[kind].keys(), f"{each['name']} {kind}"


def test_locked_down(pod: dict[str, Any], container: dict[str, Any]) -> None:
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the Dockerfile's USER
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    for each in pod["containers"] + pod.get("initContainers", []):
        security = each["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, each["name"]
        assert security["allowPrivilegeEscalation"] is False, each["name"]
        assert security["capabilities"]["drop"] == ["ALL"], each["name"]
    assert container["securityContext"]["runAsNonRoot"] is True


def test_grace_period_covers_prestop_and_drain(
    pod: dict[str, Any], container: dict[str, Any]
) -> None:
    drain = float(env_of(container)["ZEROHTTP_TIMEOUT_GRACEFUL_SHUTDOWN"])
    pause = seconds_of(container["lifecycle"]["preStop"]["exec"]["command"])
    assert pod["terminationGracePeriodSeconds"] > pause + drain
    assert drain >= 10, "no shorter than zerohttp's default drain"


def test_settings_are_zerohttps(container: dict[str, Any]) -> None:
    """The Deployment's ZEROHTTP_* variables, read by zerohttp's own CLI."""
    env = env_of(container)
    assert all(name.startswith("ZEROHTTP_") for name in env)
    config = parse_config([], environ=env)
    assert config.host == "0.0.0.0"
    assert config.port == container["ports"][0]["containerPort"] == 8000
    assert config.root == "/srv"
    if hasattr(config, "timeout_graceful_shutdown"):
        assert config.timeout_graceful_shutdown == float(env["ZEROHTTP_TIMEOUT_GRACEFUL_SHUTDOWN"])


def test_no_service_links(pod: dict[str, Any]) -> None:
    """A Service named zerohttp would otherwise set ZEROHTTP_PORT=tcp://... in every pod."""
    assert pod["enableServiceLinks"] is False


def test_content_from_a_volume(pod: dict[str, Any], container: dict[str, Any]) -> None:
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/srv"]
    assert mount["readOnly"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mount["name"]]
    (init,) = pod["initContainers"]
    sources = {m["mountPath"]: volumes[m["name"]] for m in init["volumeMounts"]}
    assert sources["/config"]["configMap"]["name"] == "zerohttp-site"
    assert sources["/srv"] is volumes[mount["name"]]


# --- Service, HPA, PDB ----------------------------------------------------------------


def test_service_reaches_the_pods(
    objects: dict[str, dict[str, Any]], container: dict[str, Any]
) -> None:
    service = objects["Service"]
    labels = objects["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    port_names = {p["name"] for p in container["ports"]}
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in port_names


def test_autoscaler(objects: dict[str, dict[str, Any]], container: dict[str, Any]) -> None:
    hpa = objects["HorizontalPodAutoscaler"]
    deployment = objects["Deployment"]
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert hpa["spec"]["minReplicas"] == deployment["spec"]["replicas"]
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    assert "cpu" in container["resources"]["requests"], "utilization is relative to requests"


def test_disruption_budget(objects: dict[str, dict[str, Any]]) -> None:
    pdb = objects["PodDisruptionBudget"]
    labels = objects["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["minAvailable"] < objects["Deployment"]["spec"]["replicas"]


# --- the ConfigMap's files, as the pod serves them ------------------------------------


def kubelet_configmap_volume(directory: Path, data: dict[str, str]) -> Path:
    """A ConfigMap volume as the kubelet writes it: files in a hidden timestamped
    directory, ``..data`` pointing at it, each key a symlink through ``..data``."""
    stamped = directory / "..2026_01_01_00_00_00.000000001"
    stamped.mkdir(parents=True)
    for key, value in data.items():
        (stamped / key).write_text(value)
    (directory / "..data").symlink_to(stamped.name)
    for key in data:
        (directory / key).symlink_to(f"..data/{key}")
    return directory


def test_init_container_makes_the_configmap_servable(
    tmp_path: Path, pod: dict[str, Any], objects: dict[str, dict[str, Any]]
) -> None:
    data: dict[str, str] = objects["ConfigMap"]["data"]
    config = kubelet_configmap_volume(tmp_path / "config", data)
    srv = tmp_path / "srv"
    srv.mkdir()
    (init,) = pod["initContainers"]
    command = [
        part.replace("/config", str(config)).replace("/srv", str(srv)) for part in init["command"]
    ]
    assert command[:2] == ["sh", "-c"], "the copy runs in the image's shell"
    subprocess.run(command, check=True, timeout=30)
    assert sorted(os.listdir(srv)) == sorted(data), shlex.join(command)
    with start_server(srv) as running:
        for key, value in data.items():
            with urllib.request.urlopen(running.url(f"/{key}"), timeout=10) as response:
                assert response.status == 200
                assert response.read().decode() == value


def test_compressed_copies_have_a_writable_volume(
    pod: dict[str, Any], container: dict[str, Any]
) -> None:
    """The root file system is read-only: the compression cache needs a volume of its own,
    larger than the bound zerohttp keeps it under (else the kubelet evicts the pod)."""
    config = parse_config([], environ=env_of(container))
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == config.compress_cache]
    assert not mount.get("readOnly", False)
    volume = {v["name"]: v for v in pod["volumes"]}[mount["name"]]
    limit = volume["emptyDir"]["sizeLimit"]
    assert limit.endswith("Mi")
    assert config.compress_cache_size < int(limit[:-2]) * 1024 * 1024
