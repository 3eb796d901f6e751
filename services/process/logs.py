"""Process logs as text or JSON lines on stderr; request lines are JSON either way."""
from __future__ import annotations

import json
import logging
import logging.handlers
import os
import queue
import sys
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


class Behind(logging.handlers.QueueHandler):
    """Hands each record to one thread that formats and writes it to `target`: the request threads
    only queue it. Written by each of sixteen request threads in turn, under the handler's lock, a
    line per upload cost `serve` about a tenth of its ingest rate and a quarter of its p99. `close`
    (which `logging.shutdown` calls at exit) writes what is queued first; a forked child starts a
    thread of its own."""

    def __init__(self, target: logging.Handler) -> None:
        super().__init__(queue.SimpleQueue())
        self.target = target
        self._writer: logging.handlers.QueueListener | None = None
        self._start()
        os.register_at_fork(after_in_child=self._restart_in_child)

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record  # formatted by the writer: the queue never leaves this process

    def close(self) -> None:
        self.acquire()  # the handler's own lock, which logging renews in a forked child
        try:
            writer, self._writer = self._writer, None
        finally:
            self.release()
        if writer is not None:
            writer.stop()
        self.target.flush()
        super().close()

    def _start(self) -> None:
        self._writer = logging.handlers.QueueListener(self.queue, self.target, respect_handler_level=True)
        self._writer.start()

    def _restart_in_child(self) -> None:
        # The parent's writer thread did not survive the fork; its queue may be mid-operation.
        if self._writer is not None:
            self.queue = queue.SimpleQueue()
            self._start()


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
