"""Hypothesis strategies for random but valid profiles of one shape, as agents would send them.

All profiles drawn for one test share sample types, header strings and mapping sizes (what a
real series of profiles of one type shares) and differ in everything ids and layout may differ
in: id numbering, string-table order, load addresses, samples, labels and values.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from shared.pprof import Profile

FUNCTION_NAMES = ["main.main", "main.work", "json.Marshal", "sha256.Sum", "sort.Slice", "runtime.mcall"]
FILES = ["main.go", "encode.go", "sha256.go", "sort.go"]
LABEL_KEYS = ["stage", "region"]
LABEL_VALUES = ["encode", "store", "eu"]
SAMPLE_TYPES = {
    1: [("goroutine", "count")],
    2: [("samples", "count"), ("cpu", "nanoseconds")],
    4: [
        ("alloc_objects", "count"),
        ("alloc_space", "bytes"),
        ("inuse_objects", "count"),
        ("inuse_space", "bytes"),
    ],
}
# Two binaries with build ids, and one mapping known only by its file name.
MAPPINGS = [("/bin/app", "b1d", 0x140000), ("/lib/libc.so", "", 0x20000), ("[vdso]", "", 0x2000)]


@dataclass(frozen=True)
class Shape:
    columns: int


@st.composite
def shapes(draw: st.DrawFn) -> Shape:
    return Shape(columns=draw(st.sampled_from(sorted(SAMPLE_TYPES))))


@st.composite
def profiles(draw: st.DrawFn, shape: Shape, *, allow_empty: bool = True) -> Profile:
    # The sizes are Hypothesis's draws (and shrink); what fills them comes from one drawn Random.
    # Drawn value by value, the ~200 small draws of a profile were four fifths of these tests' time.
    rng = draw(st.randoms(use_true_random=False))
    strings = _Strings(rng)
    p = Profile()
    for t, u in SAMPLE_TYPES[shape.columns]:
        p.sample_type.add(type=strings(t), unit=strings(u))
    p.period_type.type = strings(SAMPLE_TYPES[shape.columns][-1][0])
    p.period_type.unit = strings(SAMPLE_TYPES[shape.columns][-1][1])
    p.period = draw(st.integers(1, 3)) * 1000
    p.time_nanos = draw(st.integers(1, 10**18))
    p.duration_nanos = draw(st.integers(0, 10**10))
    p.comment.append(strings("merged by hypothesis"))

    id_base = draw(st.integers(1, 1000))  # ids differ from profile to profile
    mapping_ids = []
    for n, (filename, build_id, size) in enumerate(MAPPINGS):
        start = rng.randint(1, 1 << 20) * 0x1000  # another load address every time
        mid = id_base + n
        p.mapping.add(
            id=mid,
            memory_start=start,
            memory_limit=start + size,
            filename=strings(filename),
            build_id=strings(build_id),
            has_functions=True,
        )
        mapping_ids.append((mid, start))

    function_ids = {}
    for n, name in enumerate(FUNCTION_NAMES):
        fid = id_base * 3 + n
        function_ids[name] = fid
        p.function.add(
            id=fid,
            name=strings(name),
            system_name=strings(name),
            filename=strings(FILES[n % len(FILES)]),
            start_line=n * 10,
        )

    location_ids = []
    for n in range(draw(st.integers(1, 8))):
        lid = id_base * 7 + n
        loc = p.location.add(id=lid)
        m = rng.randint(0, len(MAPPINGS))  # len(MAPPINGS): no mapping
        offset = rng.randint(0, 0x1F)
        if m < len(MAPPINGS):
            loc.mapping_id, start = mapping_ids[m]
            loc.address = start + offset * 0x10
        else:
            loc.address = 0x10_0000 + offset
        for _ in range(rng.randint(0, 2)):
            loc.line.add(function_id=function_ids[rng.choice(FUNCTION_NAMES)], line=rng.randint(1, 40))
        location_ids.append(lid)

    for _ in range(draw(st.integers(0 if allow_empty else 1, 12))):
        stack = [rng.choice(location_ids) for _ in range(rng.randint(1, 5))]
        s = p.sample.add(location_id=stack, value=[_value(rng) for _ in range(shape.columns)])
        for key in rng.sample(LABEL_KEYS, rng.randint(0, 2)):
            s.label.add(key=strings(key), str=strings(rng.choice(LABEL_VALUES)))
        if rng.random() < 0.5:
            s.label.add(key=strings("bytes"), num=rng.randint(1, 4) * 64, num_unit=strings("bytes"))
    p.string_table.extend(strings.table)
    return p


def _value(rng) -> int:  # type: ignore[no-untyped-def]
    """0 one time in four (samples zero in some or every column), as Hypothesis's bias to bounds had it."""
    return 0 if rng.random() < 0.25 else rng.randint(1, 1000)


def empty_like(p: Profile) -> Profile:
    """A profile of the same type with nothing in it (no samples, no time, no duration)."""
    e = Profile()
    e.string_table.extend(p.string_table)
    e.sample_type.extend(p.sample_type)
    e.period_type.CopyFrom(p.period_type)
    e.period = p.period
    return e


class _Strings:
    """A string table filled in a shuffled order, so indexes differ between profiles."""

    def __init__(self, rng) -> None:  # type: ignore[no-untyped-def]
        words = {*FUNCTION_NAMES, *FILES, *LABEL_KEYS, *LABEL_VALUES, "bytes", "merged by hypothesis"}
        words |= {x for types in SAMPLE_TYPES.values() for t in types for x in t}
        words |= {x for m in MAPPINGS for x in m[:2]}
        words = sorted(w for w in words if w)
        rng.shuffle(words)
        self.table = ["", *words]
        self.index = {w: i for i, w in enumerate(self.table)}

    def __call__(self, text: str) -> int:
        return self.index[text]
