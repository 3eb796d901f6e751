"""What a role says when it starts, and the one error it gives up with before serving."""
from __future__ import annotations

import sys

from services.process.signals import EXIT_FAILED, EXIT_USAGE


class CannotStart(Exception):
    """A role cannot start (a port in use, a socket that will not bind); str(e) says why."""

    def __init__(self, message: str, *, usage: bool = False) -> None:
        super().__init__(message)
        self.exit_code: int = EXIT_USAGE if usage else EXIT_FAILED


def announce(line: str) -> None:
    """One line on stderr that the role is up and where (tests and operators wait for it)."""
    print(line, file=sys.stderr, flush=True)
