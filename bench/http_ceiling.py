"""What the HTTP layer alone allows: a server that answers `POST /api/0/profiles` as the collector's
HTTP stack would, doing none (or one piece) of the collector's work, for `bench/ingest.py` to post to.

    .venv/bin/python bench/http_ceiling.py --mode raw &     # then:
    .venv/bin/python bench/ingest.py http://127.0.0.1:10300 --levels 16 --server-pid $!

Modes, each under the runner `profefe serve` uses (waitress, 16 threads, 64 KiB reads):
- raw: a bare WSGI function reads the body and answers a fixed JSON;
- check: the same, and the native `pprof.check` of the body;
- flask: a Flask app with one route that reads the body (no hooks, no checks);
- app: `serve`'s own app (every hook and check) over a temporary data folder, its uploads
  answered without being stored.
The gap between these and `serve` is what the collector's own per-upload work costs.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Iterable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.process.runner import serve  # noqa: E402
from shared import pprof  # noqa: E402

ANSWER = b'{"code": 200, "body": {"id": "ceiling"}}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(ANSWER)))]


def wsgi_app(check: bool) -> Callable:
    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        data = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if check:
            pprof.check(data)
        start_response("200 OK", HEADERS)
        return [ANSWER]

    return app


def flask_app() -> Callable:
    from flask import Flask, request

    app = Flask(__name__)

    @app.post("/api/0/profiles")
    def upload():
        request.get_data()
        return ANSWER, 200, {"Content-Type": "application/json"}

    return app


def serve_app_not_storing() -> Callable:
    """`profefe serve`'s app with a publish that drops each checked record."""
    import tempfile

    from services.process.logs import configure_logging
    from services.roles import ServeRole
    from services.wiring import embedded

    configure_logging()  # its request lines, as serve writes them (to stderr)
    cfg = ServeRole(data_dir=Path(tempfile.mkdtemp(prefix="http-ceiling-")))
    ports = embedded.open_embedded(cfg)
    ports.publisher = lambda: (lambda record: None)  # type: ignore[method-assign]
    return embedded.embedded_app(ports, cfg)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=["raw", "check", "flask", "app"], default="raw")
    ap.add_argument("--port", type=int, default=10300, help="port on 127.0.0.1")
    ap.add_argument("--threads", type=int, default=16)
    args = ap.parse_args()
    if args.mode == "app":
        app = serve_app_not_storing()
    elif args.mode == "flask":
        app = flask_app()
    else:
        app = wsgi_app(check=args.mode == "check")
    print(f"http_ceiling: {args.mode} on 127.0.0.1:{args.port}", flush=True)
    return serve(app, "127.0.0.1", args.port, threads=args.threads, read_timeout=30)


if __name__ == "__main__":
    sys.exit(main())
