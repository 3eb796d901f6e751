"""Process logs as text or JSON lines on stderr; request lines are JSON either way."""
from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

ACCESS_LOGGER = "profefe.access"
access_log = logging.getLogger(ACCESS_LOGGER)

# Libraries that narrate what is routine for a daemon.
_QUIET = ("kafka", "alembic", "urllib3")


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


def configure_logging(fmt: str = "text") -> None:
    """Process logs as text or JSON lines on stderr; request lines are JSON either way."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    access = logging.StreamHandler(sys.stderr)
    access.setFormatter(JsonFormatter())
    access_log.handlers[:] = [access]
    access_log.setLevel(logging.INFO)
    access_log.propagate = False
    for noisy in _QUIET:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # It warns about its own slow event-loop turns, which a busy two-core machine has plenty of.
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)
