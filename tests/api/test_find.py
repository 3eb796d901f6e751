"""GET /api/0/profiles: the window, ordering, limit, type filter and their errors."""
from __future__ import annotations

import pytest

from tests.api import pprofs
from tests.api.helpers import WINDOW, find, upload


def ids(reply):
    assert reply.status == 200, reply.data
    return [p["id"] for p in reply.body]


def test_missing_service(api):
    r = api.get("/api/0/profiles", WINDOW)
    assert (r.status, r.error) == (400, 'bad request: missing "service"')


@pytest.mark.parametrize("missing", ["from", "to"])
def test_missing_from_or_to(api, missing):
    query = {"service": "svc", **WINDOW}
    del query[missing]
    r = api.get("/api/0/profiles", query)
    assert (r.status, r.error) == (400, f'bad request: missing "{missing}"')


def test_bad_time(api):
    r = api.get("/api/0/profiles", {"service": "svc", "from": "last week", "to": "2026-01-01T00:00:00"})
    assert r.status == 400 and r.error.startswith('bad request: bad "from" "last week": time in unsupported format')


def test_from_after_to(api):
    r = api.get("/api/0/profiles", {"service": "svc", "from": "2026-01-01T00:00:01", "to": "2026-01-01T00:00:00"})
    assert (r.status, r.error) == (400, 'bad request: "from" is after "to"')


def test_nothing_found(api):
    r = find(api, service="nobody")
    assert (r.status, r.json) == (404, {"code": 404, "error": "nothing found"})


def test_unknown_type(api):
    r = find(api, service="svc", type="CPU")
    assert r.status == 400 and r.error.startswith('bad request: unknown profile type "CPU" (want one of cpu, ')


@pytest.mark.parametrize(
    "start, end, found",
    [
        ("2026-01-01T21:14:00", "2026-01-01T21:14:00", True),  # inclusive at both ends
        ("2026-01-01T21:00:00", "2026-01-01T21:14:00", True),
        ("2026-01-01T21:14:00", "2026-01-01T22:00:00", True),
        ("2026-01-01T21:00:00", "2026-01-01T21:13:59", False),
        ("2026-01-01T21:14:01", "2026-01-01T22:00:00", False),
        ("2026-01-01T21:14:00.000", "2026-01-01T21:14:00.999", True),  # second precision
        ("2026-01-01T21:14:00Z", "2026-01-01T21:14:00Z", True),
        ("2026-01-01T23:14:00+02:00", "2026-01-01T23:14:00+02:00", True),
    ],
)
def test_window_is_inclusive_at_second_precision(api, start, end, found):
    got = upload(api, created_at="2026-01-01T21:14:00.600")
    assert got["created_at"] == "2026-01-01T21:14:00Z"
    r = api.get("/api/0/profiles", {"service": "svc", "from": start, "to": end})
    if found:
        assert ids(r) == [got["id"]]
    else:
        assert r.status == 404


def test_sorted_ascending_by_created_at_then_id(api):
    late = upload(api, created_at="2026-01-01T00:00:05")["id"]
    tied = sorted(upload(api, created_at="2026-01-01T00:00:01", body=pprofs.cpu(value=1000 + i))["id"] for i in range(3))
    early = upload(api, created_at="2026-01-01T00:00:00")["id"]
    assert ids(find(api, service="svc")) == [early, *tied, late]


def test_limit_keeps_the_newest_returned_ascending(api):
    made = [upload(api, created_at=f"2026-01-01T00:00:0{i}")["id"] for i in range(5)]
    assert ids(find(api, service="svc", limit="2")) == made[3:]
    assert ids(find(api, service="svc", limit="1")) == made[4:]
    assert ids(find(api, service="svc", limit="10")) == made


@pytest.mark.parametrize("limit", ["0", "-1", "x", "1.5", ""])
def test_bad_limit(api, limit):
    upload(api)
    r = find(api, service="svc", limit=limit)
    assert (r.status, r.error) == (400, f'bad request: bad "limit" "{limit}": want a positive integer')


def test_no_type_finds_every_type(api):
    cpu = upload(api, created_at="2026-01-01T00:00:00")["id"]
    heap = upload(api, ptype="heap", body=pprofs.heap(), created_at="2026-01-01T00:00:01")["id"]
    trace = upload(api, ptype="trace", body=b"trace", created_at="2026-01-01T00:00:02")["id"]
    assert ids(find(api, service="svc")) == [cpu, heap, trace]
    assert ids(find(api, service="svc", type="")) == [cpu, heap, trace]
    assert ids(find(api, service="svc", type="heap")) == [heap]
    assert ids(find(api, service="svc", type=" trace ")) == [trace]


def test_only_the_asked_service(api):
    mine = upload(api, service="a", created_at="2026-01-01T00:00:00")["id"]
    upload(api, service="ab", created_at="2026-01-01T00:00:00")
    assert ids(find(api, service="a")) == [mine]


def test_unknown_parameters_are_ignored(api):
    got = upload(api)["id"]
    assert ids(find(api, service="svc", instance_id="pod-7", foo="bar")) == [got]


def test_profile_json_shape(api):
    upload(api, labels="k=v", created_at="2026-01-01T00:00:00")
    [p] = find(api, service="svc").body
    assert set(p) == {"id", "type", "service", "labels", "created_at"}
    assert p["labels"] == [{"key": "k", "value": "v"}] and p["created_at"] == "2026-01-01T00:00:00Z"
