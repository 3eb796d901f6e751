"""The native server's ingest handler (`services.ingest_api.batch_route`), given requests shaped
as the server hands them over: each upload is stored, counted, then answered."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from services.ingest_api.batch_route import handler
from services.ingest_api.config import IngestConfig
from services.observe.metrics import Metrics
from shared import errors

BODY = (Path(__file__).resolve().parents[1] / "testdata" / "cpu-1.pb.gz").read_bytes()


class Request:
    """The attributes and methods of `shared.pprof._native.PendingRequest` that the handler uses."""

    def __init__(self, query: str, body: bytes, metrics: Metrics) -> None:
        self.path, self.query, self.body = "/api/0/profiles", query, body
        self.headers: list[tuple[str, str]] = []
        self.over = False
        self.content_length = len(body)
        self.remote_addr = "127.0.0.1"
        self._metrics = metrics
        self.answered: list[tuple[int, float]] = []

    def checked(self):
        return None  # the server made no check: the handler checks the body itself

    def elapsed(self) -> float:
        return 0.001

    def answer(self, status: int, headers, body: bytes) -> bool:
        self.answered.append((status, self._metrics.ingested_profiles._value.get()))
        return True


def test_each_upload_is_counted_before_its_answer_is_sent():
    metrics = Metrics("serve")
    stored: list = []

    def write_now(items):
        stored.extend(record for record, _ in items)
        for _record, then in items:
            then(None)

    reqs = [Request(urlencode({"service": "s", "type": "cpu", "labels": f"n={n}"}), BODY, metrics)
            for n in range(3)]
    reqs.append(Request(urlencode({"type": "cpu"}), BODY, metrics))  # no service: 400, at once
    handler(write_now, IngestConfig(), metrics)(reqs)
    assert len(stored) == 3
    # A client that scrapes once it has its 200 finds its own upload in the count.
    assert [r.answered for r in reqs] == [[(200, 1.0)], [(200, 2.0)], [(200, 3.0)], [(400, 0.0)]]


def test_a_failed_write_answers_each_upload_of_the_batch_with_its_error():
    metrics = Metrics("serve")

    def write_now(items):
        raise errors.InsufficientStorage("the disk is full")

    reqs = [Request(urlencode({"service": "s", "type": "cpu", "labels": f"n={n}"}), BODY, metrics)
            for n in range(2)]
    handler(write_now, IngestConfig(), metrics)(reqs)
    assert [status for r in reqs for status, _ in r.answered] == [507, 507]
    assert metrics.ingested_profiles._value.get() == 0
