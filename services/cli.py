"""The one command line: `profefe <role>`."""
from __future__ import annotations

import click

from services import runner
from services.compactor.config import CompactorConfig, format_duration
from services.config import (
    DEFAULT_ADDR,
    DEFAULT_QUERY_ADDR,
    IngestApiConfig,
    MigrateConfig,
    QueryApiConfig,
    ServeConfig,
)
from services.importer import DEFAULT_URL, PROFILE_TYPES, run_import
from services.indexer.config import IndexerConfig
from services.ingest_api.config import IngestConfig
from services.prefork import MAX_WORKERS
from services.query_api.config import QueryConfig


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="profefe-py", prog_name="profefe")
@click.option("--log-format", envvar="PROFEFE_LOG_FORMAT", default="text", show_default=True,
              type=click.Choice(["text", "json"]),
              help="Process logs as text or JSON lines; request logs are JSON either way (also PROFEFE_LOG_FORMAT).")
def main(log_format) -> None:
    """profefe-py: a continuous-profiling collector that speaks profefe's HTTP API."""


def _log_format() -> str:
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return "text"
    return ctx.find_root().params.get("log_format") or "text"


def _optional_address(_ctx, _param, value):
    return _address(_ctx, _param, value) if value else None


_health_addr_option = click.option(
    "--health-addr", envvar="PROFEFE_HEALTH_ADDR", default="", metavar="HOST:PORT", callback=_optional_address,
    help="Serve /healthz, /readyz and /metrics here; off when empty (also PROFEFE_HEALTH_ADDR).")


def _address(_ctx, _param, value: str):
    from services.config import Address

    try:
        return Address.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _duration(_ctx, _param, value):
    from services.compactor.config import parse_duration

    try:
        return parse_duration(value) if isinstance(value, str) else value
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _service_durations(_ctx, _param, values):
    from services.compactor.config import parse_service_duration

    try:
        return tuple(parse_service_duration(v) for v in values)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


_read_timeout_option = click.option(
    "--read-timeout", envvar="PROFEFE_READ_TIMEOUT", default=runner.READ_TIMEOUT, type=click.FloatRange(0.5, 3600),
    help="Seconds a client may take to send one whole request; the connection is closed after "
         "(also PROFEFE_READ_TIMEOUT).")


def _auth_options(*kinds: str):
    """`--ingest-tokens` / `--read-tokens` (and their `-file` variants) for the given kinds."""
    what = {"ingest": "uploads (POST)", "read": "every read (GET)"}

    def add(f):
        for kind in reversed(kinds):
            env = f"PROFEFE_{kind.upper()}_TOKENS"
            f = click.option(f"--{kind}-tokens-file", envvar=f"{env}_FILE", default="", metavar="FILE",
                             show_default=False,
                             help=f"Read the {kind} tokens from this file, one per line (also {env}_FILE).")(f)
            f = click.option(f"--{kind}-tokens", envvar=env, default="", metavar="TOKEN[,...]", show_default=False,
                             help=f"Bearer tokens that allow {what[kind]}; none: open. Prefer {env} or the "
                                  f"file: a flag is visible to other users in `ps`.")(f)
        return f

    return add


def _auth_config(kw: dict):
    """The AuthConfig from the options `_auth_options` added, popped from `kw`."""
    from services.auth import AuthConfig, parse_tokens, read_token_file

    tokens = {}
    for kind in ("ingest", "read"):
        raw, path = kw.pop(f"{kind}_tokens", ""), kw.pop(f"{kind}_tokens_file", "")
        try:
            tokens[kind] = parse_tokens(raw) + (read_token_file(path) if path else ())
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=f"--{kind}-tokens") from None
    return AuthConfig(ingest_tokens=tokens["ingest"], read_tokens=tokens["read"])


