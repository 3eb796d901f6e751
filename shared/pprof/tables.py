"""Reading a profile's function, location and sample tables as plain tuples, for merging.

Going through protobuf message objects costs a wrapper per message, which dominates a merge.
So each table is read from the column view (columns.proto: one list per field) whenever the
columns line up with the messages, and message by message otherwise: proto3 leaves zero
scalars off the wire, so a column shorter than its table means some message has a zero there.
Both readings give the same rows.
"""
from __future__ import annotations

from collections.abc import Iterator
from itertools import accumulate, repeat

from shared.pprof.columns_pb2 import MergeColumns
from shared.pprof.profile_pb2 import Label, Profile

# (id, name, system_name, filename, start_line): string-table indexes, not strings.
FunctionRow = tuple[int, int, int, int, int]
# (id, mapping_id, address, lines, is_folded), lines being (merged function, line, column).
LocationRow = tuple[int, int, int, tuple[tuple[int, int, int], ...], bool]
# (merged location indexes, values, labels as (key, str, num, num_unit) string-table indexes).
SampleRow = tuple[tuple[int, ...], list[int], tuple[tuple[int, int, int, int], ...]]


def columns(p: Profile) -> MergeColumns:
    return MergeColumns.FromString(p.SerializeToString())


def function_rows(p: Profile, cols: MergeColumns) -> list[FunctionRow]:
    c = cols.function
    n = len(p.function)
    fields = (c.id, c.name, c.system_name, c.filename, c.start_line)
    if all(len(f) == n for f in fields):
        return list(zip(*fields))
    return [(f.id, f.name, f.system_name, f.filename, f.start_line) for f in p.function]


def location_rows(p: Profile, cols: MergeColumns, functions: dict[int, int]) -> list[LocationRow]:
    """Every location, its lines' function ids already mapped through `functions`."""
    c = cols.location
    locations = p.location
    n = len(locations)
    line_counts = [len(loc.line) for loc in locations]
    n_lines = sum(line_counts)
    lc = c.line
    if (
        len(c.id) == n
        and len(c.address) == n
        and len(c.mapping_id) in (0, n)
        and len(c.is_folded) in (0, n)
        and len(lc.function_id) == n_lines
        and len(lc.line) in (0, n_lines)
        and len(lc.column) in (0, n_lines)
    ):
        function_ids = map(functions.__getitem__, lc.function_id)
        lines = list(zip(function_ids, lc.line or repeat(0), lc.column or repeat(0)))
        ends = list(accumulate(line_counts))
        per_location = [tuple(lines[end - count : end]) for end, count in zip(ends, line_counts)]
        return list(
            zip(c.id, c.mapping_id or repeat(0), c.address, per_location, c.is_folded or repeat(False))
        )
    return [
        (
            loc.id,
            loc.mapping_id,
            loc.address,
            tuple((functions[ln.function_id], ln.line, ln.column) for ln in loc.line),
            loc.is_folded,
        )
        for loc in locations
    ]


def sample_rows(p: Profile, cols: MergeColumns, locations: dict[int, int]) -> Iterator[SampleRow]:
    """Every sample, in order, its location ids already mapped through `locations`.

    The labels come as a tuple of (key, str, num, num_unit) string-table indexes.
    """
    c = cols.sample
    samples = p.sample
    n = len(p.sample_type)
    location_ids = list(c.location_id)
    values = list(c.value)
    raw_labels = list(c.label)
    if raw_labels:
        counts = [(len(s.location_id), len(s.label), len(s.value)) for s in samples]
    else:
        counts = [(len(s.location_id), 0, len(s.value)) for s in samples]
    if (
        len(values) != n * len(samples)
        or sum(k for k, _, _ in counts) != len(location_ids)
        or any(k != n for _, _, k in counts)
    ):
        yield from _sample_rows_slowly(p, locations)
        return
    mapped = tuple(map(locations.__getitem__, location_ids))
    decode = _LabelDecoder()
    loc_end = label_end = 0
    value_end = 0
    for n_locs, n_labels, _ in counts:
        loc_start, loc_end = loc_end, loc_end + n_locs
        value_start, value_end = value_end, value_end + n
        if n_labels:
            label_start, label_end = label_end, label_end + n_labels
            labels = decode(tuple(raw_labels[label_start:label_end]))
        else:
            labels = ()
        yield mapped[loc_start:loc_end], values[value_start:value_end], labels


def _sample_rows_slowly(p: Profile, locations: dict[int, int]) -> Iterator[SampleRow]:
    for s in p.sample:
        labels = tuple((lb.key, lb.str, lb.num, lb.num_unit) for lb in s.label)
        yield tuple(map(locations.__getitem__, s.location_id)), list(s.value), labels


class _LabelDecoder:
    """Raw label encodings -> label tuples, decoding each distinct set once per profile."""

    def __init__(self) -> None:
        self._cache: dict[tuple[bytes, ...], tuple[tuple[int, int, int, int], ...]] = {}

    def __call__(self, raw: tuple[bytes, ...]) -> tuple[tuple[int, int, int, int], ...]:
        labels = self._cache.get(raw)
        if labels is None:
            decoded = [Label.FromString(b) for b in raw]
            labels = self._cache[raw] = tuple((lb.key, lb.str, lb.num, lb.num_unit) for lb in decoded)
        return labels
