"""Pyroscope's ingest routes on the embedded app: what lands in the store, and hostile input
refused with a 4xx in each protocol's error shape, nothing stored, the app still answering."""
from __future__ import annotations

import base64
import gzip
import json
from dataclasses import replace

import pytest

from services import wiring
from services.ingest_api.config import IngestConfig
from services.ingest_api.push_pb2 import PushRequest
from services.roles import ServeRole
from services.web.auth import AuthConfig
from shared import pprof
from tests.api import pprofs
from tests.api.helpers import WINDOW

PUSH = "/push.v1.PusherService/Push"
T0 = 1_700_000_000  # 2023-11-14T22:13:20Z
PY_CPU = (("cpu", "nanoseconds"),)


class App:
    def __init__(self, tmp_path, ingest: IngestConfig | None = None, auth: AuthConfig | None = None) -> None:
        cfg = ServeRole(data_dir=tmp_path / "data", ingest=ingest or IngestConfig(), auth=auth or AuthConfig())
        self.ports = wiring.open_embedded(cfg)
        self.client = wiring.embedded_app(self.ports, cfg).test_client()

    def push(self, body: bytes, content_type: str = "application/proto", **headers: str):
        return self.client.post(PUSH, data=body, headers={"Content-Type": content_type, **headers})

    def ingest(self, query: str, body: bytes, content_type: str = "application/octet-stream", **headers: str):
        return self.client.post(f"/ingest?{query}", data=body, headers={"Content-Type": content_type, **headers})

    def profiles(self, service: str, **params: str) -> list[dict]:
        r = self.client.get("/api/0/profiles", query_string={"service": service, **WINDOW, **params})
        return r.get_json()["body"] if r.status_code == 200 else []

    def stored(self) -> int:
        r = self.client.get("/api/0/services")
        return 0 if r.status_code == 404 else sum(len(self.profiles(s)) for s in r.get_json()["body"])


@pytest.fixture
def app(tmp_path):
    made = App(tmp_path)
    yield made
    made.ports.close()


def push_request(series: list[tuple[dict[str, str], list[bytes]]]) -> PushRequest:
    req = PushRequest()
    for labels, samples in series:
        s = req.series.add()
        for k, v in labels.items():
            lb = s.labels.add()
            lb.name, lb.value = k, v
        for raw in samples:
            s.samples.add().raw_profile = raw
    return req


def py_cpu(t: int = T0, fn: str = "hot") -> bytes:
    """What pyroscope-io sends: one sample type, cpu/nanoseconds, uncompressed."""
    return pprofs.build(PY_CPU, (((fn, "main"), (30_000_000,)),), time_nanos=t * 10**9, gzip=False)


PY_LABELS = {"__name__": "process_cpu", "service_name": "pyapp", "region": "eu",
             "__session_id__": "abc", "process.runtime.name": "cpython"}


def test_push_protobuf_gzip_request_stores_each_sample(app):
    req = push_request([(PY_LABELS, [py_cpu(), py_cpu(T0 + 10)])])
    r = app.push(gzip.compress(req.SerializeToString()), **{"Content-Encoding": "gzip"})
    assert r.status_code == 200 and r.mimetype == "application/proto"
    found = app.profiles("pyapp", type="cpu")
    assert [p["created_at"] for p in found] == ["2023-11-14T22:13:20Z", "2023-11-14T22:13:30Z"]
    assert found[0]["labels"] == [{"key": "process.runtime.name", "value": "cpython"}, {"key": "region", "value": "eu"}]


def test_push_json_and_a_retry_stores_once(app):
    req = {"series": [{"labels": [{"name": "service_name", "value": "j"}, {"name": "__name__", "value": "wall"}],
                       "samples": [{"rawProfile": base64.b64encode(
                           pprofs.build((("samples", "count"), ("wall", "nanoseconds")), time_nanos=T0 * 10**9,
                                        gzip=False)
                       ).decode()}]}]}
    for _ in range(2):
        r = app.push(json.dumps(req).encode(), "application/json")
        assert r.status_code == 200 and r.get_json() == {}
    assert [p["type"] for p in app.profiles("j")] == ["wall"]


