"""GET routes: find, merge, one or several profiles by id, services; and the reads behind the web
UI: label pairs, timeline, flame graph data and diffs."""
from __future__ import annotations

from flask import Blueprint, Response, request

from services.web.errors import download, profile_json, reply
from services.query_api import explore, query
from services.query_api.config import QueryConfig
from shared.errors import NotFound


def blueprint(stores: query.Stores, cfg: QueryConfig) -> Blueprint:
    bp = Blueprint("query", __name__)

    @bp.get("/api/0/profiles")
    def find_profiles() -> Response:
        found = query.find(stores, query.parse_query(request.args))
        return reply([profile_json(m) for m in found])

    @bp.get("/api/0/profiles/merge")
    def merge_profiles() -> Response:
        data, name = explore.merge_aggregated(stores, request.args, cfg)
        return download(data, name)

    @bp.get("/api/0/profiles/diff")
    def diff_profiles() -> Response:
        data, name = explore.diff_pprof(stores, request.args, cfg)
        return download(data, name)

    @bp.get("/api/0/labels")
    def labels() -> Response:
        return reply(explore.labels(stores, request.args))

    @bp.get("/api/0/timeline")
    def timeline() -> Response:
        return reply(explore.timeline(stores, request.args))

    @bp.get("/api/0/flamegraph")
    def flamegraph() -> Response:
        return reply(explore.flamegraph(stores, request.args, cfg))

    @bp.get("/api/0/flamegraph/diff")
    def flamegraph_diff() -> Response:
        return reply(explore.diff_flamegraph(stores, request.args, cfg))

    @bp.get("/api/0/profiles/<ids>")
    def get_profiles(ids: str) -> Response:
        metas = query.get_metas(stores, query.parse_ids(ids))
        if len(metas) == 1:
            data = query.read_blob(stores, metas[0])
            return download(data, query.filename(metas, data))
        return download(query.merge(stores, metas, cfg), query.filename(metas))

    @bp.get("/api/0/services")
    def services() -> Response:
        names = stores.meta.services()
        if not names:
            raise NotFound("nothing found")
        return reply(names)

    return bp
