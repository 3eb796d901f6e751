"""Small hand-built profiles for the pprof tests: valid by default, broken on purpose when asked."""

from __future__ import annotations

from shared.pprof import Profile


def cpu_profile(*, samples: int = 2, time_nanos: int = 1_700_000_000_000_000_000) -> Profile:
    """A valid two-column CPU profile: main -> work -> leaf, one mapping, one label key."""
    p = Profile(
        string_table=[
            "",
            "samples",
            "count",
            "cpu",
            "nanoseconds",
            "main",
            "work",
            "leaf",
            "main.go",
            "/bin/app",
            "stage",
            "encode",
            "bid",
        ]
    )
    p.sample_type.add(type=1, unit=2)
    p.sample_type.add(type=3, unit=4)
    p.period_type.type, p.period_type.unit = 3, 4
    p.period = 10_000_000
    p.time_nanos = time_nanos
    p.duration_nanos = 1_000_000_000
    p.mapping.add(
        id=1, memory_start=0x400000, memory_limit=0x500000, filename=9, build_id=12, has_functions=True
    )
    for fid, name in ((1, 5), (2, 6), (3, 7)):
        p.function.add(id=fid, name=name, system_name=name, filename=8, start_line=fid * 10)
    for lid in (1, 2, 3):
        p.location.add(id=lid, mapping_id=1, address=0x400000 + lid * 0x10).line.add(
            function_id=lid, line=lid * 10 + 1
        )
    for i in range(samples):
        s = p.sample.add(location_id=[3, 2, 1][i % 2 :], value=[i + 1, (i + 1) * 10_000_000])
        s.label.add(key=10, str=11)
    return p
