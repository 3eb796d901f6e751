"""Session fixtures for the real services the suites need: Kafka, S3 and PostgreSQL, and the
Toxiproxy server the network-fault tests put in front of them.

Each fixture takes its service from the `PROFEFE_TEST_*` variables when they are set (what
`scripts/services.sh env` prints, and what `make test` exports). Without them, when a Docker
engine answers, it starts the service in a container with testcontainers (for a laptop that has
Docker but did not run services.sh). Otherwise the test is `unavailable`: skipped locally,
failed in CI.

A test that uses one of these fixtures gets the matching marker (`kafka`, `s3`, `postgres`,
`toxiproxy`), so `pytest -m "not kafka"` leaves out everything that needs a broker.
"""
from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Callable, TypeVar

import pytest
import sqlalchemy as sa

from tests.support import unavailable

KAFKA_BOOTSTRAP_VAR = "PROFEFE_TEST_KAFKA_BOOTSTRAP"
S3_ENDPOINT_VAR = "PROFEFE_TEST_S3_ENDPOINT"
S3_ACCESS_KEY_VAR = "PROFEFE_TEST_S3_ACCESS_KEY"
S3_SECRET_KEY_VAR = "PROFEFE_TEST_S3_SECRET_KEY"
S3_SECURE_VAR = "PROFEFE_TEST_S3_SECURE"
S3_REGION_VAR = "PROFEFE_TEST_S3_REGION"
DATABASE_URL_VAR = "PROFEFE_TEST_DATABASE_URL"

DEFAULT_S3_REGION = "us-east-1"
# How long asking the Docker engine whether it is there may take.
DOCKER_PING_SECONDS = 3.0

# Images for the Docker fallback; the services.sh versions are pinned in scripts/.
KAFKA_IMAGE = "confluentinc/cp-kafka:7.9.0"
POSTGRES_IMAGE = "postgres:16-alpine"
# Tests send profiles of several MiB; the broker must take messages this large.
KAFKA_MAX_MESSAGE_BYTES = 32 * 1024 * 1024

FIXTURE_MARKERS = {"kafka_bootstrap": "kafka", "s3_settings": "s3", "postgres_url": "postgres",
                   "toxiproxy": "toxiproxy"}

_HOST_PORT = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")

T = TypeVar("T")


class ServiceConfigError(ValueError):
    """A PROFEFE_TEST_* variable is set to something that cannot name a service."""


@dataclass(frozen=True)
class S3TestSettings:
    """Where the S3-compatible store for the tests is and how to sign requests to it."""

    endpoint: str  # host:port, no scheme
    access_key: str
    secret_key: str
    secure: bool = False
    region: str = DEFAULT_S3_REGION


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _host_port(name: str, value: str) -> str:
    if "://" in value or not _HOST_PORT.match(value):
        raise ServiceConfigError(f"{name}={value!r}: want host:port, without a scheme")
    return value


def _flag(name: str, value: str | None) -> bool:
    if value is None:
        return False
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ServiceConfigError(f"{name}={value!r}: want 1 or 0")


def kafka_bootstrap_from_env() -> str | None:
    value = _env(KAFKA_BOOTSTRAP_VAR)
    if value is None:
        return None
    servers = [s.strip() for s in value.split(",") if s.strip()]
    for server in servers:
        _host_port(KAFKA_BOOTSTRAP_VAR, server)
    return ",".join(servers)


def s3_settings_from_env() -> S3TestSettings | None:
    endpoint = _env(S3_ENDPOINT_VAR)
    if endpoint is None:
        return None
    access_key, secret_key = _env(S3_ACCESS_KEY_VAR), _env(S3_SECRET_KEY_VAR)
    if access_key is None or secret_key is None:
        raise ServiceConfigError(f"{S3_ENDPOINT_VAR} is set but {S3_ACCESS_KEY_VAR} or {S3_SECRET_KEY_VAR} is not")
    return S3TestSettings(
        endpoint=_host_port(S3_ENDPOINT_VAR, endpoint),
        access_key=access_key,
        secret_key=secret_key,
        secure=_flag(S3_SECURE_VAR, _env(S3_SECURE_VAR)),
        region=_env(S3_REGION_VAR) or DEFAULT_S3_REGION,
    )


def postgres_url_from_env() -> str | None:
    value = _env(DATABASE_URL_VAR)
    if value is None:
        return None
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(value)
    except ArgumentError as exc:
        raise ServiceConfigError(f"{DATABASE_URL_VAR}: not a database URL ({exc})") from exc
    if url.get_backend_name() != "postgresql":
        raise ServiceConfigError(f"{DATABASE_URL_VAR}: want a postgresql URL, got {url.get_backend_name()!r}")
    return value


@functools.cache
def docker_answers() -> bool:
    """Whether a Docker engine answers now; asked once per session, quickly."""
    try:
        import docker
    except ImportError:
        cli = shutil.which("docker")
        if cli is None:
            return False
        try:
            done = subprocess.run([cli, "info"], capture_output=True, timeout=DOCKER_PING_SECONDS * 2)
        except (OSError, subprocess.SubprocessError):
            return False
        return done.returncode == 0
    try:
        client = docker.from_env(timeout=DOCKER_PING_SECONDS)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # the client raises many kinds (no socket, refused, API errors): all mean no
        return False


def _in_container(request: pytest.FixtureRequest, what: str, start: Callable[[], T]) -> T:
    """`start()` a testcontainers container that is stopped at the end of the session."""
    if not docker_answers():
        unavailable(f"{what} (set the PROFEFE_TEST_* variables from `scripts/services.sh env`, or run Docker)")
    try:
        container = start()
    except Exception as exc:  # image pull, engine or readiness failures all end the same way
        unavailable(f"{what} in a Docker container ({type(exc).__name__}: {exc})")
        raise  # unavailable() does not return; this keeps type checkers honest
    request.addfinalizer(container.stop)
    return container


