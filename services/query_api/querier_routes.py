"""Pyroscope's read API as Connect unary routes, `POST /querier.v1.QuerierService/<Method>` with
protobuf or JSON messages, so Grafana's Pyroscope data source and profilecli read from profefe.
Errors are Connect's (`invalid_argument` for a bad selector or type, ...). They are reads: with
read tokens configured they need one, although they are POSTs."""
from __future__ import annotations

from typing import Any, Callable

from flask import Blueprint, Response, request
from google.protobuf.message import Message

from services.query_api import querier
from services.query_api import querier_pb2 as pb
from services.query_api.config import QueryConfig
from services.query_api.query import Stores
from services.web import connect
from shared import pprof

SERVICE_PATH = "/querier.v1.QuerierService/"
MAX_REQUEST_BYTES = 1 << 20  # a query is a few selectors; the body and its gunzipped form alike

# Method -> its request message.
METHODS: dict[str, type[Message]] = {
    "ProfileTypes": pb.ProfileTypesRequest,
    "LabelNames": pb.LabelNamesRequest,
    "LabelValues": pb.LabelValuesRequest,
    "Series": pb.SeriesRequest,
    "SelectMergeStacktraces": pb.SelectMergeStacktracesRequest,
    "SelectMergeProfile": pb.SelectMergeProfileRequest,
    "SelectSeries": pb.SelectSeriesRequest,
}
PATHS = frozenset(SERVICE_PATH + m for m in METHODS)


def blueprint(stores: Stores, cfg: QueryConfig) -> Blueprint:
    bp = Blueprint("querier", __name__)
    handlers: dict[str, Callable[[Any], Message | pprof.Profile]] = {
        "ProfileTypes": lambda m: querier.profile_types(stores, m),
        "LabelNames": lambda m: querier.label_names(stores, m),
        "LabelValues": lambda m: querier.label_values(stores, m),
        "Series": lambda m: querier.series(stores, m),
        "SelectMergeStacktraces": lambda m: querier.select_merge_stacktraces(stores, m, cfg),
        "SelectMergeProfile": lambda m: querier.select_merge_profile(stores, m, cfg),
        "SelectSeries": lambda m: querier.select_series(stores, m),
    }

    def route(method: str) -> None:
        def view() -> Response:
            message, kind = connect.read(request, METHODS[method](), MAX_REQUEST_BYTES, MAX_REQUEST_BYTES)
            return connect.reply(handlers[method](message), kind)

        bp.add_url_rule(SERVICE_PATH + method, endpoint=method, view_func=view, methods=["POST"])

    for name in METHODS:
        route(name)
    bp.register_error_handler(Exception, connect.error)
    return bp
