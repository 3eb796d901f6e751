"""Checking a decoded profile, like pprof's CheckValid plus string-table bounds.

The repeated messages are checked as columns (see columns.proto): the protobuf parser gathers
every id and every reference into one list per field, and the checks are set operations and
min/max over those lists, not Python loops over messages. parse runs this on every blob the
query path reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sized

from google.protobuf.message import DecodeError

from shared.pprof.columns_pb2 import LineCount, ProfileColumns
from shared.pprof.errors import MalformedProfile
from shared.pprof.profile_pb2 import Profile


def check_valid(p: Profile) -> None:
    """Raise MalformedProfile naming the first problem found in `p`.

    `p` must hold no unknown fields (parse drops them): re-encoded, an unknown field whose wire
    type differs from the view's field of the same number would show up in a column.
    """
    encoded = p.SerializeToString()
    try:
        cols = ProfileColumns.FromString(encoded)
        n_lines = len(LineCount.FromString(encoded).location.line)
    except DecodeError as exc:
        raise MalformedProfile(f"protobuf: {exc}") from None

    strings = p.string_table
    if not strings:
        raise MalformedProfile("string table is empty")
    if strings[0] != "":
        raise MalformedProfile("string_table[0] must be the empty string")
    n_strings = len(strings)

    _check_samples(p)
    mapping_ids = _unique_ids("mapping", cols.mapping.id, p.mapping)
    function_ids = _unique_ids("function", cols.function.id, p.function)
    location_ids = _unique_ids("location", cols.location.id, p.location)

    line_functions = cols.location.line.function_id
    if len(line_functions) != n_lines:
        raise MalformedProfile("a location has a line without a function (function id 0)")
    _check_resolved("location", "mapping", set(cols.location.mapping_id), mapping_ids)
    _check_resolved("location", "function", set(line_functions), function_ids)
    _check_resolved("sample", "location", set(cols.sample.location_id), location_ids)

    _check_strings(n_strings, "sample type", [i for t in p.sample_type for i in (t.type, t.unit)])
    _check_strings(n_strings, "period type", (p.period_type.type, p.period_type.unit))
    header = [p.drop_frames, p.keep_frames, p.default_sample_type, p.doc_url, *p.comment]
    _check_strings(n_strings, "profile header", header)
    _check_strings(n_strings, "mapping", cols.mapping.filename, cols.mapping.build_id)
    _check_strings(
        n_strings, "function", cols.function.name, cols.function.system_name, cols.function.filename
    )
    labels = cols.sample.label
    _check_strings(n_strings, "label", labels.key, labels.str, labels.num_unit)


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


def _unique_ids(kind: str, ids: Iterable[int], messages: Sized) -> set[int]:
    # Zero ids are not on the wire, so a short column means some id is zero.
    ids = list(ids)
    if len(ids) != len(messages):
        raise MalformedProfile(f"{kind} with the reserved id 0")
    unique = set(ids)
    if len(unique) != len(ids):
        seen: set[int] = set()
        dup = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
        raise MalformedProfile(f"duplicate {kind} id {dup}")
    return unique


def _check_resolved(holder: str, kind: str, used: set[int], known: set[int]) -> None:
    if not used <= known:
        missing = min(used - known)
        raise MalformedProfile(f"{holder} refers to {kind} id {missing}, which does not exist")


def _check_strings(n_strings: int, what: str, *columns: Iterable[int]) -> None:
    for column in columns:
        if not column:
            continue
        low, high = min(column), max(column)
        if low < 0 or high >= n_strings:
            bad = low if low < 0 else high
            raise MalformedProfile(
                f"{what} string index {bad} out of range (string table has {n_strings} entries)"
            )
