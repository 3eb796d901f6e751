"""Small pprof profiles built in code, for cases the real Go fixtures cannot express."""
from __future__ import annotations

from typing import Sequence

from shared import pprof

CPU_TYPES = (("samples", "count"), ("cpu", "nanoseconds"))
HEAP_TYPES = (("alloc_objects", "count"), ("alloc_space", "bytes"), ("inuse_objects", "count"), ("inuse_space", "bytes"))


def build(
    sample_types: Sequence[tuple[str, str]] = CPU_TYPES,
    samples: Sequence[tuple[Sequence[str], Sequence[int]]] = ((("main.main", "runtime.main"), (1, 10_000_000)),),
    *,
    time_nanos: int = 0,
    duration_nanos: int = 0,
    period: int = 10_000_000,
    gzip: bool = True,
) -> bytes:
    """A valid profile: each sample is (stack of function names, leaf first; values)."""
    p = pprof.Profile()
    strings = [""]

    def s(text: str) -> int:
        if text not in strings:
            strings.append(text)
        return strings.index(text)

    for name, unit in sample_types:
        vt = p.sample_type.add()
        vt.type, vt.unit = s(name), s(unit)
    p.period_type.type, p.period_type.unit = s(sample_types[-1][0]), s(sample_types[-1][1])
    p.period = period
    p.time_nanos = time_nanos
    p.duration_nanos = duration_nanos
    functions: dict[str, int] = {}
    for stack, values in samples:
        sample = p.sample.add()
        for name in stack:
            if name not in functions:
                fid = len(functions) + 1
                functions[name] = fid
                fn = p.function.add()
                fn.id, fn.name, fn.system_name, fn.filename = fid, s(name), s(name), s("main.go")
                loc = p.location.add()
                loc.id = fid
                line = loc.line.add()
                line.function_id, line.line = fid, 10 + fid
            sample.location_id.append(functions[name])
        sample.value.extend(values)
    p.string_table.extend(strings)
    data = pprof.write(p)
    return data if gzip else pprof.decompress(data)


def cpu(time_nanos: int = 0, value: int = 10_000_000) -> bytes:
    return build(CPU_TYPES, ((("main.work", "main.main"), (1, value)),), time_nanos=time_nanos)


def heap(time_nanos: int = 0) -> bytes:
    return build(HEAP_TYPES, ((("main.alloc", "main.main"), (1, 512, 1, 512)),), time_nanos=time_nanos, period=524288)
