"""Shorthands the behaviour suite shares."""
from __future__ import annotations

from typing import Any

from tests.api import pprofs

WINDOW = {"from": "2020-01-01T00:00:00", "to": "2030-01-01T00:00:00"}


def upload(api, service: str = "svc", ptype: str = "cpu", body: bytes | None = None, **params: str) -> dict[str, Any]:
    """POST a profile that must be accepted; returns the profile JSON."""
    query = {"service": service, "type": ptype, **params}
    r = api.post(query, pprofs.cpu() if body is None else body)
    assert r.status == 200, r.data
    assert r.json["code"] == 200
    return r.body


def find(api, **params: str):
    return api.get("/api/0/profiles", {**WINDOW, **params})