def _compactor_options(f):
    """Window and retention settings, shared by `serve` (its compactor thread) and `compactor`."""
    for opt in reversed([
        click.option("--grace", envvar="PROFEFE_GRACE", default=format_duration(CompactorConfig.grace), callback=_duration, metavar="DURATION",
                     help="An hour is compacted this long after it ends (also PROFEFE_GRACE)."),
        click.option("--raw-retention", envvar="PROFEFE_RAW_RETENTION",
                     default=format_duration(CompactorConfig.raw_retention), callback=_duration,
                     metavar="DURATION", help="Raw profiles older than this are deleted once their hour is "
                                             "compacted (also PROFEFE_RAW_RETENTION)."),
        click.option("--raw-retention-for", envvar="PROFEFE_RAW_RETENTION_FOR", multiple=True,
                     callback=_service_durations, metavar="SERVICE=DURATION",
                     help="Per-service raw retention; repeatable (also PROFEFE_RAW_RETENTION_FOR, space-separated)."),
        click.option("--window-retention", envvar="PROFEFE_WINDOW_RETENTION",
                     default=format_duration(CompactorConfig.window_retention), callback=_duration,
                     metavar="DURATION", help="Pre-merged windows older than this are deleted, whole days "
                                             "(also PROFEFE_WINDOW_RETENTION)."),
        click.option("--orphan-age", envvar="PROFEFE_ORPHAN_AGE", default=format_duration(CompactorConfig.orphan_age), callback=_duration,
                     metavar="DURATION", help="A window blob no window points to is deleted once this old: what "
                                             "a compactor killed mid-build leaves (also PROFEFE_ORPHAN_AGE)."),
    ]):
        f = opt(f)
    return f


def _compactor_config(interval, grace, raw_retention, raw_retention_for, window_retention, orphan_age):
    try:
        return CompactorConfig(interval=interval, grace=grace, raw_retention=raw_retention,
                               raw_retention_for=raw_retention_for, window_retention=window_retention,
                               orphan_age=orphan_age)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


@main.command("serve", context_settings={"show_default": True})
@click.option("--addr", envvar="PROFEFE_ADDR", default=DEFAULT_ADDR, callback=_address,
              metavar="HOST:PORT", help="Where to listen (also PROFEFE_ADDR).")
@click.option("--data-dir", envvar="PROFEFE_DATA_DIR", default="./data", metavar="DIR",
              type=click.Path(file_okay=False), help="SQLite file and blob folder live here (also PROFEFE_DATA_DIR).")
@click.option("--max-body-bytes", envvar="PROFEFE_MAX_BODY_BYTES", default=IngestConfig.max_body_bytes, type=click.IntRange(1),
              help="Largest upload accepted, as sent; 413 above (also PROFEFE_MAX_BODY_BYTES).")
@click.option("--max-decompressed-bytes", envvar="PROFEFE_MAX_DECOMPRESSED_BYTES", default=IngestConfig.max_decompressed_bytes,
              type=click.IntRange(1), help="Largest pprof once gunzipped; 413 above (also PROFEFE_MAX_DECOMPRESSED_BYTES).")
@click.option("--max-labels", envvar="PROFEFE_MAX_LABELS", default=IngestConfig.max_labels, type=click.IntRange(1),
              help="Most labels on one profile; 400 above (also PROFEFE_MAX_LABELS).")
@click.option("--max-label-chars", envvar="PROFEFE_MAX_LABEL_CHARS", default=IngestConfig.max_label_value_chars, type=click.IntRange(1),
              help="Longest label value (keys: a quarter of it, at least 1); 400 above (also PROFEFE_MAX_LABEL_CHARS).")
@click.option("--max-service-chars", envvar="PROFEFE_MAX_SERVICE_CHARS", default=IngestConfig.max_service_chars, type=click.IntRange(1),
              help="Longest service name; 400 above (also PROFEFE_MAX_SERVICE_CHARS).")
@click.option("--max-merge-profiles", envvar="PROFEFE_MAX_MERGE_PROFILES", default=QueryConfig.max_merge_profiles, type=click.IntRange(1),
              help="Most stored profiles one merge reads (also PROFEFE_MAX_MERGE_PROFILES).")
@click.option("--threads", envvar="PROFEFE_THREADS", default=ServeConfig.threads, type=click.IntRange(1, 256),
              help="HTTP worker threads (also PROFEFE_THREADS).")
@click.option("--workers", envvar="PROFEFE_WORKERS", default=1, type=click.IntRange(1, MAX_WORKERS),
              help="Processes sharing the listening socket, one core each; the compactor runs in the "
                   "first (also PROFEFE_WORKERS).")
