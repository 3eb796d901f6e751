"""deploy/k8s against the code: what kustomize applies, roles, variables, probes, ports, scaling."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.deploy import facts

K8S = facts.DEPLOY / "k8s"
# `profefe serve` alone: a kustomization of its own, beside the pipeline's (tests/deploy/test_serve.py).
SERVE = K8S / "serve"
SECRET_VARIABLES = {"PROFEFE_S3_ACCESS_KEY", "PROFEFE_S3_SECRET_KEY", "PROFEFE_DATABASE_URL",
                    "PROFEFE_INGEST_TOKENS", "PROFEFE_READ_TOKENS"}


def kustomization_of(folder: Path) -> dict:
    return yaml.safe_load((folder / "kustomization.yaml").read_text())


@pytest.fixture(scope="module")
def kustomization() -> dict:
    return kustomization_of(K8S)


def resources(folder: Path) -> list[Path]:
    """The files a kustomization applies, following folders that are kustomizations themselves."""
    out = []
    for name in kustomization_of(folder)["resources"]:
        path = folder / name
        out += resources(path) if path.is_dir() else [path]
    return out


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    return [d for path in resources(K8S) for d in yaml.safe_load_all(path.read_text()) if d]


def of_kind(objects, kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def test_every_manifest_parses_and_is_applied():
    files = {p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml"}
    applied = resources(K8S) + resources(SERVE)
    assert sorted(applied) == sorted(files)
    for f in K8S.rglob("*.yaml"):
        for doc in yaml.safe_load_all(f.read_text()):
            assert doc is None or {"apiVersion", "kind"} <= set(doc), f.name


def test_the_setup_stands_alone_with_the_same_image_and_namespace(kustomization):
    """On a first install `kubectl apply -k deploy/k8s/setup` runs before everything else."""
    setup = kustomization_of(K8S / "setup")
    assert setup["images"] == kustomization["images"] and setup["namespace"] == kustomization["namespace"]
    kinds = {d["kind"] for p in resources(K8S / "setup") for d in yaml.safe_load_all(p.read_text()) if d}
    assert kinds == {"Namespace", "ConfigMap", "Secret", "Job"}


def pod(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def containers(objects) -> dict[str, tuple[dict, dict]]:
    """role -> (workload, its one container) over the Deployments and the Job of profefe's image
    (the gateway's nginx is tests/deploy/test_gateway.py's)."""
    out = {}
    for obj in objects:
        if obj["kind"] in ("Deployment", "Job"):
            [c] = pod(obj)["containers"]
            if c["image"].startswith("profefe-py"):
                out[facts.check_args(c["args"])] = (obj, c)
    return out


def test_a_deployment_per_role_and_a_job_for_migrations(objects, kustomization):
    roles = containers(objects)
    assert set(roles) == {"migrate", *facts.APIS, *facts.WORKERS}
    assert roles["migrate"][0]["kind"] == "Job"
    images = {i["name"] for i in kustomization["images"]}
    for role, (obj, c) in roles.items():
        assert c["image"] in images, role
        assert obj["kind"] == "Job" or obj["spec"]["selector"]["matchLabels"].items() <= \
            obj["spec"]["template"]["metadata"]["labels"].items()
        requests = c["resources"]["requests"]
        assert requests.get("cpu") and requests.get("memory"), role
        assert pod(obj)["securityContext"]["runAsNonRoot"] is True


def settings(objects, c: dict) -> set[str]:
    """Every variable the container gets: its env and the ConfigMaps/Secrets it takes whole."""
    maps, secrets = of_kind(objects, "ConfigMap"), of_kind(objects, "Secret")
    names = {e["name"] for e in c.get("env", [])}
    for ref in c.get("envFrom", []):
        if "configMapRef" in ref:
            names |= set(maps[ref["configMapRef"]["name"]]["data"])
        else:
            names |= set(secrets[ref["secretRef"]["name"]]["stringData"])
    return names


def test_variables_are_known_and_each_role_has_what_it_needs(objects):
    for role, (_, c) in containers(objects).items():
        names = settings(objects, c)
        assert names <= facts.known_variables(), f"{role}: {names - facts.known_variables()}"
        assert facts.REQUIRED[role] <= names, f"{role} lacks {facts.REQUIRED[role] - names}"


def test_credentials_live_in_the_secret_only(objects):
    [config] = of_kind(objects, "ConfigMap").values()
    [secret] = of_kind(objects, "Secret").values()
    assert SECRET_VARIABLES <= set(secret["stringData"])
    assert not SECRET_VARIABLES & set(config["data"])


def env_of(c: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in c.get("env", [])}


def test_probes_hit_real_paths_on_the_ports_the_roles_listen_on(objects):
    roles = containers(objects)
    for role in (*facts.APIS, *facts.WORKERS):
        _, c = roles[role]
        variable = "PROFEFE_ADDR" if role in facts.APIS else "PROFEFE_HEALTH_ADDR"
        port = facts.address_port(env_of(c)[variable])
        named = {p["name"]: p["containerPort"] for p in c["ports"]}
        paths = facts.api_paths(role) if role in facts.APIS else facts.worker_paths()
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            get = c[probe]["httpGet"]
            assert get["path"] == path and path in paths, (role, probe)
            assert named[get["port"]] == port, (role, probe)


def test_services_reach_the_api_ports(objects):
    deployments = of_kind(objects, "Deployment")
    services = of_kind(objects, "Service")
    assert set(services) == {f"profefe-{r}" for r in (*facts.APIS, "gateway")}
    for name, svc in services.items():
        target = deployments[name]
        assert svc["spec"]["selector"].items() <= target["spec"]["template"]["metadata"]["labels"].items()
        [c] = pod(target)["containers"]
        names = {p["name"] for p in c["ports"]}
        assert all(p["targetPort"] in names for p in svc["spec"]["ports"])


def test_the_two_apis_scale_on_their_own(objects):
    deployments = of_kind(objects, "Deployment")
    hpas = of_kind(objects, "HorizontalPodAutoscaler").values()
    targets = {h["spec"]["scaleTargetRef"]["name"] for h in hpas}
    assert targets == {f"profefe-{r}" for r in facts.APIS}
    assert targets <= set(deployments)
    for h in hpas:
        assert 1 <= h["spec"]["minReplicas"] <= h["spec"]["maxReplicas"]
