"""The embedded collector, `profefe serve`: both APIs in one app over a SQLite file and a blob
folder, uploads stored through one group commit, the compactor on a thread, and with
`--workers N` the processes that share the listening socket."""
from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from flask import Flask

from services.compactor.worker import Compactor, start_thread
from services.embedded.group_commit import MAX_BATCH, GroupCommit
from services.embedded.recovery import remove_unindexed
from services.indexer.steps import index
from services.ingest_api import batch_route, pyroscope_routes
from services.ingest_api import routes as ingest_routes
from services.observe.metrics import Metrics
from services.process import native_http, prefork, runner
from services.query_api import querier_routes
from services.query_api import routes as query_routes
from services.query_api import ui
from services.query_api.query import Stores
from services.roles import ServeRole
from services.web import auth, compression, errors, meta
from services.web.access import CountingBlobs, instrument
from services.wiring.startup import CannotStart, announce
from shared.adapters.blobs_local import LocalBlobStore
from shared.adapters.meta_sql import SqlMetaStore, migrate
from shared.adapters.windows_sql import SqlWindowStore
from shared.errors import Unavailable
from shared.model import IngestRecord, blob_key
from shared.ports import Publish

log = logging.getLogger(__name__)


@dataclass
class EmbeddedPorts:
    """The local adapters of `profefe serve`: a blob folder and a SQLite file under data_dir, and
    the group commit that uploads are stored through."""

    blobs: LocalBlobStore
    meta: SqlMetaStore
    windows: SqlWindowStore
    writer: GroupCommit[IngestRecord] | None = None

    def group_commit(self) -> GroupCommit[IngestRecord]:
        """The one writer every upload of this process is stored through, made on first use."""
        if self.writer is None:
            self.writer = group_commit(self.blobs, self.meta)
        return self.writer

    def publisher(self) -> Publish:
        return self.group_commit().submit

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()  # every upload already queued is written before the database closes
        self.blobs.close()
        self.windows.close()
        self.meta.close()


def prepare_embedded(cfg: ServeRole) -> None:
    """Create the data folder, bring the SQLite schema up to date, and remove what a crash left
    half written; before any process serves."""
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(cfg.database_url)
    meta, blobs = SqlMetaStore(cfg.database_url), LocalBlobStore(cfg.blob_dir)
    try:
        remove_unindexed(blobs, meta)
    finally:
        blobs.close()
        meta.close()


def open_embedded(cfg: ServeRole, *, prepare: bool = True) -> EmbeddedPorts:
    """Open the adapters; first `prepare_embedded`, unless the caller did that already."""
    if prepare:
        prepare_embedded(cfg)
    return EmbeddedPorts(blobs=LocalBlobStore(cfg.blob_dir), meta=SqlMetaStore(cfg.database_url),
                         windows=SqlWindowStore(cfg.database_url))


def group_commit(blobs: LocalBlobStore, meta: SqlMetaStore, max_batch: int = MAX_BATCH) -> GroupCommit[IngestRecord]:
    """The embedded publisher: the indexer's `index` run in-process, so an upload returns once its
    blob and row are stored. Concurrent uploads share a transaction and one append to a pack."""
    def write(records: Sequence[IngestRecord]) -> None:
        try:
            index(records, blobs, meta)
        except Exception:
            # Rows are committed together or not at all: without them these blobs would never be
            # found (the client retries under a new id), and on a full disk they hold its space. A
            # delete the full disk refuses too is left for the next start (`remove_unindexed`).
            for record in records:
                try:
                    blobs.delete(blob_key(record.id))
                except (OSError, Unavailable):
                    pass
            raise

    return GroupCommit(write, max_batch=max_batch)


def embedded_compactor(ports: EmbeddedPorts, cfg: ServeRole, metrics: Metrics | None = None) -> Compactor:
    """The compactor of `profefe serve`, over the same SQLite file and blob folder; its stats
    join the app's metrics when given."""
    compactor = Compactor(ports.windows, ports.blobs, cfg.compactor)
    export = metrics.export_compactor(lambda: compactor.stats) if metrics is not None else None

    def after_pass() -> None:
        # Retention has just deleted blobs: the packs it left mostly dead give their space back.
        try:
            packs, freed = ports.blobs.reclaim(lambda: compactor.stopping)
        except (OSError, Unavailable) as exc:  # a full disk, say: the next pass tries again
            log.warning("reclaiming pack space failed: %s", exc)
        else:
            if packs:
                log.info("reclaimed %d packs, %.1f MiB", packs, freed / (1 << 20))
        if export is not None:
            export()

    compactor.after_pass = after_pass
    return compactor


