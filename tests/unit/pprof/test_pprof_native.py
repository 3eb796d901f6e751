"""The native core: its own property tests (cargo test), and its Python entry points agreeing
with the Profile-based ones."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

from shared import pprof
from tests.unit.pprof.builders import cpu_profile
from tests.unit.pprof.goldens import fixtures

CRATE = Path(__file__).resolve().parents[3] / "native"


@pytest.mark.skipif(shutil.which("cargo") is None, reason="needs the Rust toolchain (cargo)")
def test_the_decoder_properties_hold() -> None:
    # native/tests/decoder.rs: decode(encode(p)) == p, no mutated or random input panics, a
    # profile merged with itself doubles. A debug build: on a fresh clone it costs a quarter of
    # the CPU of an optimized one (which links with LTO), and the cases then run in seconds.
    done = subprocess.run(
        ["cargo", "test", "--quiet", "--manifest-path", str(CRATE / "Cargo.toml")],
        capture_output=True, text=True, timeout=1800,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]


@pytest.mark.parametrize("profile", fixtures(), ids=lambda p: p.name)
def test_check_says_what_parse_and_the_info_functions_say(profile: Path) -> None:
    data = profile.read_bytes()
    checked = pprof.check(data)
    p = pprof.parse(data)
    st = p.string_table
    head = f"{st[p.period_type.type]}/{st[p.period_type.unit]}" if pprof.period_type(p) else ""
    assert checked.signature == head + ":" + ",".join(f"{t}/{u}" for t, u in pprof.sample_types(p))
    assert checked.sample_types == pprof.sample_types(p)
    assert checked.period_type == pprof.period_type(p)
    assert pprof.signature_types(checked.signature) == (checked.period_type or ("", ""), list(checked.sample_types))
    assert checked.time_nanos == p.time_nanos
    assert checked.samples == len(p.sample)
    assert checked.totals == pprof.totals(p) == tuple(sum(s.value[i] for s in p.sample) for i in range(len(p.sample_type)))
    assert checked.empty == (not any(any(s.value) for s in p.sample))
    assert checked.size == len(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)


def test_a_signature_without_a_period_type_reads_back() -> None:
    assert pprof.signature_types(":inuse_space/bytes") == (("", ""), [("inuse_space", "bytes")])
    assert pprof.signature_types("") == (("", ""), [])


def test_check_refuses_what_parse_refuses_with_the_same_reason() -> None:
    bad = cpu_profile()
    bad.sample[0].location_id.append(99)
    for data in (bad.SerializeToString(), gzip.compress(bad.SerializeToString())):
        with pytest.raises(pprof.MalformedProfile, match="location id 99"):
            pprof.check(data)
    with pytest.raises(pprof.ProfileTooLarge):
        pprof.check(pprof.write(cpu_profile(samples=50)), max_decompressed=100)


def test_adding_stored_bytes_merges_as_adding_parsed_profiles() -> None:
    blobs = [f.read_bytes() for f in fixtures("cpu")]
    by_profile, by_bytes = pprof.Merger(), pprof.Merger()
    for b in blobs:
        by_profile.add(pprof.parse(b))
        by_bytes.add(b)
    assert by_bytes.result() == by_profile.result()
    assert by_bytes.write() == pprof.write(by_profile.result())
    assert pprof.parse(by_bytes.write(level=6)) == by_profile.result()


def test_bad_bytes_added_to_a_merger_leave_it_as_it_was() -> None:
    m = pprof.Merger()
    m.add(pprof.write(cpu_profile()))
    before = m.result()
    with pytest.raises(pprof.MalformedProfile):
        m.add(b"\x07 not a profile")
    with pytest.raises(pprof.ProfileTooLarge):
        m.add(pprof.write(cpu_profile(samples=50)), max_decompressed=100)
    with pytest.raises(pprof.IncompatibleProfiles):
        m.add(pprof.parse(fixtures("heap")[0].read_bytes()))
    assert m.result() == before


def test_an_empty_merger_has_no_result() -> None:
    with pytest.raises(ValueError, match="no profiles"):
        pprof.Merger().result()
