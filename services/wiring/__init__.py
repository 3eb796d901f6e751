"""The composition root: the only package that picks adapters and assembles the roles.

`run_<role>(cfg)` is what each command of the CLI calls; the builders beside them are what tests
and benches assemble a role from.
"""
from services.wiring.embedded import EmbeddedPorts, embedded_app, embedded_compactor, open_embedded, run_serve
from services.wiring.pipeline import (
    QueryPorts,
    compactor,
    indexer,
    indexer_liveness,
    ingest_api_app,
    migrate_all,
    open_query,
    query_api_app,
    run_compactor,
    run_indexer,
    run_ingest_api,
    run_migrate,
    run_query_api,
)
from services.wiring.startup import CannotStart

__all__ = [
    "CannotStart",
    "EmbeddedPorts",
    "QueryPorts",
    "compactor",
    "embedded_app",
    "embedded_compactor",
    "indexer",
    "indexer_liveness",
    "ingest_api_app",
    "migrate_all",
    "open_embedded",
    "open_query",
    "query_api_app",
    "run_compactor",
    "run_indexer",
    "run_ingest_api",
    "run_migrate",
    "run_query_api",
    "run_serve",
]