def embedded_app(ports: EmbeddedPorts, cfg: ServeRole, metrics: Metrics | None = None) -> Flask:
    """Ingest and query routes in one app (one router, so a wrong method is a 405 on every path)."""
    app = Flask("profefe")
    app.config["MAX_CONTENT_LENGTH"] = cfg.ingest.max_body_bytes
    errors.install(app)
    compression.install(app)
    meta.install(app, {"sqlite": ports.meta.ping, "blobs": ports.blobs.ping})
    publish = ports.publisher()
    app.register_blueprint(ingest_routes.blueprint(publish, cfg.ingest))
    app.register_blueprint(pyroscope_routes.blueprint(publish, cfg.ingest))
    stores = Stores(meta=ports.meta, blobs=CountingBlobs(ports.blobs), windows=ports.windows)
    app.register_blueprint(query_routes.blueprint(stores, cfg.query))
    app.register_blueprint(querier_routes.blueprint(stores, cfg.query))
    app.register_blueprint(ui.blueprint())
    return auth.protect(instrument(app, metrics or Metrics("serve")), cfg.auth)


def serve_worker(cfg: ServeRole, worker: int = 0, sock: socket.socket | None = None,
                 metrics_dir: Path | None = None) -> int:
    """One serving process: its own adapters and app, and in the first one the compactor;
    metric values in `metrics_dir` when the workers share them."""
    ports = open_embedded(cfg, prepare=cfg.workers == 1)
    compactor: Compactor | None = None
    thread: threading.Thread | None = None
    try:
        metrics = Metrics("serve", shared=metrics_dir)
        app = embedded_app(ports, cfg, metrics)
        if cfg.compactor.interval > 0 and worker == 0:
            compactor = embedded_compactor(ports, cfg, metrics)
            thread = start_thread(compactor)

        def ready(where: str) -> None:
            if worker == 0:
                many = f", {cfg.workers} workers" if cfg.workers > 1 else ""
                announce(f"profefe: listening on http://{where}, data in {cfg.data_dir.resolve()}{many}")

        if cfg.http == "native":
            batch = None
            if not cfg.auth.enabled:  # with auth every request goes through its check, in the app
                batch = (batch_route.PATH, batch_route.handler(ports.group_commit().write_now, cfg.ingest, metrics),
                         cfg.ingest.max_decompressed_bytes)
            return native_http.serve(app, cfg.addr.host, cfg.addr.port, threads=cfg.threads, on_ready=ready,
                                     read_timeout=cfg.read_timeout, max_body=cfg.ingest.max_body_bytes,
                                     sock=sock, batch=batch)
        return runner.serve(app, cfg.addr.host, cfg.addr.port, threads=cfg.threads, on_ready=ready,
                            read_timeout=cfg.read_timeout, sock=sock)
    finally:
        if compactor is not None and thread is not None:
            compactor.stop()
            thread.join(timeout=60)
        ports.close()


METRICS_PREFIX = "profefe-metrics-"


def new_metrics_folder() -> Path:
    """The workers' metric values, so that a scrape reaching any of them counts all: a new folder
    each run, as prometheus-client wants (values of an earlier run would be added in), named after
    this process. A parent killed by SIGKILL cannot remove its folder, so the folders of parents
    that are gone are removed here first."""
    for old in Path(tempfile.gettempdir()).glob(f"{METRICS_PREFIX}*-*"):
        pid = old.name[len(METRICS_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{METRICS_PREFIX}{os.getpid()}-"))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's: not ours to remove
    return True


def run_serve(cfg: ServeRole) -> int:
    """`profefe serve`: one process, or `workers` forked over one listening socket."""
    if cfg.workers == 1:
        return serve_worker(cfg)
    prepare_embedded(cfg)  # migrate once, before the workers open the database
    try:
        sock = prefork.listen(cfg.addr.host, cfg.addr.port)
    except OSError as exc:
        raise CannotStart(f"cannot listen on {cfg.addr}: {exc}") from None
    metrics_dir = new_metrics_folder()
    try:
        return prefork.run_workers(sock, cfg.workers,
                                   lambda worker, inherited: serve_worker(cfg, worker, inherited, metrics_dir))
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
