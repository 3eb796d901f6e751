"""POST /api/0/profiles: what is accepted, what is refused and with which message."""
from __future__ import annotations

import gzip
from datetime import datetime, timezone

import pytest

from shared import pprof
from tests.api import pprofs
from tests.api.helpers import find, upload

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def test_upload_answers_the_profile_json(api):
    r = api.post({"service": "svc", "type": "cpu", "labels": "b=2,a=1", "created_at": "2026-01-01T00:00:00"},
                 pprofs.cpu())
    assert r.status == 200
    assert r.headers["Content-Type"] == "application/json"
    body = r.json["body"]
    assert set(body) == {"id", "type", "service", "labels", "created_at"}
    assert len(body["id"]) == 20
    assert body["type"] == "cpu" and body["service"] == "svc"
    assert body["labels"] == [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]
    assert body["created_at"] == "2026-01-01T00:00:00Z"


def test_labels_are_omitted_when_empty(api):
    assert "labels" not in upload(api)


def test_missing_service(api):
    r = api.post({"type": "cpu"}, pprofs.cpu())
    assert (r.status, r.json) == (400, {"code": 400, "error": 'bad request: missing "service"'})


@pytest.mark.parametrize("ptype", [None, "", " "])
def test_missing_type(api, ptype):
    query = {"service": "svc"} if ptype is None else {"service": "svc", "type": ptype}
    r = api.post(query, pprofs.cpu())
    assert (r.status, r.error) == (400, 'bad request: missing "type"')


@pytest.mark.parametrize("ptype", ["CPU", "cpux", "profile"])
def test_unknown_type_names_the_value_and_the_known_ones(api, ptype):
    r = api.post({"service": "svc", "type": ptype}, pprofs.cpu())
    assert (r.status, r.error) == (400, f'bad request: unknown profile type "{ptype}" (want one of cpu, heap, '
                                        'block, mutex, goroutine, threadcreate, wall, trace, other)')


def test_type_is_trimmed(api):
    assert upload(api, ptype=" cpu ")["type"] == "cpu"


def test_malformed_profile_names_the_reason(api):
    r = api.post({"service": "svc", "type": "cpu"}, b"\x0a\xff\xff not a profile")
    assert r.status == 400
    assert r.error.startswith("malformed profile (") and r.error.endswith(")")


def test_empty_body_is_malformed(api):
    r = api.post({"service": "svc", "type": "cpu"}, b"")
    assert r.status == 400 and r.error.startswith("malformed profile (")


def test_profile_without_samples_is_refused(api):
    body = pprofs.build(samples=((("main.main",), (0, 0)),))
    r = api.post({"service": "svc", "type": "cpu"}, body)
    assert (r.status, r.error) == (400, "malformed profile (no samples)")


def test_raw_protobuf_is_accepted(api):
    assert upload(api, body=pprofs.build(gzip=False))["type"] == "cpu"


def test_created_at_comes_from_time_nanos_first(api):
    body = pprofs.cpu(time_nanos=(T0 + 3600) * 1_000_000_000 + 123_456_789)
    got = upload(api, body=body, created_at="2026-01-01T00:00:00")
    assert got["created_at"] == "2026-01-01T01:00:00Z"


def test_created_at_comes_from_the_parameter_without_time_nanos(api):
    got = upload(api, body=pprofs.cpu(time_nanos=0), created_at="2026-03-04T05:06:07.89")
    assert got["created_at"] == "2026-03-04T05:06:07Z"


def test_created_at_accepts_rfc3339_with_a_zone(api):
    got = upload(api, body=pprofs.cpu(time_nanos=0), created_at="2026-03-04T07:06:07+02:00")
    assert got["created_at"] == "2026-03-04T05:06:07Z"


