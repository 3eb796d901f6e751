"""The composition root: the only package that picks adapters and assembles the roles.

`run_<role>(cfg)` is what each command of the CLI calls; the builders beside them are what tests
and benches assemble a role from.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from services.wiring.startup import CannotStart

if TYPE_CHECKING:
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

# A name's module is imported when the name is first asked for, so each command loads what its
# own role needs: the ingest-api neither SQLAlchemy nor the query app, the workers no Flask.
_MODULES = {
    "EmbeddedPorts": "services.wiring.embedded",
    "embedded_app": "services.wiring.embedded",
    "embedded_compactor": "services.wiring.embedded",
    "open_embedded": "services.wiring.embedded",
    "run_serve": "services.wiring.embedded",
    "QueryPorts": "services.wiring.pipeline",
    "compactor": "services.wiring.pipeline",
    "indexer": "services.wiring.pipeline",
    "indexer_liveness": "services.wiring.pipeline",
    "ingest_api_app": "services.wiring.pipeline",
    "migrate_all": "services.wiring.pipeline",
    "open_query": "services.wiring.pipeline",
    "query_api_app": "services.wiring.pipeline",
    "run_compactor": "services.wiring.pipeline",
    "run_indexer": "services.wiring.pipeline",
    "run_ingest_api": "services.wiring.pipeline",
    "run_migrate": "services.wiring.pipeline",
    "run_query_api": "services.wiring.pipeline",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
