"""The HTTP behaviour suite's deployments.

`api` is one running collector seen only through HTTP: `.post(query, body)` and `.get(path, query)`
return a `Reply`. Today it is the embedded wiring behind Flask's test client, over a fresh data
folder; another deployment joins by adding a param to `api_factory` that starts it with the same
ingest limits.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import urlencode

import pytest

from services import wiring
from services.config import ServeConfig
from services.ingest_api.config import IngestConfig

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
        cfg = ServeConfig(data_dir=self.data_dir, ingest=self.ingest)
        self._ports = wiring.open_embedded(cfg)
        self._client = wiring.embedded_app(self._ports, cfg).test_client()

    def request(self, method: str, path: str, query: Query = None, body: bytes | None = None) -> Reply:
        qs = _qs(query)
        url = f"{path}?{qs}" if qs else path
        r = self._client.open(url, method=method, data=body)
        return Reply(r.status_code, {k: v for k, v in r.headers.items()}, r.get_data())

    def post(self, query: Query, body: bytes) -> Reply:
        return self.request("POST", "/api/0/profiles", query, body)

    def get(self, path: str, query: Query = None) -> Reply:
        return self.request("GET", path, query)

    def close(self) -> None:
        self._ports.close()


ApiFactory = Callable[..., Any]


@pytest.fixture(params=["embedded"])
def api_factory(request, tmp_path) -> Iterator[ApiFactory]:
    """Builds a deployment with the given ingest limits (IngestConfig field names)."""
    made = []

    def make(**limits: Any):
        cfg = replace(IngestConfig(), **limits)
        if request.param == "embedded":
            made.append(EmbeddedApi(tmp_path / f"data{len(made)}", cfg))
        return made[-1]

    yield make
    for deployment in made:
        deployment.close()


@pytest.fixture
def api(api_factory):
    return api_factory()
