"""From an upload to an `IngestRecord`: every check the ingest API makes, without HTTP.

Order: service, type, labels, created_at parameter, then the body (pprof parsed with the
decompression limit, at least one sample, sample types consistent with the declared type).
"""
from __future__ import annotations

import unicodedata
from datetime import datetime, timezone
from typing import Callable, Mapping

from services.ingest_api.config import IngestConfig
from shared.errors import BadRequest
from shared.model import (
    IngestRecord,
    Labels,
    ProfileType,
    content_id,
    contradicting_type,
    from_unix,
    has_control,
    parse_time,
    utc_seconds,
)
from shared import pprof

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def collect(
    params: Mapping[str, str], body: bytes, cfg: IngestConfig, *, clock: Clock = utc_now,
    checked: pprof.Checked | None = None,
) -> IngestRecord:
    """Validate one upload; raises BadRequest / PayloadTooLarge / pprof errors with the reason.
    `checked`: as in `build_record`."""
    service = parse_service(params.get("service"), cfg)
    ptype = ProfileType.parse(params.get("type"))
    labels = parse_labels(params.get("labels"), cfg)
    declared_at = None
    if params.get("created_at"):
        declared_at = parse_time("created_at", params["created_at"])
    return build_record(service, ptype, labels, body, cfg, declared_at=declared_at, clock=clock, checked=checked)


def build_record(
    service: str,
    ptype: ProfileType,
    labels: Labels,
    body: bytes,
    cfg: IngestConfig,
    *,
    declared_at: datetime | None = None,
    clock: Clock = utc_now,
    checked: pprof.Checked | None = None,
) -> IngestRecord:
    """The checks on the body, for a service and labels already checked (`parse_service`,
    `check_labels`). The id is `content_id` of what is stored (service, type, labels, bytes), so
    a client that sends the same profile again, by any route, gets the same id and one profile.
    `checked` is `pprof.check` of `body` with the decompression limit, when the caller has it."""
    received_at = utc_seconds(clock())
    signature = ""
    totals: tuple[int, ...] = ()
    created_at = declared_at or received_at
    own_time = declared_at  # a time the content or its sender gave, the same on a retry
    if ptype.is_pprof:
        # One native call (GIL released) reads, checks and summarises the body; no Profile is built.
        info = checked or pprof.check(body, max_decompressed=cfg.max_decompressed_bytes)
        if info.empty:
            raise pprof.MalformedProfile("no samples")
        types = info.sample_types
        other = contradicting_type(ptype, (name for name, _unit in types))
        if other is not None:
            raise BadRequest(
                f'profile declared as "{ptype}" holds the sample types of "{other}" '
                f"({', '.join(f'{n}/{u}' for n, u in types)})"
            )
        signature, totals, nanos = info.signature, info.totals, info.time_nanos
        if nanos > 0:
            created_at = own_time = from_unix(nanos // 1_000_000_000)
    elif not body:
        raise BadRequest("empty trace")

    # Every part length-prefixed, the pairs in a canonical order: distinct uploads never share an id.
    pairs = sorted((lb.key, lb.value) for lb in labels)
    profile_id = content_id(own_time.timestamp() if own_time else None, service.encode(), ptype.value.encode(),
                            str(len(pairs)).encode(), *(x.encode() for pair in pairs for x in pair), body)
    return IngestRecord(
        id=profile_id,
        service=service,
        type=ptype,
        labels=labels,
        created_at=created_at,
        received_at=received_at,
        body=bytes(body),
        signature=signature,
        totals=totals,
    )


def parse_service(raw: str | None, cfg: IngestConfig) -> str:
    service = (raw or "").strip()
    if not service:
        raise BadRequest('missing "service"')
    if len(service) > cfg.max_service_chars:
        raise BadRequest(f'"service" is longer than {cfg.max_service_chars} characters')
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in service):
        raise BadRequest('"service" contains control characters')
    return service


def parse_labels(raw: str | None, cfg: IngestConfig) -> Labels:
    return check_labels(Labels.parse(raw), cfg)


def check_labels(labels: Labels, cfg: IngestConfig) -> Labels:
    """`labels` when they keep every label rule (count, lengths, no control characters)."""
    if len(labels) > cfg.max_labels:
        raise BadRequest(f"more than {cfg.max_labels} labels")
    for lb in labels:
        if has_control(lb.key) or has_control(lb.value):
            # A NUL would pass here and then fail in PostgreSQL, after the agent was told 200.
            raise BadRequest('"labels" contain control characters')
        if len(lb.key) > cfg.max_label_key_chars:
            raise BadRequest(
                f"label key {lb.key[:32]!r}... is longer than {cfg.max_label_key_chars} characters"
            )
        if len(lb.value) > cfg.max_label_value_chars:
            raise BadRequest(
                f"value of label {lb.key!r} is longer than {cfg.max_label_value_chars} characters"
            )
    return labels
