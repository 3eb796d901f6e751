"""The domain's errors: a few named types, mapped to HTTP statuses in `services/web/errors.py` only."""
from __future__ import annotations


class ProfefeError(Exception):
    """Base of every error the collector raises on purpose; str(e) is the message a client sees."""


class BadRequest(ProfefeError):
    """The request itself is wrong: a missing or malformed parameter, a refused upload (400).
    str(e) is the reason; the reply prefixes it with `bad request: `, as profefe does."""


class NotFound(ProfefeError):
    """Nothing matches: an unknown id, an empty result (404)."""


class PayloadTooLarge(ProfefeError):
    """An input is over one of the configured size limits (413)."""


class UnsupportedMediaType(ProfefeError):
    """A body in a content type or encoding the route does not take (415)."""


class Unprocessable(ProfefeError):
    """The request is well formed but cannot be carried out, e.g. merging incompatible profiles (422)."""


class Unavailable(ProfefeError):
    """A dependency (object store, database, broker) does not answer; retry later (503)."""

    def __init__(self, message: str, *, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InsufficientStorage(Unavailable):
    """The disk under a store is full; nothing was stored, and retrying once space returns
    succeeds (507). str(e) names the store."""

    def __init__(self, message: str, *, retry_after: int = 30) -> None:
        super().__init__(message, retry_after=retry_after)


# errno values that mean "out of space", whichever store's disk it is.
OUT_OF_SPACE = frozenset({28, 122})  # ENOSPC, EDQUOT
