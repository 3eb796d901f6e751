"""Checking a decoded profile, like pprof's CheckValid plus string-table bounds.

Every check works on whole repeated fields (sets, min/max) rather than field by field, because
parse runs it on every blob the query path reads.
"""
from __future__ import annotations

from collections.abc import Iterable
from itertools import chain

from shared.pprof.errors import MalformedProfile
from shared.pprof.profile_pb2 import Profile


def check_valid(p: Profile) -> None:
    """Raise MalformedProfile naming the first problem found in `p`."""
    strings = p.string_table
    if not strings:
        raise MalformedProfile("string table is empty")
    if strings[0] != "":
        raise MalformedProfile("string_table[0] must be the empty string")
    n_strings = len(strings)

    _check_samples(p)
    mapping_ids = _unique_ids("mapping", [m.id for m in p.mapping])
    function_ids = _unique_ids("function", [f.id for f in p.function])
    location_ids = _unique_ids("location", [loc.id for loc in p.location])

    used_mappings = {loc.mapping_id for loc in p.location}
    used_mappings.discard(0)
    _check_resolved("location", "mapping", used_mappings, mapping_ids)
    used_functions = {line.function_id for loc in p.location for line in loc.line}
    if 0 in used_functions:
        raise MalformedProfile("a location has a line without a function (function id 0)")
    _check_resolved("location", "function", used_functions, function_ids)
    used_locations = set(chain.from_iterable(s.location_id for s in p.sample))
    _check_resolved("sample", "location", used_locations, location_ids)

    _check_strings(n_strings, "sample type", chain.from_iterable((t.type, t.unit) for t in p.sample_type))
    _check_strings(n_strings, "period type", (p.period_type.type, p.period_type.unit))
    _check_strings(
        n_strings,
        "profile header",
        chain((p.drop_frames, p.keep_frames, p.default_sample_type, p.doc_url), p.comment),
    )
    _check_strings(n_strings, "mapping", chain.from_iterable((m.filename, m.build_id) for m in p.mapping))
    _check_strings(
        n_strings,
        "function",
        chain.from_iterable((f.name, f.system_name, f.filename) for f in p.function),
    )
    _check_strings(
        n_strings,
        "label",
        chain.from_iterable((lb.key, lb.str, lb.num_unit) for s in p.sample for lb in s.label),
    )


def _check_samples(p: Profile) -> None:
    n_types = len(p.sample_type)
    samples = p.sample
    if not samples:
        return
    if n_types == 0:
        raise MalformedProfile(f"{len(samples)} samples but no sample types")
    counts = [len(s.value) for s in samples]
    if counts.count(n_types) != len(counts):
        i = next(i for i, n in enumerate(counts) if n != n_types)
        raise MalformedProfile(f"sample {i} has {counts[i]} values, expected {n_types} sample types")


def _unique_ids(kind: str, ids: list[int]) -> set[int]:
    unique = set(ids)
    if 0 in unique:
        raise MalformedProfile(f"{kind} with the reserved id 0")
    if len(unique) != len(ids):
        seen: set[int] = set()
        dup = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
        raise MalformedProfile(f"duplicate {kind} id {dup}")
    return unique


def _check_resolved(holder: str, kind: str, used: set[int], known: set[int]) -> None:
    if not used <= known:
        missing = min(used - known)
        raise MalformedProfile(f"{holder} refers to {kind} id {missing}, which does not exist")


def _check_strings(n_strings: int, what: str, indexes: Iterable[int]) -> None:
    values = list(indexes)
    if not values:
        return
    low, high = min(values), max(values)
    if low < 0 or high >= n_strings:
        bad = low if low < 0 else high
        raise MalformedProfile(f"{what} string index {bad} out of range (string table has {n_strings} entries)")
