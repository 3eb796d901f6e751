"""A long fuzz run of `shared.pprof.parse`: damaged real profiles, damaged gzip streams, random
bytes and small gzip bombs, each refused with the library's typed errors or parsed into
something that merges, renders and writes back identically. `check` and `Merger.add` of the
same bytes must come to the same verdict, with the same reason. Anything else is a failure.

The short run of the same target is `tests/unit/test_fuzz_parse.py` in `make test`; this
one is for a machine with minutes to spare:

    .venv/bin/python bench/fuzz_parse.py --examples 20000

Prints the outcome counts and saves them as JSON under bench/results/.
"""
from __future__ import annotations

import argparse
import gzip
import sys
import time
import traceback
import zlib
from collections import Counter

from _common import TESTDATA, machine, write_result  # noqa: E402  (puts the repo on sys.path)

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from shared.pprof import MalformedProfile, Merger, ProfileTooLarge, check, merge, parse, to_text, write  # noqa: E402
from shared.pprof.parse import decompress  # noqa: E402
from tests.unit.pprof.test_pprof_fuzz import damaged  # noqa: E402

LIMIT = 4 << 20  # decompression limit of the run: small, so bombs are cheap to reach
TYPED = (MalformedProfile, ProfileTooLarge)
SEEDS = [decompress(p.read_bytes()) for p in sorted(TESTDATA.glob("*.pb.gz"))]


@st.composite
def damaged_real(draw: st.DrawFn) -> bytes:
    """One of the real Go profiles under tests/testdata with bytes overwritten, inserted, cut."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 16))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        i = draw(st.integers(0, len(data)))
        data[i:i] = draw(st.binary(min_size=1, max_size=32))
    if draw(st.booleans()):
        data = data[: draw(st.integers(1, len(data)))]
    return bytes(data)


@st.composite
def damaged_gzip(draw: st.DrawFn) -> bytes:
    """A valid profile gzipped, then its stream damaged: header, deflate data or trailer."""
    data = bytearray(gzip.compress(draw(st.sampled_from(SEEDS))))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(2, len(data)))]
    return bytes(data)


@st.composite
def bomb(draw: st.DrawFn) -> bytes:
    """Highly compressible bytes over the limit, gzip or raw deflate wrapped in gzip's magic."""
    size = draw(st.integers(LIMIT - 16, LIMIT * 4))
    fill = draw(st.sampled_from([b"\x00", b"\x0a\x00", b"\xff"]))
    body = (fill * (size // len(fill) + 1))[:size]
    if draw(st.booleans()):
        return gzip.compress(body, compresslevel=1)
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + zlib.compress(body, 1)[2:]


INPUTS = st.one_of(
    damaged(),
    damaged_real(),
    damaged_real().map(gzip.compress),
    damaged_gzip(),
    st.binary(min_size=0, max_size=512),
    st.binary(min_size=0, max_size=64).map(lambda b: b"\x1f\x8b" + b),
    bomb(),
)


def _merged(data: bytes, *, max_decompressed: int) -> None:
    Merger().add(data, max_decompressed=max_decompressed)


def verdict(read, data: bytes) -> tuple[str, str, object]:
    """(outcome, reason, what `read` returned): a typed refusal, "parsed", or "unexpected"."""
    try:
        return "parsed", "", read(data, max_decompressed=LIMIT)
    except TYPED as exc:
        return type(exc).__name__, str(exc), None
    except Exception:
        return "unexpected", traceback.format_exc(), None


def run(examples: int) -> dict:
    outcomes: Counter[str] = Counter()
    failures: list[str] = []

    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    @given(INPUTS)
    def target(data: bytes) -> None:
        verdicts = [verdict(read, data) for read in (parse, check, _merged)]
        for kind, reason, _ in verdicts:
            if kind == "unexpected":
                failures.append(reason)
                raise AssertionError(reason)
        if len({v[:2] for v in verdicts}) != 1:
            failures.append(f"parse, check and Merger.add disagree on {data[:64]!r}: {[v[:2] for v in verdicts]}")
            raise AssertionError(failures[-1])
        kind, _reason, p = verdicts[0]
        if kind != "parsed":
            outcomes[kind] += 1
            return
        merged = merge([p, p])
        assert to_text(parse(write(merged))) == to_text(merged)
        outcomes["parsed"] += 1

    started = time.perf_counter()
    ok = True
    try:
        target()
    except Exception:  # hypothesis re-raises the shrunk failure; the first traceback is kept above
        ok = False
        if not failures:
            failures.append(traceback.format_exc())
    seconds = time.perf_counter() - started
    return {
        "examples_asked": examples,
        "inputs_run": sum(outcomes.values()) + len(failures),
        "outcomes": dict(outcomes),
        "seconds": round(seconds, 1),
        "inputs_per_second": round((sum(outcomes.values()) + len(failures)) / seconds, 1) if seconds else None,
        "ok": ok,
        "failures": failures[:3],
        "limit_bytes": LIMIT,
        "seed_profiles": len(SEEDS),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=20_000, help="Hypothesis examples to run.")
    args = ap.parse_args(argv)
    result = run(args.examples)
    result["machine"] = machine()
    path = write_result("fuzz_parse", result)
    print(f"fuzz_parse: {result['inputs_run']} inputs in {result['seconds']}s "
          f"({result['inputs_per_second']}/s): {result['outcomes']}")
    if not result["ok"]:
        print("FAILED; first failure:\n" + result["failures"][0], file=sys.stderr)
    print(f"saved {path}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