def _kafka_container():
    try:
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:  # testcontainers before the community split
        from testcontainers.kafka import KafkaContainer

    container = (
        KafkaContainer(KAFKA_IMAGE)
        .with_kraft()
        .with_env("KAFKA_MESSAGE_MAX_BYTES", str(KAFKA_MAX_MESSAGE_BYTES))
        .with_env("KAFKA_REPLICA_FETCH_MAX_BYTES", str(KAFKA_MAX_MESSAGE_BYTES))
        .with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
    )
    return container.start()


def _minio_container():
    try:
        from testcontainers.community.minio import MinioContainer
    except ImportError:
        from testcontainers.minio import MinioContainer

    return MinioContainer().start()


def _postgres_container():
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:
        from testcontainers.postgres import PostgresContainer

    return PostgresContainer(POSTGRES_IMAGE, dbname="profefe_test", driver="psycopg").start()


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest) -> str:
    """`host:port` of a Kafka broker that accepts messages of at least 16 MiB."""
    from_env = kafka_bootstrap_from_env()
    if from_env is not None:
        return from_env
    return _in_container(request, "a Kafka broker", _kafka_container).get_bootstrap_server()


@pytest.fixture(scope="session")
def s3_settings(request: pytest.FixtureRequest) -> S3TestSettings:
    """An S3-compatible store and credentials that may create buckets."""
    from_env = s3_settings_from_env()
    if from_env is not None:
        return from_env
    config = _in_container(request, "an S3-compatible store", _minio_container).get_config()
    return S3TestSettings(endpoint=config["endpoint"], access_key=config["access_key"],
                          secret_key=config["secret_key"])


@pytest.fixture(scope="session")
def postgres_url(request: pytest.FixtureRequest) -> str:
    """A SQLAlchemy URL (postgresql+psycopg) of a database the tests may create tables in."""
    from_env = postgres_url_from_env()
    if from_env is not None:
        return from_env
    return _in_container(request, "a PostgreSQL server", _postgres_container).get_connection_url()


@pytest.fixture(scope="session")
def toxiproxy():
    """The Toxiproxy server scripts/services.sh runs (no container fallback), as an API client."""
    from tests.toxiproxy import TOXIPROXY_VAR, Toxiproxy, ToxiproxyError

    address = _env(TOXIPROXY_VAR)
    if address is None:
        unavailable(f"Toxiproxy (${TOXIPROXY_VAR}, from scripts/services.sh env)")
    client = Toxiproxy(_host_port(TOXIPROXY_VAR, address))
    try:
        client.version()
    except ToxiproxyError as exc:
        unavailable(f"Toxiproxy at {address} ({exc})")
    return client


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            marker = FIXTURE_MARKERS.get(fixture)
            if marker is not None and item.get_closest_marker(marker) is None:
                item.add_marker(getattr(pytest.mark, marker))


# A database of its own ------------------------------------------------------------------------


class Database:
    """A PostgreSQL database of its own, made on the server behind `admin_url` and dropped after."""

    def __init__(self, admin_url: str, name: str) -> None:
        self.name = name
        self._admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        with self._admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        self.url = sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        self.engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)

    def truncate(self) -> None:
        """Empty every table but the migration marker (the schema stays as migrate made it)."""
        with self.engine.begin() as conn:
            tables = [r[0] for r in conn.execute(sa.text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"))]
            if tables:
                conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE"))

    def drop(self) -> None:
        self.engine.dispose()
        with self._admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self._admin.dispose()


# Test buckets and topics -------------------------------------------------------------------------
# Every test makes its own and drops it at teardown, so runs do not pile up data on the services.


def minio_client(settings):
    """A `minio` client for settings given as S3TestSettings or a mapping (imported lazily)."""
    from collections.abc import Mapping

    from minio import Minio

    s = settings if isinstance(settings, Mapping) else vars(settings)
    return Minio(s["endpoint"], access_key=s.get("access_key"), secret_key=s.get("secret_key"),
                 secure=bool(s.get("secure")), region=s.get("region") or None)


def read_object(client, bucket: str, name: str) -> bytes:
    """The whole of an object, its connection handed back to the client's pool."""
    response = client.get_object(bucket, name)
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()


def drop_bucket(settings, bucket: str) -> None:
    """Delete `bucket` and everything in it; a missing bucket is fine."""
    from minio.deleteobjects import DeleteObject
    from minio.error import S3Error

    client = minio_client(settings)
    try:
        names = [DeleteObject(o.object_name) for o in client.list_objects(bucket, recursive=True)]
        for failure in client.remove_objects(bucket, names):
            raise AssertionError(f"could not delete {failure.name} from {bucket}: {failure.message}")
        client.remove_bucket(bucket)
    except S3Error as exc:
        if exc.code != "NoSuchBucket":
            raise


def drop_topics(bootstrap: str, *topics: str) -> None:
    """Delete test topics: the broker keeps every topic (and its partitions' files) until told,
    and test runs make a few each."""
    from kafka import KafkaAdminClient
    from kafka.errors import UnknownTopicOrPartitionError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="profefe-tests")
    try:
        existing = set(admin.list_topics())
        gone = [t for t in topics if t in existing]
        if gone:
            try:
                admin.delete_topics(gone, timeout_ms=30_000)
            except UnknownTopicOrPartitionError:
                pass  # deleted meanwhile
    finally:
        admin.close()
