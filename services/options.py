"""Click options built from the settings the configs declare (`shared.settings`), and the configs
loaded back from the values click parsed: a flag, its variable, default, range and help are
written once, on the field.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Iterator, TypeVar

import click

from shared.settings import COMPONENT, SETTING, Component, Setting

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Declared:
    """One setting as a role offers it: the click parameter name it is read from."""

    name: str  # click's parameter name, e.g. max_body_bytes
    flag: str
    env: str
    spec: Setting
    default: Any


def _default_of(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def declared(cls: type, within: Component | None = None) -> Iterator[Declared]:
    """Every setting `cls` offers, its components' included, in declaration order."""
    for f in dataclasses.fields(cls):
        spec = f.metadata.get(SETTING)
        if spec is not None:
            if within is not None and not within.offers(f.name):
                continue
            if within is not None and f.name in within.flags:
                spec = dataclasses.replace(spec, flag=within.flags[f.name])
            if within is not None and f.name in within.helps:
                spec = dataclasses.replace(spec, help=within.helps[f.name])
            flag = spec.flag_for(f.name)
            yield Declared(_param_name(spec, f.name, None), flag, spec.env_for(f.name), spec, _default_of(f))
        comp = f.metadata.get(COMPONENT)
        if comp is not None:
            yield from declared(comp.cls, comp)


def _option(d: Declared) -> Callable[[F], F]:
    spec, default = d.spec, d.default
    kw: dict[str, Any] = {"envvar": d.env, "show_envvar": True, "help": spec.help}
    if spec.metavar:
        kw["metavar"] = spec.metavar
    if spec.secret or spec.hidden_default:
        kw["show_default"] = False
    if spec.parse is not None:
        parse = spec.parse

        def convert(_ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
            try:
                if isinstance(value, tuple):
                    return tuple(parse(v) for v in value)
                return parse(value) if isinstance(value, str) else value
            except ValueError as exc:
                raise click.BadParameter(str(exc)) from None

        show = spec.show or str
        if spec.multiple:
            kw.update(multiple=True, default=())
        else:
            kw["default"] = "" if default is None else show(default)
        return click.option(d.flag, d.name, callback=convert, **kw)
    if isinstance(default, bool):
        if spec.negatable:
            return click.option(f"{d.flag}/--no-{d.flag[2:]}", d.name, default=default, **kw)
        return click.option(d.flag, d.name, default=default, is_flag=True, **kw)
    if spec.choices:
        return click.option(d.flag, d.name, default=default, type=click.Choice(spec.choices), **kw)
    if isinstance(default, int):
        lo, hi = (None if v is None else int(v) for v in (spec.minimum, spec.maximum))
        return click.option(d.flag, d.name, default=default, type=click.IntRange(lo, hi), **kw)
    if isinstance(default, float):
        return click.option(d.flag, d.name, default=default, type=click.FloatRange(spec.minimum, spec.maximum),
                            **kw)
    return click.option(d.flag, d.name, default=default, **kw)


def options(*classes: type) -> Callable[[F], F]:
    """A decorator adding one option per setting of `classes`, in order; a flag two of them
    share is added once (its first declaration speaks for it)."""
    seen: dict[str, Declared] = {}
    for cls in classes:
        for d in declared(cls):
            seen.setdefault(d.name, d)

    def add(f: F) -> F:
        for d in reversed(list(seen.values())):
            f = _option(d)(f)
        return f

    return add


def _param_name(spec: Setting, field_name: str, within: Component | None) -> str:
    flag = within.flags.get(field_name) if within is not None else None
    return (flag or spec.flag_for(field_name)).lstrip("-").replace("-", "_")


def load(cls: type[T], params: dict[str, Any], within: Component | None = None) -> T:
    """`cls` built from click's parsed values: each setting from its parameter, each component
    the same way; a setting the role does not offer keeps its default."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        spec = f.metadata.get(SETTING)
        if spec is not None:
            if within is not None and not within.offers(f.name):
                continue
            name = _param_name(spec, f.name, within)
            if name in params:
                values[f.name] = params[name]
            continue
        comp = f.metadata.get(COMPONENT)
        if comp is not None:
            if comp.optional:
                key = next(g for g in dataclasses.fields(comp.cls) if g.name == comp.present_if)
                if not str(params.get(_param_name(key.metadata[SETTING], key.name, comp)) or "").strip():
                    values[f.name] = None
                    continue
            values[f.name] = load(comp.cls, params, comp)
    try:
        return cls(**values)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