def test_push_of_go_heap_types_is_heap_and_unknown_names_keep_their_name(app):
    req = push_request([({"service_name": "g", "__name__": "memory"}, [pprofs.heap(T0 * 10**9)]),
                        ({"service_name": "g", "__name__": "exceptions"},
                         [pprofs.build((("exceptions", "count"),), ((("raise",), (2,)),), time_nanos=T0 * 10**9)])])
    assert app.push(req.SerializeToString()).status_code == 200
    by_type = {p["type"]: p for p in app.profiles("g")}
    assert set(by_type) == {"heap", "other"}
    assert by_type["other"]["labels"] == [{"key": "pyroscope.name", "value": "exceptions"}]


def test_ingest_folded_becomes_a_cpu_pprof(app):
    body = b"main;work;hot 30\nmain;idle 10\n\n"
    r = app.ingest(f"name=fold.cpu{{env=prod}}&from={T0}&until={T0 + 10}&sampleRate=100&spyName=rbspy", body,
                   "text/plain")
    assert r.status_code == 200, r.data
    [meta] = app.profiles("fold", type="cpu")
    assert meta["labels"] == [{"key": "env", "value": "prod"}, {"key": "pyroscope.spy", "value": "rbspy"}]
    merged = app.client.get("/api/0/profiles/merge", query_string={"service": "fold", "type": "cpu", **WINDOW})
    p = pprof.parse(merged.data)
    assert pprof.sample_types(p) == (("samples", "count"), ("cpu", "nanoseconds"))
    assert pprof.totals(p) == (40, 400_000_000) and p.period == 10_000_000
    assert p.time_nanos == T0 * 10**9 and p.duration_nanos == 10 * 10**9


def test_ingest_lines_and_raw_pprof(app):
    assert app.ingest(f"name=l.cpu&format=lines&from={T0}", b"a;b\na;b\na;c\n").status_code == 200
    assert app.ingest(f"name=raw{{}}&format=pprof&from={T0}000000000", pprofs.cpu(T0 * 10**9)).status_code == 200
    assert len(app.profiles("l", type="cpu")) == 1 and len(app.profiles("raw", type="cpu")) == 1


def test_ingest_multipart_as_pyroscope_go_sends_it(app):
    mutex = pprofs.build((("contentions", "count"), ("delay", "nanoseconds")), time_nanos=T0 * 10**9)
    config = json.dumps({"contentions": {"display-name": "mutex_count"}, "delay": {"display-name": "mutex_duration"}})
    boundary = "b0undary"
    parts = [("profile", "profile.pprof", mutex), ("prev_profile", "p.pprof", mutex),
             ("sample_type_config", "sample_type_config.json", config.encode())]
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{n}"; filename="{f}"\r\n'
                    f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n"
                    for n, f, data in parts) + f"--{boundary}--\r\n".encode()
    name = "goapp{__session_id__=1,otel.scope.name=godeltaprof}"
    r = app.ingest(f"name={name}&from={T0 * 10**9}&until={T0 * 10**9}&spyName=gospy", body,
                   f"multipart/form-data; boundary={boundary}")
    assert r.status_code == 200, r.data
    [meta] = app.profiles("goapp")
    assert meta["type"] == "mutex"


def oversized_push(app) -> tuple:
    return app.push(push_request([(PY_LABELS, [py_cpu()] * 3)]).SerializeToString()), "resource_exhausted"


