"""The composition root: the only package that picks adapters and assembles the roles.

`run_<role>(cfg)` is what each command of the CLI calls; the builders beside them are what tests
and benches assemble a role from.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from services.wiring.startup import CannotStart as CannotStart

if TYPE_CHECKING:  # what `_NAMES` gives, for the type checker (`as`: names this package exports)
    from services.wiring.embedded import EmbeddedPorts as EmbeddedPorts
    from services.wiring.embedded import embedded_app as embedded_app
    from services.wiring.embedded import embedded_compactor as embedded_compactor
    from services.wiring.embedded import open_embedded as open_embedded
    from services.wiring.embedded import run_serve as run_serve
    from services.wiring.pipeline import QueryPorts as QueryPorts
    from services.wiring.pipeline import compactor as compactor
    from services.wiring.pipeline import indexer as indexer
    from services.wiring.pipeline import indexer_liveness as indexer_liveness
    from services.wiring.pipeline import ingest_api_app as ingest_api_app
    from services.wiring.pipeline import migrate_all as migrate_all
    from services.wiring.pipeline import open_query as open_query
    from services.wiring.pipeline import query_api_app as query_api_app
    from services.wiring.pipeline import run_compactor as run_compactor
    from services.wiring.pipeline import run_indexer as run_indexer
    from services.wiring.pipeline import run_ingest_api as run_ingest_api
    from services.wiring.pipeline import run_migrate as run_migrate
    from services.wiring.pipeline import run_query_api as run_query_api

# A name's module is imported when the name is first asked for, so each command loads what its
# own role needs: the ingest-api neither SQLAlchemy nor the query app, the workers no Flask.
_NAMES = {
    "services.wiring.embedded": ("EmbeddedPorts", "embedded_app", "embedded_compactor", "open_embedded", "run_serve"),
    "services.wiring.pipeline": ("QueryPorts", "compactor", "indexer", "indexer_liveness", "ingest_api_app",
                                 "migrate_all", "open_query", "query_api_app", "run_compactor", "run_indexer",
                                 "run_ingest_api", "run_migrate", "run_query_api"),
}
_MODULES = {name: module for module, names in _NAMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
