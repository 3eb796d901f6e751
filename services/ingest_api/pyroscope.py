"""Pyroscope's ingest protocols, decoded into what profefe stores: a service, a type, labels and a
pprof. Pure: no HTTP here beyond the bytes and parameters a route hands over.

Label mapping, for Push's series labels and /ingest's `name=app.kind{k=v,...}` alike:
- `service_name` is the service; without it, /ingest's app name (`app` of `app.cpu`), or Push's
  `__name__` when it is written `app.kind`;
- the type comes from the profile's sample types where they say it (`cpu`/`samples` -> cpu,
  `wall` -> wall, `alloc_*`/`inuse_*` -> heap, `goroutine(s)` -> goroutine), else from the
  profile name (`__name__`, the `.kind` suffix, or sample_type_config's display names:
  `process_cpu` -> cpu, `memory` -> heap, `block*`, `mutex*`), else `other`, which then keeps the
  name as the label `pyroscope.name`;
- every other label is a label, except the `__`-prefixed ones (`__session_id__`, `__delta__`,
  ...): Pyroscope's own bookkeeping, dropped (a session id would split a series per restart).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Mapping, Sequence

from services.ingest_api.collect import Clock, build_record, check_labels, parse_service, utc_now
from services.ingest_api.config import IngestConfig
from services.ingest_api.folded import UNIT_TYPES, Shape, parse_stacks, to_pprof
from services.ingest_api.push_pb2 import PushRequest
from shared import pprof
from shared.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from shared.model import IngestRecord, Labels, ProfileType, from_unix
from shared.pyroscope import KEPT_NAME_LABEL, NAME_LABEL, NAME_TYPES, SERVICE_LABEL

SPY_LABEL = "pyroscope.spy"  # /ingest's spyName: which agent sampled (pyspy, gospy, rbspy, ...)

# Sample type names that say the type by themselves (contentions/delay do not: block or mutex),
# typed as the profile names they also are; `samples` is Go CPU's count column, no profile name.
_SAMPLE_TYPES: dict[str, ProfileType] = {
    "samples": ProfileType.CPU,
    **{name: NAME_TYPES[name] for name in ("cpu", "wall", "alloc_objects", "alloc_space", "inuse_objects",
                                           "inuse_space", "goroutine", "goroutines")},
}


@dataclass(frozen=True)
class Series:
    """One series' identity once mapped: the service, the profile name, the labels kept."""

    service: str
    name: str
    labels: tuple[tuple[str, str], ...]


def map_labels(pairs: Iterable[tuple[str, str]], *, app: str = "", name: str = "",
               max_pairs: int) -> Series:
    """Split Pyroscope labels into service, profile name and profefe labels (module docstring)."""
    service, kept = "", []
    for count, (key, value) in enumerate(pairs, 1):
        if count > max_pairs:
            raise BadRequest(f"more than {max_pairs} labels")
        if key == SERVICE_LABEL:
            service = value
        elif key == NAME_LABEL:
            name = value
        elif not key.startswith("__"):
            kept.append((key, value))
    if not service and not app and "." in name:
        app, _, name = name.rpartition(".")
    return Series(service=(service or app).strip(), name=name, labels=tuple(kept))


def profile_type(name: str, sample_type_names: Sequence[str], display_names: Iterable[str] = ()) -> ProfileType:
    """What profefe calls a profile with this name and these sample types (module docstring)."""
    if "wall" in sample_type_names:
        return ProfileType.WALL  # Python's wall mode still says process_cpu
    from_samples = {_SAMPLE_TYPES[t] for t in sample_type_names if t in _SAMPLE_TYPES}
    if len(from_samples) == 1:
        return from_samples.pop()
    for candidate in (name, *display_names):
        if candidate in NAME_TYPES:
            return NAME_TYPES[candidate]
    return ProfileType.OTHER


def labels_of(series: Series, ptype: ProfileType, extra: Iterable[tuple[str, str]] = ()) -> Labels:
    pairs = [*series.labels, *extra]
    if ptype is ProfileType.OTHER and series.name:
        pairs.append((KEPT_NAME_LABEL, series.name))
    return Labels.of(pairs)


# Push ----------------------------------------------------------------------------------------


# /ingest -------------------------------------------------------------------------------------

_NAME = re.compile(r"\s*([^{}]*?)\s*(?:\{(.*)\})?\s*")


def parse_name(raw: str | None) -> tuple[str, str, list[tuple[str, str]]]:
    """`app.kind{k=v,...}` -> (app, kind or "", [(k, v), ...]); the kind only when it is known."""
    m = _NAME.fullmatch(raw or "")
    if m is None or not m.group(1):
        raise BadRequest('missing or malformed "name" (want app.cpu{key=value,...})')
    app, kind = m.group(1), ""
    head, _, tail = app.rpartition(".")
    if head and tail in NAME_TYPES:
        app, kind = head, tail
    pairs = []
    for chunk in (m.group(2) or "").split(","):
        if not chunk.strip():
            continue
        key, eq, value = chunk.partition("=")
        if not eq or not key.strip():
            raise BadRequest(f'malformed label {chunk.strip()[:64]!r} in "name"')
        pairs.append((key.strip(), value.strip()))
    return app, kind, pairs


