"""Merging profiles the way google/pprof's profile.Merge does, one input at a time.

Rules (the header ones live in `_Header.add`):
- every input has the period type and sample types of the first, else IncompatibleProfiles;
  a profile with no sample types therefore only merges with others that have none;
- samples with the same stack and the same labels are one sample, their values added; samples
  whose values are all zero are dropped;
- a stack is compared by location identity, not by id: the location's mapping (by build id, else
  file name, plus size rounded to 4 KiB and file offset, so the same binary loaded at another
  address is the same mapping), its address relative to the mapping start, its lines (function
  name, system name, file, start line; line and column) and is_folded;
- duration_nanos is summed, period is the maximum, time_nanos the earliest non-zero one; comments
  are kept once each in first-seen order; drop_frames and keep_frames come from the first input;
  default_sample_type and doc_url are the first non-empty ones;
- the result is compact: only what its samples reference, ids renumbered from 1, the first
  input's main mapping (mapping[0]) first.

pprof takes time_nanos from a running "zero or smaller" comparison, so a zero in the middle of
the inputs resets it; we keep the earliest non-zero value whatever the order, which is what its
documentation promises.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import itemgetter

from shared.pprof import tables
from shared.pprof.columns_pb2 import MergeColumns
from shared.pprof.errors import IncompatibleProfiles
from shared.pprof.info import signature
from shared.pprof.profile_pb2 import Profile

_U64 = (1 << 64) - 1
_MAPSIZE_ROUNDING = 0x1000
_by_label_key = itemgetter(0)

# A merged function: (name, system_name, filename, start_line). It is also its own identity.
Func = tuple[str, str, str, int]
# A merged mapping: (start, limit, offset, filename, build_id, has_functions, has_filenames,
# has_line_numbers, has_inline_frames).
Mapping = tuple[int, int, int, str, str, bool, bool, bool, bool]
# A merged line: (function index, line, column); a location: (mapping index or -1, address,
# lines, is_folded).
Line = tuple[int, int, int]
Location = tuple[int, int, tuple[Line, ...], bool]
# A label: (key, str, num, num_unit), strings resolved.
Label = tuple[str, str, int, str]
SampleKey = tuple[tuple[int, ...], tuple[Label, ...]]


def merge(profiles: Iterable[Profile]) -> Profile:
    """Merge `profiles` into one new, compact profile (see the module docstring for the rules)."""
    merger = Merger()
    for p in profiles:
        merger.add(p)
    return merger.result()


class Merger:
    """A streaming merge: `add` profiles one by one, then take the `result`.

    Only the merged state is held (deduplicated functions, mappings, locations and sample sums),
    never the inputs, so merging a day of profiles costs about as much memory as merging an hour.
    """

    def __init__(self) -> None:
        self._header: _Header | None = None
        self._functions: dict[Func, int] = {}
        self._mappings: list[Mapping] = []
        self._mapping_index: dict[tuple[int, int, str], int] = {}
        self._main_mapping = -1
        self._locations: list[Location] = []
        self._location_index: dict[tuple[int, int, tuple[Line, ...], bool], int] = {}
        self._samples: dict[SampleKey, list[int]] = {}

    def add(self, p: Profile) -> None:
        """Fold `p`, a valid profile as `parse` returns it, into the result.

        Raises IncompatibleProfiles if its period type or sample types differ from the first's.
        """
        if self._header is None:
            self._header = _Header(p)
        else:
            self._header.add(p)
        strings = list(p.string_table)
        cols = tables.columns(p)
        functions = self._map_functions(tables.function_rows(p, cols), strings)
        mappings = self._map_mappings(p, strings)
        locations = self._map_locations(tables.location_rows(p, cols, functions), mappings)
        self._add_samples(p, cols, locations, strings)

    def result(self) -> Profile:
        """The merged profile, compacted; the Merger can go on accepting profiles afterwards."""
        if self._header is None:
            raise ValueError("no profiles to merge")
        return _Builder(self).build()

    # Each _map_* returns a table from the input's ids to indexes in the merged state.

    def _map_functions(self, rows: list[tables.FunctionRow], strings: list[str]) -> dict[int, int]:
        index = self._functions
        out = {}
        for fid, name, system_name, filename, start_line in rows:
            key = (strings[name], strings[system_name], strings[filename], start_line)
            i = index.get(key)
            if i is None:
                i = index[key] = len(index)
            out[fid] = i
        return out

    def _map_mappings(self, p: Profile, strings: list[str]) -> dict[int, tuple[int, int]]:
        """Input mapping id -> (merged index, start of the input mapping)."""
        out = {}
        for m in p.mapping:
            filename, build_id = strings[m.filename], strings[m.build_id]
            size = (m.memory_limit - m.memory_start + _MAPSIZE_ROUNDING - 1) & _U64
            size -= size % _MAPSIZE_ROUNDING
            # Without a build id or a file name a mapping is a placeholder: all of them are one.
            key = (size, m.file_offset, build_id or filename)
            i = self._mapping_index.get(key)
            if i is None:
                i = self._mapping_index[key] = len(self._mappings)
                self._mappings.append(
                    (
                        m.memory_start,
                        m.memory_limit,
                        m.file_offset,
                        filename,
                        build_id,
                        m.has_functions,
                        m.has_filenames,
                        m.has_line_numbers,
                        m.has_inline_frames,
                    )
                )
            if self._main_mapping < 0:
                self._main_mapping = i
            out[m.id] = (i, m.memory_start)
        return out

    def _map_locations(
        self,
        rows: list[tables.LocationRow],
        mappings: dict[int, tuple[int, int]],
    ) -> dict[int, int]:
        index = self._location_index
        merged = self._locations
        merged_mappings = self._mappings
        out = {}
        for lid, mapping_id, address, lines, folded in rows:
            if mapping_id:
                m, start = mappings[mapping_id]
                # Relative to the mapping, so address-space randomisation does not split locations.
                rel = address - start
            else:
                m, rel = -1, address
            key = (m, rel, lines, folded)
            i = index.get(key)
            if i is None:
                i = index[key] = len(merged)
                merged_address = address if m < 0 else (rel + merged_mappings[m][0]) & _U64
                merged.append((m, merged_address, lines, folded))
            out[lid] = i
        return out

    def _add_samples(
        self, p: Profile, cols: MergeColumns, locations: dict[int, int], strings: list[str]
    ) -> None:
        samples = self._samples

        def labels_of(raw: tables.RawLabels) -> tuple[Label, ...]:
            # Like pprof, a label with neither a string nor a number is no label; keys are
            # compared in sorted order, the values of one key in their own order (stable sort).
            out = [(strings[k], strings[v], num, strings[u]) for k, v, num, u in raw if v or num or u]
            out.sort(key=_by_label_key)
            return tuple(out)

        for key, values in tables.sample_rows(p, cols, locations, labels_of):
            if not any(values):
                continue
            acc = samples.get(key)
            if acc is None:
                samples[key] = values
            else:
                for i, v in enumerate(values):
                    acc[i] += v


class _Header:
    """The profile-level fields of the merge and the check that each input is compatible."""

    def __init__(self, p: Profile) -> None:
        st = p.string_table
        self.signature = signature(p)
        self.sample_types = [(st[t.type], st[t.unit]) for t in p.sample_type]
        self.period_type = (st[p.period_type.type], st[p.period_type.unit])
        self.has_period_type = p.HasField("period_type")
        self.drop_frames = st[p.drop_frames]
        self.keep_frames = st[p.keep_frames]
        self.time_nanos = 0
        self.duration_nanos = 0
        self.period = 0
        self.comments: dict[str, None] = {}
        self.default_sample_type = ""
        self.doc_url = ""
        self._combine(p)

    def add(self, p: Profile) -> None:
        sig = signature(p)
        if sig != self.signature:
            raise IncompatibleProfiles(self.signature, sig)
        self._combine(p)

    def _combine(self, p: Profile) -> None:
        st = p.string_table
        if p.time_nanos and (not self.time_nanos or p.time_nanos < self.time_nanos):
            self.time_nanos = p.time_nanos
        self.duration_nanos += p.duration_nanos
        self.period = max(self.period, p.period)
        for c in p.comment:
            self.comments.setdefault(st[c])
        if not self.default_sample_type:
            self.default_sample_type = st[p.default_sample_type]
        if not self.doc_url:
            self.doc_url = st[p.doc_url]


class _Builder:
    """Turns a Merger's state into a compact Profile: used entities only, ids from 1, strings interned."""

    def __init__(self, merger: Merger) -> None:
        self.m = merger
        self.p = Profile()
        self.strings: dict[str, int] = {"": 0}

    def s(self, text: str) -> int:
        i = self.strings.get(text)
        if i is None:
            i = self.strings[text] = len(self.strings)
        return i

    def build(self) -> Profile:
        m, p, s = self.m, self.p, self.s
        h = m._header
        assert h is not None
        for t, u in h.sample_types:
            p.sample_type.add(type=s(t), unit=s(u))

        live = [(key, values) for key, values in m._samples.items() if any(values)]
        location_ids = self._number_locations(live)
        for (locs, labels), values in live:
            sample = p.sample.add(location_id=[location_ids[i] for i in locs], value=values)
            for key, text, num, unit in labels:
                sample.label.add(key=s(key), str=s(text), num=num, num_unit=s(unit))

        self._header_fields(h)
        p.string_table.extend(self.strings)
        return p

    def _number_locations(self, live: list[tuple[SampleKey, list[int]]]) -> dict[int, int]:
        m, p, s = self.m, self.p, self.s
        used_locations: dict[int, int] = {}
        for (locs, _), _v in live:
            for i in locs:
                if i not in used_locations:
                    used_locations[i] = len(used_locations) + 1
        merged_locations = m._locations
        used_mappings = {merged_locations[i][0] for i in used_locations}
        used_mappings.discard(-1)
        mapping_order = sorted(used_mappings, key=lambda i: (i != m._main_mapping, i))
        mapping_ids = {i: n for n, i in enumerate(mapping_order, 1)}
        for i in mapping_order:
            start, limit, offset, filename, build_id, fn, fl, ln, inl = m._mappings[i]
            p.mapping.add(
                id=mapping_ids[i],
                memory_start=start,
                memory_limit=limit,
                file_offset=offset,
                filename=s(filename),
                build_id=s(build_id),
                has_functions=fn,
                has_filenames=fl,
                has_line_numbers=ln,
                has_inline_frames=inl,
            )

        functions = list(m._functions)
        function_ids: dict[int, int] = {}
        for i, loc_id in used_locations.items():
            mapping, address, lines, folded = merged_locations[i]
            loc = p.location.add(
                id=loc_id, mapping_id=mapping_ids.get(mapping, 0), address=address, is_folded=folded
            )
            for f, line, column in lines:
                fid = function_ids.get(f)
                if fid is None:
                    fid = function_ids[f] = len(function_ids) + 1
                    name, system_name, filename, start_line = functions[f]
                    p.function.add(
                        id=fid,
                        name=s(name),
                        system_name=s(system_name),
                        filename=s(filename),
                        start_line=start_line,
                    )
                loc.line.add(function_id=fid, line=line, column=column)
        return used_locations

    def _header_fields(self, h: _Header) -> None:
        p, s = self.p, self.s
        if h.has_period_type:
            p.period_type.type = s(h.period_type[0])
            p.period_type.unit = s(h.period_type[1])
        p.period = h.period
        p.time_nanos = h.time_nanos
        p.duration_nanos = h.duration_nanos
        p.drop_frames = s(h.drop_frames)
        p.keep_frames = s(h.keep_frames)
        p.comment.extend(s(c) for c in h.comments)
        p.default_sample_type = s(h.default_sample_type)
        p.doc_url = s(h.doc_url)