def test_created_at_falls_back_to_the_server_clock(api):
    before = datetime.now(timezone.utc).replace(microsecond=0)
    got = upload(api, body=pprofs.cpu(time_nanos=0))
    after = datetime.now(timezone.utc)
    stamp = datetime.strptime(got["created_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert before <= stamp <= after


@pytest.mark.parametrize("raw", ["yesterday", "2026-01-01", "2026-13-01T00:00:00", "1767225600"])
def test_bad_created_at(api, raw):
    r = api.post({"service": "svc", "type": "cpu", "created_at": raw}, pprofs.cpu())
    assert r.status == 400
    assert r.error.startswith(f'bad request: bad "created_at" "{raw}": time in unsupported format')


def test_trace_is_stored_unread_with_created_at(api):
    body = b"go 1.22 trace\x00\x01\x02 not pprof at all"
    got = upload(api, ptype="trace", body=body, created_at="2026-02-03T04:05:06")
    assert got["type"] == "trace" and got["created_at"] == "2026-02-03T04:05:06Z"
    r = api.get(f"/api/0/profiles/{got['id']}")
    assert r.status == 200 and r.data == body
    assert r.headers["Content-Disposition"] == f'attachment; filename="svc-trace-{got["id"]}.trace"'


def test_empty_trace_is_refused(api):
    r = api.post({"service": "svc", "type": "trace"}, b"")
    assert (r.status, r.error) == (400, "bad request: empty trace")


@pytest.mark.parametrize(
    "declared, body, actual",
    [
        ("cpu", pprofs.heap(), "heap"),
        ("heap", pprofs.cpu(), "cpu"),
        ("goroutine", pprofs.build((("contentions", "count"), ("delay", "nanoseconds"))), "block"),
        ("threadcreate", pprofs.build((("goroutine", "count"),), ((("main.main",), (3,)),)), "goroutine"),
    ],
)
def test_content_that_contradicts_the_type_is_refused(api, declared, body, actual):
    r = api.post({"service": "svc", "type": declared}, body)
    assert r.status == 400
    assert r.error.startswith(f'bad request: profile declared as "{declared}" holds the sample types of "{actual}"')


@pytest.mark.parametrize(
    "declared, body",
    [
        ("other", pprofs.heap()),
        ("mutex", pprofs.build((("contentions", "count"), ("delay", "nanoseconds")))),
        ("cpu", pprofs.build((("wall", "nanoseconds"),), ((("main.main",), (5,)),))),
    ],
    ids=["other-takes-anything", "block-shaped-mutex", "unfamiliar-sample-types"],
)
def test_content_that_does_not_contradict_is_accepted(api, declared, body):
    assert upload(api, ptype=declared, body=body)["type"] == declared


def test_body_over_the_limit(api_factory):
    api = api_factory(max_body_bytes=1024)
    r = api.post({"service": "svc", "type": "trace"}, b"x" * 1025)
    assert (r.status, r.error) == (413, "request body too large: over 1024 bytes")
    assert upload(api, ptype="trace", body=b"x" * 1024)


def test_gzip_bomb_is_refused(api_factory):
    api = api_factory(max_decompressed_bytes=1 << 20)
    bomb = gzip.compress(b"\x00" * (32 << 20), compresslevel=9)
    assert len(bomb) < 64 << 10
    r = api.post({"service": "svc", "type": "cpu"}, bomb)
    assert (r.status, r.error) == (413, f"profile too large: over {1 << 20} bytes once decompressed")


def test_too_many_labels(api_factory):
    api = api_factory(max_labels=3)
    assert upload(api, labels="a=1,b=2,c=3")
    r = api.post({"service": "svc", "type": "cpu", "labels": "a=1,b=2,c=3,d=4"}, pprofs.cpu())
    assert (r.status, r.error) == (400, "bad request: more than 3 labels")


def test_label_value_too_long(api_factory):
    api = api_factory(max_label_value_chars=8)
    r = api.post({"service": "svc", "type": "cpu", "labels": "k=123456789"}, pprofs.cpu())
    assert (r.status, r.error) == (400, "bad request: value of label 'k' is longer than 8 characters")


def test_label_key_too_long(api_factory):
    api = api_factory(max_label_key_chars=4)
    r = api.post({"service": "svc", "type": "cpu", "labels": "abcde=1"}, pprofs.cpu())
    assert r.status == 400 and r.error.endswith("is longer than 4 characters")


def test_service_too_long(api_factory):
    api = api_factory(max_service_chars=5)
    r = api.post({"service": "abcdef", "type": "cpu"}, pprofs.cpu())
    assert (r.status, r.error) == (400, 'bad request: "service" is longer than 5 characters')


@pytest.mark.parametrize("service", ["a\x01b", "a\nb", "tab\there", "zero\u200bwidth"])
def test_service_with_control_characters(api, service):
    r = api.post({"service": service, "type": "cpu"}, pprofs.cpu())
    assert (r.status, r.error) == (400, 'bad request: "service" contains control characters')


def test_unknown_parameters_are_ignored(api):
    assert upload(api, instance_id="pod-1", whatever="x")["service"] == "svc"


def test_an_accepted_upload_is_immediately_findable(api):
    got = upload(api, created_at="2026-01-01T00:00:00")
    r = find(api, service="svc")
    assert [p["id"] for p in r.body] == [got["id"]]
    stored = api.get(f"/api/0/profiles/{got['id']}")
    assert pprof.totals(pprof.parse(stored.data, max_decompressed=1 << 20)) == (1, 10_000_000)


def test_the_same_upload_again_is_one_profile_with_the_first_ones_id(api):
    dated = upload(api, service="dated", labels="b=2,a=1", created_at="2026-01-01T00:00:00")
    assert upload(api, service="dated", labels="b=2,a=1", created_at="2026-01-01T00:00:00") == dated  # a retry
    # The same pairs in another order are the same labels; without a time of its own the profile
    # is still the same one, though the reply tells this upload's arrival.
    assert upload(api, labels="a=1,b=2")["id"] == upload(api, labels="b=2,a=1")["id"]
    first = upload(api, labels="b=2,a=1")
    other_labels = upload(api, labels="a=1,b=3")
    other_bytes = upload(api, labels="a=1,b=2", body=pprofs.cpu(value=12_345))
    other_service = upload(api, service="svc2", labels="a=1,b=2")
    ids = {first["id"], other_labels["id"], other_bytes["id"], other_service["id"]}
    assert len(ids) == 4
    listed = [p["id"] for p in find(api, service="svc").body]
    assert sorted(listed) == sorted([first["id"], other_labels["id"], other_bytes["id"]])


def test_a_repeat_of_a_profile_with_its_own_time_answers_the_same_json(api):
    body = pprofs.cpu(time_nanos=1_767_225_600 * 10**9 + 5)
    first = upload(api, body=body, created_at="2026-03-01T00:00:00")  # the profile's own time wins
    assert upload(api, body=body) == first
    assert first["created_at"] == "2026-01-01T00:00:00Z"
