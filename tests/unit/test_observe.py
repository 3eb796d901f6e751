"""Request ids, request logs, metrics and the workers' health server, in process."""
from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass

import pytest

from services import wiring
from services.observe.health import HealthServer
from services.observe.liveness import IndexerMetrics, Progress
from services.process.logs import ACCESS_LOGGER, JsonFormatter
from services.web.access import counting_publish
from services.compactor.worker import CompactorStats
from services.roles import ServeRole
from services.indexer.config import IndexerConfig
from services.indexer.worker import Indexer
from services.observe.metrics import CompactorCollector, IndexerCollector, Metrics
from shared.adapters.blobs_local import LocalBlobStore
from shared.adapters.meta_sql import SqlMetaStore, migrate, sqlite_url
from shared.adapters.queue_memory import MemoryQueue
from shared.errors import Unavailable
from tests.api import pprofs


@pytest.fixture
def serve_app(tmp_path):
    cfg = ServeRole(data_dir=tmp_path)
    ports = wiring.open_embedded(cfg)
    metrics = Metrics("serve")
    try:
        yield wiring.embedded_app(ports, cfg, metrics).test_client(), metrics
    finally:
        ports.close()


def sample(metrics: Metrics, name: str, **labels) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_a_sent_request_id_is_echoed_and_a_missing_one_is_made(serve_app):
    client, _ = serve_app
    r = client.get("/api/0/version", headers={"X-Request-Id": "abc-123"})
    assert r.headers["X-Request-Id"] == "abc-123"
    made = client.get("/api/0/version").headers["X-Request-Id"]
    assert len(made) == 32 and made != client.get("/api/0/version").headers["X-Request-Id"]
    bad = client.get("/api/0/version", headers={"X-Request-Id": "x\ty" * 100}).headers["X-Request-Id"]
    assert len(bad) == 32


def test_requests_are_counted_by_url_rule_not_raw_path(serve_app):
    client, metrics = serve_app
    for pid in ("aaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbb"):
        assert client.get(f"/api/0/profiles/{pid}").status_code == 404
    client.get("/no/such/path")
    assert sample(metrics, "profefe_http_requests_total", route="/api/0/profiles/<ids>", method="GET",
                  status="404") == 2
    assert sample(metrics, "profefe_http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert sample(metrics, "profefe_http_request_duration_seconds_count", route="/api/0/profiles/<ids>",
                  method="GET") == 2


def test_accepted_bytes_and_merge_inputs_are_counted(serve_app):
    client, metrics = serve_app
    bodies = [pprofs.cpu(value=10_000_000 + i) for i in range(3)]  # distinct: the same bytes are one profile
    ids = []
    for body in bodies:
        r = client.post("/api/0/profiles?service=svc&type=cpu", data=body)
        assert r.status_code == 200
        ids.append(r.json["body"]["id"])
    assert client.post("/api/0/profiles?type=cpu", data=bodies[0]).status_code == 400
    assert sample(metrics, "profefe_ingested_profiles_total") == 3
    assert sample(metrics, "profefe_ingested_bytes_total") == sum(len(b) for b in bodies)
    assert client.get(f"/api/0/profiles/{'+'.join(ids)}").status_code == 200
    assert sample(metrics, "profefe_merge_inputs_count") == 1
    assert sample(metrics, "profefe_merge_inputs_sum") == 3


def test_metrics_route_serves_the_prometheus_text_format(serve_app):
    client, _ = serve_app
    client.get("/api/0/version")
    r = client.get("/metrics")
    assert r.status_code == 200 and r.content_type.startswith("text/plain")
    text = r.get_data(as_text=True)
    assert 'profefe_http_requests_total{method="GET",route="/api/0/version",status="200"} 1.0' in text
    assert 'profefe_build_info{role="serve"} 1.0' in text
    assert 'route="/metrics"' not in text


def test_health_and_readiness_of_serve(serve_app):
    client, _ = serve_app
    assert client.get("/healthz").json == {"code": 200, "body": "ok"}
    assert client.get("/readyz").json == {"code": 200, "body": "ready"}


def test_one_json_line_per_request_with_its_id(serve_app, caplog):
    client, _ = serve_app
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        client.get("/api/0/profiles/aaaaaaaaaaaaaaaaaaaa", headers={"X-Request-Id": "req-7"})
    [rec] = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    line = json.loads(JsonFormatter().format(rec))
    assert line["request_id"] == "req-7" and line["status"] == 404
    assert line["route"] == "/api/0/profiles/<ids>" and line["path"] == "/api/0/profiles/aaaaaaaaaaaaaaaaaaaa"
    assert line["level"] == "info" and line["duration_ms"] >= 0


