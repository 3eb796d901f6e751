"""Reading a profile's function, location and sample tables as plain tuples, for merging.

Going through protobuf message objects costs a wrapper per message, which dominates a merge.
So each table is read from the column view (columns.proto: one list per field) whenever the
columns line up with the messages, and message by message otherwise: proto3 leaves zero
scalars off the wire, so a column shorter than its table means some message has a zero there.
Both readings give the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import accumulate, repeat
from typing import TypeVar

from shared.pprof.columns_pb2 import MergeColumns
from shared.pprof.profile_pb2 import Label, Profile

# (id, name, system_name, filename, start_line): string-table indexes, not strings.
FunctionRow = tuple[int, int, int, int, int]
# (id, mapping_id, address, lines, is_folded), lines being (merged function, line, column).
LocationRow = tuple[int, int, int, tuple[tuple[int, int, int], ...], bool]
# A sample's labels as (key, str, num, num_unit), string-table indexes.
RawLabels = tuple[tuple[int, int, int, int], ...]
L = TypeVar("L")
LabelResolver = Callable[[RawLabels], L]


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


def sample_rows(
    p: Profile, cols: MergeColumns, locations: dict[int, int], labels_of: LabelResolver[L]
) -> Iterable[tuple[tuple[tuple[int, ...], L], list[int]]]:
    """Every sample as ((stack, labels), values), in order.

    The stack is its location ids mapped through `locations`; the labels are what `labels_of`
    makes of the sample's (key, str, num, num_unit) string-table indexes, asked once per
    distinct label set of the profile. A sample without labels gets `labels_of(())`.
    """
    c = cols.sample
    samples = p.sample
    n = len(p.sample_type)
    if not samples:
        return ()
    location_ids = c.location_id
    values = list(c.value)
    raw_labels = list(c.label)
    location_counts = [len(s.location_id) for s in samples]
    if (
        not n
        or len(values) != n * len(samples)
        or sum(location_counts) != len(location_ids)
        or any(len(s.value) != n for s in samples)
    ):
        return _sample_rows_slowly(p, locations, labels_of)
    mapped = tuple(map(locations.__getitem__, location_ids))
    ends = accumulate(location_counts)
    stacks = [mapped[end - count : end] for end, count in zip(ends, location_counts)]
    rows = [values[i : i + n] for i in range(0, len(values), n)]
    if not raw_labels:
        return zip(zip(stacks, repeat(labels_of(()))), rows)
    label_counts = [len(s.label) for s in samples]
    label_sets: dict[tuple[bytes, ...], L] = {}
    labels = []
    end = 0
    for count in label_counts:
        raw = tuple(raw_labels[end : end + count])
        end += count
        resolved = label_sets.get(raw)
        if resolved is None:
            resolved = label_sets[raw] = labels_of(_decode_labels(raw))
        labels.append(resolved)
    return zip(zip(stacks, labels), rows)


def _sample_rows_slowly(
    p: Profile, locations: dict[int, int], labels_of: LabelResolver[L]
) -> Iterator[tuple[tuple[tuple[int, ...], L], list[int]]]:
    label_sets: dict[RawLabels, L] = {}
    for s in p.sample:
        raw = tuple((lb.key, lb.str, lb.num, lb.num_unit) for lb in s.label)
        labels = label_sets.get(raw)
        if labels is None:
            labels = label_sets[raw] = labels_of(raw)
        yield (tuple(map(locations.__getitem__, s.location_id)), labels), list(s.value)


def _decode_labels(raw: tuple[bytes, ...]) -> RawLabels:
    decoded = [Label.FromString(b) for b in raw]
    return tuple((lb.key, lb.str, lb.num, lb.num_unit) for lb in decoded)
