"""The `labels` parameter: profefe's grammar, on upload and in the find filter.

Queries are written raw here, as they travel on the wire, because the point is the decoding.
"""
from __future__ import annotations

import pytest

from tests.api import pprofs
from tests.api.helpers import find, upload


def labels_of(api, raw_labels: str):
    r = api.post(f"service=svc&type=cpu&labels={raw_labels}", pprofs.cpu())
    assert r.status == 200, r.data
    return [(lb["key"], lb["value"]) for lb in r.body.get("labels", [])]


@pytest.mark.parametrize(
    "raw, want",
    [
        ("a=1,b=2", [("a", "1"), ("b", "2")]),
        ("b=2,a=1", [("a", "1"), ("b", "2")]),  # sorted by key, as profefe
        ("version=1%252C2", [("version", "1,2")]),  # the agent double-encodes ","
        ("version=1%252B2", [("version", "1+2")]),  # ... and "+"
        ("k%253D=v%253D", [("k=", "v=")]),
        ("path=%252Fa%2520b", [("path", "/a b")]),
        (",a=1", [("a", "1")]),  # a leading comma is fine
        ("a=1,,b=2,", [("a", "1"), ("b", "2")]),  # empty chunks skipped
        ("k=a=b", [("k", "a=b")]),  # split on the first "="
        ("=v,a=1", [("a", "1")]),  # empty key skipped
        ("a=", [("a", "")]),
        ("a", [("a", "")]),
        ("%20a%20=%20b%20", [("a", "b")]),  # trimmed
        ("a=1,a=2", [("a", "1"), ("a", "2")]),  # duplicates kept, in order
        ("v=x%2By", [("v", "x y")]),  # a single-encoded "+" is a space, as Go's QueryUnescape
    ],
)
def test_labels_grammar(api, raw, want):
    assert labels_of(api, raw) == want


def test_no_labels_at_all(api):
    assert labels_of(api, "") == []
    assert labels_of(api, ",,,") == []


def test_a_bad_escape_is_refused(api):
    r = api.post("service=svc&type=cpu&labels=a%3D%25zz", pprofs.cpu())
    assert (r.status, r.error) == (400, 'bad request: bad "labels" "a=%zz": invalid URL escape "%zz"')


def test_find_matches_an_and_of_exact_pairs(api):
    both = upload(api, labels="env=prod,region=eu", created_at="2026-01-01T00:00:00")["id"]
    prod = upload(api, labels="env=prod,region=us", created_at="2026-01-01T00:00:01")["id"]
    upload(api, labels="env=dev,region=eu", created_at="2026-01-01T00:00:02")
    assert [p["id"] for p in find(api, service="svc", labels="env=prod").body] == [both, prod]
    assert [p["id"] for p in find(api, service="svc", labels="region=eu,env=prod").body] == [both]
    r = find(api, service="svc", labels="env=prod,region=ap")
    assert (r.status, r.error) == (404, "nothing found")


def test_find_decodes_labels_the_same_way(api):
    # A dict query is encoded once more by the client, so this arrives as `version%3D1%252C2`.
    got = upload(api, labels="version=1%2C2", created_at="2026-01-01T00:00:00")["id"]
    r = api.get("/api/0/profiles", "service=svc&from=2026-01-01T00:00:00&to=2026-01-01T00:00:00"
                                   "&labels=version%3D1%252C2")
    assert [p["id"] for p in r.body] == [got]


def test_find_matches_any_of_duplicate_keys(api):
    got = upload(api, labels="a=1,a=2", created_at="2026-01-01T00:00:00")["id"]
    assert [p["id"] for p in find(api, service="svc", labels="a=2").body] == [got]
    assert [p["id"] for p in find(api, service="svc", labels="a=1,a=2").body] == [got]