def test_several_apps_in_one_process_do_not_collide(tmp_path):
    for i in range(3):
        cfg = ServeRole(data_dir=tmp_path / str(i))
        ports = wiring.open_embedded(cfg)
        try:
            assert wiring.embedded_app(ports, cfg).test_client().get("/metrics").status_code == 200
        finally:
            ports.close()


def test_kafka_refusals_are_counted():
    metrics = Metrics("ingest-api")

    def refuse(_record):
        raise Unavailable("no ack")

    publish = counting_publish(refuse, metrics)
    with pytest.raises(Unavailable):
        publish(object())
    assert sample(metrics, "profefe_kafka_produce_errors_total") == 1


def test_progress_is_alive_while_the_marker_moves():
    now = [0.0]
    marker = [0]
    progress = Progress(lambda: marker[0], stall_after=10, clock=lambda: now[0])
    now[0] = 9
    assert progress.problem() is None
    now[0] = 11
    assert progress.problem() == "no progress for 11s"
    marker[0] = 1
    assert progress.problem() is None
    now[0] = 15
    assert progress.problem() is None


class LaggingQueue(MemoryQueue):
    def lag(self):
        return {0: 7, 3: 0}


def test_indexer_batches_lag_and_counts_reach_the_metrics(tmp_path):
    url = sqlite_url(tmp_path / "m.db")
    migrate(url)
    meta = SqlMetaStore(url)
    queue = LaggingQueue()
    metrics = Metrics("indexer")
    worker = Indexer(queue, LocalBlobStore(tmp_path / "b"), meta, IndexerConfig(batch_size=5, poll_timeout=0.01),
                     on_step=IndexerMetrics(queue, metrics))
    metrics.watch(IndexerCollector(lambda: worker.counts))
    progress = wiring.indexer_liveness(worker)
    from tests.unit.test_indexer_worker import rec

    for _ in range(3):
        queue.publish(rec(), timeout=1)
    assert worker.step() == 3
    assert worker.step() == 0
    assert sample(metrics, "profefe_indexer_batch_size_count") == 1
    assert sample(metrics, "profefe_indexer_batch_size_sum") == 3
    assert sample(metrics, "profefe_indexer_batch_duration_seconds_count") == 1
    assert sample(metrics, "profefe_indexer_indexed_total") == 3
    assert sample(metrics, "profefe_kafka_consumer_lag", partition="0") == 7
    assert progress.problem() is None
    meta.close()


def test_compactor_stats_are_exported():
    stats = CompactorStats(passes=2, windows_built=5, windows_rebuilt=1, pending=4, lag_seconds=3600)
    metrics = Metrics("compactor")
    metrics.watch(CompactorCollector(lambda: stats))
    assert sample(metrics, "profefe_compactor_windows_built_total") == 5
    assert sample(metrics, "profefe_compactor_windows_stale_rebuilt_total") == 1
    assert sample(metrics, "profefe_compactor_lag_seconds") == 3600
    stats.passes = 3
    assert sample(metrics, "profefe_compactor_passes_total") == 3


@dataclass
class Switch:
    down: bool = False

    def ping(self) -> None:
        if self.down:
            raise Unavailable("connection refused")


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_the_worker_health_server_answers_probes_and_scrapes():
    db = Switch()
    problem = [None]
    server = HealthServer("127.0.0.1", 0, metrics=Metrics("indexer"), checks={"postgresql": db.ping},
                                  alive=lambda: problem[0]).start()
    base = f"http://{server.address}"
    try:
        assert get(base + "/healthz") == (200, b'{"code": 200, "body": "ok"}\n')
        assert get(base + "/readyz")[0] == 200
        db.down = True
        status, body = get(base + "/readyz")
        assert status == 503 and b"postgresql: connection refused" in body
        problem[0] = "no progress for 300s"
        assert get(base + "/healthz")[0] == 503
        status, body = get(base + "/metrics")
        assert status == 200 and b'profefe_build_info{role="indexer"} 1.0' in body
        assert get(base + "/nope")[0] == 404
    finally:
        server.close()


def test_json_formatter_keeps_fields_and_tracebacks():
    try:
        raise ValueError("boom")
    except ValueError:
        rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed %s", ("here",), exc_info=True)
        import sys

        rec.exc_info = sys.exc_info()
    rec.fields = {"request_id": "r1"}
    line = json.loads(JsonFormatter().format(rec))
    assert line["msg"] == "failed here" and line["request_id"] == "r1" and "ValueError: boom" in line["exc"]