@pytest.mark.parametrize("case, status, code", [
    ("text/plain content type", 415, "invalid_argument"),
    ("truncated protobuf", 400, "invalid_argument"),
    ("gzip that is not", 400, "invalid_argument"),
    ("label bomb", 400, "invalid_argument"),
    ("no service", 400, "invalid_argument"),
    ("not a pprof", 400, "invalid_argument"),
    ("empty push", 400, "invalid_argument"),
])
def test_push_refuses_bad_input_with_connect_errors(app, case, status, code):
    good = push_request([(PY_LABELS, [py_cpu()])]).SerializeToString()
    bomb = push_request([({**PY_LABELS, **{f"k{i}": "v" for i in range(10_000)}}, [py_cpu()])]).SerializeToString()
    r = {
        "text/plain content type": lambda: app.push(good, "text/plain"),
        "truncated protobuf": lambda: app.push(good[: len(good) // 2]),
        "gzip that is not": lambda: app.push(good, **{"Content-Encoding": "gzip"}),
        "label bomb": lambda: app.push(bomb),
        "no service": lambda: app.push(push_request([({"__name__": "process_cpu"}, [py_cpu()])]).SerializeToString()),
        "not a pprof": lambda: app.push(push_request([(PY_LABELS, [b"\x0a\x05hello"])]).SerializeToString()),
        "empty push": lambda: app.push(b""),
    }[case]()
    assert (r.status_code, r.get_json()["code"]) == (status, code), r.data
    assert r.get_json()["message"]
    assert app.stored() == 0
    assert app.client.get("/api/0/version").status_code == 200


def test_push_limits_count_the_push_as_a_whole(tmp_path):
    one = len(py_cpu())
    small = App(tmp_path, replace(IngestConfig(), max_decompressed_bytes=2 * one + 10))
    try:
        req = push_request([(PY_LABELS, [py_cpu(T0 + i)]) for i in range(3)])
        r = small.push(req.SerializeToString())
        assert (r.status_code, r.get_json()["code"]) == (413, "resource_exhausted")
        body = gzip.compress(b"\0" * (4 * one))  # the request itself inflates past the limit
        r = small.push(body, **{"Content-Encoding": "gzip"})
        assert r.status_code == 413
        assert small.stored() == 0
    finally:
        small.ports.close()
    tiny = App(tmp_path / "b", replace(IngestConfig(), max_body_bytes=one // 2))
    try:
        r = tiny.push(push_request([(PY_LABELS, [py_cpu()])]).SerializeToString())
        assert (r.status_code, r.get_json()["code"]) == (413, "resource_exhausted")
        assert tiny.stored() == 0
    finally:
        tiny.ports.close()


@pytest.mark.parametrize("query, body, ctype, status", [
    (f"name=a.cpu&from={T0}", b"main;hot 3\nthis is garbage\n", "text/plain", 400),
    (f"name=a.cpu&from={T0}", b"main;hot x3\n", "text/plain", 400),
    (f"name=a.cpu&from={T0}", b"", "text/plain", 400),
    (f"name=a.cpu&format=jfr&from={T0}", b"FLR\0", "application/octet-stream", 415),
    (f"name=a.cpu&from={T0}", b'{"a":1}', "application/json", 415),
    (f"name=a.cpu&format=pprof&from={T0}", b"\x0a\x03abc", "application/octet-stream", 400),
    ("from=1", b"main 1\n", "text/plain", 400),
    ("name=a.cpu{" + ",".join(f"k{i}=v" for i in range(1000)) + "}", b"main 1\n", "text/plain", 400),
    (f"name=a.cpu&from={T0}&sampleRate=0", b"main 1\n", "text/plain", 400),
])
def test_ingest_refuses_bad_input_in_plain_text(app, query, body, ctype, status):
    r = app.ingest(query, body, ctype)
    assert r.status_code == status, r.data
    assert r.mimetype == "text/plain" and r.data.strip()
    assert app.stored() == 0
    assert app.client.get("/api/0/version").status_code == 200


def test_tokens_guard_both_routes_and_basic_auth_carries_the_token(tmp_path):
    guarded = App(tmp_path, auth=AuthConfig(ingest_tokens=("s3cret",)))
    try:
        good = push_request([(PY_LABELS, [py_cpu()])]).SerializeToString()
        r = guarded.push(good)
        assert (r.status_code, r.get_json()["code"]) == (401, "unauthenticated")
        r = guarded.ingest(f"name=a.cpu&from={T0}", b"main 1\n")
        assert r.status_code == 401 and r.mimetype == "text/plain"
        wrong = base64.b64encode(b"user:nope").decode()
        assert guarded.push(good, Authorization=f"Basic {wrong}").status_code == 401
        assert guarded.stored() == 0
        basic = base64.b64encode(b"anyone:s3cret").decode()
        assert guarded.push(good, Authorization=f"Basic {basic}").status_code == 200
        assert guarded.ingest(f"name=a.cpu&from={T0}", b"main 1\n", Authorization="Bearer s3cret").status_code == 200
    finally:
        guarded.ports.close()
