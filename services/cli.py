"""The one command line: `profefe <role>`. Each role command loads its config from the options
its config declares (`services/roles.py`) and hands it to the composition root's `run_<role>`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import click

from services import roles
from services.importer import PROFILE_TYPES, run_import
from services.options import load, options
from services.process.logs import LOG_FORMATS
from shared.settings import setting

DAEMON_ROLES = ("serve", "ingest-api", "query-api", "indexer", "compactor", "migrate")


@dataclass(frozen=True)
class GlobalOptions:
    log_format: str = setting("text", "Process logs as text or JSON lines; request logs are JSON either way.",
                              choices=LOG_FORMATS)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(package_name="profefe-py", prog_name="profefe")
@options(GlobalOptions)
def main(log_format: str) -> None:
    """profefe-py: a continuous-profiling collector that speaks profefe's HTTP API."""


class _Exit(click.ClickException):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click's is a class default


def _run(role: type, params: dict[str, Any], run: Callable[[Any], int]) -> None:
    """Load `role` from the parsed options, check it, set up logging and run it; exits with its code."""
    from services.process.logs import configure_logging
    from services.wiring import CannotStart
    from shared.errors import Unavailable

    cfg: Any = load(role, params)
    validate = getattr(cfg, "validate", None)
    try:
        if validate is not None:
            validate()
    except ValueError as exc:  # roles.LocalOnly among them
        raise click.UsageError(str(exc)) from None
    root = click.get_current_context().find_root()
    configure_logging(root.params.get("log_format") or "text")
    try:
        code = run(cfg)
    except CannotStart as exc:
        raise _Exit(str(exc), exc.exit_code) from None
    except Unavailable as exc:
        raise click.ClickException(str(exc)) from None
    raise SystemExit(code)


def _role_command(name: str, role: type, run: str, doc: str) -> None:
    """`profefe <name>`: the options of `role`, running `services.wiring.<run>`."""

    def command(**params: Any) -> None:
        from services import wiring

        _run(role, params, getattr(wiring, run))

    command.__doc__ = doc
    main.command(name)(options(role)(command))


_role_command("serve", roles.ServeRole, "run_serve",
              "The embedded collector: ingest and query API in one process, SQLite + a blob folder, no servers.")
_role_command("ingest-api", roles.IngestApiRole, "run_ingest_api",
              "Validate uploads and publish them to Kafka; 200 once Kafka acknowledged (acks=all).")
_role_command("query-api", roles.QueryApiRole, "run_query_api",
              "Find, download and merge profiles from PostgreSQL and S3.")
_role_command("indexer", roles.IndexerRole, "run_indexer",
              """Consume the topic: store each blob in S3, its row in PostgreSQL, then commit the offsets.

    Run several: the consumer group shares the partitions among them. SIGTERM finishes the batch
    in hand, commits it and exits 0; a second signal exits at once.
    """)
_role_command("compactor", roles.CompactorRole, "run_compactor",
              """Pre-merge every closed hour of every series, then every day of clean hours, and apply retention.

    Run several: each window is claimed in PostgreSQL (FOR UPDATE SKIP LOCKED). SIGTERM finishes
    the window in hand and exits 0; a second signal exits at once.
    """)
_role_command("migrate", roles.MigrateRole, "run_migrate",
              "Create the Kafka topics, the S3 bucket and the database schema; what exists is left alone.")


@main.command("import")
@click.option("--url", envvar=["PROFEFE_COLLECTOR", "PROFEFE_URL"], show_envvar=True,
              default=f"http://{roles.LISTEN}", metavar="URL",
              help="Any profefe-compatible collector, its base URL (PROFEFE_COLLECTOR as for profefe's agent; "
                   "PROFEFE_URL is read too).")
@click.option("--service", required=True, help="Service name the profiles belong to.")
@click.option("--type", "profile_type", required=True, type=click.Choice(PROFILE_TYPES))
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Repeatable.")
@click.option("--created-at", metavar="TIME",
              help="UTC YYYY-MM-DDTHH:MM:SS or RFC 3339; used when a profile has no time of its own.")
@click.option("--attempts", default=4, type=click.IntRange(1, 10), help="Tries per file on 5xx or connection errors.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, no summary; failures only.")
@click.option("--token", envvar="PROFEFE_TOKEN", show_envvar=True, default="", show_default=False,
              help="Bearer token for a collector that requires one; prefer the variable (a flag shows in `ps`).")
@click.argument("paths", nargs=-1, required=True, metavar="FILES_OR_DIRS...")
def import_profiles(url: str, service: str, profile_type: str, labels: tuple[str, ...], created_at: str | None,
                    attempts: int, quiet: bool, token: str, paths: tuple[str, ...]) -> None:
    """Upload pprof files (directories walked) to a collector, like profefe's pprof_import.sh.

    Exits 1 when any file was refused or could not be sent, naming each with the server's reason.
    """
    report = run_import(url=url, service=service, profile_type=profile_type, labels=labels,
                        created_at=created_at, paths=paths, quiet=quiet, attempts=attempts,
                        token=token.strip() or None)
    if report.failed:
        raise SystemExit(1)


@main.command("config", context_settings={"ignore_unknown_options": True})
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
@click.option("--reference", is_flag=True, help="Every role's flags, variables and defaults as Markdown tables "
                                                "(docs/configuration.md is this output).")
@click.argument("role", required=False, type=click.Choice(DAEMON_ROLES))
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="[FLAGS]...")
@click.pass_context
def config_command(ctx: click.Context, as_json: bool, reference: bool, role: str | None,
                   args: tuple[str, ...]) -> None:
    """Print what ROLE would run with (every role when omitted): defaults, then PROFEFE_*
    variables, then the FLAGS given after ROLE, each with where it came from. Secrets (the S3
    secret key, passwords in URLs, tokens) are redacted. Nothing is connected to."""
    import json

    from services import config_report

    if reference:
        click.echo(config_report.reference(main, (*DAEMON_ROLES, "import")), nl=False)
        return
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
