"""The web UI: static files shipped in the package, served at `/` and `/ui/`.

The page holds no data of its own: everything it shows comes from the `/api/0/` read routes, with
the same bearer token as any other reader, so the read tokens guard the UI exactly as the API.
"""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, redirect, send_from_directory

STATIC = Path(__file__).resolve().parent / "static"


def blueprint() -> Blueprint:
    bp = Blueprint("ui", __name__)

    @bp.get("/")
    def start() -> Response:
        return _page()

    @bp.get("/ui")
    def ui_slash() -> Response:
        return redirect("/ui/", code=308)  # type: ignore[return-value]

    @bp.get("/ui/")
    def ui() -> Response:
        return _page()

    @bp.get("/ui/<path:name>")
    def asset(name: str) -> Response:
        resp = send_from_directory(STATIC, name, max_age=300)
        resp.headers["X-Content-Type-Options"] = "nosniff"
        return resp

    return bp


def _page() -> Response:
    resp = send_from_directory(STATIC, "index.html", max_age=0)
    resp.headers["Cache-Control"] = "no-cache"
    resp.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'")
    return resp
