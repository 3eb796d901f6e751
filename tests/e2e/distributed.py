"""The distributed deployment as real subprocesses against the real Kafka, S3 and PostgreSQL:
`profefe migrate`, then `ingest-api`, `indexer` (one or more) and `query-api`.

Every `Stack` gets its own topic, dead-letter topic, consumer group, bucket and PostgreSQL
database, so reruns and parallel stacks never see each other's data.
"""
from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pytest
import sqlalchemy as sa

from tests.e2e.embedded import free_port, profefe_command
from tests.services import Database
from tests.support import unavailable

START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
VISIBLE_TIMEOUT = 30.0
# What each worker logs once it runs.
_STARTED = {"indexer": re.compile(r"indexer: consuming"), "compactor": re.compile(r"profefe compactor: every")}


def real_services(request) -> tuple[str, Mapping[str, Any], str]:
    """(Kafka bootstrap, S3 settings, PostgreSQL URL) from tests/services.py's fixtures."""
    found = []
    for fixture, what in (("kafka_bootstrap", "a Kafka broker"), ("s3_settings", "an S3-compatible store"),
                          ("postgres_url", "a PostgreSQL server")):
        try:
            found.append(request.getfixturevalue(fixture))
        except pytest.FixtureLookupError:
            unavailable(f"{what} (the {fixture} fixture)")
    kafka, s3, pg = found
    return kafka, (s3 if isinstance(s3, Mapping) else vars(s3)), pg


@dataclass
class Daemon:
    role: str
    proc: subprocess.Popen
    log_path: Path
    url: str | None = None
    terminated: bool = False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def is_worker(self) -> bool:
        """A loop without HTTP (indexer, compactor): stopped after the APIs, ready once it logs so."""
        return self.url is None

    def wait_logged(self, pattern: re.Pattern, timeout: float = START_TIMEOUT) -> None:
        """Until the log matches `pattern`; AssertionError with the log when the daemon exits or time is up."""
        deadline = time.monotonic() + timeout
        while not pattern.search(self.log()):
            assert self.proc.poll() is None, f"{self.role} exited with {self.proc.returncode}:\n{self.log()}"
            assert time.monotonic() < deadline, \
                f"no {pattern.pattern!r} in the {self.role} log within {timeout:g}s:\n{self.log()}"
            time.sleep(0.1)

    def terminate(self) -> None:
        """SIGTERM, once: a second one would make it exit at once, its work abandoned."""
        if not self.terminated and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.terminated = True

    def stop(self) -> int:
        """SIGTERM, then wait; a daemon that does not stop in time is killed (and fails)."""
        self.terminate()
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -9