@click.option("--compact-interval", envvar="PROFEFE_COMPACT_INTERVAL", default=CompactorConfig.interval, type=click.FloatRange(0),
              help="Seconds between compactor passes; 0 runs no compactor (also PROFEFE_COMPACT_INTERVAL).")
@click.option("--merge-windows/--no-merge-windows", envvar="PROFEFE_MERGE_WINDOWS", default=True,
              help="Merge whole clean hours and days from pre-merged windows (also PROFEFE_MERGE_WINDOWS=0|1).")
@_compactor_options
@_auth_options("ingest", "read")
@_read_timeout_option
def serve(addr, data_dir, max_body_bytes, max_decompressed_bytes, max_labels, max_label_chars,
          max_service_chars, max_merge_profiles, threads, workers, compact_interval, merge_windows,
          **retention) -> None:
    """The embedded collector: ingest and query API in one process, SQLite + a blob folder, no servers."""
    from pathlib import Path

    from services import wiring

    _daemon_logging()
    auth = _auth_config(retention)
    read_timeout = retention.pop("read_timeout")
    cfg = ServeConfig(
        auth=auth,
        addr=addr,
        data_dir=Path(data_dir),
        threads=threads,
        ingest=IngestConfig(
            max_body_bytes=max_body_bytes,
            max_decompressed_bytes=max_decompressed_bytes,
            max_labels=max_labels,
            max_label_key_chars=max(1, max_label_chars // 4),
            max_label_value_chars=max_label_chars,
            max_service_chars=max_service_chars,
        ),
        query=QueryConfig(max_decompressed_bytes=max_decompressed_bytes, max_merge_profiles=max_merge_profiles,
                          use_windows=merge_windows),
    )
    compaction = _compactor_config(compact_interval, **retention)

    def run(worker: int, sock=None) -> int:
        ports = wiring.open_embedded(cfg, prepare=workers == 1)
        compactor = thread = None
        try:
            from services.metrics import Metrics

            metrics = Metrics("serve")
            app = wiring.embedded_app(ports, cfg, metrics)
            if compact_interval > 0 and worker == 0:
                from services.compactor.worker import start_thread

                compactor = wiring.embedded_compactor(ports, compaction, metrics)
                thread = start_thread(compactor)

            def ready(where: str) -> None:
                if worker == 0:
                    many = f", {workers} workers" if workers > 1 else ""
                    click.echo(f"profefe: listening on http://{where}, data in {cfg.data_dir.resolve()}{many}",
                               err=True)

            return runner.serve(app, cfg.addr.host, cfg.addr.port, threads=cfg.threads, on_ready=ready,
                                read_timeout=read_timeout, sock=sock)
        finally:
            if compactor is not None and thread is not None:
                compactor.stop()
                thread.join(timeout=60)
            ports.close()

    if workers == 1:
        code = run(0)
    else:
        from services import prefork

        wiring.prepare_embedded(cfg)  # migrate once, before the workers open the database
        try:
            sock = prefork.listen(cfg.addr.host, cfg.addr.port)
        except OSError as exc:
            raise click.ClickException(f"cannot listen on {cfg.addr.host}:{cfg.addr.port}: {exc}") from None
        code = prefork.run_workers(sock, workers, run)
    raise SystemExit(code)


@main.command("import", context_settings={"show_default": True})
@click.option("--url", envvar="PROFEFE_URL", default=DEFAULT_URL, metavar="URL",
              help="Any profefe-compatible collector (also PROFEFE_URL).")
@click.option("--service", required=True, help="Service name the profiles belong to.")
@click.option("--type", "profile_type", required=True,
              type=click.Choice(PROFILE_TYPES))
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Repeatable.")
@click.option("--created-at", metavar="TIME",
              help="UTC YYYY-MM-DDTHH:MM:SS or RFC 3339; used when a profile has no time of its own.")
@click.option("--attempts", default=4, type=click.IntRange(1, 10), help="Tries per file on 5xx or connection errors.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, no summary; failures only.")
@click.option("--token", envvar="PROFEFE_TOKEN", default="", show_default=False,
              help="Bearer token for a collector that requires one; prefer PROFEFE_TOKEN (a flag shows in `ps`).")
@click.argument("paths", nargs=-1, required=True, metavar="FILES_OR_DIRS...")
def import_profiles(url, service, profile_type, labels, created_at, attempts, quiet, token, paths) -> None:
    """Upload pprof files (directories walked) to a collector, like profefe's pprof_import.sh.

    Exits 1 when any file was refused or could not be sent, naming each with the server's reason.
    """
    report = run_import(url=url, service=service, profile_type=profile_type, labels=labels,
                        created_at=created_at, paths=paths, quiet=quiet, attempts=attempts,
                        token=token.strip() or None)
    if report.failed:
        raise SystemExit(1)


# The distributed roles ---------------------------------------------------------------------
# Every option is also read from the PROFEFE_* variable named in its help.


def _kafka_options(f):
    for opt in reversed([
        click.option("--kafka-bootstrap", envvar="PROFEFE_KAFKA_BOOTSTRAP", default="", metavar="HOST:PORT[,...]",
                     help="Kafka brokers (also PROFEFE_KAFKA_BOOTSTRAP)."),
        click.option("--kafka-topic", envvar="PROFEFE_KAFKA_TOPIC", default="profefe-profiles",
                     help="Topic of accepted uploads (also PROFEFE_KAFKA_TOPIC)."),
        click.option("--kafka-dead-letter-topic", envvar="PROFEFE_KAFKA_DEAD_LETTER_TOPIC", default="",
                     help="Where records that can never be indexed go; default: the topic + '-dead' "
                          "(also PROFEFE_KAFKA_DEAD_LETTER_TOPIC)."),
        click.option("--kafka-group", envvar="PROFEFE_KAFKA_GROUP", default="profefe-indexer",
                     help="Consumer group the indexers share (also PROFEFE_KAFKA_GROUP)."),
    ]):
        f = opt(f)
    return f


def _s3_options(f):
    for opt in reversed([
        click.option("--s3-endpoint", envvar="PROFEFE_S3_ENDPOINT", default="", metavar="HOST:PORT",
                     help="S3-compatible object store, without scheme (also PROFEFE_S3_ENDPOINT)."),
        click.option("--s3-access-key", envvar="PROFEFE_S3_ACCESS_KEY", default="",
                     help="Also PROFEFE_S3_ACCESS_KEY."),
        click.option("--s3-secret-key", envvar="PROFEFE_S3_SECRET_KEY", default="", show_default=False,
                     help="Prefer PROFEFE_S3_SECRET_KEY: a flag is visible to other users in `ps`."),
        click.option("--s3-bucket", envvar="PROFEFE_S3_BUCKET", default="profefe", help="Also PROFEFE_S3_BUCKET."),
        click.option("--s3-secure/--no-s3-secure", envvar="PROFEFE_S3_SECURE", default=False,
                     help="HTTPS to the object store (also PROFEFE_S3_SECURE)."),
        click.option("--s3-region", envvar="PROFEFE_S3_REGION", default="",
                     help="Saves asking the store for the bucket's region (also PROFEFE_S3_REGION)."),
    ]):
        f = opt(f)
    return f


_database_option = click.option(
    "--database-url", envvar="PROFEFE_DATABASE_URL", default="", metavar="URL",
    help="PostgreSQL, as postgresql+psycopg://user:pass@host:port/db (also PROFEFE_DATABASE_URL).")
_body_option = click.option(
    "--max-body-bytes", envvar="PROFEFE_MAX_BODY_BYTES", default=IngestConfig.max_body_bytes, type=click.IntRange(1),
    help="Largest upload accepted, as sent; sizes the Kafka messages too (also PROFEFE_MAX_BODY_BYTES).")


def _kafka_settings(kw: dict, max_body_bytes: int):
    from shared.adapters.queue_kafka import KafkaSettings, record_max_bytes

    bootstrap = kw.pop("kafka_bootstrap").strip()
    topic, dead, group = kw.pop("kafka_topic"), kw.pop("kafka_dead_letter_topic"), kw.pop("kafka_group")
    if not bootstrap:
        return None
    try:
        return KafkaSettings(bootstrap=bootstrap, topic=topic, dead_letter_topic=dead or f"{topic}-dead",
                             group=group, max_message_bytes=record_max_bytes(max_body_bytes))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def _s3_settings(kw: dict):
    from shared.adapters.blobs_s3 import S3Settings

    endpoint = kw.pop("s3_endpoint").strip()
    access, secret, bucket, secure, region = (
        kw.pop(k) for k in ("s3_access_key", "s3_secret_key", "s3_bucket", "s3_secure", "s3_region"))
    if not endpoint:
        return None
    try:
        return S3Settings(endpoint=endpoint, access_key=access, secret_key=secret, bucket=bucket, secure=secure,
                          region=region or None)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def _validated(cfg):
    from services.config import LocalOnly

    try:
        cfg.validate()
    except (LocalOnly, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    return cfg


def _daemon_logging() -> None:
    import logging

    from services.observe import configure_logging

    configure_logging(_log_format())
    for noisy in ("kafka", "alembic", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # It warns about its own slow event-loop turns, which a busy two-core machine has plenty of.
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)


@main.command("ingest-api", context_settings={"show_default": True})
@click.option("--addr", envvar="PROFEFE_ADDR", default=DEFAULT_ADDR, callback=_address,
              metavar="HOST:PORT", help="Where to listen (also PROFEFE_ADDR).")
@_kafka_options
@_body_option
@click.option("--max-decompressed-bytes", envvar="PROFEFE_MAX_DECOMPRESSED_BYTES", default=IngestConfig.max_decompressed_bytes,
              type=click.IntRange(1), help="Largest pprof once gunzipped; 413 above (also PROFEFE_MAX_DECOMPRESSED_BYTES).")
@click.option("--max-labels", envvar="PROFEFE_MAX_LABELS", default=IngestConfig.max_labels, type=click.IntRange(1),
              help="Most labels on one profile (also PROFEFE_MAX_LABELS).")
@click.option("--max-label-key-chars", envvar="PROFEFE_MAX_LABEL_KEY_CHARS", default=IngestConfig.max_label_key_chars, type=click.IntRange(1),
              help="Longest label key (also PROFEFE_MAX_LABEL_KEY_CHARS).")
@click.option("--max-label-value-chars", envvar="PROFEFE_MAX_LABEL_VALUE_CHARS", default=IngestConfig.max_label_value_chars,
              type=click.IntRange(1), help="Longest label value (also PROFEFE_MAX_LABEL_VALUE_CHARS).")
@click.option("--max-service-chars", envvar="PROFEFE_MAX_SERVICE_CHARS", default=IngestConfig.max_service_chars, type=click.IntRange(1),
              help="Longest service name (also PROFEFE_MAX_SERVICE_CHARS).")
@click.option("--publish-timeout", envvar="PROFEFE_PUBLISH_TIMEOUT", default=IngestConfig.publish_timeout, type=click.FloatRange(0.1, 120),
              help="Seconds to wait for Kafka's acknowledgement before answering 503 (also PROFEFE_PUBLISH_TIMEOUT).")
@click.option("--threads", envvar="PROFEFE_THREADS", default=IngestApiConfig.threads, type=click.IntRange(1, 256),
              help="HTTP worker threads (also PROFEFE_THREADS).")
@_auth_options("ingest")
@_read_timeout_option
def ingest_api(addr, max_body_bytes, max_decompressed_bytes, max_labels, max_label_key_chars,
               max_label_value_chars, max_service_chars, publish_timeout, threads, **kw) -> None:
    """Validate uploads and publish them to Kafka; 200 once Kafka acknowledged (acks=all)."""
    from services import wiring

    _daemon_logging()
    read_timeout = kw.pop("read_timeout")
    cfg = _validated(IngestApiConfig(
        auth=_auth_config(kw),
        kafka=_kafka_settings(kw, max_body_bytes),
        addr=addr,
        threads=threads,
        ingest=IngestConfig(
            max_body_bytes=max_body_bytes,
            max_decompressed_bytes=max_decompressed_bytes,
            max_labels=max_labels,
            max_label_key_chars=max_label_key_chars,
            max_label_value_chars=max_label_value_chars,
            max_service_chars=max_service_chars,
            publish_timeout=publish_timeout,
        ),
    ))
    queue = wiring.open_queue(cfg.kafka, publish_timeout)
    try:
        app = wiring.ingest_api_app(queue, cfg)
        code = runner.serve(app, cfg.addr.host, cfg.addr.port, threads=cfg.threads, read_timeout=read_timeout,
                            on_ready=lambda where: click.echo(f"profefe ingest-api: listening on http://{where}, "
                                                              f"topic {cfg.kafka.topic}", err=True))
    finally:
        queue.close()
    raise SystemExit(code)


@main.command("query-api", context_settings={"show_default": True})
@click.option("--addr", envvar="PROFEFE_ADDR", default=DEFAULT_QUERY_ADDR, callback=_address,
              metavar="HOST:PORT", help="Where to listen (also PROFEFE_ADDR).")
@_database_option
@_s3_options
@click.option("--max-decompressed-bytes", envvar="PROFEFE_MAX_DECOMPRESSED_BYTES", default=QueryConfig.max_decompressed_bytes,
              type=click.IntRange(1), help="Largest stored pprof once gunzipped (also PROFEFE_MAX_DECOMPRESSED_BYTES).")
@click.option("--max-merge-profiles", envvar="PROFEFE_MAX_MERGE_PROFILES", default=QueryConfig.max_merge_profiles, type=click.IntRange(1),
              help="Most stored profiles one merge reads (also PROFEFE_MAX_MERGE_PROFILES).")
@click.option("--threads", envvar="PROFEFE_THREADS", default=QueryApiConfig.threads, type=click.IntRange(1, 256),
              help="HTTP worker threads (also PROFEFE_THREADS).")
@_auth_options("read")
@_read_timeout_option
def query_api(addr, database_url, max_decompressed_bytes, max_merge_profiles, threads, **kw) -> None:
    """Find, download and merge profiles from PostgreSQL and S3."""
    from services import wiring

    _daemon_logging()
    read_timeout = kw.pop("read_timeout")
    cfg = _validated(QueryApiConfig(
        auth=_auth_config(kw),
        s3=_s3_settings(kw),
        database_url=database_url,
        addr=addr,
        threads=threads,
        query=QueryConfig(max_decompressed_bytes=max_decompressed_bytes, max_merge_profiles=max_merge_profiles),
    ))
    ports = wiring.open_query(cfg)
    try:
        app = wiring.query_api_app(ports, cfg)
        code = runner.serve(app, cfg.addr.host, cfg.addr.port, threads=cfg.threads, read_timeout=read_timeout,
                            on_ready=lambda where: click.echo(f"profefe query-api: listening on http://{where}", err=True))
    finally:
        ports.close()
    raise SystemExit(code)


@main.command("indexer", context_settings={"show_default": True})
@_kafka_options
@_s3_options
@_database_option
@_body_option
@click.option("--batch-size", envvar="PROFEFE_BATCH_SIZE", default=IndexerConfig.batch_size, type=click.IntRange(1, 10_000),
              help="Records stored and committed together (also PROFEFE_BATCH_SIZE).")
@click.option("--health-file", envvar="PROFEFE_HEALTH_FILE", default=None, type=click.Path(dir_okay=False),
              help="Touched after every loop, for a liveness probe (also PROFEFE_HEALTH_FILE).")
@_health_addr_option
def indexer(database_url, max_body_bytes, batch_size, health_file, health_addr, **kw) -> None:
    """Consume the topic: store each blob in S3, its row in PostgreSQL, then commit the offsets.

    Run several: the consumer group shares the partitions among them. SIGTERM finishes the batch
    in hand, commits it and exits 0; a second signal exits at once.
    """
    from pathlib import Path

    from services import wiring
    from services.config import IndexerRoleConfig
    from services.runner import run_until_signalled

    _daemon_logging()
    cfg = _validated(IndexerRoleConfig(
        kafka=_kafka_settings(kw, max_body_bytes),
        s3=_s3_settings(kw),
        database_url=database_url,
        indexer=IndexerConfig(batch_size=batch_size, health_file=Path(health_file) if health_file else None),
    ))
    worker = wiring.indexer_worker(cfg)
    health = _start_health(wiring.indexer_health, worker, health_addr)
    click.echo(f"profefe indexer: consuming {cfg.kafka.topic} as group {cfg.kafka.group}", err=True)
    try:
        code = run_until_signalled(worker, "the batch in hand")
    finally:
        if health is not None:
            health.close()
    raise SystemExit(code)


def _start_health(build, worker, addr):
    """The worker's health server on `addr` (None: none), started; refusing a port in use."""
    if addr is None:
        return None
    try:
        health = build(worker, addr.host, addr.port).start()
    except OSError as exc:
        raise click.UsageError(f"--health-addr {addr}: {exc.strerror or exc}") from None
    click.echo(f"profefe: health and metrics on http://{health.address}", err=True)
    return health


@main.command("compactor", context_settings={"show_default": True})
@_s3_options
@_database_option
@click.option("--interval", envvar="PROFEFE_COMPACT_INTERVAL", default=CompactorConfig.interval, type=click.FloatRange(0),
              help="Seconds between passes (also PROFEFE_COMPACT_INTERVAL).")
@_compactor_options
@_health_addr_option
def compactor_command(database_url, interval, grace, raw_retention, raw_retention_for, window_retention,
                      orphan_age, health_addr, **kw) -> None:
    """Pre-merge every closed hour of every series, then every day of clean hours, and apply retention.

    Run several: each window is claimed in PostgreSQL (FOR UPDATE SKIP LOCKED). SIGTERM finishes
    the window in hand and exits 0; a second signal exits at once.
    """
    from services import wiring
    from services.runner import run_until_signalled
    from services.config import CompactorRoleConfig

    _daemon_logging()
    cfg = _validated(CompactorRoleConfig(
        s3=_s3_settings(kw), database_url=database_url,
        compactor=_compactor_config(interval, grace, raw_retention, raw_retention_for, window_retention,
                                    orphan_age),
    ))
    compactor = wiring.compactor_worker(cfg)
    health = _start_health(wiring.compactor_health, compactor, health_addr)
    click.echo(f"profefe compactor: every {cfg.compactor.interval:g}s", err=True)
    try:
        code = run_until_signalled(compactor, "the window in hand")
    finally:
        if health is not None:
            health.close()
    raise SystemExit(code)


@main.command("migrate", context_settings={"show_default": True})
@_kafka_options
@_s3_options
@_database_option
@_body_option
@click.option("--partitions", envvar="PROFEFE_KAFKA_PARTITIONS", default=MigrateConfig.partitions, type=click.IntRange(1, 1000),
              help="Partitions of a new topic: the most indexers that can share the work (also PROFEFE_KAFKA_PARTITIONS).")
@click.option("--replication", envvar="PROFEFE_KAFKA_REPLICATION", default=MigrateConfig.replication, type=click.IntRange(1, 16),
              help="Replicas of each partition of a new topic (also PROFEFE_KAFKA_REPLICATION).")
def migrate_command(database_url, max_body_bytes, partitions, replication, **kw) -> None:
    """Create the Kafka topics, the S3 bucket and the database schema; what exists is left alone."""
    from services import wiring
    from shared.errors import Unavailable

    _daemon_logging()
    cfg = _validated(MigrateConfig(kafka=_kafka_settings(kw, max_body_bytes), s3=_s3_settings(kw),
                                   database_url=database_url, partitions=partitions, replication=replication))
    try:
        for line in wiring.migrate_all(cfg):
            click.echo(f"profefe migrate: {line}", err=True)
    except Unavailable as exc:
        raise click.ClickException(str(exc)) from None


DAEMON_ROLES = ("serve", "ingest-api", "query-api", "indexer", "compactor", "migrate")


@main.command("config", context_settings={"ignore_unknown_options": True})
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
@click.argument("role", required=False, type=click.Choice(DAEMON_ROLES))
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="[FLAGS]...")
@click.pass_context
def config_command(ctx, as_json, role, args) -> None:
    """Print what ROLE would run with (every role when omitted): defaults, then PROFEFE_*
    variables, then the FLAGS given after ROLE, each with where it came from. Secrets (the S3
    secret key, passwords in URLs, tokens) are redacted. Nothing is connected to."""
    import json

    from services import config_report

    if args and role is None:
        raise click.UsageError("flags need a ROLE before them")
    root = ctx.find_root()
    sections = {"global": config_report.settings(root)}
    for name in [role] if role else DAEMON_ROLES:
        with main.commands[name].make_context(name, list(args), parent=root) as sub:
            sections[name] = config_report.settings(sub)
    if as_json:
        click.echo(json.dumps({k: [r.as_dict() for r in rows] for k, rows in sections.items()}, indent=2))
    else:
        click.echo("\n\n".join(config_report.render_text(k, rows) for k, rows in sections.items()))


if __name__ == "__main__":
    main()
