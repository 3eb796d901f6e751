"""GET /api/0/profiles/merge and GET /api/0/profiles/<id1>+<id2>: merged pprof downloads."""
from __future__ import annotations

import pytest

from shared import pprof
from tests.api import pprofs
from tests.api.helpers import WINDOW, upload

MiB = 1 << 20


def parsed(reply):
    assert reply.status == 200, reply.data
    assert reply.headers["Content-Type"] == "application/octet-stream"
    assert reply.headers["Content-Disposition"].startswith('attachment; filename="')
    assert reply.data[:2] == b"\x1f\x8b"  # always gzip
    return pprof.parse(reply.data, max_decompressed=64 * MiB)


def merge(api, **params):
    return api.get("/api/0/profiles/merge", {**WINDOW, **params})


def test_merge_sums_every_match(api):
    for i, value in enumerate((10, 20, 30)):
        upload(api, body=pprofs.cpu(value=value), created_at=f"2026-01-01T00:00:0{i}")
    upload(api, ptype="heap", body=pprofs.heap())
    merged = parsed(merge(api, service="svc", type="cpu"))
    assert pprof.totals(merged) == (3, 60)
    assert pprof.sample_types(merged) == pprofs.CPU_TYPES


def test_merge_filename(api):
    upload(api)
    r = merge(api, service="svc", type="cpu")
    assert r.headers["Content-Disposition"] == 'attachment; filename="svc-cpu-merged.pb.gz"'


def test_merge_honours_labels_window_and_limit(api):
    upload(api, body=pprofs.cpu(value=1), labels="env=prod", created_at="2026-01-01T00:00:00")
    upload(api, body=pprofs.cpu(value=2), labels="env=dev", created_at="2026-01-01T00:00:01")
    upload(api, body=pprofs.cpu(value=4), labels="env=prod", created_at="2026-01-01T00:00:02")
    upload(api, body=pprofs.cpu(value=8), labels="env=prod", created_at="2026-01-01T00:00:03")
    assert pprof.totals(parsed(merge(api, service="svc", type="cpu", labels="env=prod"))) == (3, 13)
    assert pprof.totals(parsed(merge(api, service="svc", type="cpu", labels="env=prod", limit="2"))) == (2, 12)
    r = api.get("/api/0/profiles/merge", {"service": "svc", "type": "cpu",
                                          "from": "2026-01-01T00:00:01", "to": "2026-01-01T00:00:02"})
    assert pprof.totals(parsed(r)) == (2, 6)


@pytest.mark.parametrize("ptype", [None, ""])
def test_merge_needs_a_type(api, ptype):
    upload(api)
    params = {"service": "svc"} if ptype is None else {"service": "svc", "type": ptype}
    r = merge(api, **params)
    assert (r.status, r.error) == (400, 'bad request: missing "type"')


def test_merge_refuses_trace(api):
    upload(api, ptype="trace", body=b"trace")
    r = merge(api, service="svc", type="trace")
    assert (r.status, r.error) == (400, 'bad request: "trace" profiles cannot be merged')


def test_merge_unknown_type(api):
    r = merge(api, service="svc", type="walls")
    assert r.status == 400 and r.error.startswith('bad request: unknown profile type "walls" (want one of cpu, ')


def test_merge_missing_service_and_window(api):
    assert merge(api, type="cpu").error == 'bad request: missing "service"'
    r = api.get("/api/0/profiles/merge", {"service": "svc", "type": "cpu", "from": "2026-01-01T00:00:00"})
    assert (r.status, r.error) == (400, 'bad request: missing "to"')


def test_merge_of_nothing(api):
    r = merge(api, service="svc", type="cpu")
    assert (r.status, r.error) == (404, "nothing found")


def test_merge_of_incompatible_profiles_is_422(api):
    upload(api, created_at="2026-01-01T00:00:00")
    upload(api, body=pprofs.build((("wall", "nanoseconds"),), ((("main.main",), (5,)),)),
           created_at="2026-01-01T00:00:01")
    r = merge(api, service="svc", type="cpu")
    assert r.status == 422 and r.json["code"] == 422
    assert r.error.startswith("cannot merge: ")


def test_get_by_ids_merges_them(api):
    a = upload(api, body=pprofs.cpu(value=5))["id"]
    b = upload(api, body=pprofs.cpu(value=7))["id"]
    r = api.get(f"/api/0/profiles/{a}+{b}")
    assert pprof.totals(parsed(r)) == (2, 12)
    assert r.headers["Content-Disposition"] == 'attachment; filename="svc-cpu-merged.pb.gz"'


def test_get_by_ids_a_repeated_id_counts_once(api):
    a = upload(api, body=pprofs.cpu(value=5))["id"]
    b = upload(api, body=pprofs.cpu(value=7))["id"]
    assert pprof.totals(parsed(api.get(f"/api/0/profiles/{a}+{b}+{a}"))) == (2, 12)


@pytest.mark.parametrize("unknown", ["0000000000000000000a", "not-an-id"])
def test_get_by_ids_names_the_unknown_one(api, unknown):
    a = upload(api)["id"]
    r = api.get(f"/api/0/profiles/{a}+{unknown}")
    assert (r.status, r.error) == (404, f'nothing found: no profile with id "{unknown}"')


def test_get_by_ids_refuses_a_trace(api):
    a = upload(api)["id"]
    t = upload(api, ptype="trace", body=b"trace")["id"]
    r = api.get(f"/api/0/profiles/{a}+{t}")
    assert (r.status, r.error) == (400, f'bad request: profile "{t}" is a trace and cannot be merged')


def test_get_by_ids_of_different_types_is_422(api):
    a = upload(api)["id"]
    h = upload(api, ptype="heap", body=pprofs.heap())["id"]
    r = api.get(f"/api/0/profiles/{a}+{h}")
    assert r.status == 422 and r.error.startswith("cannot merge: ")
