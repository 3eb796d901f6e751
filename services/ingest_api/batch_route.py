"""POST /api/0/profiles under the native HTTP server: the same checks, answers, counts and log
line as the Flask route with `instrument`, for requests one thread takes in batches. Each upload
is answered when its record is stored, on the thread that stored it, so the taking thread never
waits and a batch of uploads shares one write."""
from __future__ import annotations

from typing import Callable
from urllib.parse import parse_qsl

from services.ingest_api.collect import collect
from services.ingest_api.config import IngestConfig
from services.observe.metrics import Metrics
from services.web.access import INGEST_ROUTE, REQUEST_ID_HEADER, record_request, request_id
from services.web.body import too_large
from services.web.envelope import JSON, envelope
from services.web.errors import check_decodable, describe, profile_json
from shared import pprof
from shared.model import IngestRecord

# Queues a record and calls back with None once it is stored, or with the error that stopped it.
PublishThen = Callable[[IngestRecord, Callable[[BaseException | None], None]], None]

PATH = INGEST_ROUTE
_REQUEST_ID = REQUEST_ID_HEADER.lower()


def query_params(query: str) -> dict[str, str]:
    """The first value of each parameter, as Flask's `request.args.get` gives it."""
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        params.setdefault(key, value)
    return params


def prechecked(req) -> pprof.Checked | None:
    """The server's check of the body; None when it made none or the body failed it (then
    `collect` checks it again, after the parameters, so the errors come in the Flask route's order)."""
    try:
        native = req.checked()
    except pprof.PprofError:
        return None
    return None if native is None else pprof.Checked.from_native(native)


def handler(publish_then: PublishThen, cfg: IngestConfig, metrics: Metrics) -> Callable[..., None]:
    """The batch handler of `services.process.native_http.serve` for the ingest route (its
    bodies checked by the server within `cfg.max_decompressed_bytes`)."""

    def handle(req) -> None:  # req: shared.pprof._native.PendingRequest
        sent_id = next((v for k, v in req.headers if k == _REQUEST_ID), None)
        rid = request_id(sent_id)

        def answer(status: int, payload: object, headers: dict[str, str] | None = None) -> None:
            body = envelope(status, payload)
            out = [("Content-Type", JSON), (REQUEST_ID_HEADER, rid), *(headers or {}).items()]
            if status == 200:
                out.append(("Vary", "Accept-Encoding"))  # as every JSON 200 says (services.web.compression)
            req.answer(status, out, body)
            record_request(metrics, request_id=rid, method="POST", route=INGEST_ROUTE, path=req.path,
                           status=status, seconds=req.elapsed(), bytes_in=req.content_length or 0,
                           bytes_out=len(body), remote=req.remote_addr)

        def failed(exc: BaseException) -> None:
            status, message, headers = describe(exc)
            answer(status, message, headers)

        try:
            check_decodable(req.path, req.query)
            if req.over:
                raise too_large(cfg.max_body_bytes)
            record = collect(query_params(req.query), req.body, cfg, checked=prechecked(req))
        except Exception as exc:  # noqa: BLE001 - every error is answered as the Flask route would
            failed(exc)
            return

        def stored(error: BaseException | None) -> None:
            if error is None:
                answer(200, profile_json(record.meta()))
            else:
                failed(error)

        try:
            publish_then(record, stored)
        except Exception as exc:  # noqa: BLE001
            failed(exc)

    return handle
