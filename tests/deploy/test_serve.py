"""`profefe serve` deployed alone: deploy/docker-compose.serve.yml and deploy/k8s/serve against
the code: a real command, variables serve reads, probes on paths its app answers, on the port it
listens on, and its data folder on a volume."""
from __future__ import annotations

import pytest
import yaml

from tests.deploy import facts
from tests.deploy.test_k8s import SERVE, kustomization_of, resources

COMPOSE = facts.DEPLOY / "docker-compose.serve.yml"
KUSTOMIZATION = facts.DEPLOY / "k8s" / "kustomization.yaml"


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> set[str]:
    return facts.serve_paths(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def service() -> dict:
    [svc] = yaml.safe_load(COMPOSE.read_text())["services"].values()
    return svc


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    return [d for p in resources(SERVE) for d in yaml.safe_load_all(p.read_text()) if d]


def test_compose_runs_serve_from_the_image_with_variables_serve_reads(service):
    assert facts.check_args(service["command"]) == "serve"
    assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (COMPOSE.parent / service["build"]["context"] / service["build"]["dockerfile"]).exists()
    env = service["environment"]
    unknown = set(env) - facts.variables("serve") - facts.BUILD_VARIABLES
    assert not unknown, unknown


def test_compose_keeps_the_data_on_a_volume_and_probes_a_real_path(service, paths):
    env = service["environment"]
    port = facts.address_port(env["PROFEFE_ADDR"])
    assert service["ports"] == [f"{port}:{port}"]
    [volume] = service["volumes"]
    assert volume.split(":")[1] == env["PROFEFE_DATA_DIR"]
    [url] = [a for a in service["healthcheck"]["test"] if a.startswith("http://")]
    assert url == f"http://127.0.0.1:{port}/readyz" and "/readyz" in paths


def test_kubernetes_runs_one_serve_replica_on_a_volume(objects):
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == ["Namespace", "Service", "StatefulSet"]
    [sts] = [o for o in objects if o["kind"] == "StatefulSet"]
    assert sts["spec"]["replicas"] == 1, "one SQLite writer"
    pod = sts["spec"]["template"]["spec"]
    [c] = pod["containers"]
    assert facts.check_args(c["args"]) == "serve"
    env = {e["name"]: e["value"] for e in c["env"]}
    assert set(env) <= facts.variables("serve"), set(env) - facts.variables("serve")
    [claim] = sts["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == env["PROFEFE_DATA_DIR"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["fsGroup"]


def test_kubernetes_probes_and_service_reach_serve(objects, paths):
    [sts] = [o for o in objects if o["kind"] == "StatefulSet"]
    [svc] = [o for o in objects if o["kind"] == "Service"]
    [c] = sts["spec"]["template"]["spec"]["containers"]
    port = facts.address_port({e["name"]: e["value"] for e in c["env"]}["PROFEFE_ADDR"])
    named = {p["name"]: p["containerPort"] for p in c["ports"]}
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = c[probe]["httpGet"]
        assert get["path"] == path and path in paths, probe
        assert named[get["port"]] == port, probe
    assert sts["spec"]["serviceName"] == svc["metadata"]["name"]
    assert svc["spec"]["selector"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    assert [p["targetPort"] for p in svc["spec"]["ports"]] == ["http"]


def test_the_serve_kustomization_stands_alone_with_the_pipeline_s_image_and_namespace():
    serve, pipeline = kustomization_of(SERVE), yaml.safe_load(KUSTOMIZATION.read_text())
    assert serve["images"] == pipeline["images"] and serve["namespace"] == pipeline["namespace"]
    assert "serve" not in pipeline["resources"], "serve is deployed instead of the pipeline, not with it"
