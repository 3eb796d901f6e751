"""`profefe config`: what a role would run with (defaults, then PROFEFE_* variables, then flags),
with every secret redacted, so the output can be pasted into a ticket."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

REDACTED = "<redacted>"
# Parameter names whose whole value is a secret.
_SECRET_NAMES = re.compile(r"secret|password|passwd|token|credential", re.IGNORECASE)
# user:password@ in any URL-like value (database URLs, bootstrap lists with credentials).
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)(?P<password>[^@\s]*)(?P<at>@)")
# ?password=... or &token=... in a query string.
_QUERY_SECRET = re.compile(r"(?P<key>[?&](?:password|passwd|token|secret|sslpassword)=)[^&\s]*", re.IGNORECASE)

_SOURCES = {
    ParameterSource.DEFAULT: "default",
    ParameterSource.DEFAULT_MAP: "default",
    ParameterSource.ENVIRONMENT: "env",
    ParameterSource.COMMANDLINE: "flag",
    ParameterSource.PROMPT: "prompt",
}


@dataclass(frozen=True)
class Setting:
    flag: str
    envvar: str | None
    value: Any
    source: str

    def as_dict(self) -> dict[str, Any]:
        return {"flag": self.flag, "env": self.envvar, "value": self.value, "source": self.source}


def redact(name: str, value: Any) -> Any:
    """`value` with secrets replaced: all of it when `name` says it is one, else any password
    inside a URL."""
    if isinstance(value, (list, tuple)):
        return [redact(name, v) for v in value]
    if not isinstance(value, str):
        return value
    if _SECRET_NAMES.search(name) and not name.endswith("_file"):  # a file's path is not its content
        return REDACTED if value else ""
    value = _URL_PASSWORD.sub(lambda m: m["head"] + (REDACTED if m["password"] else "") + m["at"], value)
    return _QUERY_SECRET.sub(lambda m: m["key"] + REDACTED, value)


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Path):
        return str(value)
    return str(value)  # Address and friends print as they are written


def settings(ctx: click.Context) -> list[Setting]:
    """The resolved parameters of a command context, in declaration order, redacted."""
    out = []
    for p in ctx.command.params:
        if not isinstance(p, click.Option) or p.name is None or not p.expose_value:
            continue
        source = ctx.get_parameter_source(p.name) or ParameterSource.DEFAULT
        envvar = p.envvar if isinstance(p.envvar, str) else None
        value = redact(p.name, _plain(ctx.params.get(p.name)))
        out.append(Setting(max(p.opts, key=len), envvar, value, _SOURCES.get(source, "default")))
    return out


def render_text(role: str, rows: list[Setting]) -> str:
    lines = [f"# profefe {role}" if role != "global" else "# profefe (before any role)"]
    width = max((len(r.flag) for r in rows), default=0)
    for r in rows:
        value = " ".join(str(v) for v in r.value) if isinstance(r.value, list) else r.value
        origin = f"{r.source} {r.envvar}" if r.source == "env" else r.source
        shown = '""' if value in (None, "") else value
        lines.append(f"{r.flag.ljust(width)}  {shown}  ({origin})")
    return "\n".join(lines)


def reference(group: click.Group, roles: tuple[str, ...]) -> str:
    """Markdown tables of every role's flags, variables, defaults and help, as `--help` has them:
    the configuration reference in docs/, printed from the same declarations."""
    out = []
    for role in ("", *roles):
        cmd = group if not role else group.commands[role]
        title = "every command (before the role)" if not role else f"`profefe {role}`"
        out += [f"### {title}", "", "| flag | variable | default | what |", "|---|---|---|---|"]
        for p in cmd.params:
            if not isinstance(p, click.Option) or p.hidden or p.name in ("help", "version"):
                continue
            flags = " / ".join(f"`{o}`" for o in (*p.opts, *p.secondary_opts))
            envvars = [p.envvar] if isinstance(p.envvar, str) else list(p.envvar or ())
            variables = ", ".join(f"`{v}`" for v in envvars)
            out.append(f"| {flags} | {variables} | {_default_cell(p)} | {(p.help or '').replace('|', '/')} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _default_cell(p: click.Option) -> str:
    if p.show_default is False or p.is_flag and not p.secondary_opts or p.default in (None, "", ()):
        return ""
    if isinstance(p.default, bool) and p.secondary_opts:
        return f"`{(p.opts if p.default else p.secondary_opts)[0]}`"
    return f"`{p.default}`"
