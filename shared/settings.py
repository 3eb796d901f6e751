"""How a setting is declared: once, on the config dataclass field that holds it.

A field made with `setting(default, help, ...)` carries its flag, its `PROFEFE_*` variable (derived
from the flag unless given), its range and its help as field metadata; `services/options.py` turns
those into click options and loads the dataclass back from them, and the configuration reference
is printed from the same declarations. Nothing here reads the environment or imports click.

Also here, the value syntaxes settings share: `host:port` addresses and durations such as `36h`.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Callable

SETTING = "profefe.setting"
COMPONENT = "profefe.component"


@dataclass(frozen=True)
class Setting:
    """What a command line needs to know of one field. `parse` turns the text of a flag or
    variable into the field's value and `show` turns a value back into text (its default in
    `--help`); without them the value is the text, an int, a float or a flag by the default's type."""

    help: str
    flag: str = ""  # "--max-body-bytes"; default: the field name with dashes
    env: str = ""  # default: PROFEFE_ + the flag in capitals
    minimum: float | None = None
    maximum: float | None = None
    metavar: str = ""
    parse: Callable[[str], Any] | None = None
    show: Callable[[Any], str] | None = None
    choices: tuple[str, ...] = ()
    multiple: bool = False  # repeatable; the value is a tuple
    negatable: bool = False  # a boolean with --x/--no-x
    secret: bool = False  # its default is not shown and `profefe config` redacts it
    hidden_default: bool = False  # `--help` shows no default (e.g. an empty one that means "none")

    def flag_for(self, field_name: str) -> str:
        return self.flag or "--" + field_name.replace("_", "-")

    def env_for(self, field_name: str) -> str:
        return self.env or "PROFEFE_" + self.flag_for(field_name).lstrip("-").replace("-", "_").upper()


def setting(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field whose value comes from a flag or its `PROFEFE_*` variable."""
    return dataclasses.field(default=default, metadata={SETTING: Setting(help=help, **kw)})


def setting_from(declared: Setting, default: Any, **changes: Any) -> Any:
    """A field declared by a `Setting` shared by several roles (the same flag, help and range)."""
    spec = dataclasses.replace(declared, **changes) if changes else declared
    return dataclasses.field(default=default, metadata={SETTING: spec})


@dataclass(frozen=True)
class Component:
    """A nested config whose settings a role offers too: `only` or `exclude` pick which of them,
    `flags` renames some for this role, and an `optional` one is None when its `present_if`
    setting is left empty (a role without Kafka has no KafkaSettings)."""

    cls: type
    only: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    flags: dict[str, str] = dataclasses.field(default_factory=dict)
    helps: dict[str, str] = dataclasses.field(default_factory=dict)
    optional: bool = False
    present_if: str = ""

    def offers(self, field_name: str) -> bool:
        if self.only and field_name not in self.only:
            return False
        return field_name not in self.exclude


def component(cls: type, *, optional: bool = False, present_if: str = "", only: tuple[str, ...] = (),
              exclude: tuple[str, ...] = (), flags: dict[str, str] | None = None,
              helps: dict[str, str] | None = None) -> Any:
    """A dataclass field holding another config; its default is that config's defaults (or None)."""
    spec = Component(cls, only=only, exclude=exclude, flags=flags or {}, helps=helps or {}, optional=optional,
                     present_if=present_if)
    if optional:
        return dataclasses.field(default=None, metadata={COMPONENT: spec})
    return dataclasses.field(default_factory=cls, metadata={COMPONENT: spec})


# Value syntaxes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @classmethod
    def parse(cls, raw: str) -> Address:
        """`host:port`, `:port` (all interfaces) or `[v6]:port`."""
        host, sep, port = raw.strip().rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"address {raw!r} is not host:port")
        host = host.strip("[]") or "0.0.0.0"
        return cls(host, int(port))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def optional_address(raw: str) -> Address | None:
    """An address, or None for an empty value (a server that is off)."""
    return Address.parse(raw) if raw.strip() else None


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+)([smhdw])")


def parse_duration(raw: str) -> int:
    """`90s`, `15m`, `36h`, `7d`, `2w`, or a combination such as `1d12h`, as whole seconds."""
    text = raw.strip().lower()
    if text.isdigit():
        return int(text)
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"duration {raw!r} is not like 90s, 15m, 36h, 7d or 2w")
    return sum(int(n) * _UNITS[u] for n, u in parts)


def format_duration(seconds: int) -> str:
    """The shortest of `90s`, `15m`, `36h` or `7d` that `parse_duration` reads back as `seconds`."""
    for unit in "dhm":
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def parse_service_duration(raw: str) -> tuple[str, int]:
    """`service=duration`, as in `--raw-retention-for checkout=2d`."""
    service, sep, duration = raw.partition("=")
    if not sep or not service.strip():
        raise ValueError(f"{raw!r} is not SERVICE=DURATION")
    return service.strip(), parse_duration(duration)


def format_service_duration(value: tuple[str, int]) -> str:
    return f"{value[0]}={format_duration(value[1])}"
