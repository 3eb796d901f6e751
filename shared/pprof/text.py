"""A stable text rendering of a profile, for golden files and for people.

Ids, string-table order and sample order do not show: stacks are printed resolved, samples are
sorted, so two profiles that mean the same render the same text (a merge in any order, or a
profile written and parsed again).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.pprof.info import period_type, sample_types

if TYPE_CHECKING:
    from shared.pprof.profile_pb2 import Profile


def to_text(p: Profile) -> str:
    """The text rendering of `p`: header lines, a table of frames, then one line per sample.

    Each distinct frame (`function file:line`) is printed once, numbered in sorted order, and a
    sample lists its stack as those numbers, leaf first: stacks share most of their frames, so
    this keeps goldens of real profiles small while staying fully resolved.
    """
    st = p.string_table
    out = _header(p)
    by_location = _frames(p)
    numbers = {text: n for n, text in enumerate(sorted({f for fs in by_location.values() for f in fs}), 1)}
    numbered = {loc: [numbers[f] for f in fs] for loc, fs in by_location.items()}
    rows = []
    for s in p.sample:
        stack = [n for loc_id in s.location_id for n in numbered[loc_id]]
        labels = " ".join(sorted(_label(st, lb) for lb in s.label))
        rows.append((stack, labels, list(s.value)))
    rows.sort()
    out.append(f"frames {len(numbers)}")
    out.extend(f"  f{n} {text}" for text, n in numbers.items())
    out.append(f"samples {len(rows)}")
    for stack, labels, values in rows:
        line = "  " + " ".join(map(str, values)) + " |"
        line += "".join(f" f{n}" for n in stack)
        if labels:
            line += " | " + labels
        out.append(line)
    return "\n".join(out) + "\n"


def _header(p: Profile) -> list[str]:
    st = p.string_table
    pt = period_type(p)
    out = [
        "period_type " + (f"{pt[0]}/{pt[1]}" if pt else "-"),
        f"period {p.period}",
        f"time_nanos {p.time_nanos}",
        f"duration_nanos {p.duration_nanos}",
        "sample_types " + " ".join(f"{t}/{u}" for t, u in sample_types(p)),
    ]
    for name, index in (
        ("default_sample_type", p.default_sample_type),
        ("drop_frames", p.drop_frames),
        ("keep_frames", p.keep_frames),
        ("doc_url", p.doc_url),
    ):
        if index:
            out.append(f"{name} {st[index]}")
    out.extend(f"comment {st[c]}" for c in p.comment)
    mappings = sorted(_mapping(st, m) for m in p.mapping)
    out.extend(f"mapping {m}" for m in mappings)
    return out


def _frames(p: Profile) -> dict[int, list[str]]:
    """Location id -> its frames as text lines, inlined callees first, as pprof stores them."""
    st = p.string_table
    functions = {f.id: f for f in p.function}
    mapping_starts = {m.id: (m.memory_start, st[m.filename]) for m in p.mapping}
    out = {}
    for loc in p.location:
        folded = " [folded]" if loc.is_folded else ""
        if not loc.line:
            start, filename = mapping_starts.get(loc.mapping_id, (0, ""))
            # Relative to the mapping start: the same code at another load address reads the same.
            out[loc.id] = [f"?? {filename}+{loc.address - start:#x}{folded}"]
            continue
        frames = []
        last = len(loc.line) - 1
        for i, ln in enumerate(loc.line):
            f = functions[ln.function_id]
            where = f"{st[f.filename]}:{ln.line}" + (f":{ln.column}" if ln.column else "")
            name = st[f.name]
            if st[f.system_name] not in ("", name):
                name += f" ({st[f.system_name]})"
            inline = " [inline]" if i < last else ""
            frames.append(f"{name} {where}{inline}{folded}")
        out[loc.id] = frames
    return out


def _label(st, lb) -> str:
    if lb.str:
        return f"{st[lb.key]}={st[lb.str]!r}"
    unit = f"[{st[lb.num_unit]}]" if lb.num_unit else ""
    return f"{st[lb.key]}={lb.num}{unit}"


def _mapping(st, m) -> str:
    flags = "".join(
        flag
        for flag, on in (
            ("FN", m.has_functions),
            ("FL", m.has_filenames),
            ("LN", m.has_line_numbers),
            ("IN", m.has_inline_frames),
        )
        if on
    )
    size = m.memory_limit - m.memory_start
    filename, build_id = st[m.filename] or "-", st[m.build_id] or "-"
    return f"{filename} build_id={build_id} size={size:#x} offset={m.file_offset:#x} {flags or '-'}"
