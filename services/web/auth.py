"""Optional bearer-token authentication of the API, for writing and for reading apart.

Off by default: with no tokens configured a route is open. Writes (POST) need a token from the
ingest list, reads (every other method, and Pyroscope's querier routes, POSTs that read) one from
the read list; a token in only one list grants only that. The version route and the OpenAPI
description stay open, as do health and metrics, which live outside `/api/0/`. Tokens are
compared in constant time against every configured token, without an early exit, so the time of a
refusal says nothing about how close a guess was.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from shared.settings import setting

if TYPE_CHECKING:  # the CLI reads AuthConfig's module for its flags; Flask loads with an app
    from flask import Flask

API_PREFIX = "/api/0/"
# Pyroscope's ingest routes live outside /api/0/ (its agents choose the paths) and are uploads too.
PYROSCOPE_PATHS = frozenset({"/ingest", "/push.v1.PusherService/Push"})
# Pyroscope's read routes are Connect POSTs, and reads all the same.
QUERIER_PREFIX = "/querier.v1.QuerierService/"
OPEN_PATHS = frozenset({"/api/0/version", "/api/0/openapi.json"})
MAX_TOKEN_CHARS = 4096
CHALLENGE = 'Bearer realm="profefe"'


class Unauthorized(Exception):
    """No token, or not one that grants this request (401); str(e) is what the client sees."""


def parse_tokens(raw: str | Iterable[str] | None) -> tuple[str, ...]:
    """Comma- or newline-separated tokens, trimmed, empties skipped, duplicates dropped."""
    if raw is None:
        return ()
    chunks = raw.replace("\n", ",").split(",") if isinstance(raw, str) else list(raw)
    out: list[str] = []
    for chunk in chunks:
        token = chunk.strip()
        if not token or token in out:
            continue
        if len(token) > MAX_TOKEN_CHARS:
            raise ValueError(f"a token is longer than {MAX_TOKEN_CHARS} characters")
        if any(ch.isspace() or not ch.isprintable() for ch in token):
            raise ValueError("a token contains whitespace or control characters")
        out.append(token)
    return tuple(out)


def read_token_file(path: str | Path) -> tuple[str, ...]:
    """Tokens from a file (one per line or comma-separated), e.g. a mounted Kubernetes secret."""
    try:
        return parse_tokens(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read tokens from {path}: {exc.strerror or exc}") from None


_PS_WARNING = "a flag is visible to other users in `ps`"


@dataclass(frozen=True)
class AuthConfig:
    """The tokens of each kind: those given, plus those read from the kind's file."""

    ingest_tokens: tuple[str, ...] = setting(
        (), f"Bearer tokens that allow uploads (POST); none: open. Prefer the variable or the file: {_PS_WARNING}.",
        metavar="TOKEN[,...]", parse=parse_tokens, show=",".join, secret=True)
    ingest_tokens_file: str = setting("", "Read more ingest tokens from this file, one per line.", metavar="FILE",
                                      hidden_default=True)
    read_tokens: tuple[str, ...] = setting(
        (), f"Bearer tokens that allow every read (GET); none: open. Prefer the variable or the file: {_PS_WARNING}.",
        metavar="TOKEN[,...]", parse=parse_tokens, show=",".join, secret=True)
    read_tokens_file: str = setting("", "Read more read tokens from this file, one per line.", metavar="FILE",
                                    hidden_default=True)

    def __post_init__(self) -> None:
        for kind in ("ingest", "read"):
            tokens = parse_tokens(getattr(self, f"{kind}_tokens"))
            path = getattr(self, f"{kind}_tokens_file")
            if path:
                tokens += tuple(t for t in read_token_file(path) if t not in tokens)
            object.__setattr__(self, f"{kind}_tokens", tokens)

    @property
    def enabled(self) -> bool:
        return bool(self.ingest_tokens or self.read_tokens)


def _digest(token: str) -> bytes:
    # Equal-length inputs for compare_digest, whatever the lengths of the tokens.
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def token_matches(presented: str, configured: Iterable[str]) -> bool:
    """Whether `presented` is one of `configured`; every candidate is compared, match or not."""
    want = _digest(presented)
    found = False
    for token in configured:
        found |= hmac.compare_digest(want, _digest(token))
    return found


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or the password of a `Basic` one
    (Pyroscope's and Grafana's agents send basic auth: any user name, the token as the password);
    None when absent or another scheme."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if not token:
        return None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(token, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        _user, colon, password = decoded.partition(":")
        return password if colon and password else None
    return token if scheme.lower() == "bearer" else None


def check(method: str, path: str, authorization: str | None, cfg: AuthConfig) -> None:
    """Raise Unauthorized unless this request may go ahead."""
    querier = path.startswith(QUERIER_PREFIX)
    if (not path.startswith(API_PREFIX) and path not in PYROSCOPE_PATHS and not querier) or path in OPEN_PATHS:
        return
    writing = method.upper() == "POST" and not querier
    tokens = cfg.ingest_tokens if writing else cfg.read_tokens
    if not tokens:
        return
    token = bearer_token(authorization)
    if token is None:
        raise Unauthorized("unauthorized: missing bearer token (Authorization: Bearer <token>)")
    if not token_matches(token, tokens):
        raise Unauthorized(f"unauthorized: the token does not grant {'writing' if writing else 'reading'}")


def protect(app: Flask, cfg: AuthConfig) -> Flask:
    """Check every request to `app` before its route runs; nothing is added when auth is off.
    Call it after the request logging is installed, so a refusal is logged and counted too."""
    from flask import request

    if not cfg.enabled:
        return app

    @app.before_request
    def authenticate() -> None:
        check(request.method, request.path, request.headers.get("Authorization"), cfg)

    return app
