"""Reading the upload within its limit, as real WSGI servers hand it over."""
from __future__ import annotations

import io

import pytest
from flask import Request
from werkzeug.test import EnvironBuilder

from services.web.body import read_body
from shared.errors import PayloadTooLarge

LIMIT = 1024


def request_for(body: bytes, *, content_length: bool = True, terminated: bool = True) -> Request:
    env = EnvironBuilder(method="POST", data=body).get_environ()
    env["wsgi.input"] = io.BytesIO(body)
    if not content_length:
        env.pop("CONTENT_LENGTH", None)
    # waitress (and gunicorn) mark the input as terminated: werkzeug then guards it with the
    # app's MAX_CONTENT_LENGTH instead of the Content-Length.
    env["wsgi.input_terminated"] = terminated
    req = Request(env)
    req.max_content_length = LIMIT
    return req


@pytest.mark.parametrize("content_length, terminated", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("size", [0, 1, LIMIT - 1, LIMIT])
def test_up_to_the_limit_is_read_whole(size, content_length, terminated):
    body = (bytes(range(256)) * 4)[:size]
    req = request_for(body, content_length=content_length, terminated=terminated)
    assert read_body(req, LIMIT) == body


def test_without_length_or_end_marker_the_body_is_empty():
    assert read_body(request_for(b"abc", content_length=False, terminated=False), LIMIT) == b""


@pytest.mark.parametrize("content_length", [True, False])
@pytest.mark.parametrize("size", [LIMIT + 1, 10 * LIMIT])
def test_over_the_limit_is_refused(size, content_length):
    req = request_for(b"x" * size, content_length=content_length)
    with pytest.raises(PayloadTooLarge, match=f"^request body too large: over {LIMIT} bytes$"):
        read_body(req, LIMIT)
