"""Bearer tokens: parsing, constant-time matching, and which request needs which token."""
from __future__ import annotations

import pytest

from services.web import auth
from services.web.auth import AuthConfig, Unauthorized, bearer_token, check, parse_tokens, token_matches

BOTH = AuthConfig(ingest_tokens=("w1", "w2"), read_tokens=("r1",))


def test_tokens_are_split_on_commas_and_lines_trimmed_and_deduplicated():
    assert parse_tokens(" a, b ,,\nc\n a ") == ("a", "b", "c")
    assert parse_tokens("") == ()
    assert parse_tokens(None) == ()


@pytest.mark.parametrize("raw", ["has space", "tab\there", "nul\x00byte", "x" * (auth.MAX_TOKEN_CHARS + 1)])
def test_unusable_tokens_are_refused_at_startup(raw):
    with pytest.raises(ValueError):
        parse_tokens(raw)


def test_tokens_are_read_from_a_file(tmp_path):
    path = tmp_path / "tokens"
    path.write_text("one\ntwo,three\n\n")
    assert auth.read_token_file(path) == ("one", "two", "three")
    with pytest.raises(ValueError, match="cannot read tokens"):
        auth.read_token_file(tmp_path / "missing")


def test_a_token_matches_only_an_exact_configured_one():
    assert token_matches("w2", ["w1", "w2"])
    assert not token_matches("w", ["w1", "w2"])
    assert not token_matches("w1 ", ["w1"])
    assert not token_matches("anything", [])


def test_every_configured_token_is_compared_even_after_a_match(monkeypatch):
    compared = []
    real = auth.hmac.compare_digest

    def counting(a, b):
        compared.append(b)
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    assert token_matches("first", ["first", "second", "third"])
    assert len(compared) == 3


@pytest.mark.parametrize("header, token", [
    ("Bearer abc", "abc"), ("bearer abc", "abc"), ("  Bearer   abc  ", "abc"),
    (None, None), ("", None), ("Basic abc", None), ("Bearer", None), ("Bearer ", None),
])
def test_the_bearer_token_is_taken_from_the_authorization_header(header, token):
    assert bearer_token(header) == token


def test_no_tokens_means_open():
    assert not AuthConfig().enabled
    check("POST", "/api/0/profiles", None, AuthConfig())
    check("GET", "/api/0/profiles", None, AuthConfig())


def test_a_write_needs_an_ingest_token():
    check("POST", "/api/0/profiles", "Bearer w2", BOTH)
    with pytest.raises(Unauthorized, match="^unauthorized: missing bearer token"):
        check("POST", "/api/0/profiles", None, BOTH)
    with pytest.raises(Unauthorized, match="^unauthorized: the token does not grant writing$"):
        check("POST", "/api/0/profiles", "Bearer r1", BOTH)


def test_a_read_needs_a_read_token():
    check("GET", "/api/0/services", "Bearer r1", BOTH)
    with pytest.raises(Unauthorized, match="^unauthorized: the token does not grant reading$"):
        check("GET", "/api/0/profiles/merge", "Bearer w1", BOTH)
    with pytest.raises(Unauthorized, match="^unauthorized: missing bearer token"):
        check("GET", "/api/0/profiles/abc", "Basic cjE=", BOTH)


def test_a_token_in_both_lists_grants_both():
    cfg = AuthConfig(ingest_tokens=("shared",), read_tokens=("shared",))
    check("POST", "/api/0/profiles", "Bearer shared", cfg)
    check("GET", "/api/0/profiles", "Bearer shared", cfg)


def test_only_the_configured_direction_is_guarded():
    writes_only = AuthConfig(ingest_tokens=("w",))
    check("GET", "/api/0/services", None, writes_only)
    with pytest.raises(Unauthorized):
        check("POST", "/api/0/profiles", None, writes_only)


@pytest.mark.parametrize("path", ["/api/0/version", "/api/0/openapi.json", "/healthz", "/readyz", "/metrics"])
def test_version_openapi_health_and_metrics_stay_open(path):
    check("GET", path, None, BOTH)
