"""deploy/docker-compose.yml against the code: roles, flags, variables, ports and probe paths."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from services.observe.health import HealthServer
from services.observe.metrics import Metrics
from tests.deploy import facts

COMPOSE = facts.DEPLOY / "docker-compose.yml"
ROLES = {"migrate", *facts.APIS, *facts.WORKERS}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def ours(compose) -> dict[str, dict]:
    """profefe's services by role (the role is the first word of the command)."""
    found = {}
    for name, svc in compose["services"].items():
        if svc.get("image", "").startswith("profefe-py"):
            found[facts.check_args(svc["command"])] = svc | {"name": name}
    return found


def test_every_role_runs_from_the_one_image_with_real_flags(ours):
    assert set(ours) == ROLES
    for svc in ours.values():
        assert svc["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (COMPOSE.parent / svc["build"]["context"] / svc["build"]["dockerfile"]).exists()


def test_backing_services_are_pinned(compose):
    images = {name: compose["services"][name]["image"] for name in ("kafka", "minio", "postgres")}
    assert images["kafka"].startswith("apache/kafka:")
    for image in images.values():
        tag = image.partition(":")[2]
        assert tag and tag != "latest", image
    kafka = compose["services"]["kafka"]["environment"]
    assert "broker" in kafka["KAFKA_PROCESS_ROLES"] and "controller" in kafka["KAFKA_PROCESS_ROLES"]


def test_settings_are_profefe_variables_the_code_reads_and_each_role_has_what_it_needs(ours):
    for role, svc in ours.items():
        env = svc["environment"]
        assert all(k.startswith("PROFEFE_") for k in env), env
        unknown = set(env) - facts.known_variables()
        assert not unknown, f"{role}: {unknown}"
        missing = facts.REQUIRED[role] - set(env)
        assert not missing, f"{role} lacks {missing}"
        # The names resolve inside the compose network.
        for key, host in (("PROFEFE_KAFKA_BOOTSTRAP", "kafka"), ("PROFEFE_S3_ENDPOINT", "minio")):
            if key in env:
                assert env[key].split(":")[0] == host


def test_everything_of_ours_waits_for_migrate_and_migrate_for_healthy_backends(ours):
    assert ours["migrate"]["depends_on"] == {s: {"condition": "service_healthy"} for s in ("kafka", "minio", "postgres")}
    for role, svc in ours.items():
        if role != "migrate":
            assert svc["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}, role


def test_scaled_roles_have_no_fixed_name_or_host_port(compose, ours):
    for svc in compose["services"].values():
        assert "container_name" not in svc
    for role in (*facts.WORKERS, *facts.APIS):
        assert "ports" not in ours[role], role


def test_the_gateway_is_the_one_host_port_and_waits_for_both_apis(compose):
    """Its routing is tests/deploy/test_gateway.py's."""
    gateway = compose["services"]["gateway"]
    assert gateway["ports"] == ["10100:10100"]
    assert gateway["depends_on"] == {r: {"condition": "service_healthy"} for r in facts.APIS}


def probe_url(svc: dict) -> str:
    test = svc["healthcheck"]["test"]
    assert test[0] == "CMD"
    [url] = [a for a in test if a.startswith("http://")]
    return url


def test_probes_hit_real_paths_on_the_ports_the_roles_listen_on(ours):
    for role in facts.APIS:
        svc = ours[role]
        url = probe_url(svc)
        port = facts.address_port(svc["environment"]["PROFEFE_ADDR"])
        assert url == f"http://127.0.0.1:{port}/readyz"
        assert "/readyz" in facts.api_paths(role)
    for role in facts.WORKERS:
        svc = ours[role]
        port = facts.address_port(svc["environment"]["PROFEFE_HEALTH_ADDR"])
        assert probe_url(svc) == f"http://127.0.0.1:{port}/healthz"
        assert "/healthz" in facts.worker_paths()


def test_the_probe_command_fails_on_503_and_passes_on_200(ours):
    """Run the healthcheck's own command line against a health server."""
    down = [True]
    server = HealthServer("127.0.0.1", 0, metrics=Metrics("indexer"), checks={},
                                  alive=lambda: "stuck" if down[0] else None).start()
    try:
        test = ours["indexer"]["healthcheck"]["test"]
        argv = [sys.executable if a == "python" else a for a in test[1:]]
        argv[-1] = f"http://{server.address}/healthz"
        assert subprocess.run(argv, capture_output=True, timeout=30).returncode != 0
        down[0] = False
        assert subprocess.run(argv, capture_output=True, timeout=30).returncode == 0
    finally:
        server.close()
