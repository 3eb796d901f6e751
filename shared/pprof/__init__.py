"""pprof profiles: parse, check, merge, write and render them.

The profile is the generated protobuf message (`Profile`, perftools.profiles.Profile) with its
string table; the functions here resolve strings where they need to. Reading, checking, merging
and writing, and the trees of flame graphs, are done by the native core (`_native`, built from native/ in Rust) with the GIL
released. Nothing else of the project is imported from here.
"""

from typing import TYPE_CHECKING, Any

from shared.pprof.errors import IncompatibleProfiles, MalformedProfile, PprofError, ProfileTooLarge
from shared.pprof.flame import FlameTree, flame_tree
from shared.pprof.info import period_type, sample_types, signature_types, totals
from shared.pprof.merge import Merger, merge
from shared.pprof.parse import DEFAULT_MAX_DECOMPRESSED, Checked, check, decompress, parse
from shared.pprof.text import to_text
from shared.pprof.validate import check_valid
from shared.pprof.write import write

if TYPE_CHECKING:
    from shared.pprof.profile_pb2 import Profile


def __getattr__(name: str) -> Any:
    # The protobuf message is imported on first use: protobuf's runtime is most of a fresh
    # process's start-up, and checking or merging stored bytes never needs it.
    if name == "Profile":
        from shared.pprof.profile_pb2 import Profile

        return Profile
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "Checked",
    "DEFAULT_MAX_DECOMPRESSED",
    "FlameTree",
    "IncompatibleProfiles",
    "MalformedProfile",
    "Merger",
    "PprofError",
    "Profile",
    "ProfileTooLarge",
    "check",
    "check_valid",
    "decompress",
    "flame_tree",
    "merge",
    "parse",
    "period_type",
    "sample_types",
    "signature_types",
    "to_text",
    "totals",
    "write",
]