def parse_instant(name: str, raw: str | None) -> datetime | None:
    """/ingest's `from`/`until`: a Unix time in seconds, or in ms, µs or ns (pyroscope-go sends ns),
    told apart by magnitude as Pyroscope does."""
    if not raw:
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        raise BadRequest(f'bad "{name}" {raw[:64]!r}: want a Unix time') from None
    for scale in (1, 1_000, 1_000_000, 1_000_000_000):
        if value < 10**11 * scale:
            seconds = value // scale
            break
    else:
        raise BadRequest(f'bad "{name}" {raw[:64]!r}: want a Unix time')
    if seconds <= 0:
        return None
    return from_unix(seconds)


def sample_type_display_names(raw: bytes | None, limit: int = 64 << 10) -> list[str]:
    """The display names in pyroscope-go's sample_type_config part (`mutex_count`, `block_duration`)."""
    if not raw:
        return []
    if len(raw) > limit:
        raise BadRequest(f"sample_type_config is over {limit} bytes")
    try:
        config = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("sample_type_config is not JSON") from None
    if not isinstance(config, Mapping):
        raise BadRequest("sample_type_config is not a JSON object")
    names = []
    for entry in config.values():
        if isinstance(entry, Mapping) and isinstance(entry.get("display-name"), str):
            names.append(entry["display-name"])
    return names


# Records -------------------------------------------------------------------------------------


def push_records(request: PushRequest, cfg: IngestConfig, *, clock: Clock = utc_now) -> list[IngestRecord]:
    """Every sample of every series as a record, each checked as profefe's route checks an upload;
    all of them are checked before any is published, so a refused push stores nothing."""
    records: list[IngestRecord] = []
    budget = cfg.max_decompressed_bytes  # the push as a whole, whatever its number of series
    for raw_series in request.series:
        series = map_labels(((lb.name, lb.value) for lb in raw_series.labels), max_pairs=2 * cfg.max_labels)
        service = parse_service(series.service, cfg)
        for sample in raw_series.samples:
            raw = sample.raw_profile
            if len(raw) > cfg.max_body_bytes:
                raise PayloadTooLarge(f"a profile in the push is over {cfg.max_body_bytes} bytes")
            checked = pprof.check(raw, max_decompressed=max(budget, 0))
            budget -= checked.size
            if budget < 0:
                raise pprof.ProfileTooLarge(cfg.max_decompressed_bytes)
            ptype = profile_type(series.name, [t for t, _ in checked.sample_types])
            labels = check_labels(labels_of(series, ptype), cfg)
            records.append(build_record(service, ptype, labels, raw, cfg, clock=clock, checked=checked))
    if not records:
        raise BadRequest("the push holds no profiles")
    return records


INGEST_FORMATS = ("pprof", "folded", "lines")
REFUSED_FORMATS = ("jfr", "trie", "tree", "speedscope")


def ingest_record(params: Mapping[str, str], profile: bytes, cfg: IngestConfig, *,
                  display_names: Sequence[str] = (), clock: Clock = utc_now) -> IngestRecord:
    """/ingest's upload (`profile` is the pprof or the folded text) as a record."""
    fmt = (params.get("format") or "folded").strip()
    if fmt in REFUSED_FORMATS:
        raise UnsupportedMediaType(f'format "{fmt}" is not supported (send pprof, folded or lines)')
    if fmt not in INGEST_FORMATS:
        raise BadRequest(f'unknown "format" {fmt[:64]!r} (want one of {", ".join(INGEST_FORMATS)})')
    app, kind, pairs = parse_name(params.get("name"))
    series = map_labels(pairs, app=app, name=kind, max_pairs=2 * cfg.max_labels)
    service = parse_service(series.service, cfg)
    start = parse_instant("from", params.get("from"))
    until = parse_instant("until", params.get("until"))
    if fmt == "pprof":
        checked = pprof.check(profile, max_decompressed=cfg.max_decompressed_bytes)
        ptype = profile_type(kind, [t for t, _ in checked.sample_types], display_names)
        body = profile
    else:
        checked = None
        units = params.get("units")
        ptype = NAME_TYPES.get(kind) or UNIT_TYPES.get((units or "samples").strip(), ProfileType.OTHER)
        shape = Shape.of(kind, ptype, units, params.get("sampleRate"))
        body = pprof.write(to_pprof(parse_stacks(profile, lines=fmt == "lines"), shape, start, until))
    spy = (params.get("spyName") or "").strip()
    labels = check_labels(labels_of(series, ptype, [(SPY_LABEL, spy)] if spy else []), cfg)
    return build_record(service, ptype, labels, body, cfg, declared_at=start, clock=clock,
                        checked=checked)
