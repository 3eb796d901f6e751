"""The one command line: `profefe <role>`."""
from __future__ import annotations

import click

from services.importer import DEFAULT_URL, PROFILE_TYPES, run_import


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="profefe-py", prog_name="profefe")
def main() -> None:
    """profefe-py: a continuous-profiling collector that speaks profefe's HTTP API."""


def _address(_ctx, _param, value: str):
    from services.config import Address

    try:
        return Address.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@main.command("serve", context_settings={"show_default": True})
@click.option("--addr", envvar="PROFEFE_ADDR", default="127.0.0.1:10100", callback=_address,
              metavar="HOST:PORT", help="Where to listen (also PROFEFE_ADDR).")
@click.option("--data-dir", envvar="PROFEFE_DATA_DIR", default="./data", metavar="DIR",
              type=click.Path(file_okay=False), help="SQLite file and blob folder live here (also PROFEFE_DATA_DIR).")
@click.option("--max-body-bytes", envvar="PROFEFE_MAX_BODY_BYTES", default=8 << 20, type=click.IntRange(1),
              help="Largest upload accepted, as sent; 413 above (also PROFEFE_MAX_BODY_BYTES).")
@click.option("--max-decompressed-bytes", envvar="PROFEFE_MAX_DECOMPRESSED_BYTES", default=64 << 20,
              type=click.IntRange(1), help="Largest pprof once gunzipped; 413 above (also PROFEFE_MAX_DECOMPRESSED_BYTES).")
@click.option("--max-labels", envvar="PROFEFE_MAX_LABELS", default=64, type=click.IntRange(1),
              help="Most labels on one profile; 400 above (also PROFEFE_MAX_LABELS).")
@click.option("--max-label-chars", envvar="PROFEFE_MAX_LABEL_CHARS", default=1024, type=click.IntRange(1),
              help="Longest label value (keys: a quarter of it, at least 1); 400 above (also PROFEFE_MAX_LABEL_CHARS).")
@click.option("--max-service-chars", envvar="PROFEFE_MAX_SERVICE_CHARS", default=128, type=click.IntRange(1),
              help="Longest service name; 400 above (also PROFEFE_MAX_SERVICE_CHARS).")
@click.option("--max-merge-profiles", envvar="PROFEFE_MAX_MERGE_PROFILES", default=10_000, type=click.IntRange(1),
              help="Most stored profiles one merge reads (also PROFEFE_MAX_MERGE_PROFILES).")
@click.option("--threads", envvar="PROFEFE_THREADS", default=8, type=click.IntRange(1, 256),
              help="HTTP worker threads (also PROFEFE_THREADS).")
def serve(addr, data_dir, max_body_bytes, max_decompressed_bytes, max_labels, max_label_chars,
          max_service_chars, max_merge_profiles, threads) -> None:
    """The embedded collector: ingest and query API in one process, SQLite + a blob folder, no servers."""
    import logging
    from pathlib import Path

    from services import runner, wiring
    from services.config import ServeConfig
    from services.ingest_api.config import IngestConfig
    from services.query_api.config import QueryConfig

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = ServeConfig(
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
        query=QueryConfig(max_decompressed_bytes=max_decompressed_bytes, max_merge_profiles=max_merge_profiles),
    )
    ports = wiring.open_embedded(cfg)
    try:
        app = wiring.embedded_app(ports, cfg)

        def ready(where: str) -> None:
            click.echo(f"profefe: listening on http://{where}, data in {cfg.data_dir.resolve()}", err=True)

        code = runner.serve(app, cfg.addr.host, cfg.addr.port, threads=cfg.threads, on_ready=ready)
    finally:
        ports.close()
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
@click.argument("paths", nargs=-1, required=True, metavar="FILES_OR_DIRS...")
def import_profiles(url, service, profile_type, labels, created_at, attempts, quiet, paths) -> None:
    """Upload pprof files (directories walked) to a collector, like profefe's pprof_import.sh.

    Exits 1 when any file was refused or could not be sent, naming each with the server's reason.
    """
    report = run_import(url=url, service=service, profile_type=profile_type, labels=labels,
                        created_at=created_at, paths=paths, quiet=quiet, attempts=attempts)
    if report.failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
