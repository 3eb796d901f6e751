"""The OpenAPI 3 description of profefe's HTTP API, served at `GET /api/0/openapi.json`.

Built in code rather than kept as a file so the limits and the profile types come from the same
constants the routes use. `document(served)` keeps only the operations a given app serves (the
ingest-api has no reads, the query-api no uploads).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from services.web.openapi_schemas import SCHEMAS as _SCHEMAS
from shared.model import ProfileType

OPENAPI_PATH = "/api/0/openapi.json"

_ERROR_TEXT = {
    400: "Bad request: a missing or malformed parameter, a refused upload (`bad request: ...`, "
         "`malformed profile (...)`)",
    401: "Tokens are configured and the request has none, or one that does not grant it",
    404: "`nothing found` (or naming the unknown id)",
    405: "`method not allowed`, with `Allow`",
    413: "Over a size limit: the body as sent, or the pprof once decompressed",
    422: "The profiles cannot be merged (`cannot merge: ...`)",
    503: "A dependency does not answer; retry after `Retry-After` seconds",
    507: "The embedded collector's disk is full (`insufficient storage: ...`); nothing was stored, "
         "retry after `Retry-After` seconds",
}

_TIME = {
    "type": "string",
    "description": "UTC `YYYY-MM-DDTHH:MM:SS[.frac]`, or RFC 3339 with `Z` or an offset",
    "example": "2024-05-01T12:00:00",
}


def _param(name: str, required: bool, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def _service(required: bool = True) -> dict[str, Any]:
    return _param("service", required, {"type": "string", "example": "billing"},
                  "Service name; required (400 `bad request: missing \"service\"`)")


def _type(required: bool) -> dict[str, Any]:
    return _param("type", required, {"type": "string", "enum": [t.value for t in ProfileType]},
                  "Profile type; trimmed, case-sensitive")


_LABELS = _param("labels", False, {"type": "string", "example": "region=eu,version=1.2"},
                 "`k=v,k=v`; each key and value percent-decoded once more (the agent double-encodes)")
_WINDOW = [
    _param("from", True, _TIME, "Window start, inclusive"),
    _param("to", True, _TIME, "Window end, inclusive; not before `from`"),
]
_LIMIT = _param("limit", False, {"type": "integer", "minimum": 1}, "Keep the newest N (listed ascending)")


def _json(schema_ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}}


def _errors(*statuses: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status in statuses:
        answer: dict[str, Any] = {"description": _ERROR_TEXT[status], "content": _json("Error")}
        if status == 401:
            answer["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "`Bearer`"}}
        if status in (503, 507):
            answer["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds"}}
        out[str(status)] = answer
    return out


def _download(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"Content-Disposition": {"schema": {"type": "string"},
                                            "description": 'attachment; filename="..."'}},
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }


_SECURED: list[dict[str, list[str]]] = [{}, {"bearer": []}]  # open unless tokens are configured

_AGGREGATION = _param("aggregation", False, {"type": "string", "enum": ["sum", "mean"], "default": "sum"},
                      "`sum` adds every profile; `mean` divides by the number of profiles merged (snapshots: "
                      "heap in-use, goroutines). Windows and raw profiles give the same answer under both")
_SAMPLE_TYPE = _param("sample_type", False, {"type": "string", "example": "cpu"},
                      "A sample type of the profiles (e.g. `samples`, `cpu`, `inuse_space`); default the last one")
_MAX_NODES = _param("max_nodes", False, {"type": "integer", "minimum": 1},
                    "Most nodes in the answer (capped by the server's `--flame-max-nodes`); the rest is summed into `other`")
_BASE = [
    _param("base_from", False, _TIME, "The base's window start; default `from`"),
    _param("base_to", False, _TIME, "The base's window end; default `to`"),
    _param("base_labels", False, {"type": "string", "example": "version=1.4"}, "The base's labels; default `labels`"),
]


def _json_reply(description: str) -> dict[str, Any]:
    return {"description": description, "content": _json("ObjectReply")}

_PATHS: dict[str, dict[str, Any]] = {
    "/api/0/profiles": {
        "post": {
            "operationId": "createProfile",
            "summary": "Store one profile",
            "security": _SECURED,
            "parameters": [_service(), _type(True), _LABELS,
                           _param("created_at", False, _TIME, "Used when the profile has no time of its own")],
            "requestBody": {
                "required": True,
                "description": "A pprof profile, gzip or raw protobuf; for `type=trace` a Go runtime trace",
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            },
            "responses": {
                "200": {"description": "Stored; the profile", "content": _json("ProfileReply")},
                **_errors(400, 401, 413, 503, 507),
            },
        },
        "get": {
            "operationId": "findProfiles",
            "summary": "Profiles of a service in a window, ascending by created_at",
            "security": _SECURED,
            "parameters": [_service(), _type(False), *_WINDOW, _LABELS, _LIMIT],
            "responses": {
                "200": {"description": "The profiles found", "content": _json("ProfileListReply")},
                **_errors(400, 401, 404, 503),
            },
        },
    },
    "/api/0/profiles/merge": {
        "get": {
            "operationId": "mergeProfiles",
            "summary": "One gzip pprof merging every match (not `trace`)",
            "security": _SECURED,
            "parameters": [_service(), _type(True), *_WINDOW, _LABELS, _LIMIT, _AGGREGATION],
            "responses": {
                "200": _download("The merged profile, gzip pprof"),
                **_errors(400, 401, 404, 413, 422, 503),
            },
        },
    },
    "/api/0/profiles/diff": {
        "get": {
            "operationId": "diffProfiles",
            "summary": "The target merge with the base merge negated, as `go tool pprof -diff_base` builds it",
            "description": "Base samples are negated and labelled `pprof::base=true`, so `go tool pprof -top` on "
                           "the answer shows the change. The base is the target selection with any `base_*` "
                           "parameter in its place; at least one must differ.",
            "security": _SECURED,
            "parameters": [_service(), _type(True), *_WINDOW, _LABELS, *_BASE, _AGGREGATION],
            "responses": {
                "200": _download("The diff, gzip pprof"),
                **_errors(400, 401, 404, 413, 422, 503),
            },
        },
    },
    "/api/0/labels": {
        "get": {
            "operationId": "listLabels",
            "summary": "The profile types and label keys and values of a service's profiles in a window",
            "description": "`labels` narrows the values as facets do: a key not in it lists the values of the "
                           "profiles matching every pair given, a key in it those matching the other keys' pairs, "
                           "so a chosen key keeps its alternatives.",
            "security": _SECURED,
            "parameters": [_service(), _type(False), *_WINDOW, _LABELS],
            "responses": {
                "200": _json_reply('`{"types": [...], "labels": {"key": ["value", ...]}}`, sorted'),
                **_errors(400, 401, 503),
            },
        },
    },
    "/api/0/timeline": {
        "get": {
            "operationId": "timeline",
            "summary": "Profiles per bucket and the total of one sample type per bucket",
            "description": "From the totals each profile's row keeps: no profile is read. Answer: `start` (epoch "
                           "seconds), `step` (seconds), `profiles` and `values` (one per bucket), `sample_types`, "
                           "`sample_type`, `aggregation`, `without_totals` (profiles stored before totals were "
                           "recorded: counted in `profiles`, left out of `values`, the mean divides by the others).",
            "security": _SECURED,
            "parameters": [_service(), _type(True), *_WINDOW, _LABELS, _SAMPLE_TYPE, _AGGREGATION,
                           _param("buckets", False, {"type": "integer", "minimum": 1, "maximum": 1000},
                                  "How many buckets (default 60)")],
            "responses": {"200": _json_reply("The buckets"), **_errors(400, 401, 503)},
        },
    },
    "/api/0/flamegraph": {
        "get": {
            "operationId": "flamegraph",
            "summary": "The flame graph and top table of a merge, as compact JSON",
            "description": "`names` (interned), `nodes` in pre-order as parallel arrays `name` (index into "
                           "`names`), `depth`, `total`, `self`; `top` rows `[name, flat, cum]`; `total`, "
                           "`profiles`, `folded` (nodes summed into `other`), `sample_types`, `unit`.",
            "security": _SECURED,
            "parameters": [_service(), _type(True), *_WINDOW, _LABELS, _SAMPLE_TYPE, _AGGREGATION, _MAX_NODES],
            "responses": {"200": _json_reply("The tree and table"), **_errors(400, 401, 404, 413, 422, 503)},
        },
    },
    "/api/0/flamegraph/diff": {
        "get": {
            "operationId": "flamegraphDiff",
            "summary": "A diff flame graph and table of two selections, as compact JSON",
            "description": "As `/api/0/flamegraph`, with `base` and `target` per node in place of `total`/`self`, "
                           "`base_total`, `target_total`; `top` rows `[name, base_flat, target_flat, base_cum, "
                           "target_cum]` by the change of flat share, largest first.",
            "security": _SECURED,
            "parameters": [_service(), _type(True), *_WINDOW, _LABELS, *_BASE, _SAMPLE_TYPE, _AGGREGATION,
                           _MAX_NODES],
            "responses": {"200": _json_reply("The diff tree and table"), **_errors(400, 401, 404, 413, 422, 503)},
        },
    },
    "/api/0/profiles/{ids}": {
        "get": {
            "operationId": "getProfiles",
            "summary": "One profile as stored, or several (`id1+id2+...`) merged",
            "security": _SECURED,
            "parameters": [{
                "name": "ids", "in": "path", "required": True,
                "schema": {"type": "string", "example": "c0ffee0123456789abcd"},
                "description": "An id, or ids joined by `+`",
            }],
            "responses": {
                "200": _download("The stored bytes (one id) or a gzip merge (several)"),
                **_errors(400, 401, 404, 413, 422, 503),
            },
        },
    },
    "/api/0/services": {
        "get": {
            "operationId": "listServices",
            "summary": "Service names, sorted",
            "security": _SECURED,
            "responses": {
                "200": {"description": "The services", "content": _json("ServiceListReply")},
                **_errors(401, 404, 503),
            },
        },
    },
    "/api/0/version": {
        "get": {
            "operationId": "version",
            "summary": "What is running; never needs a token",
            "security": [],
            "responses": {"200": {"description": "Build information", "content": _json("VersionReply")}},
        },
    },
    OPENAPI_PATH: {
        "get": {
            "operationId": "openapi",
            "summary": "This document; never needs a token",
            "security": [],
            "responses": {"200": {"description": "The OpenAPI document",
                                  "content": {"application/json": {"schema": {"type": "object"}}}}},
        },
    },
}


# Pyroscope's ingest routes: their own error shapes, so their agents' retries and logs behave.
_PYROSCOPE_STATUSES = {400: _ERROR_TEXT[400], 401: _ERROR_TEXT[401], 413: _ERROR_TEXT[413],
                       415: "A content type, encoding or format the route does not take", 503: _ERROR_TEXT[503]}


def _pyroscope_errors(content: dict[str, Any]) -> dict[str, Any]:
    return {str(status): {"description": text, "content": content} for status, text in _PYROSCOPE_STATUSES.items()}


_BINARY = {"schema": {"type": "string", "format": "binary"}}
_PATHS["/push.v1.PusherService/Push"] = {
    "post": {
        "operationId": "pyroscopePush",
        "summary": "Pyroscope's PusherService.Push (Connect, unary): every sample of every series stored",
        "security": _SECURED + [{"basic": []}],
        "requestBody": {
            "required": True,
            "description": "push.v1.PushRequest as protobuf or Connect's JSON; `Content-Encoding: gzip` allowed",
            "content": {"application/proto": _BINARY,
                        "application/json": {"schema": {"$ref": "#/components/schemas/PushRequest"}}},
        },
        "responses": {
            "200": {"description": "Every profile stored; an empty PushResponse",
                    "content": {"application/proto": _BINARY,
                                "application/json": {"schema": {"type": "object"}}}},
            **_pyroscope_errors(_json("ConnectError")),
        },
    },
}
_PATHS["/ingest"] = {
    "post": {
        "operationId": "pyroscopeIngest",
        "summary": "Pyroscope's older ingest route: one pprof (raw or multipart) or folded profile",
        "security": _SECURED + [{"basic": []}],
        "parameters": [
            _param("name", True, {"type": "string", "example": "billing.cpu{region=eu}"},
                   "`app.kind{key=value,...}`; `app` is the service"),
            _param("from", False, {"type": "integer"}, "Start, Unix seconds (or ms, µs, ns)"),
            _param("until", False, {"type": "integer"}, "End, as `from`"),
            _param("format", False, {"type": "string", "enum": ["folded", "lines", "pprof", "jfr"]},
                   "Default `folded`, `pprof` for a multipart body; `jfr` is refused with 415"),
            _param("sampleRate", False, {"type": "integer", "minimum": 1}, "Hz, for folded CPU samples (default 100)"),
            _param("spyName", False, {"type": "string"}, "Kept as the label `pyroscope.spy`"),
            _param("units", False, {"type": "string", "enum": ["samples", "objects", "bytes", "goroutines",
                                                               "lock_samples", "lock_nanoseconds"]},
                   "What folded values count"),
            _param("aggregationType", False, {"type": "string", "enum": ["sum", "average"]}, "Accepted, not used"),
        ],
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": _BINARY, "text/plain": _BINARY,
                        "multipart/form-data": {"schema": {"type": "object", "properties": {
                            "profile": {"type": "string", "format": "binary"},
                            "prev_profile": {"type": "string", "format": "binary"},
                            "sample_type_config": {"type": "string", "format": "binary"}}}}},
        },
        "responses": {
            "200": {"description": "Stored; an empty body"},
            **_pyroscope_errors({"text/plain": {"schema": {"type": "string"}}}),
        },
    },
}

# Pyroscope's read routes (querier.v1.QuerierService), Connect unary POSTs that read.
_QUERIER = {
    "ProfileTypes": ("Every profile type stored in the range, across services", {"start": "int", "end": "int"}),
    "LabelNames": ("Label names of the matches of any matcher", {"matchers": "strings", "start": "int", "end": "int"}),
    "LabelValues": ("Values of one label among the matches",
                    {"name": "string", "matchers": "strings", "start": "int", "end": "int"}),
    "Series": ("Label sets of the series with profiles in the range",
               {"matchers": "strings", "labelNames": "strings", "start": "int", "end": "int"}),
    "SelectMergeStacktraces": ("The merged flame graph (names and levels) of one service and profile type",
                               {"profileTypeID": "string", "labelSelector": "string", "start": "int", "end": "int",
                                "maxNodes": "int"}),
    "SelectMergeProfile": ("The merged pprof, only the asked sample type",
                           {"profileTypeID": "string", "labelSelector": "string", "start": "int", "end": "int"}),
    "SelectSeries": ("The timeline: the asked sample type summed (or averaged) per step",
                     {"profileTypeID": "string", "labelSelector": "string", "start": "int", "end": "int",
                      "step": "number", "groupBy": "strings", "limit": "int"}),
}
_FIELD_SCHEMAS = {"int": {"oneOf": [{"type": "integer"}, {"type": "string", "pattern": "^-?[0-9]+$"}]},
                  "string": {"type": "string"}, "strings": {"type": "array", "items": {"type": "string"}},
                  "number": {"type": "number"}}
for _method, (_summary, _fields) in _QUERIER.items():
    _PATHS[f"/querier.v1.QuerierService/{_method}"] = {"post": {
        "operationId": f"pyroscope{_method}",
        "summary": f"Pyroscope's QuerierService.{_method} (Connect, unary): {_summary}",
        "security": _SECURED + [{"basic": []}],
        "requestBody": {"required": True, "description": f"querier.v1 {_method} request, protobuf or Connect's JSON",
                        "content": {"application/proto": _BINARY, "application/json": {"schema": {
                            "type": "object", "properties": {k: _FIELD_SCHEMAS[v] for k, v in _fields.items()}}}}},
        "responses": {
            "200": {"description": "The answer, in the request's encoding",
                    "content": {"application/proto": _BINARY, "application/json": {"schema": {"type": "object"}}}},
            **_pyroscope_errors(_json("ConnectError")),
            "422": {"description": _ERROR_TEXT[422], "content": _json("ConnectError")},
        },
    }}


def document(served: Mapping[str, Iterable[str]] | None = None, version: str = "unknown") -> dict[str, Any]:
    """The OpenAPI document; with `served` (OpenAPI-style path -> HTTP methods), only those operations."""
    paths = _PATHS
    if served is not None:
        allowed = {path: {m.lower() for m in methods} for path, methods in served.items()}
        paths = {path: {m: op for m, op in ops.items() if m in allowed.get(path, ())} for path, ops in _PATHS.items()}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "profefe-py",
            "version": version,
            "description": "profefe's HTTP API. Every JSON reply is an envelope: "
                           '`{"code":200,"body":...}` or `{"code":N,"error":"..."}`.',
        },
        "paths": {path: ops for path, ops in paths.items() if ops},
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "Only when tokens are configured"},
                                "basic": {"type": "http", "scheme": "basic",
                                          "description": "Pyroscope's routes: any user, the token as the password"}},
        },
    }


def flask_rule_to_path(rule: str) -> str:
    """`/api/0/profiles/<ids>` -> `/api/0/profiles/{ids}`."""
    out, rest = [], rule
    while "<" in rest:
        head, _, tail = rest.partition("<")
        name, _, rest = tail.partition(">")
        out += [head, "{", name.rpartition(":")[2], "}"]
    return "".join(out) + rest
