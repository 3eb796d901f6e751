"""What the code says the deploy files must match: roles, their flags and variables, the
variables each role cannot start without, and the paths each role answers."""
from __future__ import annotations

import shlex
from pathlib import Path

import click

from services import wiring
from services.observe.health import HealthServer
from services.cli import main
from services.roles import IngestApiRole, QueryApiRole
from services.observe.metrics import Metrics
from shared.adapters.queue_kafka import KafkaSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

# Read by the code outside click: stamped into the image at build time (services/http.py).
BUILD_VARIABLES = {"PROFEFE_BUILD_COMMIT", "PROFEFE_BUILD_TIME"}

# Without these a role refuses to start (exit 2); test_roles checks each against the CLI itself.
REQUIRED = {
    "migrate": {"PROFEFE_KAFKA_BOOTSTRAP", "PROFEFE_S3_ENDPOINT", "PROFEFE_DATABASE_URL"},
    "ingest-api": {"PROFEFE_KAFKA_BOOTSTRAP"},
    "indexer": {"PROFEFE_KAFKA_BOOTSTRAP", "PROFEFE_S3_ENDPOINT", "PROFEFE_DATABASE_URL"},
    "query-api": {"PROFEFE_S3_ENDPOINT", "PROFEFE_DATABASE_URL"},
    "compactor": {"PROFEFE_S3_ENDPOINT", "PROFEFE_DATABASE_URL"},
}
APIS = ("ingest-api", "query-api")
WORKERS = ("indexer", "compactor")


def command(role: str) -> click.Command:
    assert role in main.commands, f"`profefe {role}` is not a command (have {sorted(main.commands)})"
    return main.commands[role]


def variables(role: str | None = None) -> set[str]:
    """PROFEFE_* variables `profefe <role>` reads (every role's, and the global ones, when None)."""
    commands = [command(role)] if role else list(main.commands.values())
    found = {p.envvar for p in main.params if p.envvar}
    for cmd in commands:
        found.update(p.envvar for p in cmd.params if isinstance(p.envvar, str))
    return found


def known_variables() -> set[str]:
    return variables() | BUILD_VARIABLES


def check_args(args: list[str] | str) -> str:
    """`args` is `<role> [flags...]` of a real role with real flags; returns the role."""
    if isinstance(args, str):
        args = shlex.split(args)
    role, *rest = args
    cmd = command(role)
    opts = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
    for arg in rest:
        if arg.startswith("-"):
            name = arg.split("=", 1)[0]
            assert name in opts, f"`profefe {role}` has no option {name}"
    return role


def address_port(value: str) -> int:
    return int(value.rsplit(":", 1)[1])


def default_port(role: str, option: str = "addr") -> int | None:
    for p in command(role).params:
        if p.name == option and p.default:
            return address_port(str(p.default))
    return None


class _Queue:
    def ping(self) -> None:
        pass


class _Store:
    def ping(self) -> None:
        pass


def api_app(role: str):
    """The role's Flask app, built as the role builds it, over ports that answer nothing."""
    if role == "ingest-api":
        return wiring.ingest_api_app(_Queue(), IngestApiRole(kafka=KafkaSettings("kafka:9092")), Metrics(role))
    if role == "query-api":
        ports = wiring.QueryPorts(blobs=_Store(), meta=_Store(), windows=_Store())
        return wiring.query_api_app(ports, QueryApiRole(s3=None, database_url=""), Metrics(role))
    raise AssertionError(f"{role} is not an API")


def api_paths(role: str) -> set[str]:
    """The URL rules the role's app answers."""
    return {rule.rule for rule in api_app(role).url_map.iter_rules()}


def api_routes(role: str) -> set[tuple[str, str]]:
    """(method, URL rule) pairs the role's app answers; HEAD and OPTIONS, which Flask adds to
    every rule, left out."""
    return {(method, rule.rule) for rule in api_app(role).url_map.iter_rules()
            for method in rule.methods or () if method not in ("HEAD", "OPTIONS")}


def serve_paths(tmp: Path) -> set[str]:
    """The URL rules `profefe serve`'s app answers, over a data folder in `tmp`."""
    from services.roles import ServeRole

    cfg = ServeRole(data_dir=tmp)
    ports = wiring.open_embedded(cfg)
    try:
        return {rule.rule for rule in wiring.embedded_app(ports, cfg).url_map.iter_rules()}
    finally:
        ports.close()


def worker_paths() -> set[str]:
    """The paths a worker's --health-addr server answers."""
    server = HealthServer("127.0.0.1", 0, metrics=Metrics("worker"), checks={})
    try:
        return {p for p in ("/healthz", "/readyz", "/metrics", "/api/0/version") if server.answer(p)[0] != 404}
    finally:
        server.close()