@dataclass
class Stack:
    """One distributed deployment; `start_*` adds daemons, `stop()` SIGTERMs them all."""

    kafka_bootstrap: str
    s3: Mapping[str, Any]
    admin_url: str
    workdir: Path
    name: str = field(default_factory=lambda: "e2e" + uuid.uuid4().hex[:10])
    daemons: list[Daemon] = field(default_factory=list)
    db: Database | None = None
    started: int = 0
    # Where the daemons reach "kafka", "s3" or "postgres" instead (host:port of a fault proxy);
    # the test itself keeps the direct addresses.
    via: dict[str, str] = field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROFEFE_")}
        database_url = self.db.url if self.db else ""
        if database_url and "postgres" in self.via:
            host, _, port = self.via["postgres"].rpartition(":")
            database_url = sa.engine.make_url(database_url).set(host=host, port=int(port)).render_as_string(
                hide_password=False)
        env.update({
            "PROFEFE_KAFKA_BOOTSTRAP": self.via.get("kafka", self.kafka_bootstrap),
            "PROFEFE_KAFKA_TOPIC": f"profefe-{self.name}",
            "PROFEFE_KAFKA_GROUP": f"profefe-indexer-{self.name}",
            "PROFEFE_S3_ENDPOINT": self.via.get("s3", self.s3["endpoint"]),
            "PROFEFE_S3_ACCESS_KEY": self.s3.get("access_key", ""),
            "PROFEFE_S3_SECRET_KEY": self.s3.get("secret_key", ""),
            "PROFEFE_S3_SECURE": "true" if self.s3.get("secure") else "false",
            "PROFEFE_S3_BUCKET": f"profefe-{self.name}",
            "PROFEFE_S3_REGION": self.s3.get("region") or "",
            "PROFEFE_DATABASE_URL": database_url,
        })
        env.update(extra)
        return env

    @property
    def dead_letter_topic(self) -> str:
        return f"profefe-{self.name}-dead"

    def migrate(self) -> str:
        self.db = Database(self.admin_url, f"profefe_{self.name}")
        done = subprocess.run([*profefe_command(), "migrate", "--partitions", "6"], env=self.env(),
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"profefe migrate failed:\n{done.stdout}\n{done.stderr}"
        return done.stderr

    def start(self, role: str, *args: str, **env: str) -> Daemon:
        self.started += 1
        log_path = self.workdir / f"{self.name}-{self.started:02d}-{role}.log"
        url = None
        extra = list(args)
        if role in ("ingest-api", "query-api"):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            extra += ["--addr", f"127.0.0.1:{port}", "--threads", "8"]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([*profefe_command(), role, *extra], stdout=log, stderr=subprocess.STDOUT,
                                    env=self.env(**env))
        daemon = Daemon(role, proc, log_path, url)
        self.daemons.append(daemon)
        return daemon

    def wait_ready(self, daemon: Daemon, path: str = "/readyz") -> None:
        """An API answers `path` (/readyz: its dependencies answer); a worker logs that it started."""
        if daemon.is_worker:
            daemon.wait_logged(_STARTED[daemon.role])
            return
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if daemon.proc.poll() is not None:
                raise AssertionError(f"{daemon.role} exited with {daemon.proc.returncode}:\n{daemon.log()}")
            status, _, _ = request(daemon.url, "GET", path, timeout=5)
            if status == 200:
                return
            time.sleep(0.2)
        raise AssertionError(f"{daemon.role} was not ready within {START_TIMEOUT}s:\n{daemon.log()}")

    def stop(self) -> dict[str, int]:
        """SIGTERM every daemon (APIs first, so nothing new arrives); their exit codes by log name."""
        codes = {}
        for workers in (False, True):  # each group signalled at once, then waited for
            group = [d for d in self.daemons if d.is_worker is workers]
            for d in group:
                d.terminate()
            for d in group:
                codes[d.log_path.name] = d.stop()
        self.daemons.clear()
        return codes

    def close(self) -> None:
        from tests.services import drop_bucket, drop_topics

        self.stop()
        drop_bucket(self.s3, f"profefe-{self.name}")
        drop_topics(self.kafka_bootstrap, f"profefe-{self.name}", self.dead_letter_topic)
        if self.db is not None:
            self.db.drop()
            self.db = None


def request(base: str, method: str, target: str, body: bytes | None = None,
            timeout: float = 60.0, headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request with the target sent as given (query strings are not re-encoded)."""
    parts = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parts.netloc, timeout=timeout)
    try:
        conn.request(method, target, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    except (OSError, http.client.HTTPException):
        # No answer, or part of one (a connection reset after the headers): the caller retries,
        # as a client does when it cannot tell whether its upload landed.
        return 0, {}, b""
    finally:
        conn.close()


def wait_visible(query_url: str, ids, timeout: float = VISIBLE_TIMEOUT) -> None:
    """Until every id is served by the query API; AssertionError naming those that are not."""
    waiting = list(dict.fromkeys(ids))
    deadline = time.monotonic() + timeout
    while waiting:
        waiting = [i for i in waiting if request(query_url, "GET", f"/api/0/profiles/{i}")[0] != 200]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"acknowledged but not visible after {timeout}s: {waiting}")
        time.sleep(0.05)
