"""How Pyroscope's names map onto profefe's, both ways: the ingest routes read them, the querier
routes answer with them, so the two sides stay each other's inverse.

A Pyroscope profile type id is `<name>:<sample type>:<sample unit>:<period type>:<period unit>`,
e.g. `process_cpu:cpu:nanoseconds:cpu:nanoseconds`; the name is what a series' `__name__` says.
"""
from __future__ import annotations

from shared.model import ProfileType

SERVICE_LABEL = "service_name"
NAME_LABEL = "__name__"
PROFILE_TYPE_LABEL = "__profile_type__"  # a profile type id, as a label of the read side
KEPT_NAME_LABEL = "pyroscope.name"  # the profile name, when no profefe type says it

# Profile names (Push's __name__, /ingest's suffix, sample_type_config display names) -> type.
NAME_TYPES: dict[str, ProfileType] = {
    "process_cpu": ProfileType.CPU, "cpu": ProfileType.CPU, "itimer": ProfileType.CPU,
    "wall": ProfileType.WALL,
    "memory": ProfileType.HEAP, "alloc_objects": ProfileType.HEAP, "alloc_space": ProfileType.HEAP,
    "inuse_objects": ProfileType.HEAP, "inuse_space": ProfileType.HEAP,
    "goroutine": ProfileType.GOROUTINE, "goroutines": ProfileType.GOROUTINE,
    "block": ProfileType.BLOCK, "block_count": ProfileType.BLOCK, "block_duration": ProfileType.BLOCK,
    "mutex": ProfileType.MUTEX, "mutex_count": ProfileType.MUTEX, "mutex_duration": ProfileType.MUTEX,
}

# profefe type -> the name the read side gives it (Pyroscope's own names for Go's profiles).
TYPE_NAMES: dict[ProfileType, str] = {
    ProfileType.CPU: "process_cpu", ProfileType.WALL: "wall", ProfileType.HEAP: "memory",
    ProfileType.GOROUTINE: "goroutine", ProfileType.BLOCK: "block", ProfileType.MUTEX: "mutex",
    ProfileType.THREADCREATE: "threadcreate", ProfileType.OTHER: "other",
}

_READ_TYPES = {name: ptype for ptype, name in TYPE_NAMES.items()}


def type_of_name(name: str) -> tuple[ProfileType, str | None]:
    """The type a profile name reads as, and for `other` the `pyroscope.name` value it keeps."""
    known = _READ_TYPES.get(name) or NAME_TYPES.get(name)
    if known is not None:
        return known, None
    return ProfileType.OTHER, name
