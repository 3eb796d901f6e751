"""POST /api/0/profiles under the native HTTP server: the same checks, answers, counts and log
line as the Flask route with `instrument`, for requests one thread takes in batches. The thread
checks each upload of a batch, stores the good ones in one write on its own thread and answers
each once it is stored; the uploads that arrive meanwhile wait in the server for the next batch,
so there is no hand-off to a writer thread and back."""
from __future__ import annotations

from typing import Callable, Sequence
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

Stored = Callable[[BaseException | None], None]
# Stores the records as one batch, then calls each one's callback with None, or with the error
# that stopped it (`GroupCommit.write_now`).
WriteNow = Callable[[Sequence[tuple[IngestRecord, Stored]]], None]

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


def handler(write_now: WriteNow, cfg: IngestConfig, metrics: Metrics) -> Callable[[list], None]:
    """The batch handler of `services.process.native_http.serve` for the ingest route (its
    bodies checked by the server within `cfg.max_decompressed_bytes`)."""

    def handle(reqs: list) -> None:  # shared.pprof._native.PendingRequest each
        to_store = [one for one in map(prepare, reqs) if one is not None]
        if to_store:
            try:
                write_now(to_store)
            except Exception as exc:  # noqa: BLE001 - stopping, say: each upload is told
                for _record, stored in to_store:
                    stored(exc)

    def prepare(req) -> tuple[IngestRecord, Stored] | None:
        """The upload's record and what answers it once stored; None when it was answered already."""
        sent_id = next((v for k, v in req.headers if k == _REQUEST_ID), None)
        rid = request_id(sent_id)

        def answer(status: int, payload: object, headers: dict[str, str] | None = None) -> None:
            body = envelope(status, payload)
            out = [("Content-Type", JSON), (REQUEST_ID_HEADER, rid), *(headers or {}).items()]
            if status == 200:
                out.append(("Vary", "Accept-Encoding"))  # as every JSON 200 says (services.web.compression)
            # Counted before it is sent, as the Flask route counts: a client that has its 200 and
            # then scrapes finds its upload counted.
            record_request(metrics, request_id=rid, method="POST", route=INGEST_ROUTE, path=req.path,
                           status=status, seconds=req.elapsed(), bytes_in=req.content_length or 0,
                           bytes_out=len(body), remote=req.remote_addr)
            req.answer(status, out, body)

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
            return None

        def stored(error: BaseException | None) -> None:
            if error is None:
                answer(200, profile_json(record.meta()))
            else:
                failed(error)

        return record, stored

    return handle
