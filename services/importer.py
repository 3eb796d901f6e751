"""`profefe import`: upload pprof files to any profefe-compatible collector.

The equivalent of profefe's `scripts/pprof_import.sh`, minus its faults: parameters are encoded
the way profefe's Go agent encodes them, every failure is reported with the server's own message,
5xx replies and dropped connections are retried, and the exit code says whether all arrived.
"""
from __future__ import annotations

import email.utils
import http.client
import json
import os
import re
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import click

from shared.model import MAX_LABELS, ProfileType

PROFILES_PATH = "/api/0/profiles"
PROFILE_TYPES = tuple(t.value for t in ProfileType)

# Far above any collector's body limit (profefe-py's default is 8 MiB): a file this big is a
# mistake, and reading it whole into memory would be another.
MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_RETRY_AFTER = 60.0  # seconds; a longer Retry-After is capped, not obeyed blindly
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 8.0
ERROR_SNIPPET = 300  # characters of a non-JSON error body worth showing

# The format profefe parses (`2006-01-02T15:04:05`); any ISO 8601 input is normalised to it.
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"


class ImportArgumentError(ValueError):
    """A label, time or path given on the command line that cannot be used."""


class UploadError(Exception):
    """The collector refused a profile, or could not be reached."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        # No status: the connection failed. 429 and 5xx: the collector asks to come back later.
        return self.status is None or self.status == 429 or self.status >= 500


# --- parameters -------------------------------------------------------------------------------


def parse_label(text: str) -> tuple[str, str]:
    """`key=value` (the value may itself hold `=`) into a pair; the key must not be blank."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ImportArgumentError(f"label {text!r} is not KEY=VALUE")
    return key, value


def encode_labels(labels: Sequence[tuple[str, str]]) -> str:
    """The `labels` parameter value, before the query string itself is encoded.

    profefe splits the decoded parameter on `,` and the first `=`, trims, then query-unescapes
    each key and value once more (`labels.go` FromString). Its Go agent therefore escapes each
    key and value with `url.QueryEscape` before joining; `quote_plus` with nothing safe is the
    same escaping, so `,` `=` `+` `%` and spaces in a key or value survive both decodings.
    """
    if len(labels) > MAX_LABELS:
        raise ImportArgumentError(f"too many labels: {len(labels)} (at most {MAX_LABELS})")
    return ",".join(
        f"{urllib.parse.quote_plus(key, safe='')}={urllib.parse.quote_plus(value, safe='')}"
        for key, value in labels
    )


