"""The HTTP behaviour suite's deployments.

`api` is one running collector seen only through HTTP: `.post(query, body)` and `.get(path, query)`
return a `Reply`. Two deployments: `embedded` is the embedded wiring behind Flask's test client,
over a fresh data folder; `distributed` is the ingest-api, indexer and query-api daemons as
subprocesses over the real Kafka, S3 and PostgreSQL, with emptied tables for every test.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import urlencode

import pytest

from services import wiring
from services.roles import ServeRole
from services.ingest_api.config import IngestConfig
from tests.e2e import distributed

Query = str | Mapping[str, str] | None


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    data: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.data)

    @property
    def body(self) -> Any:
        return self.json["body"]

    @property
    def error(self) -> str:
        return self.json["error"]


def _qs(query: Query) -> str:
    if query is None:
        return ""
    if isinstance(query, str):
        return query
    return urlencode(query)


@dataclass
class EmbeddedApi:
    """`profefe serve`'s app, in-process."""

    data_dir: Path
    ingest: IngestConfig = field(default_factory=IngestConfig)

    def __post_init__(self) -> None:
        cfg = ServeRole(data_dir=self.data_dir, ingest=self.ingest)
        self._ports = wiring.open_embedded(cfg)
        self._client = wiring.embedded_app(self._ports, cfg).test_client()

    def request(self, method: str, path: str, query: Query = None, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> Reply:
        qs = _qs(query)
        url = f"{path}?{qs}" if qs else path
        r = self._client.open(url, method=method, data=body, headers=dict(headers or {}))
        return Reply(r.status_code, {k: v for k, v in r.headers.items()}, r.get_data())

    def post(self, query: Query, body: bytes) -> Reply:
        return self.request("POST", "/api/0/profiles", query, body)

    def get(self, path: str, query: Query = None) -> Reply:
        return self.request("GET", path, query)

    def close(self) -> None:
        self._ports.close()


class DistributedApi:
    """The distributed daemons over HTTP: `POST /api/0/profiles` goes to an ingest-api started with
    the asked limits, everything else to the query-api (as a load balancer would route them).

    Indexing is asynchronous here, so every read first waits until each profile acknowledged so
    far is visible (`wait_indexed`); a profile that never shows up fails the test.
    """

    def __init__(self, deployment: DistributedDeployment, ingest_url: str) -> None:
        self._deployment = deployment
        self._ingest_url = ingest_url
        self.acknowledged: list[str] = []

    def request(self, method: str, path: str, query: Query = None, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> Reply:
        qs = _qs(query)
        target = f"{path}?{qs}" if qs else path
        if method == "POST" and path == "/api/0/profiles":
            status, answered, data = distributed.request(self._ingest_url, method, target, body, headers=headers)
            if status == 200:
                self.acknowledged.append(json.loads(data)["body"]["id"])
        else:
            self.wait_indexed()
            status, answered, data = distributed.request(self._deployment.query_url, method, target, body,
                                                         headers=headers)
        assert status, f"no answer to {method} {target}"
        return Reply(status, answered, data)

    def post(self, query: Query, body: bytes) -> Reply:
        return self.request("POST", "/api/0/profiles", query, body)

    def get(self, path: str, query: Query = None) -> Reply:
        return self.request("GET", path, query)

    def wait_indexed(self) -> None:
        distributed.wait_visible(self._deployment.query_url, self.acknowledged)

    def close(self) -> None:
        self.wait_indexed()


class DistributedDeployment:
    """One stack for the session: migrate, an indexer, a query-api, and one ingest-api per set of
    limits the suite asks for. Each test starts from empty tables."""

    def __init__(self, stack: distributed.Stack) -> None:
        self.stack = stack
        stack.migrate()
        self.query = stack.start("query-api")
        self.indexer = stack.start("indexer")
        self._ingest: dict[tuple, str] = {}
        for daemon in (self.query, self.indexer):
            stack.wait_ready(daemon)
        self.query_url = self.query.url

    def ingest_url(self, cfg: IngestConfig) -> str:
        changed = tuple(sorted((k, v) for k, v in vars(cfg).items() if v != getattr(IngestConfig(), k)))
        if changed not in self._ingest:
            flags = [arg for k, v in changed for arg in (f"--{k.replace('_', '-')}", str(v))]
            daemon = self.stack.start("ingest-api", *flags)
            self.stack.wait_ready(daemon)
            self._ingest[changed] = daemon.url
        return self._ingest[changed]


@pytest.fixture(scope="session")
def distributed_deployment(request, tmp_path_factory) -> Iterator[DistributedDeployment]:
    kafka, s3, pg = distributed.real_services(request)
    stack = distributed.Stack(kafka, s3, pg, tmp_path_factory.mktemp("distributed"))
    try:
        deployment = DistributedDeployment(stack)
        yield deployment
        codes = stack.stop()
        assert all(code == 0 for code in codes.values()), f"daemons did not stop cleanly: {codes}"
    finally:
        stack.close()


ApiFactory = Callable[..., Any]


@pytest.fixture(params=["embedded", pytest.param("distributed", marks=[pytest.mark.e2e, pytest.mark.kafka,
                                                                         pytest.mark.s3, pytest.mark.postgres])])
def api_factory(request, tmp_path) -> Iterator[ApiFactory]:
    """Builds a deployment with the given ingest limits (IngestConfig field names)."""
    made = []
    deployment = None
    if request.param == "distributed":
        deployment = request.getfixturevalue("distributed_deployment")
        deployment.stack.db.truncate()

    def make(**limits: Any):
        cfg = replace(IngestConfig(), **limits)
        if request.param == "embedded":
            made.append(EmbeddedApi(tmp_path / f"data{len(made)}", cfg))
        elif request.param == "distributed":
            made.append(DistributedApi(deployment, deployment.ingest_url(cfg)))
        return made[-1]

    yield make
    for d in made:
        d.close()


@pytest.fixture
def api(api_factory):
    return api_factory()
