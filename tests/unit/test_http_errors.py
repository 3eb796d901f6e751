"""services/web/errors.py: the one error table and the envelope."""
from __future__ import annotations

import logging

import pytest
from flask import Flask

from services.web import errors as http
from shared import errors
from shared.pprof import IncompatibleProfiles, MalformedProfile, ProfileTooLarge


def app_raising(exc: BaseException) -> Flask:
    app = Flask("test")
    http.install(app)

    @app.get("/boom")
    def boom():
        raise exc

    return app


@pytest.mark.parametrize(
    "exc, status, message",
    [
        (errors.BadRequest("x"), 400, "bad request: x"),
        (errors.NotFound("nothing found"), 404, "nothing found"),
        (errors.PayloadTooLarge("request body too large: over 1 bytes"), 413, "request body too large: over 1 bytes"),
        (errors.Unprocessable("cannot"), 422, "cannot"),
        (MalformedProfile("truncated"), 400, "malformed profile (truncated)"),
        (ProfileTooLarge(1024), 413, "profile too large: over 1024 bytes once decompressed"),
        (IncompatibleProfiles("a", "b"), 422, "cannot merge: incompatible profiles: 'a' and 'b'"),
    ],
)
def test_table(exc, status, message):
    r = app_raising(exc).test_client().get("/boom")
    assert r.status_code == status
    assert r.json == {"code": status, "error": message}
    assert r.mimetype == "application/json"


def test_unavailable_is_503_with_retry_after():
    r = app_raising(errors.Unavailable("database down", retry_after=7)).test_client().get("/boom")
    assert (r.status_code, r.json) == (503, {"code": 503, "error": "service unavailable: database down"})
    assert r.headers["Retry-After"] == "7"


def test_unexpected_errors_are_logged_and_not_leaked(caplog):
    with caplog.at_level(logging.ERROR, logger="services.web.errors"):
        r = app_raising(KeyError("secret-detail")).test_client().get("/boom")
    assert (r.status_code, r.json) == (500, {"code": 500, "error": "internal error"})
    assert b"secret-detail" not in r.data
    [rec] = [rec for rec in caplog.records if rec.name == "services.web.errors"]
    assert rec.exc_info and "secret-detail" in repr(rec.exc_info[1])


def test_router_errors_use_the_envelope():
    c = app_raising(ValueError()).test_client()
    assert c.get("/nope").json == {"code": 404, "error": "nothing found"}
    r = c.post("/boom")
    assert r.json == {"code": 405, "error": "method not allowed"}
    assert "GET" in r.headers["Allow"]


def test_reply_envelope():
    with Flask("t").app_context():
        r = http.reply(["a"])
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert r.get_json() == {"code": 200, "body": ["a"]}


def test_a_503_is_logged_once_per_window_with_how_many_it_stands_for(caplog):
    now = [100.0]
    throttled = http.Throttled(10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="services.web.errors"):
        throttled.warn("Kafka at k:9092 does not answer")
        for _ in range(3):
            now[0] += 2
            throttled.warn("Kafka at k:9092 does not answer")
        now[0] += 5  # 11 s after the first line
        throttled.warn("Kafka at k:9092 does not answer")
    assert [r.getMessage() for r in caplog.records if r.name == "services.web.errors"] == [
        "answered 503: Kafka at k:9092 does not answer",
        "answered 503: Kafka at k:9092 does not answer (and 3 more since the last such line)",
    ]


def test_every_503_goes_through_the_warning(monkeypatch):
    said = []
    monkeypatch.setattr(http.unavailable_log, "warn", said.append)
    app_raising(errors.Unavailable("database down", retry_after=7)).test_client().get("/boom")
    assert said == ["database down"]