def format_created_at(text: str) -> str:
    """An ISO 8601 time into profefe's `YYYY-MM-DDTHH:MM:SS` in UTC (a naive time is UTC)."""
    raw = text.strip()
    try:
        moment = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    except ValueError:
        raise ImportArgumentError(
            f"created-at {text!r} is not a time like 2006-01-02T15:04:05 (UTC) or RFC 3339"
        ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime(TIME_FORMAT)


def upload_query(
    service: str,
    profile_type: str,
    labels: Sequence[tuple[str, str]] = (),
    created_at: str | None = None,
) -> str:
    """The query string of `POST /api/0/profiles`, encoded once more over the labels' own escaping."""
    params = [("service", service), ("type", profile_type), ("labels", encode_labels(labels))]
    if created_at:
        params.append(("created_at", created_at))
    return urllib.parse.urlencode(params)


# --- files ------------------------------------------------------------------------------------


def find_profile_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files as given, and every profile under a directory: hidden files and text files (goldens,
    notes, JSON) are skipped, and names sort naturally (`cpu-2` before `cpu-10`)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(_walk(path))
        elif path.is_file():
            found.append(path)
        else:
            raise ImportArgumentError(f"{path}: no such file or directory")
    return found


def _natural(name: str) -> list[str | int]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _walk(top: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted((d for d in dirnames if not d.startswith(".")), key=_natural)
        for name in sorted(filenames, key=_natural):
            if not name.startswith("."):
                path = Path(dirpath, name)
                if path.is_file() and not _is_text(path):
                    yield path


def _is_text(path: Path) -> bool:
    """Readable text, not a profile: gzip and protobuf are binary, and a Go trace starts "go 1."."""
    try:
        with path.open("rb") as f:
            head = f.read(4096)
    except OSError:
        return False  # reading it again for the upload reports the error
    if not head or b"\0" in head or head.startswith(b"go 1."):
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # only a character cut at the end of the read
    return True


def read_profile(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise UploadError(f"file is {size} bytes, more than the {MAX_FILE_BYTES} accepted")
        return path.read_bytes()
    except OSError as exc:
        raise UploadError(f"cannot read: {exc.strerror or exc}") from exc


# --- HTTP -------------------------------------------------------------------------------------


class Collector:
    """One keep-alive connection to a profefe-compatible collector, with retries.

    `attempts` counts every try of one upload; retries wait `BACKOFF_FIRST` doubling up to
    `BACKOFF_MAX`, or the server's `Retry-After` when it sends one (capped at `MAX_RETRY_AFTER`).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        attempts: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        token: str | None = None,
    ):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ImportArgumentError(f"collector URL {url!r} is not http(s)://host[:port][/prefix]")
        if parts.path.rstrip("/").endswith(("/api/0/profiles", "/api/0")):
            raise ImportArgumentError(f"collector URL {url!r} names the API route: give the collector's base "
                                      f"URL, e.g. {parts.scheme}://{parts.netloc}")
        self.url = url
        self._scheme = parts.scheme
        self._netloc = parts.netloc
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout
        self._attempts = max(1, attempts)
        self._sleep = sleep
        self._token = token  # sent as a bearer token to a collector that requires one
        self._conn: http.client.HTTPConnection | None = None

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def upload(self, body: bytes, query: str) -> dict:
        """POST one profile; the profile JSON the collector answers (its `body`)."""
        target = f"{self._prefix}{PROFILES_PATH}?{query}"
        for attempt in range(1, self._attempts + 1):
            try:
                status, headers, data = self._post(target, body)
                return _accepted(status, headers, data)
            except UploadError as exc:
                if not exc.retryable or attempt == self._attempts:
                    raise
                self._sleep(_retry_delay(attempt, exc.retry_after))
        raise AssertionError("unreachable")

    def _post(self, target: str, body: bytes) -> tuple[int, http.client.HTTPMessage, bytes]:
        conn = self._connection()
        headers = {"Content-Type": "application/octet-stream", "Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            conn.request("POST", target, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            # A kept-alive connection the server has since closed fails here too: start afresh.
            self.close()
            raise UploadError(f"cannot reach {self.url}: {_describe(exc)}") from exc
        if resp.will_close:
            self.close()
        return resp.status, resp.headers, data

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            self._conn = cls(self._netloc, timeout=self._timeout)
        return self._conn


def _accepted(status: int, headers: http.client.HTTPMessage, data: bytes) -> dict:
    envelope = _json_or_none(data)
    if status == 200:
        if isinstance(envelope, dict) and isinstance(envelope.get("body"), dict):
            return envelope["body"]
        raise UploadError(f"HTTP 200 without a profile in the reply: {_snippet(data)}", status)
    retry_after = parse_retry_after(headers.get("Retry-After"))
    raise UploadError(f"HTTP {status}: {error_message(status, data)}", status, retry_after)


def error_message(status: int, data: bytes) -> str:
    """The envelope's `error`, else the start of the body, else the status phrase."""
    envelope = _json_or_none(data)
    if isinstance(envelope, dict) and isinstance(envelope.get("error"), str) and envelope["error"]:
        return envelope["error"]
    text = _snippet(data)
    if text:
        return text
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "no message"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date; None when unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _retry_delay(attempt: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER)
    return min(BACKOFF_FIRST * 2 ** (attempt - 1), BACKOFF_MAX)


def _json_or_none(data: bytes) -> object:
    try:
        return json.loads(data)
    except ValueError:
        return None


def _snippet(data: bytes) -> str:
    text = data.decode("utf-8", "replace").strip()
    return text[:ERROR_SNIPPET] + ("..." if len(text) > ERROR_SNIPPET else "")


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --- the command --------------------------------------------------------------------------------


@dataclass
class ImportReport:
    uploaded: list[tuple[Path, dict]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return f"{len(self.uploaded)} uploaded, {len(self.failed)} failed"


def upload_files(collector: Collector, files: Iterable[Path], query: str) -> Iterator[tuple[Path, dict | UploadError]]:
    """Each file's profile JSON, or the error that kept it out; never stops at a failure."""
    for path in files:
        try:
            yield path, collector.upload(read_profile(path), query)
        except UploadError as exc:
            yield path, exc


def run_import(
    *,
    url: str,
    service: str,
    profile_type: str,
    labels: Sequence[str],
    created_at: str | None,
    paths: Sequence[str],
    quiet: bool,
    attempts: int,
    token: str | None = None,
) -> ImportReport:
    """Upload every file, showing progress on a terminal; failures go to stderr, one per file."""
    try:
        query = upload_query(
            service,
            profile_type,
            [parse_label(text) for text in labels],
            format_created_at(created_at) if created_at else None,
        )
        files = find_profile_files(paths)
        collector = Collector(url, attempts=attempts, token=token)
    except ImportArgumentError as exc:
        raise click.UsageError(str(exc)) from exc
    if not files:
        raise click.UsageError("no files to upload")

    report = ImportReport()
    show_bar = not quiet and sys.stderr.isatty()
    with collector:
        results = upload_files(collector, files, query)
        if show_bar:
            with click.progressbar(
                results, length=len(files), label="uploading", file=sys.stderr,
                item_show_func=lambda item: str(item[0]) if item else None,
            ) as bar:
                for path, outcome in bar:
                    _record(report, path, outcome, echo=False, quiet=quiet)
            for path, message in report.failed:
                click.echo(f"failed: {path}: {message}", err=True)
        else:
            for path, outcome in results:
                _record(report, path, outcome, echo=True, quiet=quiet)
    if not quiet:
        click.echo(report.summary)
    return report


def _record(report: ImportReport, path: Path, outcome: dict | UploadError, *, echo: bool, quiet: bool) -> None:
    if isinstance(outcome, UploadError):
        report.failed.append((path, str(outcome)))
        if echo:
            click.echo(f"failed: {path}: {outcome}", err=True)
    else:
        report.uploaded.append((path, outcome))
        if echo and not quiet:
            click.echo(f"uploaded: {path} {outcome.get('id', '')}")
