"""Our merge agrees with `go tool pprof`, and everything we write opens in it.

For each set of real fixtures, `go tool pprof -proto f1 f2 ...` (Go's profile.Merge) and our
`merge` must print the same `go tool pprof -raw` text once normalised (see `_canonical`).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from shared.pprof import merge, parse, write
from tests.unit.pprof.goldens import fixtures

pytestmark = pytest.mark.go

MERGE_SETS = {
    "cpu x2": fixtures("cpu")[:2],
    "cpu x10": fixtures("cpu"),
    "heap x3": fixtures("heap"),
    "goroutine x2": fixtures("goroutine"),
    "block x2": fixtures("block"),
    "mutex x2": fixtures("mutex"),
    "cpu x10, each twice": fixtures("cpu") * 2,
}


def _pprof(go_bin: str, *args: str | Path) -> str:
    done = subprocess.run(
        [go_bin, "tool", "pprof", *map(str, args)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"go tool pprof {args} failed: {done.stderr}"
    return done.stdout


def _canonical(raw: str) -> list[str]:
    """`go tool pprof -raw` text without ids: each sample printed with its stack resolved.

    Ids are the one thing two correct merges may number differently (they follow the order in
    which samples are met), so location and mapping ids are replaced by what they point to, and
    samples, which -raw prints in merge order, are sorted. Everything else (header, values,
    labels, addresses, functions, files, lines, mapping ranges and build ids) is compared as is.
    """
    header, rest = raw.split("\nSamples:\n", 1)
    samples_part, rest = rest.split("\nLocations\n", 1)
    locations_part, mappings_part = rest.split("\nMappings\n", 1)

    mappings = {}
    for line in mappings_part.splitlines():
        mid, _, text = line.partition(": ")
        mappings[mid] = text

    locations: dict[str, list[str]] = {}
    current = ""
    for line in locations_part.splitlines():
        head = re.match(r"\s*(\d+): (0x[0-9a-f]+ )(?:M=(\d+) )?(.*)$", line)
        if head:
            current = head.group(1)
            mapping = mappings[head.group(3)] if head.group(3) else "-"
            locations[current] = [f"{head.group(2)}[{mapping}] {head.group(4)}"]
        else:
            locations[current].append(line.strip())

    sample_lines = samples_part.splitlines()
    out = [header, sample_lines[0]]  # the sample type line
    samples: list[str] = []
    for line in sample_lines[1:]:
        if ":" in line and re.match(r"^\s*-?\d+(\s+-?\d+)*: ", line):
            values, _, ids = line.partition(": ")
            stack = " / ".join(" + ".join(locations[i]) for i in ids.split())
            samples.append(f"{values.split()} {stack}")
        else:
            samples[-1] += " " + line.strip()  # a label line belongs to the sample above
    out.extend(sorted(samples))
    out.extend(sorted(mappings[m] for m in mappings))
    return out


@pytest.mark.parametrize("files", MERGE_SETS.values(), ids=MERGE_SETS.keys())
def test_merge_matches_go_tool_pprof(files: list[Path], go_bin: str, tmp_path: Path) -> None:
    assert files, "fixtures are missing"
    ours = tmp_path / "ours.pb.gz"
    ours.write_bytes(write(merge(parse(f.read_bytes()) for f in files)))
    theirs = tmp_path / "go.pb.gz"
    _pprof(go_bin, "-proto", f"-output={theirs}", *files)

    expected = _canonical(_pprof(go_bin, "-raw", theirs))
    actual = _canonical(_pprof(go_bin, "-raw", ours))
    assert actual == expected


def test_every_profile_we_write_opens_in_go_tool_pprof(go_bin: str, tmp_path: Path) -> None:
    written = []
    for f in fixtures():
        out = tmp_path / f.name
        out.write_bytes(write(parse(f.read_bytes()), level=6))
        written.append(out)
    for name, files in MERGE_SETS.items():
        out = tmp_path / (name.replace(" ", "-") + "-merged.pb.gz")
        out.write_bytes(write(merge(parse(f.read_bytes()) for f in files)))
        written.append(out)
    for out in written:
        top = _pprof(go_bin, "-top", out)
        assert "flat%" in top, f"{out.name}: {top[:500]}"


def test_go_tool_pprof_refuses_to_merge_what_we_refuse(go_bin: str) -> None:
    # The other side of IncompatibleProfiles: pprof cannot merge a CPU and a heap profile either.
    done = subprocess.run(
        [go_bin, "tool", "pprof", "-raw", fixtures("cpu")[0], fixtures("heap")[0]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "sample type" in done.stderr
