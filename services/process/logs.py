"""Process logs as text or JSON lines on stderr; request lines are JSON either way."""
from __future__ import annotations

import json
import logging
import os
import queue
import sys
import threading
import time
from datetime import datetime, timezone

ACCESS_LOGGER = "profefe.access"
access_log = logging.getLogger(ACCESS_LOGGER)

# Libraries' loggers, at the least level each writes: they narrate what is routine for a daemon.
_LIBRARY_LEVELS = {
    "kafka": logging.WARNING,
    "alembic": logging.WARNING,
    "urllib3": logging.WARNING,
    # It warns about its own slow event-loop turns, which a busy two-core machine has plenty of.
    "kafka.net.selector": logging.ERROR,
    # While a broker is down these log every reconnect and metadata attempt and every record that
    # expired, several lines a second; what the outage costs is said by the daemons: a 503's
    # warning (services/web/errors.py, one per 10 s) and the indexer's retries.
    "kafka.net": logging.CRITICAL,
    "kafka.cluster": logging.CRITICAL,
    "kafka.producer.producer_batch": logging.CRITICAL,
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, any `extra={"fields": {...}}`, exc."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class Behind(logging.Handler):
    """Hands each record to one thread that formats and writes it to `target`: the request threads
    only queue it. Written by each of sixteen request threads in turn, under the handler's lock, a
    line per upload cost `serve` about a tenth of its ingest rate and a quarter of its p99. The
    writer takes what `linger` seconds gathered and writes it at once: woken for every line, it
    took the GIL from the upload thread about 2,400 times a second, which cost a sixth of the
    rate at 16 clients. `close` (which `logging.shutdown` calls at exit) writes what is queued
    first; a forked child starts a thread of its own."""

    LINGER = 0.05

    def __init__(self, target: logging.StreamHandler, linger: float = LINGER) -> None:
        super().__init__()
        self.target = target
        self.linger = linger
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._start()
        os.register_at_fork(after_in_child=self._restart_in_child)

    def emit(self, record: logging.LogRecord) -> None:
        self._queue.put(record)  # formatted by the writer: the queue never leaves this process

    def close(self) -> None:
        self.acquire()  # the handler's own lock, which logging renews in a forked child
        try:
            writer, self._writer = self._writer, None
        finally:
            self.release()
        if writer is not None:
            self._queue.put(_STOP)
            writer.join()
        self.target.flush()
        super().close()

    def _start(self) -> None:
        self._writer = threading.Thread(target=self._write, args=(self._queue,), name="log-writer", daemon=True)
        self._writer.start()

    def _restart_in_child(self) -> None:
        # The parent's writer thread did not survive the fork; its queue may be mid-operation.
        if self._writer is not None:
            self._queue = queue.SimpleQueue()
            self._start()

    def _write(self, pending: queue.SimpleQueue) -> None:
        while True:
            records = [pending.get()]
            if records[0] is not _STOP and self.linger > 0:
                time.sleep(self.linger)
            while True:
                try:
                    records.append(pending.get_nowait())
                except queue.Empty:
                    break
            stop = _STOP in records
            self._write_lines([r for r in records if r is not _STOP])
            if stop:
                return

    def _write_lines(self, records: list[logging.LogRecord]) -> None:
        target = self.target
        lines = []
        for record in records:
            if record.levelno < target.level or not target.filter(record):
                continue
            try:
                lines.append(target.format(record))
            except Exception:  # noqa: BLE001 - logging's own policy for a line it cannot make
                target.handleError(record)
        if not lines:
            return
        target.acquire()
        try:
            target.stream.write(target.terminator.join(lines) + target.terminator)
            target.flush()
        except Exception:  # noqa: BLE001 - as above, for a stream that refuses the write
            target.handleError(records[-1])
        finally:
            target.release()


_STOP = object()


def configure_logging(fmt: str = "text") -> None:
    """Process logs as text or JSON lines on stderr; request lines are JSON either way."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    access = logging.StreamHandler(sys.stderr)
    access.setFormatter(JsonFormatter())
    for old in access_log.handlers:
        old.close()
    access_log.handlers[:] = [Behind(access)]
    access_log.setLevel(logging.INFO)
    access_log.propagate = False
    for name, level in _LIBRARY_LEVELS.items():
        logging.getLogger(name).setLevel(level)
