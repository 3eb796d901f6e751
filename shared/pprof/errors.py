"""The errors of the pprof library: one base class and one type per way a profile can be refused."""

from __future__ import annotations


class PprofError(Exception):
    """Base class of every error raised by shared.pprof."""


class MalformedProfile(PprofError):
    """The bytes are not a valid pprof profile; str(e) is the reason."""


class ProfileTooLarge(PprofError):
    """The profile decompresses to more than the allowed number of bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"profile is larger than {limit} bytes once decompressed")
        self.limit = limit


class IncompatibleProfiles(PprofError):
    """Profiles with different period types or sample types cannot be merged."""

    def __init__(self, first: str, second: str) -> None:
        super().__init__(f"incompatible profiles: {first!r} and {second!r}")
        self.first = first
        self.second = second
