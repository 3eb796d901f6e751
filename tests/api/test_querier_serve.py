"""Pyroscope's read routes on `profefe serve`'s app: behind the read tokens (Bearer or basic
auth, as Grafana's data source sends them), and over the compactor's windows, giving the same
flame graph and pprof as merging every raw profile."""
from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import datetime, timezone

from google.protobuf import json_format

from services import wiring
from services.compactor.worker import Compactor
from services.query_api import querier_pb2 as pb
from services.query_api.config import QueryConfig
from services.query_api.merge_plan import plan_merge
from services.roles import ServeRole
from services.web.auth import AuthConfig
from shared import pprof
from shared.model import Labels, ProfileType, Query
from shared.windows import DAY, from_epoch
from tests.api import pprofs

QUERIER = "/querier.v1.QuerierService/"
CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
DAY0 = int(datetime(2026, 3, 2, tzinfo=timezone.utc).timestamp())


def post_json(client, method: str, body: dict, **headers: str):
    return client.post(QUERIER + method, data=json.dumps(body), headers={"Content-Type": "application/json", **headers})


def test_read_tokens_guard_the_querier_routes_though_they_are_posts(tmp_path):
    cfg = ServeRole(data_dir=tmp_path / "data", auth=AuthConfig(ingest_tokens=("writer",), read_tokens=("reader",)))
    ports = wiring.open_embedded(cfg)
    try:
        client = wiring.embedded_app(ports, cfg).test_client()
        r = post_json(client, "LabelNames", {})
        assert (r.status_code, r.get_json()["code"]) == (401, "unauthenticated")
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert post_json(client, "LabelNames", {}, Authorization="Bearer writer").status_code == 401
        assert post_json(client, "LabelNames", {}, Authorization="Bearer reader").status_code == 200
        basic = base64.b64encode(b"grafana:reader").decode()
        assert post_json(client, "ProfileTypes", {}, Authorization=f"Basic {basic}").status_code == 200
        assert client.post("/push.v1.PusherService/Push", data=b"", headers={
            "Content-Type": "application/proto", "Authorization": "Bearer reader"}).status_code == 401
    finally:
        ports.close()


def test_the_flame_graph_and_pprof_over_windows_are_those_of_the_raw_profiles(tmp_path):
    cfg = ServeRole(data_dir=tmp_path / "data")
    ports = wiring.open_embedded(cfg)
    try:
        client = wiring.embedded_app(ports, cfg).test_client()
        raw = wiring.embedded_app(ports, replace(cfg, query=QueryConfig(use_windows=False))).test_client()
        for i in range(48):  # every 30 minutes for a day, two stacks
            at = DAY0 + i * 1800
            body = pprofs.build(pprofs.CPU_TYPES, ((("main.work", "main.main"), (1, 10_000_000 * (i % 5 + 1))),
                                                   (("main.idle", "main.main"), (1, 1_000_000))),
                                time_nanos=at * 10**9)
            assert client.post("/api/0/profiles?service=shop&type=cpu&labels=zone=a", data=body).status_code == 200
        compactor = Compactor(ports.windows, ports.blobs, cfg.compactor, clock=lambda: DAY0 + 3 * DAY)
        while (report := compactor.run_pass()).hours or report.days or report.rebuilt:
            pass
        day = Query(service="shop", type=ProfileType.CPU, labels=Labels(), start=from_epoch(DAY0),
                    end=from_epoch(DAY0 + DAY - 1))
        plan = plan_merge(ports.meta, ports.windows, day)
        assert plan.windows and not plan.raw, "the day is not served from windows"

        span = {"start": DAY0 * 1000, "end": (DAY0 + DAY) * 1000 - 1}
        for method in ("SelectMergeStacktraces", "SelectMergeProfile", "SelectSeries"):
            body = {"profileTypeID": CPU, "labelSelector": '{service_name="shop", zone="a"}', "step": 3600, **span}
            windowed, direct = post_json(client, method, body), post_json(raw, method, body)
            assert windowed.status_code == direct.status_code == 200, windowed.get_data()
            if method == "SelectMergeProfile":
                a, b = (json_format.ParseDict(r.get_json(), pprof.Profile()) for r in (windowed, direct))
                assert sorted(s.value[0] for s in a.sample) == sorted(s.value[0] for s in b.sample)
            else:
                assert windowed.get_json() == direct.get_json()
        r = client.post(QUERIER + "SelectMergeStacktraces", headers={"Content-Type": "application/proto"},
                        data=pb.SelectMergeStacktracesRequest(profile_typeID=CPU, label_selector='{service_name="shop"}',
                                                              start=span["start"], end=span["end"]).SerializeToString())
        graph = pb.SelectMergeStacktracesResponse.FromString(r.get_data()).flamegraph
        assert graph.total == sum(10_000_000 * (i % 5 + 1) + 1_000_000 for i in range(48))
    finally:
        ports.close()
